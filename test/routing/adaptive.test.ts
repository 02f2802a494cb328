import { describe, it, expect } from 'vitest';
import { AdaptivePolicy } from '../../src/routing/adaptive.js';
import { discountFactor, priorCostUsd } from '../../src/routing/prior.js';
import { classifyQuery } from '../../src/routing/classify.js';
import { Random } from '../../src/routing/random.js';
import type { EvidenceSource, ModelInfo, Observation, PolicyOptions } from '../../src/routing/types.js';
import { DEFAULT_SOURCE_WEIGHTS } from '../../src/core/config.js';
import { qualitySums, ratingWeight } from '../../src/routing/prior.js';
import type { FeedbackSource, Outcome } from '../../src/traces/types.js';
import { FakeEvidenceSource, reliabilityOf, type FakeTrace } from './fake-evidence.js';

const free = (key: string): ModelInfo => ({ key, inputCostPerMTok: 0, outputCostPerMTok: 0 });

function options(models: ModelInfo[], over: Partial<PolicyOptions> = {}): PolicyOptions {
  return { models, minSamples: 5, costWeight: 0, latencyWeight: 0, halfLife: 50, seed: 1, ...over };
}

let seq = 0;
function observation(
  queryClass: string,
  model: string,
  outcome: Outcome = 'success',
  extra: Partial<Observation> = {},
): Observation {
  seq += 1;
  return { traceId: `o${seq}`, query: '', queryClass, model, outcome, latencyMs: 100, costUsd: null, feedback: null, ...extra };
}

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

