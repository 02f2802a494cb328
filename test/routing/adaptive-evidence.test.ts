import { describe, expect, it } from 'vitest';
import { AdaptivePolicy, discountFactor } from '../../src/routing/adaptive.js';
import type { ModelInfo, Observation, PolicyOptions } from '../../src/routing/types.js';
import type { FeedbackSource, Outcome } from '../../src/traces/types.js';
import { FakeEvidenceSource } from './fake-evidence.js';

/*
 * What counts as quality evidence for the adaptive policy: failures (0) and rated answers, each
 * weighed by who rated it; an answer that succeeded and was never rated is evidence of count, cost
 * and latency only. The quality sums forget per quality observation of the arm.
 */

const free = (key: string): ModelInfo => ({ key, inputCostPerMTok: 0, outputCostPerMTok: 0 });

function options(models: ModelInfo[], over: Partial<PolicyOptions> = {}): PolicyOptions {
  return { models, minSamples: 5, costWeight: 0, latencyWeight: 0, halfLife: 50, seed: 1, ...over };
}

let seq = 0;
function observation(queryClass: string, model: string, outcome: Outcome = 'success', extra: Partial<Observation> = {}): Observation {
  seq += 1;
  return { traceId: `e${seq}`, query: '', queryClass, model, outcome, latencyMs: 100, costUsd: null, feedback: null, ...extra };
}

/** A successful answer rated `score` by `source` when it is observed. */
function rated(queryClass: string, model: string, score: number, source: FeedbackSource = 'human'): Observation {
  return observation(queryClass, model, 'success', { feedback: score, feedbackSource: source });
}

function late(policy: AdaptivePolicy, o: Observation, score: number, source: FeedbackSource, previous: number | null = null): void {
  policy.observeFeedback({ traceId: o.traceId, queryClass: o.queryClass, model: o.model, outcome: o.outcome, score, previous, source });
}

function arm(policy: AdaptivePolicy, queryClass: string, model: string) {
  const state = policy.armState(queryClass, model);
  if (state === undefined) throw new Error(`no arm ${queryClass}/${model}`);
  return state;
}

describe('AdaptivePolicy: an unrated success is not quality evidence', () => {
  it('leaves every quality estimate and its uncertainty as they were, and changes count and cost', () => {
    const models: ModelInfo[] = [
      { key: 'premium', inputCostPerMTok: 3, outputCostPerMTok: 15 },
      { key: 'budget', inputCostPerMTok: 0.3, outputCostPerMTok: 1.5 },
      free('gratis'),
    ];
    const policy = new AdaptivePolicy(options(models));
    for (let i = 0; i < 20; i++) {
      policy.observe(rated('code', 'premium', i % 4 === 0 ? 0 : 1));
      policy.observe(rated('code', 'budget', 0.7, 'judge'));
      policy.observe(observation('math', 'budget', i % 5 === 0 ? 'error' : 'success', { feedback: i % 2 === 0 ? 0.6 : null }));
    }
    const before = policy.snapshot();
    const premium = arm(policy, 'code', 'premium');
    const budget = arm(policy, 'code', 'budget');
    for (let i = 0; i < 100; i++) {
      policy.observe(observation('code', 'budget', 'success', { costUsd: 0.001, latencyMs: 500 }));
      policy.observe(observation('code', 'premium', 'success', { costUsd: 0.02, latencyMs: 900 }));
    }
    const after = policy.snapshot();

    expect(after.classes.map((c) => c.queryClass)).toEqual(before.classes.map((c) => c.queryClass));
    for (const [i, cls] of before.classes.entries()) {
      const now = after.classes[i]!;
      expect(now.confidence, cls.queryClass).toBe(cls.confidence);
      expect(now.choice, cls.queryClass).toBe(cls.choice);
      for (const [j, was] of cls.arms.entries()) {
        const is = now.arms[j]!;
        expect(is.model).toBe(was.model);
        expect(is.estimate, `${cls.queryClass}/${was.model}`).toBe(was.estimate);
        expect(is.uncertainty, `${cls.queryClass}/${was.model}`).toBe(was.uncertainty);
        expect(is.rated, `${cls.queryClass}/${was.model}`).toBe(was.rated);
      }
    }
    // Count, cost and latency did take them in.
    const code = (snap: typeof before, model: string) => snap.classes.find((c) => c.queryClass === 'code')!.arms.find((a) => a.model === model)!;
    expect(code(after, 'budget').samples).toBe(code(before, 'budget').samples + 100);
    expect(code(after, 'budget').costUsd).not.toBe(code(before, 'budget').costUsd);
    expect(code(after, 'premium').costUsd).toBeGreaterThan(0.015);
    for (const [was, model] of [
      [premium, 'premium'],
      [budget, 'budget'],
    ] as const) {
      const now = arm(policy, 'code', model);
      expect(now).toMatchObject({ count: was.count + 100, quality: was.quality, qualityWeight: was.qualityWeight, rated: was.rated });
      expect(now.costCount).toBeGreaterThan(was.costCount);
      expect(now.latencySumMs).not.toBe(was.latencySumMs);
    }
  });
});

