import { describe, it, expect } from 'vitest';
import { TraceDrivenPolicy, compositeScore } from '../../src/routing/learned.js';
import type { Observation, PolicyOptions } from '../../src/routing/types.js';
import type { Outcome } from '../../src/traces/types.js';
import { FakeEvidenceSource, type FakeTrace } from './fake-evidence.js';

function options(over: Partial<PolicyOptions> = {}): PolicyOptions {
  return {
    models: [
      { key: 'a', inputCostPerMTok: 0, outputCostPerMTok: 0 },
      { key: 'b', inputCostPerMTok: 0, outputCostPerMTok: 0 },
      { key: 'c', inputCostPerMTok: 0, outputCostPerMTok: 0 },
    ],
    minSamples: 5,
    costWeight: 0,
    latencyWeight: 0,
    halfLife: 50,
    ...over,
  };
}

let seq = 0;
function obs(queryClass: string, model: string, outcome: Outcome = 'success', feedback: number | null = null): Observation {
  seq += 1;
  return { traceId: `o${seq}`, query: 'q', queryClass, model, outcome, latencyMs: 10, costUsd: null, feedback };
}

function trace(queryClass: string, model: string, outcome: Outcome = 'success', feedback: number | null = null): FakeTrace {
  seq += 1;
  return { id: `t${seq}`, time: seq, queryClass, model, outcome, feedback, costUsd: null, latencyMs: 100 };
}

function traces(n: number, queryClass: string, model: string, outcome: Outcome = 'success', feedback: number | null = null): FakeTrace[] {
  return Array.from({ length: n }, () => trace(queryClass, model, outcome, feedback));
}

/** A policy whose `code` class is mapped to `model` with the given confidence. */
async function mapped(model: string, count: number, over: Partial<PolicyOptions> = {}): Promise<TraceDrivenPolicy> {
  const source = new FakeEvidenceSource().add(...traces(count, 'code', model));
  const policy = new TraceDrivenPolicy(options({ source, ...over }));
  await policy.updateFromTraces();
  return policy;
}

const ctx = (available: string[], queryClass = 'code') => ({ query: 'q', queryClass, available });

describe('TraceDrivenPolicy.select: fallback chain', () => {
  it('returns the learned model when confident and available', async () => {
    const policy = await mapped('b', 5, { defaultModel: 'a' });
    expect(policy.select(ctx(['a', 'b', 'c']))).toEqual({ model: 'b', reason: 'learned' });
  });

  it('falls back to the default when the learned model is not available', async () => {
    const policy = await mapped('b', 5, { defaultModel: 'a' });
    expect(policy.select(ctx(['a', 'c']))).toEqual({ model: 'a', reason: 'default' });
  });

  it('falls back to the default below minSamples (the gate is >=)', async () => {
    const policy = await mapped('b', 4, { defaultModel: 'a' });
    expect(policy.select(ctx(['a', 'b']))).toEqual({ model: 'a', reason: 'default' });
    const exactly = await mapped('b', 5, { defaultModel: 'a' });
    expect(exactly.select(ctx(['a', 'b']))).toEqual({ model: 'b', reason: 'learned' });
  });

  it('honours a minSamples from the options', async () => {
    const policy = await mapped('b', 2, { defaultModel: 'a', minSamples: 2 });
    expect(policy.minSamples).toBe(2);
    expect(policy.select(ctx(['a', 'b']))).toEqual({ model: 'b', reason: 'learned' });
  });

  it('uses the fallback model when the default is unset or unavailable', () => {
    const policy = new TraceDrivenPolicy(options({ defaultModel: 'a', fallbackModel: 'c' }));
    expect(policy.select(ctx(['b', 'c']))).toEqual({ model: 'c', reason: 'fallback' });
    const noDefault = new TraceDrivenPolicy(options({ fallbackModel: 'c' }));
    expect(noDefault.select(ctx(['b', 'c']))).toEqual({ model: 'c', reason: 'fallback' });
  });

  it('uses the first available model when neither default nor fallback is available', () => {
    const policy = new TraceDrivenPolicy(options({ defaultModel: 'a', fallbackModel: 'b' }));
    expect(policy.select(ctx(['c', 'b2']))).toEqual({ model: 'c', reason: 'fallback' });
  });

  it('treats an empty available list as no restriction, like the original', async () => {
    const policy = await mapped('b', 5, { defaultModel: 'a' });
    expect(policy.select(ctx([]))).toEqual({ model: 'b', reason: 'learned' });
    expect(policy.select(ctx([], 'math'))).toEqual({ model: 'a', reason: 'default' });
    const fallbackOnly = new TraceDrivenPolicy(options({ fallbackModel: 'c' }));
    expect(fallbackOnly.select(ctx([]))).toEqual({ model: 'c', reason: 'fallback' });
  });

  it('returns "" with reason default when nothing is configured or available', () => {
    const policy = new TraceDrivenPolicy(options());
    expect(policy.select(ctx([]))).toEqual({ model: '', reason: 'default' });
  });
});

