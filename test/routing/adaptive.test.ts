import { describe, it, expect } from 'vitest';
import { AdaptivePolicy } from '../../src/routing/adaptive.js';
import { discountFactor, PRICE_PRIOR_WEIGHT, priorCostUsd } from '../../src/routing/prior.js';
import { classifyQuery } from '../../src/routing/classify.js';
import { Random } from '../../src/routing/random.js';
import type { ModelInfo } from '../../src/routing/types.js';
import type { Outcome } from '../../src/traces/types.js';
import { reliabilityOf } from './fake-evidence.js';

import { free, observation, options } from './adaptive-fixtures.js';

interface Reply {
  ok: boolean;
  feedback?: number;
  costUsd?: number;
  latencyMs?: number;
}

/** Routes `steps` requests of one class and feeds back what `world` says of the chosen model. */
function run(
  policy: AdaptivePolicy,
  queryClass: string,
  available: string[],
  steps: number,
  world: (model: string) => Reply,
): string[] {
  const chosen: string[] = [];
  for (let i = 0; i < steps; i++) {
    const { model } = policy.select({ query: '', queryClass, available });
    chosen.push(model);
    const reply = world(model);
    policy.observe(
      observation(queryClass, model, reply.ok ? 'success' : 'error', {
        feedback: reply.feedback ?? null,
        costUsd: reply.costUsd ?? null,
        latencyMs: reply.latencyMs ?? 100,
      }),
    );
  }
  return chosen;
}

const share = (picks: readonly string[], model: string): number => picks.filter((m) => m === model).length / picks.length;

/** A success with probability p[model], else an error; every success is rated 1 (a thumbs up). */
function bernoulli(env: Random, p: Record<string, number>): (model: string) => Reply {
  return (model) => (env.uniform() < (p[model] ?? 0) ? { ok: true, feedback: 1 } : { ok: false });
}

function choiceOf(policy: AdaptivePolicy, queryClass: string): string | undefined {
  return policy.snapshot().classes.find((c) => c.queryClass === queryClass)?.choice;
}

function armOf(policy: AdaptivePolicy, queryClass: string, model: string) {
  return policy.snapshot().classes.find((c) => c.queryClass === queryClass)?.arms.find((a) => a.model === model);
}

describe('AdaptivePolicy.select', () => {
  it('returns the default model when nothing is available', () => {
    expect(new AdaptivePolicy(options([free('a')], { defaultModel: 'a' })).select({ query: '', queryClass: 'code', available: [] })).toEqual({
      model: 'a',
      reason: 'default',
    });
    expect(new AdaptivePolicy(options([free('a')])).select({ query: '', queryClass: 'code', available: [] })).toEqual({
      model: '',
      reason: 'default',
    });
  });

  it('chooses only among the available models', () => {
    const policy = new AdaptivePolicy(options([free('a'), free('b'), free('c')]));
    for (let i = 0; i < 50; i++) expect(['a', 'c']).toContain(policy.select({ query: '', queryClass: 'code', available: ['a', 'c'] }).model);
  });

  it('explores an untried model, and calls that exploring', () => {
    const policy = new AdaptivePolicy(options([free('a'), free('b')]));
    for (let i = 0; i < 10; i++) policy.observe(observation('code', 'a', i < 6 ? 'success' : 'error', { feedback: i < 6 ? 1 : null }));
    const decisions = Array.from({ length: 400 }, () => policy.select({ query: '', queryClass: 'code', available: ['a', 'b'] }));
    const untried = decisions.filter((d) => d.model === 'b');
    // Six answers of ten were rated, so (6 + 1) / (10 + 1) of the requests get a Thompson draw. a's
    // six thumbs up give Beta(7, 1), its four failures a reliability of 0.79; b is untried (Beta(1, 1),
    // reliability 0.98): b wins about 30% of the draws, so ~19% of the requests.
    expect(untried.length).toBeGreaterThan(50);
    expect(untried.length).toBeLessThan(120);
    expect(untried.every((d) => d.reason === 'explore')).toBe(true);
    expect(decisions.filter((d) => d.model === 'a').every((d) => d.reason === 'learned')).toBe(true);
  });

  it('is deterministic for a seed', () => {
    const decide = (seed: number) => {
      const policy = new AdaptivePolicy(options([free('a'), free('b'), free('c')], { seed }));
      const env = new Random(99);
      return run(policy, 'general', ['a', 'b', 'c'], 200, bernoulli(env, { a: 0.5, b: 0.6, c: 0.55 }));
    };
    expect(decide(7)).toEqual(decide(7));
    expect(decide(7)).not.toEqual(decide(8));
  });

  it('selects (with classification) in a few microseconds', () => {
    const keys = Array.from({ length: 11 }, (_, i) => `m${i}`);
    const policy = new AdaptivePolicy(options(keys.map(free), { costWeight: 1, latencyWeight: 0.01 }));
    const env = new Random(5);
    for (const cls of ['code', 'math', 'long', 'general', 'short']) run(policy, cls, keys, 200, () => ({ ok: env.uniform() < 0.7, costUsd: 0.001 }));
    const prompt = 'Which option best completes the passage about the region? '.repeat(26);
    const n = 20_000;
    const start = performance.now();
    for (let i = 0; i < n; i++) policy.select({ query: prompt, queryClass: classifyQuery(prompt), available: keys });
    const perCallUs = ((performance.now() - start) * 1000) / n;
    // Measured about 4 µs for 11 models; the bound only catches a gross regression.
    expect(perCallUs).toBeLessThan(100);
  });
});