describe('AdaptivePolicy: a rating counts by its source', () => {
  it('a judge rating counts sourceWeights.judge (0.5 by default): two of them move qualityWeight by 1', () => {
    const policy = new AdaptivePolicy(options([free('a')], { halfLife: 0 }));
    policy.observe(rated('code', 'a', 0.8, 'judge'));
    policy.observe(rated('code', 'a', 0.6, 'judge'));
    expect(arm(policy, 'code', 'a')).toMatchObject({ qualityWeight: 1, rated: 2 });
    expect(arm(policy, 'code', 'a').quality).toBeCloseTo(0.5 * (0.8 + 0.6), 12);
    policy.observe(rated('code', 'a', 1, 'human'));
    policy.observe(rated('code', 'a', 1, 'offline'));
    policy.observe(rated('code', 'a', 0, 'implicit'));
    // A human's and an offline rating count 1; an implicit signal 1 by default.
    expect(arm(policy, 'code', 'a').qualityWeight).toBeCloseTo(4, 12);
    expect(arm(policy, 'code', 'a').quality).toBeCloseTo(0.7 + 2, 12);
  });

  it('uses the configured weights, for ratings given when observed, given later, and read back by a rebuild', async () => {
    const sourceWeights = { judge: 0.25, implicit: 0.75 };
    const store = new FakeEvidenceSource();
    const policy = new AdaptivePolicy(options([free('a')], { halfLife: 0, sourceWeights }));
    const judged = rated('code', 'a', 0.8, 'judge');
    const implicit = rated('code', 'a', 1, 'implicit');
    const unrated = observation('code', 'a');
    for (const o of [judged, implicit, unrated]) {
      policy.observe(o);
      store.add({ id: o.traceId, time: ++seq, queryClass: 'code', model: 'a', outcome: 'success', feedback: o.feedback, feedbackSource: o.feedbackSource ?? null, costUsd: null, latencyMs: 100 });
    }
    late(policy, unrated, 0.4, 'judge');
    store.setFeedback(unrated.traceId, 0.4, 'judge', ++seq);
    expect(arm(policy, 'code', 'a').qualityWeight).toBeCloseTo(0.25 + 0.75 + 0.25, 12);
    expect(arm(policy, 'code', 'a').quality).toBeCloseTo(0.25 * 0.8 + 0.75 + 0.25 * 0.4, 12);

    const rebuilt = new AdaptivePolicy(options([free('a')], { halfLife: 0, sourceWeights, source: store }));
    await rebuilt.updateFromTraces();
    expect(arm(rebuilt, 'code', 'a').qualityWeight).toBeCloseTo(arm(policy, 'code', 'a').qualityWeight, 12);
    expect(arm(rebuilt, 'code', 'a').quality).toBeCloseTo(arm(policy, 'code', 'a').quality, 12);
  });
});