/** The arm's raw sums (it must exist). */
function armSums(p: AdaptivePolicy, queryClass: string, model: string) {
  const arm = p.armState(queryClass, model);
  if (arm === undefined) throw new Error(`no arm ${queryClass}/${model}`);
  return arm;
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
        // the share of answers rated: the successes). Measured over 100 seeds: 95% of the classes
        // ≥ 0.95, the lowest 0.89.
        expect(share(picks[cls] ?? [], best[cls] as string), `seed ${seed} ${cls} overall`).toBeGreaterThanOrEqual(0.85);
      }
      // Measured over 100 seeds: ≥ 0.98 of the later decisions; seeds 1-3 ≥ 0.997.
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

  it('lends a model its quality in other classes as a prior for an untried class', () => {
    const policy = new AdaptivePolicy(options([free('a'), free('b')], { halfLife: 0 }));
    for (let i = 0; i < 40; i++) {
      policy.observe(observation('code', 'b', 'success', { feedback: 1 }));
      policy.observe(observation('math', 'b', 'success', { feedback: 1 }));
      // Unrated answers lend nothing.
      policy.observe(observation('math', 'a'));
    }
    for (let i = 0; i < 10; i++) policy.observe(observation('long', 'a', i % 2 === 0 ? 'success' : 'error', { feedback: i % 2 === 0 ? 1 : null }));
    // b in long: Beta(1 + 2 × 1, 1 + 2 × 0) → mean 3/4 rather than the uniform prior's 1/2.
    expect(armOf(policy, 'long', 'b')?.estimate).toBeCloseTo(0.75, 12);
    // a in long: five thumbs up, Beta(6, 1); it failed half of the time, so a reliability of
    // (9.8 + 5) / (10 + 10) = 0.74: 0.63 against b's 0.98 × 3/4 = 0.735.
    expect(armOf(policy, 'long', 'a')?.estimate).toBeCloseTo(6 / 7, 12);
    expect(reliabilityOf(policy, 'long', 'a')?.reliability).toBeCloseTo(0.74, 12);
    expect(choiceOf(policy, 'long')).toBe('b');
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

/** One event of a simulated history, in arrival order: a finished attempt, or a rating given after it. */
type HistoryEvent = { kind: 'trace'; trace: FakeTrace } | { kind: 'feedback'; id: string; time: number; score: number; source: FeedbackSource };

/**
 * Random trace-like records: about one answer in ten rated when observed and one in five rated later
 * (by a human, the judge or an implicit signal), at a trace among the 300 newest. With `replace`, a late
 * rating may land on a trace already rated, and sometimes comes twice; without, it lands only on
 * traces that have none (or on a failure, which it does not change).
 */
function history(n: number, env: Random, replace: boolean): HistoryEvent[] {
  const classes = ['code', 'math', 'long'];
  const models = ['a', 'b', 'c', 'd'];
  const sources: FeedbackSource[] = ['human', 'judge', 'implicit'];
  const pick = <T>(list: readonly T[]): T => list[Math.floor(env.uniform() * list.length)] as T;
  const events: HistoryEvent[] = [];
  const traces: FakeTrace[] = [];
  const rated = new Set<string>();
  for (let i = 0; i < n; i++) {
    const u = env.uniform();
    const outcome: Outcome = u < 0.7 ? 'success' : u < 0.85 ? 'error' : u < 0.95 ? 'timeout' : 'cancelled';
    const feedback = env.uniform() < 0.1 ? Math.round(env.uniform() * 100) / 100 : null;
    seq += 1;
    const trace: FakeTrace = {
      id: `h${seq}`,
      time: seq,
      queryClass: pick(classes),
      model: pick(models),
      outcome,
      feedback,
      feedbackSource: feedback === null ? null : pick(sources),
      costUsd: env.uniform() < 0.2 ? null : env.uniform() * 0.01,
      latencyMs: Math.round(env.uniform() * 2000),
    };
    events.push({ kind: 'trace', trace });
    traces.push(trace);
    if (feedback !== null) rated.add(trace.id);
    if (env.uniform() < 0.2) {
      const target = pick(traces.slice(-300));
      if (!replace && rated.has(target.id)) continue;
      for (let k = replace && env.uniform() < 0.3 ? 2 : 1; k > 0; k--) {
        seq += 1;
        events.push({ kind: 'feedback', id: target.id, time: seq, score: Math.round(env.uniform() * 100) / 100, source: pick(sources) });
        rated.add(target.id);
      }
    }
  }
  return events;
}

/** Records the events in the store (traces copied, ratings at their own time) and has each policy observe them. */
function apply(events: readonly HistoryEvent[], store: FakeEvidenceSource, ...policies: AdaptivePolicy[]): void {
  for (const event of events) {
    if (event.kind === 'trace') {
      const { trace } = event;
      store.add({ ...trace });
      for (const policy of policies) {
        policy.observe({
          traceId: trace.id,
          query: '',
          queryClass: trace.queryClass,
          model: trace.model,
          outcome: trace.outcome,
          latencyMs: trace.latencyMs,
          costUsd: trace.costUsd,
          feedback: trace.feedback,
          feedbackSource: trace.feedbackSource ?? undefined,
        });
      }
    } else {
      const target = store.traces.find((t) => t.id === event.id) as FakeTrace;
      const previous = target.feedback;
      store.setFeedback(event.id, event.score, event.source, event.time);
      for (const policy of policies) {
        policy.observeFeedback({ traceId: event.id, queryClass: target.queryClass, model: target.model, outcome: target.outcome, score: event.score, previous, source: event.source });
      }
    }
  }
}

/** Per arm, how many of the events replace a rating the trace already had (a failure's do not count). */
function replacements(events: readonly HistoryEvent[]): Map<string, number> {
  const traces = new Map<string, FakeTrace>();
  const current = new Map<string, { score: number; weight: number }>();
  const counts = new Map<string, number>();
  for (const event of events) {
    if (event.kind === 'trace') {
      traces.set(event.trace.id, event.trace);
      const { feedback, feedbackSource } = event.trace;
      if (event.trace.outcome === 'success' && feedback !== null) current.set(event.trace.id, { score: feedback, weight: ratingWeight(feedbackSource, DEFAULT_SOURCE_WEIGHTS) });
      continue;
    }
    const trace = traces.get(event.id) as FakeTrace;
    if (trace.outcome !== 'success') continue;
    const old = current.get(event.id);
    const weight = ratingWeight(event.source, DEFAULT_SOURCE_WEIGHTS);
    if (old !== undefined && !(old.score === event.score && old.weight === weight)) {
      const key = `${trace.queryClass}/${trace.model}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    current.set(event.id, { score: event.score, weight });
  }
  return counts;
}

const ARM_FIELDS = ['weight', 'quality', 'qualityWeight', 'record', 'recordWeight', 'costSum', 'costCount', 'latencySumMs'] as const;

/** The arms' sums agree (`fields` of armState, and the reliability sums), and so do their counts of traces and rated answers. */
function expectSameArms(a: AdaptivePolicy, b: AdaptivePolicy, fields: readonly (typeof ARM_FIELDS)[number][] = ARM_FIELDS): void {
  for (const cls of ['code', 'math', 'long']) {
    for (const model of ['a', 'b', 'c', 'd']) {
      const x = a.armState(cls, model);
      const y = b.armState(cls, model);
      expect(y?.count, `${cls}/${model}`).toBe(x?.count);
      if (x === undefined) continue;
      expect(y?.rated, `${cls}/${model} rated`).toBe(x?.rated);
      const rx = reliabilityOf(a, cls, model)!.successes;
      const ry = reliabilityOf(b, cls, model)!.successes;
      expect(Math.abs(rx - ry), `${cls}/${model} successes: ${rx} vs ${ry}`).toBeLessThanOrEqual(1e-9 * Math.max(1, rx));
      for (const field of fields) {
        const xv = x?.[field] ?? NaN;
        const yv = y?.[field] ?? NaN;
        expect(Math.abs(xv - yv), `${cls}/${model} ${field}: ${xv} vs ${yv}`).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(xv)));
      }
    }
  }
}

/**
 * The store's quality evidence (forgetting γ per newer piece of quality evidence of the arm, ratings
 * and failures) as the policy weighs it: the ratings' sums, and the rated answers (`observations −
 * failures` of the undiscounted read).
 */
async function storeQuality(store: FakeEvidenceSource, gamma: number): Promise<Map<string, { weight: number; sum: number; rated: number }>> {
  const rows = await store.qualityEvidence({ decay: gamma, source: 'live' });
  const raw = new Map((await store.qualityEvidence({ source: 'live' })).map((row) => [`${row.queryClass}/${row.model}`, row.observations - row.failures]));
  return new Map(rows.map((row) => [`${row.queryClass}/${row.model}`, { ...qualitySums(row, DEFAULT_SOURCE_WEIGHTS), rated: raw.get(`${row.queryClass}/${row.model}`) ?? 0 }]));
}

/** The whole record (no forgetting): what the store sums without decay. */
async function expectStoreRecord(policy: AdaptivePolicy, store: FakeEvidenceSource): Promise<void> {
  const sums = await storeQuality(store, 1);
  for (const cls of ['code', 'math', 'long']) {
    for (const model of ['a', 'b', 'c', 'd']) {
      const arm = policy.armState(cls, model);
      const want = sums.get(`${cls}/${model}`) ?? { weight: 0, sum: 0, rated: 0 };
      expect(Math.abs((arm?.recordWeight ?? 0) - want.weight), `${cls}/${model} recordWeight`).toBeLessThanOrEqual(1e-9 * Math.max(1, want.weight));
      expect(Math.abs((arm?.record ?? 0) - want.sum), `${cls}/${model} record`).toBeLessThanOrEqual(1e-9 * Math.max(1, want.sum));
    }
  }
}

/** The policy's quality sums (the recent window and the whole record) are the store's, exactly. */
async function expectStoreQuality(policy: AdaptivePolicy, store: FakeEvidenceSource, gamma: number): Promise<void> {
  await expectStoreRecord(policy, store);
  const sums = await storeQuality(store, gamma);
  for (const cls of ['code', 'math', 'long']) {
    for (const model of ['a', 'b', 'c', 'd']) {
      const arm = policy.armState(cls, model);
      const want = sums.get(`${cls}/${model}`) ?? { weight: 0, sum: 0, rated: 0 };
      expect(arm?.rated ?? 0, `${cls}/${model} rated`).toBe(want.rated);
      expect(Math.abs((arm?.qualityWeight ?? 0) - want.weight), `${cls}/${model} qualityWeight`).toBeLessThanOrEqual(1e-9 * Math.max(1, want.weight));
      expect(Math.abs((arm?.quality ?? 0) - want.sum), `${cls}/${model} quality`).toBeLessThanOrEqual(1e-9 * Math.max(1, want.sum));
    }
  }
}

describe('AdaptivePolicy.updateFromTraces', () => {
  const models: ModelInfo[] = [
    { key: 'a', inputCostPerMTok: 1, outputCostPerMTok: 2 },
    { key: 'b', inputCostPerMTok: 3, outputCostPerMTok: 15 },
    free('c'),
    { key: 'd', inputCostPerMTok: 0.1, outputCostPerMTok: 0.1 },
  ];

  it('reports a missing source, and an empty store', async () => {
    expect(await new AdaptivePolicy(options(models)).updateFromTraces()).toEqual({ error: 'no analyzer configured' });
    const empty = new AdaptivePolicy(options(models, { source: new FakeEvidenceSource() }));
    expect(await empty.updateFromTraces()).toEqual({ updated: false, reason: 'no traces' });
  });

  it('rebuilds exactly the state that online observation produced (a restart routes as before)', async () => {
    const gamma = discountFactor(50);
    const store = new FakeEvidenceSource();
    const online = new AdaptivePolicy(options(models, { seed: 11, costWeight: 5, latencyWeight: 0.01 }));
    // Ratings given when the answer is observed and later, by every source; none replaces another.
    apply(history(1500, new Random(3), false), store, online);
    await expectStoreQuality(online, store, gamma);

    const restarted = new AdaptivePolicy(options(models, { seed: 11, costWeight: 5, latencyWeight: 0.01, source: store }));
    const summary = await restarted.updateFromTraces();
    expect(store.evidenceCalls).toEqual([
      { since: undefined, until: undefined, decay: gamma, source: 'live' },
      { since: undefined, until: undefined, source: 'offline' },
    ]);
    expect(store.recentCalls).toEqual([2000]);
    expect(summary).toMatchObject({ updated: true, query_classes: 3, total_traces: 1500 });
    expectSameArms(online, restarted);

    // Same state and same seed: the same decisions.
    const route = (policy: AdaptivePolicy) =>
      Array.from({ length: 300 }, (_, i) => policy.select({ query: '', queryClass: ['code', 'math', 'long'][i % 3] as string, available: ['a', 'b', 'c', 'd'] }).model);
    expect(route(restarted)).toEqual(route(online));

    // Late ratings on unrated traces that the rebuild remembers (not the newest of their arm) land identically.
    const unrated = store.traces.slice(-60, -20).filter((t) => t.outcome === 'success' && t.feedback === null);
    expect(unrated.length).toBeGreaterThan(5);
    const late: HistoryEvent[] = unrated.map((t, i) => ({ kind: 'feedback', id: t.id, time: (seq += 1), score: 0.33, source: i % 2 === 0 ? 'human' : 'judge' }));
    apply(late, store, online, restarted);
    expectSameArms(online, restarted);
    await expectStoreQuality(restarted, store, gamma);

    // And both keep learning alike.
    apply(history(200, new Random(9), false), store, online, restarted);
    expectSameArms(online, restarted);
    await expectStoreQuality(online, store, gamma);
  });

  it('with ratings that replace earlier ones, online forgetting runs ahead of the store by at most γ per replacement', async () => {
    // A replaced rating leaves the arm, but the discount its arrival gave the arm's older evidence
    // stays: online, each replacement weighs the evidence older than the replaced rating γ more than
    // the store does. The whole record, which does not forget, stays exact, and so does the count of
    // rated answers (a replaced rating counts once). The rebuild reads the store's sums.
    const gamma = discountFactor(50);
    const store = new FakeEvidenceSource();
    const online = new AdaptivePolicy(options(models, { seed: 11 }));
    const events = history(1500, new Random(3), true);
    apply(events, store, online);
    const replaced = replacements(events);
    expect([...replaced.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(50);
    await expectStoreRecord(online, store);
    const sums = await storeQuality(store, gamma);
    for (const [key, want] of sums) {
      const [cls, model] = key.split('/') as [string, string];
      const arm = armSums(online, cls, model);
      const r = replaced.get(key) ?? 0;
      expect(arm.rated, key).toBe(want.rated);
      for (const [got, full] of [
        [arm.qualityWeight, want.weight],
        [arm.quality, want.sum],
      ] as const) {
        expect(got, key).toBeLessThanOrEqual(full + 1e-9);
        expect(got, key).toBeGreaterThanOrEqual(Math.pow(gamma, r) * full - 1e-9);
      }
    }

    const restarted = new AdaptivePolicy(options(models, { seed: 11, source: store }));
    await restarted.updateFromTraces();
    await expectStoreQuality(restarted, store, gamma);
    // What does not forget ratings is the same, and so are the counts of rated answers.
    expectSameArms(online, restarted, ['weight', 'record', 'recordWeight', 'costSum', 'costCount', 'latencySumMs']);
  });

  it('after a rebuild, a rating that replaces a remembered one is taken out as if it were the arm’s newest', async () => {
    // The store does not say where a remembered trace's rating sits among the arm's evidence, so its
    // replacement takes it out at full weight; with k newer pieces of evidence the arm then holds
    // w·(γ − γ^(k+1)) less than the store (here w = 1, k = 9: five failures and four ratings).
    const gamma = discountFactor(50);
    const store = new FakeEvidenceSource();
    const online = new AdaptivePolicy(options(models));
    const events: HistoryEvent[] = [];
    for (let i = 0; i < 10; i++) {
      seq += 1;
      const failed = i % 2 === 1;
      const trace: FakeTrace = { id: `r${seq}`, time: seq, queryClass: 'code', model: 'a', outcome: failed ? 'error' : 'success', feedback: failed ? null : 1, costUsd: null, latencyMs: 10 };
      events.push({ kind: 'trace', trace });
    }
    apply(events, store, online);
    const restarted = new AdaptivePolicy(options(models, { source: store }));
    await restarted.updateFromTraces();
    expectSameArms(online, restarted);
    const first = (events[0] as { trace: FakeTrace }).trace.id;
    apply([{ kind: 'feedback', id: first, time: (seq += 1), score: 0, source: 'human' }], store, online, restarted);
    const want = (await storeQuality(store, gamma)).get('code/a')!;
    // Newest first: the new 0, then a failure and a rating in turn.
    expect(want.weight).toBeCloseTo(1 + gamma ** 2 + gamma ** 4 + gamma ** 6 + gamma ** 8, 12);
    expect(want.sum).toBeCloseTo(gamma ** 2 + gamma ** 4 + gamma ** 6 + gamma ** 8, 12);
    // Online, no rating of the arm newer than this one was replaced: exactly the store's sums.
    expect(armSums(online, 'code', 'a').qualityWeight).toBeCloseTo(want.weight, 12);
    expect(armSums(online, 'code', 'a').quality).toBeCloseTo(want.sum, 12);
    expect(armSums(restarted, 'code', 'a').qualityWeight).toBeCloseTo(want.weight - (gamma - gamma ** 10), 12);
    expect(armSums(restarted, 'code', 'a').quality).toBeCloseTo(want.sum - (gamma - gamma ** 10), 12);
    // Five rated answers, one of them rated twice: five both ways.
    expect(armSums(online, 'code', 'a').rated).toBe(5);
    expect(armSums(restarted, 'code', 'a').rated).toBe(5);
    expect(want.rated).toBe(5);
    // The whole record does not forget, so where the rating sat does not matter to it.
    await expectStoreRecord(restarted, store);
    await expectStoreRecord(online, store);
  });

  it('reports the changes of the greedy choice per class', async () => {
    const store = new FakeEvidenceSource();
    // Successes rated 1; the priciest model (b) anchors the price prior.
    const add = (queryClass: string, model: string, n: number, outcome: Outcome) => {
      for (let i = 0; i < n; i++) {
        seq += 1;
        store.add({ id: `u${seq}`, time: seq, queryClass, model, outcome, feedback: outcome === 'success' ? 1 : null, costUsd: null, latencyMs: 10 });
      }
    };
    add('code', 'a', 10, 'success');
    add('math', 'b', 10, 'error');
    add('math', 'c', 10, 'success');
    const policy = new AdaptivePolicy(options(models, { source: store }));
    expect(await policy.updateFromTraces()).toEqual({
      updated: true,
      query_classes: 2,
      total_traces: 30,
      changes: { code: { old: '', new: 'a' }, math: { old: '', new: 'c' } },
    });
    expect(await policy.updateFromTraces()).toEqual({ updated: true, query_classes: 2, total_traces: 30, changes: {} });
    add('code', 'a', 30, 'error');
    add('code', 'd', 10, 'success');
    const third = await policy.updateFromTraces();
    expect(third.changes).toEqual({ code: { old: 'a', new: 'd' } });
  });

  it('neither loses nor double counts what is observed while an update reads the store', async () => {
    const store = new FakeEvidenceSource();
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => (open = resolve));
    let readDone: () => void = () => {};
    // The update issues all its reads in one turn; once this one has its rows, every read has.
    const read = new Promise<void>((resolve) => (readDone = resolve));
    const gated: EvidenceSource = {
      evidence: (query) => store.evidence(query),
      qualityEvidence: (query) => store.qualityEvidence(query),
      recentByArm: async (perArm) => {
        const rows = await store.recentByArm(perArm);
        readDone();
        await gate;
        return rows;
      },
    };
    const record = (id: string): FakeTrace => ({ id, time: 0, queryClass: 'code', model: 'a', outcome: 'success', feedback: null, costUsd: null, latencyMs: 10 });
    const observe = (policy: AdaptivePolicy, id: string) =>
      policy.observe({ traceId: id, query: '', queryClass: 'code', model: 'a', outcome: 'success', latencyMs: 10, costUsd: null, feedback: null });

    const policy = new AdaptivePolicy(options(models, { source: gated }));
    for (let i = 0; i < 5; i++) {
      store.add(record(`s${i}`));
      observe(policy, `s${i}`);
    }
    store.add(record('committed-before-read'));
    const update = policy.updateFromTraces();
    await read;
    // Already in what the update read: must not count twice.
    observe(policy, 'committed-before-read');
    // Committed after the read: must survive the swap.
    store.add(record('committed-after-read'));
    observe(policy, 'committed-after-read');
    open();
    await update;
    expect(policy.armState('code', 'a')?.count).toBe(7);
    // Observed again after the update (a caller's duplicate): still not counted twice.
    observe(policy, 'committed-after-read');
    expect(policy.armState('code', 'a')?.count).toBe(7);
  });

  it('leaves the state alone when the store fails, and keeps working', async () => {
    let fail = true;
    const store = new FakeEvidenceSource();
    const flaky: EvidenceSource = {
      evidence: async (query) => {
        if (fail) throw new Error('database is locked');
        return store.evidence(query);
      },
      qualityEvidence: (query) => store.qualityEvidence(query),
      recentByArm: (perArm) => store.recentByArm(perArm),
    };
    const policy = new AdaptivePolicy(options(models, { source: flaky }));
    policy.observe(observation('code', 'a'));
    await expect(policy.updateFromTraces()).rejects.toThrow('database is locked');
    expect(policy.armState('code', 'a')?.count).toBe(1);
    fail = false;
    store.add({ id: 'x', time: 1, queryClass: 'code', model: 'b', outcome: 'success', feedback: null, costUsd: null, latencyMs: 1 });
    expect(await policy.updateFromTraces()).toMatchObject({ updated: true, total_traces: 1 });
    expect(policy.armState('code', 'a')?.count).toBe(0);
    expect(policy.armState('code', 'b')?.count).toBe(1);
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
    // prior is 10 pseudo-observations at (1 + 2) / (2 + 2) = 3/4. a: Beta(1 + 7.5 + 2, 1 + 2.5 + 0),
    // b: Beta(1 + 7.5, 1 + 2.5).
    expect(code?.arms[0]).toMatchObject({ samples: 4, rated: 2, costUsd: 0, share: 0 });
    expect(code?.arms[0]?.estimate).toBeCloseTo(10.5 / 14, 12);
    expect(code?.arms[0]?.uncertainty).toBeCloseTo(Math.sqrt((10.5 * 3.5) / (196 * 15)), 12);
    expect(code?.arms[1]).toMatchObject({ samples: 0, rated: 0, share: 0 });
    expect(code?.arms[1]?.estimate).toBeCloseTo(8.5 / 12, 12);
    expect(code?.arms[1]?.costUsd).toBeCloseTo(priorCostUsd({ inputCostPerMTok: 1, outputCostPerMTok: 1 }), 12);
    expect(code?.arms[1]?.uncertainty).toBeCloseTo(Math.sqrt((8.5 * 3.5) / (144 * 13)), 12);
    // a fails one attempt in four: (9.8 + 3) / (10 + 4) × 3/4 = 0.686 against b's 0.98 × 8.5/12 = 0.694.
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