describe('AdaptivePolicy learning', () => {
  it('converges to the best model of each class when the models differ in how often they fail (≥ 95% of the later decisions)', () => {
    // Every success is rated 1: the quality of each model's successful answers is the same, and
    // reliability (the share of attempts that succeed, per trace) tells them apart.
    const quality: Record<string, Record<string, number>> = {
      code: { m1: 0.85, m2: 0.6, m3: 0.4 },
      math: { m1: 0.4, m2: 0.85, m3: 0.6 },
      long: { m1: 0.6, m2: 0.4, m3: 0.85 },
    };
    const best: Record<string, string> = { code: 'm1', math: 'm2', long: 'm3' };
    for (const seed of [1, 2, 3]) {
      const policy = new AdaptivePolicy(options([free('m1'), free('m2'), free('m3')], { seed }));
      const env = new Random(seed + 100);
      const picks: Record<string, string[]> = { code: [], math: [], long: [] };
      for (let step = 0; step < 800; step++) {
        for (const cls of ['code', 'math', 'long']) {
          picks[cls]?.push(...run(policy, cls, ['m1', 'm2', 'm3'], 1, bernoulli(env, quality[cls] ?? {})));
        }
      }
      let later = 0;
      for (const cls of ['code', 'math', 'long']) {
        expect(choiceOf(policy, cls), `seed ${seed} ${cls}`).toBe(best[cls]);
        later += share((picks[cls] ?? []).slice(400), best[cls] as string);
        // Overall, with the first 400 decisions' exploring (the share of requests that get a draw is
        // the share of answers rated: the successes). Measured over 100 seeds: 93% of the classes
        // ≥ 0.95, the lowest 0.80.
        expect(share(picks[cls] ?? [], best[cls] as string), `seed ${seed} ${cls} overall`).toBeGreaterThanOrEqual(0.78);
      }
      // Measured over 100 seeds: ≥ 0.987 of the later decisions; seeds 1-3 ≥ 0.994.
      expect(later / 3, `seed ${seed}`).toBeGreaterThanOrEqual(0.95);
    }
  });

  it('converges in most seeds of the end-to-end scenario; an early run of bad luck can hold a class on the runner-up', () => {
    // The scenario of test/routing/learning-e2e.test.ts (which runs one seed over HTTP), here over
    // many seeds: each model best at one class, flaky failing every other call (a failover tries
    // another model; its reliability falls to about a half), a thumbs up or down on every answer.
    // Nearly every request gets a Thompson draw (every answer but flaky's failed attempts is rated).
    // Thompson sampling leaves a model that drew a few thumbs down from its first answers (2 of its
    // first 3, at a 92% chance of an up) with a low, wide posterior; against a runner-up known to be
    // at 0.7 ± 0.05 it is then drawn on top only now and then, so it recovers slowly. Measured here:
    // 98.3% of 1,000 seeds send ≥ 90% of every class to its best model after 800 requests, and 1.3%
    // hold a class under 60% (blocks of 200 seeds: 96.5% to 99.5%, and 0.5% to 2.5%).
    const quality: Record<string, Record<string, number>> = {
      code: { coder: 0.92, mathy: 0.35, chatty: 0.7, flaky: 0.8 },
      math: { coder: 0.4, mathy: 0.92, chatty: 0.45, flaky: 0.8 },
      short: { coder: 0.45, mathy: 0.4, chatty: 0.92, flaky: 0.8 },
    };
    const best: Record<string, string> = { code: 'coder', math: 'mathy', short: 'chatty' };
    const models = ['coder', 'mathy', 'chatty', 'flaky'];
    const seeds = 1000;
    let converged = 0;
    let heldBack = 0;
    for (let seed = 1; seed <= seeds; seed++) {
      const policy = new AdaptivePolicy(options(models.map(free), { seed }));
      const env = new Random(seed + 5000);
      let flakyCalls = 0;
      /** One request: its first choice (failing over while flaky fails). */
      const request = (cls: string): string => {
        const tried: string[] = [];
        for (;;) {
          const { model } = policy.select({ query: '', queryClass: cls, available: models.filter((m) => !tried.includes(m)) });
          tried.push(model);
          if (model === 'flaky' && flakyCalls++ % 2 === 0) {
            policy.observe(observation(cls, model, 'error'));
            continue;
          }
          policy.observe(observation(cls, model, 'success', { feedback: env.uniform() < (quality[cls]?.[model] ?? 0) ? 1 : 0 }));
          return tried[0] as string;
        }
      };
      const classes = Object.keys(quality);
      for (let i = 0; i < 800; i++) request(classes[i % classes.length] as string);
      const hits: Record<string, number> = {};
      for (let i = 0; i < 300; i++) {
        const cls = classes[i % classes.length] as string;
        if (request(cls) === best[cls]) hits[cls] = (hits[cls] ?? 0) + 1;
      }
      const worst = Math.min(...classes.map((cls) => (hits[cls] ?? 0) / 100));
      if (worst >= 0.9) converged++;
      if (worst < 0.6) heldBack++;
    }
    expect(converged / seeds).toBeGreaterThanOrEqual(0.97);
    expect(heldBack / seeds).toBeLessThanOrEqual(0.02);
  });

  it('moves away from a model that starts failing within ~50 requests', () => {
    // m1 fails less often, so it is the better model; once it fails every time, each failure lowers
    // its reliability (forgetting per trace).
    for (const seed of [1, 2, 3]) {
      const policy = new AdaptivePolicy(options([free('m1'), free('m2')], { seed }));
      const env = new Random(seed + 200);
      const p = { m1: 0.9, m2: 0.75 };
      run(policy, 'general', ['m1', 'm2'], 300, bernoulli(env, p));
      expect(choiceOf(policy, 'general')).toBe('m1');
      p.m1 = 0;
      let switchedAt = -1;
      const picks: string[] = [];
      for (let i = 1; i <= 150; i++) {
        picks.push(...run(policy, 'general', ['m1', 'm2'], 1, bernoulli(env, p)));
        if (switchedAt < 0 && choiceOf(policy, 'general') === 'm2') switchedAt = i;
      }
      expect(switchedAt, `seed ${seed}`).toBeGreaterThan(0);
      expect(switchedAt, `seed ${seed}`).toBeLessThanOrEqual(50);
      expect(share(picks.slice(50), 'm1'), `seed ${seed}`).toBeLessThanOrEqual(0.2);
    }
  });

  it('without forgetting (halfLife 0) still trusts the failing model after 50 requests', () => {
    const policy = new AdaptivePolicy(options([free('m1'), free('m2')], { halfLife: 0 }));
    const env = new Random(201);
    const p = { m1: 0.9, m2: 0.75 };
    run(policy, 'general', ['m1', 'm2'], 300, bernoulli(env, p));
    p.m1 = 0;
    run(policy, 'general', ['m1', 'm2'], 50, bernoulli(env, p));
    expect(choiceOf(policy, 'general')).toBe('m1');
  });

  it('learns from fractional feedback, and a cost weight flips the choice to a cheaper model of similar quality', () => {
    const models: ModelInfo[] = [
      { key: 'premium', inputCostPerMTok: 10, outputCostPerMTok: 30 },
      { key: 'budget', inputCostPerMTok: 0.2, outputCostPerMTok: 0.6 },
    ];
    const world = (model: string): Reply =>
      model === 'premium' ? { ok: true, feedback: 0.85, costUsd: 0.01 } : { ok: true, feedback: 0.8, costUsd: 0.0002 };
    const plain = new AdaptivePolicy(options(models));
    const plainPicks = run(plain, 'general', ['premium', 'budget'], 600, world);
    expect(choiceOf(plain, 'general')).toBe('premium');
    expect(share(plainPicks.slice(400), 'premium')).toBeGreaterThan(0.7);

    // 0.85 − 20 × 0.01 = 0.65 < 0.8 − 20 × 0.0002 = 0.796.
    const thrifty = new AdaptivePolicy(options(models, { costWeight: 20 }));
    const thriftyPicks = run(thrifty, 'general', ['premium', 'budget'], 600, world);
    expect(choiceOf(thrifty, 'general')).toBe('budget');
    expect(share(thriftyPicks.slice(400), 'budget')).toBeGreaterThan(0.9);
    expect(armOf(thrifty, 'general', 'premium')?.costUsd).toBeCloseTo(0.01, 3);
  });

  it('a latency weight prefers the faster of two equally good models', () => {
    const world = (model: string): Reply => ({ ok: true, feedback: 0.8, latencyMs: model === 'slow' ? 5000 : 500 });
    const policy = new AdaptivePolicy(options([free('slow'), free('fast')], { latencyWeight: 0.1 }));
    const picks = run(policy, 'general', ['slow', 'fast'], 300, world);
    expect(choiceOf(policy, 'general')).toBe('fast');
    expect(share(picks.slice(200), 'fast')).toBeGreaterThan(0.9);
  });

  it('does not treat an untried priced model as free', () => {
    const untried = (price: ModelInfo) => {
      const policy = new AdaptivePolicy(options([{ key: 'cheap', inputCostPerMTok: 0.2, outputCostPerMTok: 0.6 }, price], { costWeight: 20 }));
      for (let i = 0; i < 30; i++) policy.observe(observation('general', 'cheap', 'success', { feedback: 0.7, costUsd: 0.0002 }));
      const picks = Array.from({ length: 300 }, () => policy.select({ query: '', queryClass: 'general', available: ['cheap', price.key] }).model);
      return { policy, picks };
    };
    const pricey = untried({ key: 'pricey', inputCostPerMTok: 30, outputCostPerMTok: 60 });
    // Prior cost (30 × 500 + 60 × 200) / 1e6 = $0.027; × 20 = 0.54 off any sampled quality.
    expect(priorCostUsd({ inputCostPerMTok: 30, outputCostPerMTok: 60 })).toBeCloseTo(0.027, 12);
    expect(armOf(pricey.policy, 'general', 'pricey')?.costUsd).toBeCloseTo(0.027, 12);
    expect(share(pricey.picks, 'pricey')).toBe(0);
    // The same untried model at price 0 does get explored.
    const gratis = untried(free('gratis'));
    expect(share(gratis.picks, 'gratis')).toBeGreaterThan(0.1);
  });

  it('lends a model nothing from its quality in other classes: an untried class starts from the prior', () => {
    const policy = new AdaptivePolicy(options([free('a'), free('b')], { halfLife: 0 }));
    for (let i = 0; i < 40; i++) {
      policy.observe(observation('code', 'b', 'success', { feedback: 1 }));
      policy.observe(observation('math', 'b', 'success', { feedback: 0 }));
      policy.observe(observation('math', 'a'));
    }
    policy.observe(observation('long', 'a'));
    // No price, no anchor, no price prior: the uniform prior, whatever b is rated elsewhere.
    expect(armOf(policy, 'long', 'b')?.estimate).toBeCloseTo(0.5, 12);
    expect(armOf(policy, 'long', 'a')?.estimate).toBeCloseTo(0.5, 12);
    // A model with no evidence anywhere keeps the uniform prior.
    expect(armOf(new AdaptivePolicy(options([free('a')])), 'long', 'a')).toBeUndefined();
  });

  it('samples a close call between well-known arms at half width, and between arms of fewer than 100 observations at full width', () => {
    const share = (halfLife: number, observations: number, gap: number) => {
      const policy = new AdaptivePolicy(options([free('a'), free('b')], { halfLife, seed: 7 }));
      for (let i = 0; i < observations; i++) {
        policy.observe(observation('long', 'a', 'success', { feedback: 0.5 + gap }));
        policy.observe(observation('long', 'b', 'success', { feedback: 0.5 }));
      }
      let worse = 0;
      for (let i = 0; i < 2000; i++) if (policy.select({ query: '', queryClass: 'long', available: ['a', 'b'] }).model === 'b') worse++;
      return worse / 2000;
    };
    // Every answer rated: every request gets a draw. 2,000 observations each, means 0.52 and 0.50:
    // at full width the worse arm would win ~10% of the draws; tempered (Beta(4α, 4β): half the
    // standard deviation) ~0.6% (measured 0.6%). With forgetting too: a steady arm is judged on its
    // whole record.
    expect(share(0, 2000, 0.02)).toBeLessThan(0.03);
    expect(share(50, 2000, 0.02)).toBeLessThan(0.03);
    // 60 observations each, a gap of 0.1: never tempered, the worse arm wins ~13% of the draws, so of
    // the requests (measured 13%; under 1% if it were tempered).
    expect(share(0, 60, 0.1)).toBeGreaterThan(0.07);
  });

  it('treats errors, timeouts and cancellations as failures (reliability, no quality), and an unrated success as no quality evidence', () => {
    const policy = new AdaptivePolicy(options([free('a')], { halfLife: 0 }));
    policy.observe(observation('code', 'a', 'error'));
    policy.observe(observation('code', 'a', 'timeout'));
    policy.observe(observation('code', 'a', 'cancelled', { feedback: 1 }));
    policy.observe(observation('code', 'a', 'error', { feedback: 1 }));
    policy.observe(observation('code', 'a', 'success', { feedback: 0.25 }));
    policy.observe(observation('code', 'a', 'success'));
    expect(policy.armState('code', 'a')).toMatchObject({ count: 6, weight: 6, quality: 0.25, qualityWeight: 1, record: 0.25, recordWeight: 1, rated: 1 });
    expect(reliabilityOf(policy, 'code', 'a')).toMatchObject({ successes: 2, weight: 6 });
  });

  it('discounts an arm by γ = 2^(-1/halfLife) per newer observation of that arm only', () => {
    const gamma = discountFactor(10);
    expect(gamma ** 10).toBeCloseTo(0.5, 12);
    expect(discountFactor(0)).toBe(1);
    const policy = new AdaptivePolicy(options([free('a'), free('b')], { halfLife: 10 }));
    policy.observe(observation('code', 'a', 'success', { feedback: 1, costUsd: 0.5, latencyMs: 1000 }));
    policy.observe(observation('code', 'b', 'error'));
    policy.observe(observation('math', 'a', 'error'));
    policy.observe(observation('code', 'a', 'error', { latencyMs: 3000 }));
    const arm = policy.armState('code', 'a');
    expect(arm?.count).toBe(2);
    expect(arm?.weight).toBeCloseTo(1 + gamma, 12);
    expect(reliabilityOf(policy, 'code', 'a')?.successes).toBeCloseTo(gamma, 12);
    // The failure adds no quality, and the rating before it weighs γ in the window.
    expect(arm?.quality).toBeCloseTo(gamma, 12);
    expect(arm?.qualityWeight).toBeCloseTo(gamma, 12);
    expect(arm?.costSum).toBeCloseTo(0.5 * gamma, 12);
    expect(arm?.costCount).toBeCloseTo(gamma, 12);
    expect(arm?.latencySumMs).toBeCloseTo(1000 * gamma + 3000, 9);
  });
});

