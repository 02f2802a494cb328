import { describe, expect, it } from 'vitest';
import { AdaptivePolicy } from '../../src/routing/adaptive.js';
import type { ModelInfo, PolicyOptions } from '../../src/routing/types.js';
import { FakeEvidenceSource } from './fake-evidence.js';

/*
 * Late feedback: the adaptive policy remembers each arm's 2,000 newest traces (within 100,000
 * overall), whatever the half-life, and a late rating counts in full however old its trace is. A
 * rating for a trace no longer remembered waits for the next rebuild.
 */

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

function rate(policy: AdaptivePolicy, traceId: string, score: number, previous: number | null, queryClass = 'code', model = 'a') {
  policy.observeFeedback({ traceId, queryClass, model, outcome: 'success', score, previous, source: 'human' });
}

describe('AdaptivePolicy remembers 2,000 traces per arm for late feedback, whatever the half-life', () => {
  it('applies feedback to a recent trace, ignores it for one its arm has pushed out, and other arms do not push', () => {
    const policy = new AdaptivePolicy(options({ halfLife: 500 }));
    observe(policy, 'old', 'code', 'a', 1);
    for (let i = 0; i < 2000; i++) observe(policy, `a${i}`, 'code', 'a', 1);
    // Another arm's traffic does not push this arm's traces out.
    for (let i = 0; i < 5000; i++) observe(policy, `b${i}`, 'code', 'b');
    const before = policy.armState('code', 'a')!;
    rate(policy, 'old', 0, 1);
    expect(policy.armState('code', 'a')).toEqual(before);
    rate(policy, 'a0', 0, 1);
    const after = policy.armState('code', 'a')!;
    // a0's rating has 1,999 newer ones: it weighs 2^(-1999/500) when taken out; the others then weigh
    // one piece of evidence more, and the new rating (0) is the newest. It replaces a rating: the
    // answer is still one rated answer.
    const g = Math.pow(2, -1 / 500);
    const w = Math.pow(2, -1999 / 500);
    expect(after.qualityWeight).toBeCloseTo((before.qualityWeight - w) * g + 1, 9);
    expect(after.quality).toBeCloseTo((before.quality - w) * g, 9);
    expect(after.recordWeight).toBe(before.recordWeight);
    expect(after.record).toBe(before.record - 1);
    expect(after.rated).toBe(before.rated);
  });

  it('counts a late rating in full on a remembered unrated trace 2,000 traces old at a half-life of 5, and not on one pushed out', () => {
    const policy = new AdaptivePolicy(options());
    observe(policy, 'old');
    for (let i = 0; i < 2000; i++) observe(policy, `a${i}`);
    rate(policy, 'old', 1, null);
    expect(policy.armState('code', 'a')).toMatchObject({ quality: 0, qualityWeight: 0, rated: 0 });
    rate(policy, 'a0', 0.75, null);
    expect(policy.armState('code', 'a')).toMatchObject({ quality: 0.75, qualityWeight: 1, record: 0.75, recordWeight: 1, rated: 1 });
  });

  it('without forgetting (halfLife 0) remembers the same 2,000 traces per arm', () => {
    const policy = new AdaptivePolicy(options({ halfLife: 0 }));
    for (let i = 0; i < 2001; i++) observe(policy, `t${i}`, 'code', 'a', 1);
    const before = policy.armState('code', 'a')!;
    expect(before).toMatchObject({ quality: 2001, qualityWeight: 2001, rated: 2001 });
    rate(policy, 't0', 0.5, 1);
    expect(policy.armState('code', 'a')).toEqual(before);
    rate(policy, 't1', 0.5, 1);
    expect(policy.armState('code', 'a')!.quality).toBeCloseTo(2001 - 0.5, 9);
    expect(policy.armState('code', 'a')).toMatchObject({ qualityWeight: 2001, rated: 2001 });
  });

  it('a rebuild reads back 2,000 traces per arm whatever the half-life, fewer when the arms would pass 100,000', async () => {
    const store = new FakeEvidenceSource();
    store.add({ id: 'r1', time: 1, queryClass: 'code', model: 'a', outcome: 'success', feedback: null, costUsd: null, latencyMs: 1 });
    for (const halfLife of [0, 5, 50, 5000]) await new AdaptivePolicy(options({ halfLife, source: store })).updateFromTraces();
    // Twelve models in the five built-in classes: 60 arms, 100,000 / 60 each.
    const twelve = Array.from({ length: 12 }, (_, i) => free(`m${i}`));
    await new AdaptivePolicy(options({ models: twelve, source: store })).updateFromTraces();
    expect(store.recentCalls).toEqual([2000, 2000, 2000, 2000, 1666]);
  });
});

describe('AdaptivePolicy at the overall bound of 100,000 remembered traces', () => {
  it('an arm at its fill still remembers its newest trace (its oldest goes)', () => {
    // Ten models in the five built-in classes: 50 arms of 2,000 traces make 100,000. A new trace of
    // an arm at its fill leaves the number remembered as it was.
    const ten = Array.from({ length: 10 }, (_, i) => free(`m${i}`));
    const classes = ['code', 'math', 'short', 'long', 'general'];
    const policy = new AdaptivePolicy(options({ models: ten }));
    for (const queryClass of classes) for (const { key } of ten) for (let i = 0; i < 2000; i++) observe(policy, `${queryClass}/${key}/${i}`, queryClass, key);
    observe(policy, 'newest', 'code', 'm0');
    rate(policy, 'newest', 1, null, 'code', 'm0');
    expect(policy.armState('code', 'm0')).toMatchObject({ rated: 1, recordWeight: 1 });
    rate(policy, 'code/m0/0', 1, null, 'code', 'm0');
    expect(policy.armState('code', 'm0')).toMatchObject({ rated: 1, recordWeight: 1 });
    // Its oldest trace went; the others are still there.
    rate(policy, 'code/m0/1', 1, null, 'code', 'm0');
    expect(policy.armState('code', 'm0')).toMatchObject({ rated: 2, recordWeight: 2 });
  });

  it('goes on remembering new traces after a rebuild that read back close to 100,000', async () => {
    // Twelve models in the five built-in classes: 60 arms; the rebuild reads back 1,666 traces of
    // each (99,960), and an arm's newest traces come after them.
    const twelve = Array.from({ length: 12 }, (_, i) => free(`m${i}`));
    const classes = ['code', 'math', 'short', 'long', 'general'];
    const store = new FakeEvidenceSource();
    let time = 0;
    for (const queryClass of classes) {
      for (const { key } of twelve) {
        for (let i = 0; i < 1700; i++) {
          time += 1;
          store.add({ id: `${queryClass}/${key}/${i}`, time, queryClass, model: key, outcome: 'success', feedback: null, costUsd: null, latencyMs: 1 });
        }
      }
    }
    const policy = new AdaptivePolicy(options({ models: twelve, source: store }));
    await policy.updateFromTraces();
    expect(store.recentCalls).toEqual([1666]);
    for (let i = 0; i < 100; i++) observe(policy, `new${i}`, 'code', 'm0');
    rate(policy, 'new99', 1, null, 'code', 'm0');
    expect(policy.armState('code', 'm0')).toMatchObject({ rated: 1, recordWeight: 1 });
  });
});