describe('TraceDrivenPolicy.policyMap', () => {
  it('returns a copy', async () => {
    const policy = await mapped('b', 5);
    const map = policy.policyMap;
    expect(map).toEqual({ code: 'b' });
    map.code = 'c';
    map.math = 'a';
    expect(policy.policyMap).toEqual({ code: 'b' });
  });
});

describe('TraceDrivenPolicy.updateFromTraces', () => {
  it('reports a missing source like the original', async () => {
    const policy = new TraceDrivenPolicy(options());
    expect(await policy.updateFromTraces()).toEqual({ error: 'no analyzer configured' });
  });

  it('reports no traces', async () => {
    const policy = new TraceDrivenPolicy(options({ source: new FakeEvidenceSource() }));
    expect(await policy.updateFromTraces()).toEqual({ updated: false, reason: 'no traces' });
    expect(policy.policyMap).toEqual({});
  });

  it('asks for at most 10,000 traces in the given window, undiscounted', async () => {
    const source = new FakeEvidenceSource().add(...traces(10_001, 'code', 'a'));
    const policy = new TraceDrivenPolicy(options({ source }));
    const summary = await policy.updateFromTraces({ since: 0, until: Number.MAX_SAFE_INTEGER });
    expect(source.evidenceCalls).toEqual([
      { since: 0, until: Number.MAX_SAFE_INTEGER, maxTraces: 10_000, source: 'live' },
      // Offline evidence (a prior of priorWeight per class × model) is read beside it.
      { since: 0, until: Number.MAX_SAFE_INTEGER, source: 'offline' },
    ]);
    expect(summary.total_traces).toBe(10_000);
    expect(policy.confidence).toEqual({ code: 10_000 });
  });

  it('returns the original summary shape and the changes', async () => {
    const source = new FakeEvidenceSource().add(...traces(3, 'code', 'a'), ...traces(2, 'math', 'b'), ...traces(1, 'long', ''));
    const policy = new TraceDrivenPolicy(options({ source }));
    expect(await policy.updateFromTraces()).toEqual({
      updated: true,
      query_classes: 3,
      total_traces: 6,
      changes: { code: { old: '', new: 'a' }, math: { old: '', new: 'b' } },
    });
    // A class whose traces have no model is counted but not mapped.
    expect(policy.policyMap).toEqual({ code: 'a', math: 'b' });
    expect(await policy.updateFromTraces()).toEqual({ updated: true, query_classes: 3, total_traces: 6, changes: {} });

    source.add(...traces(5, 'code', 'c', 'success', 1));
    const third = await policy.updateFromTraces();
    expect(third.changes).toEqual({ code: { old: 'a', new: 'c' } });
    expect(policy.confidence.code).toBe(8);
  });

  it('scores 0.6 × success rate + 0.4 × mean feedback', async () => {
    // a: sr 0.8, no feedback → 0.48 + 0.2 = 0.68; b: sr 0.7, feedback 0.9 → 0.42 + 0.36 = 0.78.
    const source = new FakeEvidenceSource().add(
      ...traces(8, 'general', 'a'),
      ...traces(2, 'general', 'a', 'error'),
      ...traces(7, 'general', 'b', 'success', 0.9),
      ...traces(3, 'general', 'b', 'timeout', 0.9),
    );
    const policy = new TraceDrivenPolicy(options({ source }));
    await policy.updateFromTraces();
    expect(policy.policyMap.general).toBe('b');
    const arms = policy.snapshot().classes.find((c) => c.queryClass === 'general')?.arms ?? [];
    expect(arms.map((a) => [a.model, a.estimate])).toEqual([
      ['a', expect.closeTo(0.68, 12)],
      ['b', expect.closeTo(0.78, 12)],
    ]);
  });

  it('counts a model without feedback as 0.5, which beats a low mean feedback', async () => {
    // a: 0.6 + 0.4 × 0.5 = 0.8; b: 0.6 + 0.4 × 0.4 = 0.76.
    const source = new FakeEvidenceSource().add(...traces(4, 'short', 'b', 'success', 0.4), ...traces(4, 'short', 'a'));
    const policy = new TraceDrivenPolicy(options({ source }));
    await policy.updateFromTraces();
    expect(policy.policyMap.short).toBe('a');
    expect(compositeScore({ count: 4, successes: 4, feedbackCount: 0, feedbackSum: 0 })).toBe(0.8);
    expect(compositeScore({ count: 0, successes: 0, feedbackCount: 0, feedbackSum: 0 })).toBe(0.2);
  });

  it('breaks ties for the model seen first by the original, which lists traces newest first', async () => {
    const source = new FakeEvidenceSource().add(...traces(3, 'math', 'c'), ...traces(3, 'math', 'a'));
    const policy = new TraceDrivenPolicy(options({ source }));
    await policy.updateFromTraces();
    expect(policy.policyMap.math).toBe('a');
    // Whatever order the store returns the arms in.
    source.evidence = async (query) => (await FakeEvidenceSource.prototype.evidence.call(source, query)).reverse();
    source.add(...traces(3, 'short', 'a'), ...traces(3, 'short', 'c'));
    await policy.updateFromTraces();
    expect(policy.policyMap).toEqual({ math: 'a', short: 'c' });
  });

  it('sets the class confidence to the class total over all models', async () => {
    const source = new FakeEvidenceSource().add(...traces(2, 'math', 'a'), ...traces(3, 'math', 'b', 'error'));
    const policy = new TraceDrivenPolicy(options({ source }));
    await policy.updateFromTraces();
    expect(policy.confidence).toEqual({ math: 5 });
    expect(policy.select(ctx(['a', 'b'], 'math'))).toEqual({ model: 'a', reason: 'learned' });
  });
});

