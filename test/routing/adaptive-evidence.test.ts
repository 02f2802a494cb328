import { describe, expect, it } from 'vitest';
import { AdaptivePolicy } from '../../src/routing/adaptive.js';
import { discountFactor } from '../../src/routing/prior.js';
import type { ModelInfo, Observation, PolicyOptions } from '../../src/routing/types.js';
import type { FeedbackSource, Outcome } from '../../src/traces/types.js';
import { FakeEvidenceSource, reliabilityOf } from './fake-evidence.js';

/*
 * What counts as quality evidence for the adaptive policy: rated answers, each weighed by who rated
 * it (the quality of its successful answers). A failure lowers the arm's reliability (the share of
 * its attempts that succeed, forgetting per trace) and moves the recent window's forgetting on, but
 * adds no quality; an answer that succeeded and was never rated is evidence of count, cost, latency
 * and reliability only. The quality window forgets per piece of quality evidence of the arm (ratings
 * and failures).
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
    // A failure adds no quality (and at γ = 1 discounts nothing).
    policy.observe(observation('code', 'a', 'error'));
    const start = arm(policy, 'code', 'a');
    expect(start.qualityWeight).toBeCloseTo(5.5, 12);
    expect(start.quality).toBeCloseTo(5.2, 12);
    expect(start.rated).toBe(6);

    // The judge changes its mind: same weight, so qualityWeight is unchanged at γ = 1.
    late(policy, target, 0.6, 'judge', 0.4);
    expect(arm(policy, 'code', 'a').qualityWeight).toBeCloseTo(5.5, 12);
    expect(arm(policy, 'code', 'a').quality).toBeCloseTo(5.2 + 0.5 * (0.6 - 0.4), 12);

    // A human's rating replaces the judge's: weight 0.5 → 1, weight × score 0.3 → 0.9.
    late(policy, target, 0.9, 'human', 0.6);
    expect(arm(policy, 'code', 'a').qualityWeight).toBeCloseTo(5.5 - 0.5 + 1, 12);
    expect(arm(policy, 'code', 'a').quality).toBeCloseTo(5.3 - 0.3 + 0.9, 12);

    // And a human's second thought replaces the first. The answer is still one rated answer.
    late(policy, target, 0, 'human', 0.9);
    expect(arm(policy, 'code', 'a').qualityWeight).toBeCloseTo(6, 12);
    expect(arm(policy, 'code', 'a').quality).toBeCloseTo(5, 12);
    expect(arm(policy, 'code', 'a').rated).toBe(6);
  });

  it('counts a rated answer once in rated, however often its rating is replaced, online and after a rebuild alike', async () => {
    const store = new FakeEvidenceSource();
    const online = new AdaptivePolicy(options([free('a')], { halfLife: 10 }));
    const traces = [rated('code', 'a', 0.4, 'judge'), observation('code', 'a'), observation('code', 'a', 'error'), observation('code', 'a')];
    for (const o of traces) {
      online.observe(o);
      store.add({ id: o.traceId, time: ++seq, queryClass: 'code', model: 'a', outcome: o.outcome, feedback: o.feedback, feedbackSource: o.feedbackSource ?? null, costUsd: null, latencyMs: 100 });
    }
    const [judged, unrated, failed, later] = traces as [Observation, Observation, Observation, Observation];
    const rate = (policies: AdaptivePolicy[], o: Observation, score: number, source: FeedbackSource) => {
      const previous = store.traces.find((t) => t.id === o.traceId)!.feedback;
      store.setFeedback(o.traceId, score, source, ++seq);
      for (const policy of policies) late(policy, o, score, source, previous);
    };
    const ratedOf = (policy: AdaptivePolicy) => [arm(policy, 'code', 'a').rated, policy.snapshot().classes[0]!.arms[0]!.rated];
    rate([online], unrated, 0.9, 'human');
    rate([online], judged, 0.6, 'human');
    rate([online], unrated, 0.1, 'implicit');
    rate([online], judged, 0.6, 'human');
    // A failure stays a failure whatever is said of it.
    rate([online], failed, 1, 'human');
    expect(ratedOf(online)).toEqual([2, 2]);

    const rebuilt = new AdaptivePolicy(options([free('a')], { halfLife: 10, source: store }));
    await rebuilt.updateFromTraces();
    expect(ratedOf(rebuilt)).toEqual([2, 2]);
    rate([online, rebuilt], unrated, 0.5, 'judge');
    expect(ratedOf(online)).toEqual([2, 2]);
    expect(ratedOf(rebuilt)).toEqual([2, 2]);
    rate([online, rebuilt], later, 0.7, 'human');
    expect(ratedOf(online)).toEqual([3, 3]);
    expect(ratedOf(rebuilt)).toEqual([3, 3]);
  });
});

describe('AdaptivePolicy: the quality window forgets per piece of quality evidence (ratings and failures), not per trace', () => {
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

  it('a failure lowers reliability and moves the window’s forgetting on, but adds no quality: ten of them discount an earlier rating ten times', () => {
    const policy = new AdaptivePolicy(options([free('a')], { halfLife: 10 }));
    const gamma = discountFactor(10);
    policy.observe(rated('code', 'a', 1));
    for (let i = 0; i < 10; i++) {
      policy.observe(observation('code', 'a', i % 2 === 0 ? 'error' : 'timeout'));
      policy.observe(observation('code', 'a'));
    }
    // The window holds the one rating, ten pieces of evidence old; the record holds it whole.
    expect(arm(policy, 'code', 'a')).toMatchObject({ rated: 1, record: 1, recordWeight: 1 });
    expect(arm(policy, 'code', 'a').quality).toBeCloseTo(gamma ** 10, 12);
    expect(arm(policy, 'code', 'a').qualityWeight).toBeCloseTo(gamma ** 10, 12);
    // The quality of its successful answers is that of one thumbs up: Beta(2, 1).
    expect(policy.snapshot().classes[0]!.arms[0]!.estimate).toBeCloseTo(2 / 3, 12);
    // Reliability forgets per trace: 21 traces, the successes 0, 2, …, 20 traces old, the failures in between.
    const sums = reliabilityOf(policy, 'code', 'a')!;
    const successes = (1 - gamma ** 22) / (1 - gamma ** 2);
    const weight = (1 - gamma ** 21) / (1 - gamma);
    expect(sums.successes).toBeCloseTo(successes, 12);
    expect(sums.weight).toBeCloseTo(weight, 12);
    // 10 pseudo-attempts at 0.98 besides: about 0.75, against 0.98 before any trace.
    expect(sums.reliability).toBeCloseTo((9.8 + successes) / (10 + weight), 12);
    expect(sums.reliability).toBeLessThan(0.76);
  });

  it('a rebuild from the store forgets the same way', async () => {
    const store = new FakeEvidenceSource();
    const online = new AdaptivePolicy(options([free('a')], { halfLife: 10 }));
    const add = (outcome: Outcome, feedback: number | null) => {
      const id = `f${++seq}`;
      store.add({ id, time: seq, queryClass: 'code', model: 'a', outcome, feedback, costUsd: null, latencyMs: 100 });
      online.observe(observation('code', 'a', outcome, { traceId: id, feedback }));
    };
    add('success', 1);
    for (let i = 0; i < 1000; i++) add('success', null);
    add('success', 0);
    add('error', null);
    const policy = new AdaptivePolicy(options([free('a')], { halfLife: 10, source: store }));
    await policy.updateFromTraces();
    const gamma = discountFactor(10);
    // Newest first: the failure (nothing added), the 0 one piece of evidence old, the 1 two.
    expect(arm(policy, 'code', 'a').qualityWeight).toBeCloseTo(gamma + gamma ** 2, 12);
    expect(arm(policy, 'code', 'a').quality).toBeCloseTo(gamma ** 2, 12);
    expect(arm(policy, 'code', 'a')).toMatchObject({ count: 1003, rated: 2, record: 1, recordWeight: 2 });
    expect(arm(policy, 'code', 'a').qualityWeight).toBeCloseTo(arm(online, 'code', 'a').qualityWeight, 12);
    expect(arm(policy, 'code', 'a').quality).toBeCloseTo(arm(online, 'code', 'a').quality, 12);
    expect(arm(online, 'code', 'a')).toMatchObject({ rated: 2, record: 1, recordWeight: 2 });
    // And the next rating discounts both alike: three pieces of evidence before it.
    for (const p of [online, policy]) p.observe(rated('code', 'a', 1));
    expect(arm(policy, 'code', 'a').qualityWeight).toBeCloseTo(1 + gamma ** 2 + gamma ** 3, 12);
    expect(arm(online, 'code', 'a').qualityWeight).toBeCloseTo(1 + gamma ** 2 + gamma ** 3, 12);
  });
});

describe('AdaptivePolicy: a refused attempt is no quality evidence', () => {
  it('lowers reliability but neither adds quality nor moves the window’s forgetting on, unlike an error', () => {
    const gamma = discountFactor(10);
    for (const [outcome, weight] of [['refused', 1], ['error', gamma ** 10]] as const) {
      const policy = new AdaptivePolicy(options([free('a')], { halfLife: 10 }));
      policy.observe(rated('code', 'a', 1));
      for (let i = 0; i < 10; i++) policy.observe(observation('code', 'a', outcome));
      expect(arm(policy, 'code', 'a').qualityWeight, outcome).toBeCloseTo(weight, 12);
      expect(reliabilityOf(policy, 'code', 'a')!.reliability, outcome).toBeLessThan(0.6);
    }
  });
});

describe('AdaptivePolicy: reliability, the share of attempts that succeed', () => {
  it('a rebuild from the store gives the successes and attempts online observation gave, and both go on alike', async () => {
    const store = new FakeEvidenceSource();
    const online = new AdaptivePolicy(options([free('a'), free('b')], { halfLife: 10 }));
    const rebuilt = new AdaptivePolicy(options([free('a'), free('b')], { halfLife: 10, source: store }));
    const outcomes: Outcome[] = ['success', 'success', 'error', 'success', 'timeout', 'success', 'cancelled', 'refused', 'success'];
    /** Traces of two classes × two models in an interleaved order, each model failing at its own rate. */
    const traffic = (n: number, from: number, ...policies: AdaptivePolicy[]) => {
      for (let i = from; i < from + n; i++) {
        const queryClass = i % 3 === 0 ? 'math' : 'code';
        const model = i % 5 < 2 ? 'a' : 'b';
        const outcome = model === 'a' ? (outcomes[i % outcomes.length] as Outcome) : i % 7 === 0 ? 'error' : 'success';
        const o = observation(queryClass, model, outcome, { feedback: i % 4 === 0 ? 0.5 : null });
        store.add({ id: o.traceId, time: ++seq, queryClass, model, outcome, feedback: o.feedback, costUsd: null, latencyMs: 100 });
        for (const p of policies) p.observe(o);
      }
    };
    const expectSame = () => {
      for (const queryClass of ['code', 'math']) {
        for (const model of ['a', 'b']) {
          const want = reliabilityOf(online, queryClass, model)!;
          const got = reliabilityOf(rebuilt, queryClass, model)!;
          expect(got.successes, `${queryClass}/${model}`).toBeCloseTo(want.successes, 9);
          expect(got.weight, `${queryClass}/${model}`).toBeCloseTo(want.weight, 9);
          expect(got.reliability, `${queryClass}/${model}`).toBeCloseTo(want.reliability, 12);
          // Quality: a refused attempt is no evidence, online or in the store.
          const [q, r] = [arm(online, queryClass, model), arm(rebuilt, queryClass, model)];
          expect(r.qualityWeight, `${queryClass}/${model}`).toBeCloseTo(q.qualityWeight, 9);
          expect(r.quality, `${queryClass}/${model}`).toBeCloseTo(q.quality, 9);
          expect(r.recordWeight, `${queryClass}/${model}`).toBeCloseTo(q.recordWeight, 9);
          expect(r.rated, `${queryClass}/${model}`).toBe(q.rated);
        }
      }
    };
    traffic(400, 0, online);
    await rebuilt.updateFromTraces();
    expectSame();
    // The store's sums, discounted γ per newer trace of the arm.
    for (const row of await store.evidence({ decay: discountFactor(10), source: 'live' })) {
      expect(reliabilityOf(rebuilt, row.queryClass, row.model)!.successes).toBeCloseTo(row.successes, 12);
    }
    // a fails about 4 times in 9 (one refused), b once in 7.
    expect(reliabilityOf(online, 'code', 'a')!.reliability).toBeLessThan(0.82);
    expect(reliabilityOf(online, 'code', 'b')!.reliability).toBeGreaterThan(0.88);
    traffic(100, 400, online, rebuilt);
    expectSame();
  });
});