describe('AdaptivePolicy late feedback', () => {
  const gamma = discountFactor(50);

  /** Four traces of one arm, each rated 1 when observed: the first one's rating now weighs γ³. */
  function withTraces() {
    const policy = new AdaptivePolicy(options([free('a')]));
    const first = observation('code', 'a', 'success', { feedback: 1 });
    policy.observe(first);
    for (let i = 0; i < 3; i++) policy.observe(observation('code', 'a', 'success', { feedback: 1 }));
    const fb = (score: number, previous: number | null, outcome: Outcome = 'success', traceId = first.traceId) =>
      policy.observeFeedback({ traceId, queryClass: 'code', model: 'a', outcome, score, previous, source: 'human' });
    return { policy, fb, weight: 1 + gamma + gamma ** 2 + gamma ** 3 };
  }

  it('replaces the rating of the trace, weighed as it weighs now, by a new one that is the arm’s newest', () => {
    const { policy, fb, weight } = withTraces();
    const before = armOf(policy, 'code', 'a')?.estimate ?? NaN;
    fb(0.2, 1);
    // The old rating (γ³) out, the others one observation older, the new one in at weight 1:
    // Σw = (W − γ³)·γ + 1 = W, Σw·score = (W − γ³)·γ + 0.2 = W − 0.8.
    expect(policy.armState('code', 'a')?.qualityWeight).toBeCloseTo(weight, 12);
    expect(policy.armState('code', 'a')?.quality).toBeCloseTo(weight - 0.8, 12);
    expect(policy.armState('code', 'a')?.weight).toBeCloseTo(weight, 12);
    const after = armOf(policy, 'code', 'a')?.estimate ?? NaN;
    expect(after).toBeLessThan(before);
  });

  it('does not double count a repeated feedback; a changed one replaces the first', () => {
    const { policy, fb, weight } = withTraces();
    fb(0.2, 1);
    const once = policy.armState('code', 'a');
    fb(0.2, 0.2);
    expect(policy.armState('code', 'a')).toEqual(once);
    fb(0.5, 0.2);
    // 0.2 was the newest (weight 1): out, the rest one observation older, 0.5 in.
    expect(policy.armState('code', 'a')?.qualityWeight).toBeCloseTo((weight - 1) * gamma + 1, 12);
    expect(policy.armState('code', 'a')?.quality).toBeCloseTo((weight - 1) * gamma + 0.5, 12);
  });

  it('ignores feedback on a failed trace and on an unknown trace', () => {
    const { policy, fb } = withTraces();
    const failed = observation('code', 'a', 'timeout');
    policy.observe(failed);
    const errored = observation('code', 'a', 'error');
    policy.observe(errored);
    const before = policy.armState('code', 'a');
    fb(1, null, 'timeout', failed.traceId);
    // A failed attempt stays a failure whatever feedback says of its outcome.
    fb(1, null, 'success', errored.traceId);
    fb(0, null, 'success', 'never-seen');
    expect(policy.armState('code', 'a')).toEqual(before);
  });
});

