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

/** One successful answer, rated `feedback` (by a human) when observed, or not rated. */
function observe(policy: AdaptivePolicy, traceId: string, queryClass = 'code', model = 'a', feedback: number | null = null) {
  policy.observe({ traceId, query: '', queryClass, model, outcome: 'success', latencyMs: 1, costUsd: null, feedback });
}

function rate(policy: AdaptivePolicy, traceId: string, score: number, previous: number | null) {
  policy.observeFeedback({ traceId, queryClass: 'code', model: 'a', outcome: 'success', score, previous, source: 'human' });
}

describe('AdaptivePolicy remembers 20 half-lives of traces per arm for late feedback', () => {
  it('applies feedback to a recent trace, ignores it for one its arm has pushed out, and other arms do not push', () => {
    const policy = new AdaptivePolicy(options()); // halfLife 5: 100 traces per arm
    observe(policy, 'old', 'code', 'a', 1);
    for (let i = 0; i < 100; i++) observe(policy, `a${i}`, 'code', 'a', 1);
    // Another arm's traffic does not push this arm's traces out.
    for (let i = 0; i < 500; i++) observe(policy, `b${i}`, 'code', 'b');
    const before = policy.armState('code', 'a')!;
    rate(policy, 'old', 0, 1);
    expect(policy.armState('code', 'a')).toEqual(before);
    rate(policy, 'a0', 0, 1);
    const after = policy.armState('code', 'a')!;
    // a0's rating has 99 newer ones: it weighs 2^(-99/5) when taken out; the others then weigh one
    // observation more, and the new rating (0) is the newest.
    const g = Math.pow(2, -1 / 5);
    const w = Math.pow(2, -99 / 5);
    expect(after.qualityWeight).toBeCloseTo((before.qualityWeight - w) * g + 1, 12);
    expect(after.quality).toBeCloseTo((before.quality - w) * g, 12);
    expect(after.rated).toBe(before.rated + 1);
  });

  it('counts a late rating on a remembered unrated trace, and not on one pushed out', () => {
    const policy = new AdaptivePolicy(options());
    observe(policy, 'old');
    for (let i = 0; i < 100; i++) observe(policy, `a${i}`);
    rate(policy, 'old', 1, null);
    expect(policy.armState('code', 'a')).toMatchObject({ quality: 0, qualityWeight: 0, rated: 0 });
    rate(policy, 'a0', 0.75, null);
    expect(policy.armState('code', 'a')).toMatchObject({ quality: 0.75, qualityWeight: 1, rated: 1 });
  });

  it('without forgetting (halfLife 0) keeps every trace up to the overall bound', () => {
    const policy = new AdaptivePolicy(options({ halfLife: 0 }));
    for (let i = 0; i < 3000; i++) observe(policy, `t${i}`, 'code', 'a', 1);
    const before = policy.armState('code', 'a')!;
    expect(before).toMatchObject({ quality: 3000, qualityWeight: 3000 });
    rate(policy, 't0', 0.5, 1);
    expect(policy.armState('code', 'a')!.quality).toBeCloseTo(3000 - 0.5, 9);
    expect(policy.armState('code', 'a')!.qualityWeight).toBeCloseTo(3000, 9);
  });
});