describe('TraceDrivenPolicy.observe: the original online rule', () => {
  it('maps a new class to the first observed model whatever the outcome', () => {
    const policy = new TraceDrivenPolicy(options());
    policy.observe(obs('code', 'a', 'error'));
    expect(policy.policyMap).toEqual({ code: 'a' });
    expect(policy.confidence).toEqual({ code: 1 });
  });

  it('switches only on success with feedback above 0.7 while the class is young', () => {
    const policy = new TraceDrivenPolicy(options());
    policy.observe(obs('code', 'a'));
    policy.observe(obs('code', 'b', 'success', 0.7));
    expect(policy.policyMap.code).toBe('a');
    policy.observe(obs('code', 'b', 'success', null));
    expect(policy.policyMap.code).toBe('a');
    policy.observe(obs('code', 'b', 'error', 0.9));
    expect(policy.policyMap.code).toBe('a');
    // Confidence before this one is 4 < 5: switch.
    policy.observe(obs('code', 'b', 'success', 0.71));
    expect(policy.policyMap.code).toBe('b');
    expect(policy.confidence.code).toBe(5);
  });

  it('never switches once the confidence before the observation reached minSamples', () => {
    const policy = new TraceDrivenPolicy(options());
    for (let i = 0; i < 5; i++) policy.observe(obs('code', 'a'));
    expect(policy.confidence.code).toBe(5);
    policy.observe(obs('code', 'b', 'success', 1));
    expect(policy.policyMap.code).toBe('a');
    expect(policy.confidence.code).toBe(6);
  });

  it('switches on the observation whose prior confidence is minSamples − 1', () => {
    const policy = new TraceDrivenPolicy(options({ minSamples: 3 }));
    policy.observe(obs('math', 'a'));
    policy.observe(obs('math', 'a'));
    policy.observe(obs('math', 'b', 'success', 0.9));
    expect(policy.policyMap.math).toBe('b');
    policy.observe(obs('math', 'c', 'success', 0.9));
    expect(policy.policyMap.math).toBe('b');
  });

  it('makes the online map usable by select once confident', () => {
    const policy = new TraceDrivenPolicy(options({ defaultModel: 'a' }));
    for (let i = 0; i < 4; i++) policy.observe(obs('code', 'c'));
    expect(policy.select(ctx(['a', 'c']))).toEqual({ model: 'a', reason: 'default' });
    policy.observe(obs('code', 'c'));
    expect(policy.select(ctx(['a', 'c']))).toEqual({ model: 'c', reason: 'learned' });
  });
});

