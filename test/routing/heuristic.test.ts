import { describe, it, expect } from 'vitest';
import { HeuristicPolicy } from '../../src/routing/heuristic.js';
import type { ModelInfo, PolicyOptions } from '../../src/routing/types.js';

const model = (key: string, sizeB?: number): ModelInfo => ({ key, sizeB, inputCostPerMTok: 0, outputCostPerMTok: 0 });

function policy(models: ModelInfo[], over: Partial<PolicyOptions> = {}): HeuristicPolicy {
  return new HeuristicPolicy({ models, minSamples: 5, costWeight: 0, latencyWeight: 0, halfLife: 50, ...over });
}

const MODELS = [model('mid', 13), model('small', 7), model('big', 70), model('Qwen-Coder', 32), model('nosize')];
const ALL = MODELS.map((m) => m.key);
const GENERAL = 'Tell me about the history of the printing press in Europe, briefly.';

const select = (p: HeuristicPolicy, query: string, available: string[] = ALL) => p.select({ query, queryClass: 'general', available });

describe('HeuristicPolicy rules', () => {
  it('sends code to the first model whose key contains "code", ignoring case', () => {
    const p = policy(MODELS);
    expect(select(p, 'const x = 1;')).toEqual({ model: 'Qwen-Coder', reason: 'heuristic' });
    expect(select(p, 'x => x', ['codellama', 'Qwen-Coder']).model).toBe('codellama');
  });

  it('sends code to the largest model when no key contains "code"', () => {
    expect(select(policy(MODELS), 'const x = 1;', ['mid', 'big', 'small']).model).toBe('big');
  });

  it('sends math to the largest model', () => {
    expect(select(policy(MODELS), 'what is the sum of these?')).toEqual({ model: 'big', reason: 'heuristic' });
  });

  it('sends a query under 50 characters to the smallest model', () => {
    const p = policy(MODELS);
    expect(select(p, 'x'.repeat(49)).model).toBe('small');
    expect(select(p, 'x'.repeat(50)).reason).not.toBe('heuristic');
  });

  it('sends a query over 500 characters, or one with a reasoning word, to the largest model', () => {
    const p = policy(MODELS);
    expect(select(p, 'x'.repeat(501))).toEqual({ model: 'big', reason: 'heuristic' });
    expect(select(p, 'x'.repeat(500)).reason).not.toBe('heuristic');
    expect(select(p, `${GENERAL} Explain why.`)).toEqual({ model: 'big', reason: 'heuristic' });
  });

  it('otherwise uses the default, then the fallback, then the first available', () => {
    expect(select(policy(MODELS, { defaultModel: 'mid', fallbackModel: 'big' }), GENERAL)).toEqual({
      model: 'mid',
      reason: 'default',
    });
    expect(select(policy(MODELS, { defaultModel: 'mid', fallbackModel: 'big' }), GENERAL, ['small', 'big'])).toEqual({
      model: 'big',
      reason: 'fallback',
    });
    expect(select(policy(MODELS, { defaultModel: 'mid' }), GENERAL, ['nosize', 'small'])).toEqual({
      model: 'nosize',
      reason: 'fallback',
    });
  });

  it('returns the default, else the fallback, else "" when nothing is available', () => {
    expect(select(policy(MODELS, { defaultModel: 'mid', fallbackModel: 'big' }), GENERAL, [])).toEqual({
      model: 'mid',
      reason: 'default',
    });
    expect(select(policy(MODELS, { fallbackModel: 'big' }), GENERAL, [])).toEqual({ model: 'big', reason: 'fallback' });
    expect(select(policy(MODELS), GENERAL, [])).toEqual({ model: '', reason: 'default' });
  });
});

describe('HeuristicPolicy sizes', () => {
  it('counts a model without a size as 0 for the largest, and keeps the first on ties', () => {
    const p = policy([model('x'), model('y'), model('z', 3), model('w', 3)]);
    expect(select(p, 'x'.repeat(600), ['x', 'y']).model).toBe('x');
    expect(select(p, 'x'.repeat(600), ['x', 'z', 'w']).model).toBe('z');
  });

  it('skips models without a size for the smallest, unless none has one', () => {
    const p = policy([model('x'), model('y'), model('z', 3), model('w', 1)]);
    expect(select(p, 'hi', ['x', 'z', 'y', 'w']).model).toBe('w');
    expect(select(p, 'hi', ['x', 'y']).model).toBe('x');
    expect(select(p, 'hi', ['z', 'x']).model).toBe('z');
  });
});

describe('HeuristicPolicy as a static policy', () => {
  it('learns nothing', async () => {
    const p = policy(MODELS);
    p.observe({ traceId: 't', query: 'hi', queryClass: 'short', model: 'big', outcome: 'success', latencyMs: 1, costUsd: null, feedback: 1 });
    p.observeFeedback({ traceId: 't', queryClass: 'short', model: 'big', outcome: 'success', score: 1, previous: null, source: 'human' });
    expect(select(p, 'hi').model).toBe('small');
    expect(await p.updateFromTraces()).toEqual({ updated: false, reason: 'static policy' });
  });

  it('reports the share of its decisions per class', () => {
    const p = policy(MODELS);
    p.select({ query: 'hi', queryClass: 'short', available: ALL });
    p.select({ query: 'hi', queryClass: 'short', available: ALL });
    p.select({ query: 'hi', queryClass: 'short', available: ['big'] });
    const snap = p.snapshot();
    expect(snap.policy).toBe('heuristic');
    expect(snap.classes).toHaveLength(1);
    expect(snap.classes[0]?.choice).toBe('small');
    expect(snap.classes[0]?.arms.map((a) => [a.model, a.share])).toEqual([
      ['small', 2 / 3],
      ['big', 1 / 3],
    ]);
  });
});
