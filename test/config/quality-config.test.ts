import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/core/config.js';
import { ConfigError } from '../../src/core/errors.js';

const model = (extra: Record<string, unknown> = {}) => ({ baseURL: 'http://127.0.0.1:9/v1', model: 'm', ...extra });

function config(models: Record<string, unknown>, router: Record<string, unknown> = {}) {
  return parseConfig({ models, router, logging: { level: 'silent' } });
}

function error(models: Record<string, unknown>, router: Record<string, unknown> = {}): string {
  try {
    config(models, router);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('the config was accepted');
}

describe('models.<key>.routed', () => {
  it('defaults to true', () => {
    expect(config({ a: model() }).models.a!.routed).toBe(true);
  });

  it('needs at least one routed model', () => {
    expect(error({ a: model({ routed: false }) })).toMatch(/models: at least one model must be routed/);
  });

  it('keeps router.defaultModel and router.fallbackModel to routed models', () => {
    const models = { a: model(), b: model({ routed: false }) };
    expect(error(models, { defaultModel: 'b' })).toMatch(/router\.defaultModel: "b" has routed: false/);
    expect(error(models, { fallbackModel: 'b' })).toMatch(/router\.fallbackModel: "b" has routed: false/);
    expect(config(models, { defaultModel: 'a' }).router.defaultModel).toBe('a');
  });
});

describe('router.judge and router.shadow', () => {
  it('are absent by default, and take their defaults when given', () => {
    expect(config({ a: model() }).router.judge).toBeUndefined();
    const r = config({ a: model(), j: model({ routed: false }) }, { judge: { model: 'j' }, shadow: {} }).router;
    expect(r.judge).toEqual({ model: 'j', sampleRate: 0.05, maxPerMinute: 60, dailyBudgetUsd: 5, weight: 0.5, timeoutMs: 30_000, queueSize: 100 });
    expect(r.shadow).toEqual({ rate: 0.05, dailyBudgetUsd: 5 });
  });

  it('need a configured judge model', () => {
    expect(error({ a: model() }, { judge: { model: 'nope' } })).toMatch(/router\.judge\.model: "nope" is not a configured model/);
    expect(error({ a: model() }, { judge: {} })).toMatch(/router\.judge\.model/);
  });

  it('refuse a shadow without a judge, and rates outside 0..1', () => {
    expect(error({ a: model() }, { shadow: { rate: 0.1 } })).toMatch(/router\.shadow: shadow calls are graded by the judge/);
    expect(error({ a: model() }, { judge: { model: 'a', sampleRate: 2 } })).toMatch(/router\.judge\.sampleRate/);
    expect(error({ a: model() }, { judge: { model: 'a' }, shadow: { rate: -1 } })).toMatch(/router\.shadow\.rate/);
  });

  it('keep the class names judge and embedding for the judge\'s own traces and embeddings', () => {
    expect(error({ a: model() }, { classes: [{ name: 'judge', user: 'grade' }] })).toMatch(/router\.classes\.0\.name: "judge" is the class of the judge's own traces/);
    expect(error({ a: model() }, { classes: [{ name: 'code', user: 'def ' }, { name: 'embedding', user: 'vector' }] })).toMatch(
      /router\.classes\.1\.name: "embedding" is the class of \/v1\/embeddings requests/,
    );
  });
});

describe('a setting that is false (off) or an object', () => {
  it('names the field inside the object that is wrong, or says what the value may be', () => {
    expect(error({ a: model() }, { sticky: { ttlSeconds: 0.5 } })).toMatch(/router\.sticky\.ttlSeconds: .*expected int/);
    expect(error({ a: model() }, { implicit: { windowSeconds: -1 } })).toMatch(/router\.implicit\.windowSeconds: Too small/);
    expect(error({ a: model() }, { sticky: true })).toMatch(/router\.sticky: expected false \(off\) or an object/);
    expect(config({ a: model() }, { sticky: false }).router.sticky).toBe(false);
  });
});