describe('TraceDrivenPolicy.observeFeedback', () => {
  it('changes nothing: the batch update reads feedback from the store', async () => {
    const policy = await mapped('b', 5);
    const before = JSON.stringify(policy.snapshot());
    policy.observeFeedback({ traceId: 'x', queryClass: 'code', model: 'a', outcome: 'success', score: 1, previous: null, source: 'human' });
    expect(JSON.stringify(policy.snapshot())).toBe(before);
    expect(policy.policyMap).toEqual({ code: 'b' });
  });
});

describe('TraceDrivenPolicy.snapshot', () => {
  it('reports per class the mapping, the last update per arm and the share of decisions', async () => {
    const source = new FakeEvidenceSource().add(
      ...traces(6, 'code', 'a'),
      ...traces(4, 'code', 'b', 'error'),
      trace('code', 'b'),
    );
    for (const t of source.traces) t.costUsd = 0.002;
    const policy = new TraceDrivenPolicy(options({ source, defaultModel: 'c' }));
    await policy.updateFromTraces();
    policy.select(ctx(['a', 'b', 'c']));
    policy.select(ctx(['a', 'b', 'c']));
    policy.select(ctx(['b', 'c']));
    policy.select(ctx(['b', 'c']));

    const snap = policy.snapshot();
    expect(snap.policy).toBe('learned');
    const code = snap.classes.find((c) => c.queryClass === 'code');
    expect(code?.choice).toBe('a');
    expect(code?.confidence).toBe(11);
    const byModel = Object.fromEntries((code?.arms ?? []).map((arm) => [arm.model, arm]));
    expect(byModel.a).toMatchObject({ samples: 6, estimate: 0.8, share: 0.5, costUsd: expect.closeTo(0.002, 12) });
    expect(byModel.a?.uncertainty).toBeCloseTo(Math.sqrt((0.8 * 0.2) / 6), 12);
    expect(byModel.b).toMatchObject({ samples: 5, share: 0 });
    expect(byModel.b?.estimate).toBeCloseTo(0.6 * 0.2 + 0.2, 12);
    expect(byModel.c).toMatchObject({ samples: 0, share: 0.5, costUsd: null });
  });
});
