import { describe, it, expect } from 'vitest';
import { AdaptivePolicy } from '../../src/routing/adaptive.js';
import { HeuristicPolicy } from '../../src/routing/heuristic.js';
import { TraceDrivenPolicy } from '../../src/routing/learned.js';
import { createPolicy, policyNames, registerPolicy } from '../../src/routing/registry.js';
import type { PolicyOptions } from '../../src/routing/types.js';

const options: PolicyOptions = {
  models: [{ key: 'a', inputCostPerMTok: 1, outputCostPerMTok: 2 }],
  minSamples: 5,
  costWeight: 0,
  latencyWeight: 0,
  halfLife: 50,
  seed: 1,
};

describe('policy registry', () => {
  it('has learned, heuristic and adaptive built in', () => {
    expect(policyNames()).toEqual(expect.arrayContaining(['learned', 'heuristic', 'adaptive']));
    expect(createPolicy('learned', options)).toBeInstanceOf(TraceDrivenPolicy);
    expect(createPolicy('heuristic', options)).toBeInstanceOf(HeuristicPolicy);
    const adaptive = createPolicy('adaptive', options);
    expect(adaptive).toBeInstanceOf(AdaptivePolicy);
    expect(adaptive.name).toBe('adaptive');
  });

  it('passes the options to the factory', () => {
    const learned = createPolicy('learned', { ...options, minSamples: 9 }) as TraceDrivenPolicy;
    expect(learned.minSamples).toBe(9);
  });

  it('throws TRACEGATE_UNKNOWN_POLICY naming the known policies', () => {
    let error: unknown;
    try {
      createPolicy('nope', options);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(Error);
    expect((error as { code?: string }).code).toBe('TRACEGATE_UNKNOWN_POLICY');
    expect((error as Error).message).toContain('"nope"');
    for (const name of ['learned', 'heuristic', 'adaptive']) expect((error as Error).message).toContain(name);
  });

  it('registers a new policy once', () => {
    registerPolicy('always-a', (opts) => new HeuristicPolicy({ ...opts, defaultModel: 'a' }));
    expect(policyNames()).toContain('always-a');
    expect(createPolicy('always-a', options).select({ query: 'x'.repeat(80), queryClass: 'general', available: ['b', 'a'] })).toEqual({
      model: 'a',
      reason: 'default',
    });
    expect(() => registerPolicy('always-a', (opts) => new HeuristicPolicy(opts))).toThrow(/already registered/);
  });
});