describe('AdaptivePolicy: late ratings', () => {
  const gamma = discountFactor(10);

  it('counts a late rating on an unrated trace once, as the arm’s newest quality observation', () => {
    const policy = new AdaptivePolicy(options([free('a')], { halfLife: 10 }));
    const first = observation('code', 'a');
    policy.observe(first);
    for (let i = 0; i < 3; i++) policy.observe(rated('code', 'a', 1));
    const before = arm(policy, 'code', 'a');
    expect(before.qualityWeight).toBeCloseTo(1 + gamma + gamma ** 2, 12);
    late(policy, first, 0.4, 'human');
    const once = arm(policy, 'code', 'a');
    // Newest: the three earlier ratings weigh γ more, the late one 1.
    expect(once.qualityWeight).toBeCloseTo(before.qualityWeight * gamma + 1, 12);
    expect(once.quality).toBeCloseTo(before.quality * gamma + 0.4, 12);
    expect(once.rated).toBe(before.rated + 1);
    // The same rating again (a retried request) changes nothing.
    late(policy, first, 0.4, 'human', 0.4);
    expect(arm(policy, 'code', 'a')).toEqual(once);
  });

  it('a rating that replaces another takes the other out: qualityWeight moves by the difference of the weights, quality by the difference of weight × score', () => {
    const policy = new AdaptivePolicy(options([free('a')], { halfLife: 0 }));
    const target = rated('code', 'a', 0.4, 'judge');
    policy.observe(target);
    for (let i = 0; i < 5; i++) policy.observe(rated('code', 'a', 1));
    policy.observe(observation('code', 'a', 'error'));
    const start = arm(policy, 'code', 'a');
    expect(start.qualityWeight).toBeCloseTo(6.5, 12);
    expect(start.quality).toBeCloseTo(5.2, 12);

    // The judge changes its mind: same weight, so qualityWeight is unchanged at γ = 1.
    late(policy, target, 0.6, 'judge', 0.4);
    expect(arm(policy, 'code', 'a').qualityWeight).toBeCloseTo(6.5, 12);
    expect(arm(policy, 'code', 'a').quality).toBeCloseTo(5.2 + 0.5 * (0.6 - 0.4), 12);

    // A human's rating replaces the judge's: weight 0.5 → 1, weight × score 0.3 → 0.9.
    late(policy, target, 0.9, 'human', 0.6);
    expect(arm(policy, 'code', 'a').qualityWeight).toBeCloseTo(6.5 - 0.5 + 1, 12);
    expect(arm(policy, 'code', 'a').quality).toBeCloseTo(5.3 - 0.3 + 0.9, 12);

    // And a human's second thought replaces the first.
    late(policy, target, 0, 'human', 0.9);
    expect(arm(policy, 'code', 'a').qualityWeight).toBeCloseTo(7, 12);
    expect(arm(policy, 'code', 'a').quality).toBeCloseTo(5, 12);
  });
});

describe('AdaptivePolicy: forgetting counts quality observations, not traces', () => {
  it('with halfLife 10, 1,000 unrated successes between two ratings do not discount the first', () => {
    const policy = new AdaptivePolicy(options([free('a'), free('b')], { halfLife: 10 }));
    const gamma = discountFactor(10);
    policy.observe(rated('code', 'a', 1));
    const estimate = () => policy.snapshot().classes[0]!.arms.find((a) => a.model === 'a')!.estimate;
    const afterFirst = estimate();
    for (let i = 0; i < 1000; i++) policy.observe(observation('code', 'a', 'success', { costUsd: 0.001 }));
    expect(estimate()).toBe(afterFirst);
    policy.observe(rated('code', 'a', 0));
    expect(arm(policy, 'code', 'a').qualityWeight).toBeCloseTo(1 + gamma, 12);
    expect(arm(policy, 'code', 'a').quality).toBeCloseTo(gamma, 12);
    // Cost and latency forget per trace: 1,002 traces weigh about 1 / (1 − γ).
    expect(arm(policy, 'code', 'a').weight).toBeCloseTo((1 - gamma ** 1002) / (1 - gamma), 9);
    expect(arm(policy, 'code', 'a').costCount).toBeCloseTo((gamma - gamma ** 1001) / (1 - gamma), 9);
  });

  it('failures are quality observations: ten of them discount an earlier rating ten times', () => {
    const policy = new AdaptivePolicy(options([free('a')], { halfLife: 10 }));
    const gamma = discountFactor(10);
    policy.observe(rated('code', 'a', 1));
    for (let i = 0; i < 10; i++) {
      policy.observe(observation('code', 'a', i % 2 === 0 ? 'error' : 'timeout'));
      policy.observe(observation('code', 'a'));
    }
    expect(arm(policy, 'code', 'a').quality).toBeCloseTo(gamma ** 10, 12);
    expect(arm(policy, 'code', 'a').qualityWeight).toBeCloseTo((1 - gamma ** 11) / (1 - gamma), 12);
    expect(arm(policy, 'code', 'a').rated).toBe(11);
  });

  it('a rebuild from the store forgets the same way', async () => {
    const store = new FakeEvidenceSource();
    const add = (outcome: Outcome, feedback: number | null) =>
      store.add({ id: `f${++seq}`, time: seq, queryClass: 'code', model: 'a', outcome, feedback, costUsd: null, latencyMs: 100 });
    add('success', 1);
    for (let i = 0; i < 1000; i++) add('success', null);
    add('success', 0);
    add('error', null);
    const policy = new AdaptivePolicy(options([free('a')], { halfLife: 10, source: store }));
    await policy.updateFromTraces();
    const gamma = discountFactor(10);
    expect(arm(policy, 'code', 'a').qualityWeight).toBeCloseTo(1 + gamma + gamma ** 2, 12);
    expect(arm(policy, 'code', 'a').quality).toBeCloseTo(gamma ** 2, 12);
    expect(arm(policy, 'code', 'a')).toMatchObject({ count: 1003, rated: 3 });
  });
});
