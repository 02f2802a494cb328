import { describe, expect, it } from 'vitest';
import { AdaptivePolicy } from '../../src/routing/adaptive.js';
import type { ModelInfo, PolicyOptions } from '../../src/routing/types.js';

const free = (key: string): ModelInfo => ({ key, inputCostPerMTok: 0, outputCostPerMTok: 0 });
const options = (over: Partial<PolicyOptions> = {}): PolicyOptions => ({
  models: [free('a'), free('b')],
  minSamples: 5,
  costWeight: 0,
  latencyWeight: 0,
  halfLife: 5,
  seed: 1,
  ...over,
});

function observe(policy: AdaptivePolicy, traceId: string, queryClass = 'code', model = 'a') {
  policy.observe({ traceId, query: '', queryClass, model, outcome: 'success', latencyMs: 1, costUsd: null, feedback: null });
}

describe('AdaptivePolicy remembers 20 half-lives of traces per arm for late feedback', () => {
  it('applies feedback to a recent trace, ignores it for one its arm has pushed out, and other arms do not push', () => {
    const policy = new AdaptivePolicy(options()); // halfLife 5: 100 traces per arm
    observe(policy, 'old');
    for (let i = 0; i < 100; i++) observe(policy, `a${i}`);
    // Another arm's traffic does not push this arm's traces out.
    for (let i = 0; i < 500; i++) observe(policy, `b${i}`, 'code', 'b');
    const before = policy.armState('code', 'a')!.quality;
    policy.observeFeedback({ traceId: 'old', queryClass: 'code', model: 'a', outcome: 'success', score: 0, previous: null, source: 'human' });
    expect(policy.armState('code', 'a')!.quality).toBe(before);
    policy.observeFeedback({ traceId: 'a0', queryClass: 'code', model: 'a', outcome: 'success', score: 0, previous: null, source: 'human' });
    const after = policy.armState('code', 'a')!.quality;
    // a0 is 99 traces back: its quality 1 → 0 weighs 2^(-99/5).
    expect(before - after).toBeCloseTo(Math.pow(2, -99 / 5), 12);
  });

  it('without forgetting (halfLife 0) keeps every trace up to the overall bound', () => {
    const policy = new AdaptivePolicy(options({ halfLife: 0 }));
    for (let i = 0; i < 3000; i++) observe(policy, `t${i}`);
    const before = policy.armState('code', 'a')!.quality;
    policy.observeFeedback({ traceId: 't0', queryClass: 'code', model: 'a', outcome: 'success', score: 0.5, previous: null, source: 'human' });
    expect(policy.armState('code', 'a')!.quality).toBeCloseTo(before - 0.5, 9);
  });
});