describe('AdaptivePolicy.snapshot', () => {
  it('lists only classes with data, built-ins in order, every configured model per class', () => {
    const models: ModelInfo[] = [free('a'), { key: 'b', inputCostPerMTok: 1, outputCostPerMTok: 1 }];
    const policy = new AdaptivePolicy(options(models, { halfLife: 0 }));
    expect(policy.snapshot()).toEqual({ policy: 'adaptive', classes: [] });
    policy.observe(observation('long', 'c'));
    policy.observe(observation('code', 'a', 'error'));
    policy.observe(observation('code', 'a', 'success', { feedback: 1 }));
    policy.observe(observation('code', 'a', 'success', { feedback: 1 }));
    policy.observe(observation('code', 'a'));
    const snap = policy.snapshot();
    expect(snap.classes.map((c) => c.queryClass)).toEqual(['code', 'long']);
    const code = snap.classes[0];
    // Two ratings: the failure and the unrated success are no quality evidence.
    expect(code?.confidence).toBe(2);
    expect(code?.arms.map((a) => a.model)).toEqual(['a', 'b']);
    // The price prior's references: b (the only model with a price, the anchor) at a uniform
    // pseudo-rating (weight 2, mean 1/2) and a's two ratings; price 0 shifts nothing, so both models'
    // prior is W = PRICE_PRIOR_WEIGHT pseudo-observations at (1 + 2) / (2 + 2) = 3/4.
    // a: Beta(1 + 3W/4 + 2, 1 + W/4 + 0), b: Beta(1 + 3W/4, 1 + W/4).
    const W = PRICE_PRIOR_WEIGHT;
    const beta = (alpha: number, b: number) => ({ mean: alpha / (alpha + b), sd: Math.sqrt((alpha * b) / ((alpha + b) ** 2 * (alpha + b + 1))) });
    const aPosterior = beta(3 + (3 * W) / 4, 1 + W / 4);
    const bPosterior = beta(1 + (3 * W) / 4, 1 + W / 4);
    expect(code?.arms[0]).toMatchObject({ samples: 4, rated: 2, costUsd: 0, share: 0 });
    expect(code?.arms[0]?.estimate).toBeCloseTo(aPosterior.mean, 12);
    expect(code?.arms[0]?.uncertainty).toBeCloseTo(aPosterior.sd, 12);
    expect(code?.arms[1]).toMatchObject({ samples: 0, rated: 0, share: 0 });
    expect(code?.arms[1]?.estimate).toBeCloseTo(bPosterior.mean, 12);
    expect(code?.arms[1]?.costUsd).toBeCloseTo(priorCostUsd({ inputCostPerMTok: 1, outputCostPerMTok: 1 }), 12);
    expect(code?.arms[1]?.uncertainty).toBeCloseTo(bPosterior.sd, 12);
    // a fails one attempt in four: its reliability (9.8 + 3) / (10 + 4) = 0.914 costs it more than
    // its two ratings gain it over b, whose reliability is the prior's 0.98.
    expect(((9.8 + 3) / 14) * aPosterior.mean).toBeLessThan(0.98 * bPosterior.mean);
    expect(code?.choice).toBe('b');
    // A model outside the config has no price: its cost is unknown until traces tell.
    expect(snap.classes[1]?.arms.map((a) => [a.model, a.costUsd])).toEqual([
      ['a', 0],
      ['b', expect.closeTo(priorCostUsd({ inputCostPerMTok: 1, outputCostPerMTok: 1 }), 12)],
      ['c', null],
    ]);
  });

  it('reports each model’s share of the class’s decisions', () => {
    const policy = new AdaptivePolicy(options([free('a'), free('b')], { halfLife: 0 }));
    for (let i = 0; i < 3; i++) policy.select({ query: '', queryClass: 'math', available: ['a'] });
    policy.select({ query: '', queryClass: 'math', available: ['b'] });
    const math = policy.snapshot().classes.find((c) => c.queryClass === 'math');
    expect(math?.arms.map((a) => [a.model, a.share])).toEqual([
      ['a', 0.75],
      ['b', 0.25],
    ]);
  });

  it('weighs recent decisions more when forgetting', () => {
    const policy = new AdaptivePolicy(options([free('a'), free('b')], { halfLife: 1 }));
    policy.select({ query: '', queryClass: 'math', available: ['a'] });
    policy.select({ query: '', queryClass: 'math', available: ['b'] });
    const math = policy.snapshot().classes.find((c) => c.queryClass === 'math');
    // a's pick is one decision old: weight 1/2 against b's 1.
    expect(math?.arms.map((a) => a.share)).toEqual([1 / 3, 2 / 3]);
  });
});
