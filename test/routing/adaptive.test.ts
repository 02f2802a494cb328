import { describe, it, expect } from 'vitest';
import { AdaptivePolicy, discountFactor, priorCostUsd } from '../../src/routing/adaptive.js';
import { classifyQuery } from '../../src/routing/classify.js';
import { Random } from '../../src/routing/random.js';
import type { EvidenceSource, ModelInfo, Observation, PolicyOptions } from '../../src/routing/types.js';
import type { Outcome } from '../../src/traces/types.js';
import { FakeEvidenceSource, type FakeTrace } from './fake-evidence.js';

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

function bernoulli(env: Random, p: Record<string, number>): (model: string) => Reply {
  return (model) => ({ ok: env.uniform() < (p[model] ?? 0) });
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
    for (let i = 0; i < 10; i++) policy.observe(observation('code', 'a', i < 6 ? 'success' : 'error'));
    const decisions = Array.from({ length: 200 }, () => policy.select({ query: '', queryClass: 'code', available: ['a', 'b'] }));
    const untried = decisions.filter((d) => d.model === 'b');
    // Beta(1, 1) against Beta(7, 5): b wins about 40% of the draws.
    expect(untried.length).toBeGreaterThan(40);
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
  it('converges to the best model of each class (≥ 90% of the later decisions)', () => {
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
        expect(share(picks[cls] ?? [], best[cls] as string), `seed ${seed} ${cls} overall`).toBeGreaterThan(0.8);
      }
      expect(later / 3, `seed ${seed}`).toBeGreaterThanOrEqual(0.9);
    }
  });

  it('converges in most seeds of the end-to-end scenario; an early run of bad luck can hold a class on the runner-up', () => {
    // The scenario of test/routing/learning-e2e.test.ts (which runs one seed over HTTP), here over
    // many seeds: each model best at one class, flaky failing every other call (a failover tries
    // another model), a thumbs up or down on every answer. Thompson sampling leaves a model that
    // drew a few thumbs down from its first answers (2 of its first 3, at a 92% chance of an up)
    // with a low, wide posterior; against a runner-up known to be at 0.7 ± 0.05 it is then drawn on
    // top only now and then, so it recovers slowly. Measured here: 97.0% of 1,000 seeds send ≥ 90%
    // of every class to its best model after 800 requests, and 0.4% hold a class under 60%.
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
            policy.observe(observation(cls, model, 'success', { failedOver: true }));
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
    expect(converged / seeds).toBeGreaterThanOrEqual(0.94);
    expect(heldBack / seeds).toBeLessThanOrEqual(0.012);
  });

  it('moves away from a model that starts failing within ~50 requests', () => {
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
      policy.observe(observation('code', 'b'));
      policy.observe(observation('math', 'b'));
    }
    for (let i = 0; i < 10; i++) policy.observe(observation('long', 'a', i % 2 === 0 ? 'success' : 'error'));
    // b in long: Beta(1 + 2 × 1, 1 + 2 × 0) → mean 3/4 rather than the uniform prior's 1/2.
    expect(armOf(policy, 'long', 'b')?.estimate).toBeCloseTo(0.75, 12);
    expect(armOf(policy, 'long', 'a')?.estimate).toBeCloseTo(6 / 12, 12);
    expect(choiceOf(policy, 'long')).toBe('b');
    // A model with no evidence anywhere keeps the uniform prior.
    expect(armOf(new AdaptivePolicy(options([free('a')])), 'long', 'a')).toBeUndefined();
  });

  it('samples a close call between well-known arms at half width, and at full width under the default forgetting', () => {
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
    // 2,000 observations each, means 0.52 and 0.50: at full width the worse arm would be drawn ~10% of
    // the time; tempered (Beta(4α, 4β): half the standard deviation) ~0.6%.
    expect(share(0, 2000, 0.02)).toBeLessThan(0.03);
    // With a half-life of 50 an arm weighs at most ~72 observations: never tempered, so a gap of 0.12
    // is still explored (~7% at full width; ~0.2% if it were tempered).
    expect(share(50, 500, 0.12)).toBeGreaterThan(0.03);
  });

  it('treats errors, timeouts, cancellations and failed-over attempts as quality 0', () => {
    const policy = new AdaptivePolicy(options([free('a')], { halfLife: 0 }));
    policy.observe(observation('code', 'a', 'error'));
    policy.observe(observation('code', 'a', 'timeout'));
    policy.observe(observation('code', 'a', 'cancelled', { feedback: 1 }));
    policy.observe(observation('code', 'a', 'success', { failedOver: true }));
    policy.observe(observation('code', 'a', 'success', { feedback: 0.25 }));
    policy.observe(observation('code', 'a', 'success'));
    expect(policy.armState('code', 'a')).toMatchObject({ count: 6, weight: 6, quality: 1.25 });
  });

  it('discounts an arm by γ = 2^(-1/halfLife) per newer observation of that arm only', () => {
    const gamma = discountFactor(10);
    expect(gamma ** 10).toBeCloseTo(0.5, 12);
    expect(discountFactor(0)).toBe(1);
    const policy = new AdaptivePolicy(options([free('a'), free('b')], { halfLife: 10 }));
    policy.observe(observation('code', 'a', 'success', { costUsd: 0.5, latencyMs: 1000 }));
    policy.observe(observation('code', 'b', 'error'));
    policy.observe(observation('math', 'a', 'error'));
    policy.observe(observation('code', 'a', 'error', { latencyMs: 3000 }));
    const arm = policy.armState('code', 'a');
    expect(arm?.count).toBe(2);
    expect(arm?.weight).toBeCloseTo(1 + gamma, 12);
    expect(arm?.quality).toBeCloseTo(gamma, 12);
    expect(arm?.costSum).toBeCloseTo(0.5 * gamma, 12);
    expect(arm?.costCount).toBeCloseTo(gamma, 12);
    expect(arm?.latencySumMs).toBeCloseTo(1000 * gamma + 3000, 9);
  });
});

describe('AdaptivePolicy late feedback', () => {
  const gamma = discountFactor(50);

  function withTraces() {
    const policy = new AdaptivePolicy(options([free('a')]));
    const first = observation('code', 'a');
    policy.observe(first);
    for (let i = 0; i < 3; i++) policy.observe(observation('code', 'a'));
    const fb = (score: number, previous: number | null, outcome: Outcome = 'success', traceId = first.traceId) =>
      policy.observeFeedback({ traceId, queryClass: 'code', model: 'a', outcome, score, previous, source: 'human' });
    return { policy, fb, weight: 1 + gamma + gamma ** 2 + gamma ** 3 };
  }

  it('replaces the quality of the trace, weighed as the trace weighs now', () => {
    const { policy, fb, weight } = withTraces();
    const before = armOf(policy, 'code', 'a')?.estimate ?? NaN;
    fb(0.2, null);
    expect(policy.armState('code', 'a')?.quality).toBeCloseTo(weight - 0.8 * gamma ** 3, 12);
    expect(policy.armState('code', 'a')?.weight).toBeCloseTo(weight, 12);
    const after = armOf(policy, 'code', 'a')?.estimate ?? NaN;
    expect(after).toBeLessThan(before);
  });

  it('does not double count a repeated feedback; a changed one replaces the first', () => {
    const { policy, fb, weight } = withTraces();
    fb(0.2, null);
    const once = armOf(policy, 'code', 'a')?.estimate;
    fb(0.2, 0.2);
    expect(armOf(policy, 'code', 'a')?.estimate).toBe(once);
    fb(0.5, 0.2);
    expect(policy.armState('code', 'a')?.quality).toBeCloseTo(weight - 0.5 * gamma ** 3, 12);
  });

  it('ignores feedback on a failed trace and on an unknown trace', () => {
    const { policy, fb } = withTraces();
    const failed = observation('code', 'a', 'timeout');
    policy.observe(failed);
    const before = policy.armState('code', 'a');
    fb(1, null, 'timeout', failed.traceId);
    fb(0, null, 'success', 'never-seen');
    expect(policy.armState('code', 'a')).toEqual(before);
  });
});

/** Random trace-like records, observed online and stored in a fake store with their late feedback. */
function history(n: number, policy: AdaptivePolicy, store: FakeEvidenceSource, env: Random): void {
  const classes = ['code', 'math', 'long'];
  const models = ['a', 'b', 'c', 'd'];
  const pick = <T>(list: readonly T[]): T => list[Math.floor(env.uniform() * list.length)] as T;
  for (let i = 0; i < n; i++) {
    const u = env.uniform();
    const outcome: Outcome = u < 0.7 ? 'success' : u < 0.85 ? 'error' : u < 0.95 ? 'timeout' : 'cancelled';
    seq += 1;
    const trace: FakeTrace = {
      id: `h${seq}`,
      time: seq,
      queryClass: pick(classes),
      model: pick(models),
      outcome,
      feedback: env.uniform() < 0.1 ? Math.round(env.uniform() * 100) / 100 : null,
      costUsd: env.uniform() < 0.2 ? null : env.uniform() * 0.01,
      latencyMs: Math.round(env.uniform() * 2000),
    };
    store.add(trace);
    policy.observe({
      traceId: trace.id,
      query: '',
      queryClass: trace.queryClass,
      model: trace.model,
      outcome: trace.outcome,
      failedOver: trace.outcome === 'error' && env.uniform() < 0.5,
      latencyMs: trace.latencyMs,
      costUsd: trace.costUsd,
      feedback: trace.feedback,
    });
    // Late feedback (sometimes twice) on one of the recent traces.
    if (env.uniform() < 0.2) {
      const recent = store.traces.slice(-300);
      const target = pick(recent);
      for (let k = env.uniform() < 0.3 ? 2 : 1; k > 0; k--) {
        const score = Math.round(env.uniform() * 100) / 100;
        const previous = target.feedback;
        store.setFeedback(target.id, score);
        policy.observeFeedback({ traceId: target.id, queryClass: target.queryClass, model: target.model, outcome: target.outcome, score, previous, source: 'human' });
      }
    }
  }
}

function expectSameArms(a: AdaptivePolicy, b: AdaptivePolicy): void {
  for (const cls of ['code', 'math', 'long']) {
    for (const model of ['a', 'b', 'c', 'd']) {
      const x = a.armState(cls, model);
      const y = b.armState(cls, model);
      expect(y?.count, `${cls}/${model}`).toBe(x?.count);
      for (const field of ['weight', 'quality', 'costSum', 'costCount', 'latencySumMs'] as const) {
        const xv = x?.[field] ?? NaN;
        const yv = y?.[field] ?? NaN;
        expect(Math.abs(xv - yv), `${cls}/${model} ${field}: ${xv} vs ${yv}`).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(xv)));
      }
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
    const store = new FakeEvidenceSource();
    const online = new AdaptivePolicy(options(models, { seed: 11, costWeight: 5, latencyWeight: 0.01 }));
    history(1500, online, store, new Random(3));

    const restarted = new AdaptivePolicy(options(models, { seed: 11, costWeight: 5, latencyWeight: 0.01, source: store }));
    const summary = await restarted.updateFromTraces();
    expect(store.evidenceCalls).toEqual([
      { since: undefined, until: undefined, decay: discountFactor(50), source: 'live' },
      { since: undefined, until: undefined, source: 'offline' },
    ]);
    expect(store.recentCalls).toEqual([1000]);
    expect(summary).toMatchObject({ updated: true, query_classes: 3, total_traces: 1500 });
    expectSameArms(online, restarted);

    // Same state and same seed: the same decisions.
    const route = (policy: AdaptivePolicy) =>
      Array.from({ length: 300 }, (_, i) => policy.select({ query: '', queryClass: ['code', 'math', 'long'][i % 3] as string, available: ['a', 'b', 'c', 'd'] }).model);
    expect(route(restarted)).toEqual(route(online));

    // Late feedback on traces that the rebuild remembers (not the newest of their arm) lands identically.
    for (const target of store.traces.slice(-40, -30)) {
      const previous = target.feedback;
      store.setFeedback(target.id, 0.33);
      for (const policy of [online, restarted]) {
        policy.observeFeedback({ traceId: target.id, queryClass: target.queryClass, model: target.model, outcome: target.outcome, score: 0.33, previous, source: 'human' });
      }
    }
    expectSameArms(online, restarted);

    // And both keep learning alike.
    const twin = new FakeEvidenceSource();
    history(200, online, twin, new Random(9));
    for (const trace of twin.traces) {
      restarted.observe({ traceId: trace.id, query: '', queryClass: trace.queryClass, model: trace.model, outcome: trace.outcome, latencyMs: trace.latencyMs, costUsd: trace.costUsd, feedback: null });
      if (trace.feedback !== null) {
        restarted.observeFeedback({ traceId: trace.id, queryClass: trace.queryClass, model: trace.model, outcome: trace.outcome, score: trace.feedback, previous: null, source: 'human' });
      }
    }
    expectSameArms(online, restarted);
  });

  it('reports the changes of the greedy choice per class', async () => {
    const store = new FakeEvidenceSource();
    const add = (queryClass: string, model: string, n: number, outcome: Outcome) => {
      for (let i = 0; i < n; i++) {
        seq += 1;
        store.add({ id: `u${seq}`, time: seq, queryClass, model, outcome, feedback: null, costUsd: null, latencyMs: 10 });
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
    const gated: EvidenceSource = {
      evidence: (query) => store.evidence(query),
      recentByArm: async (perArm) => {
        const rows = await store.recentByArm(perArm);
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
    await new Promise((resolve) => setTimeout(resolve, 0));
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
    policy.observe(observation('code', 'a'));
    policy.observe(observation('code', 'a'));
    const snap = policy.snapshot();
    expect(snap.classes.map((c) => c.queryClass)).toEqual(['code', 'long']);
    const code = snap.classes[0];
    expect(code?.confidence).toBe(3);
    expect(code?.arms.map((a) => a.model)).toEqual(['a', 'b']);
    // a: Beta(1 + 2, 1 + 1) → mean 3/5, std √(3·2 / (25·6)); b: uniform, priced.
    expect(code?.arms[0]).toMatchObject({ samples: 3, costUsd: 0, share: 0 });
    expect(code?.arms[0]?.estimate).toBeCloseTo(0.6, 12);
    expect(code?.arms[0]?.uncertainty).toBeCloseTo(Math.sqrt(6 / 150), 12);
    expect(code?.arms[1]).toMatchObject({ samples: 0, estimate: 0.5, share: 0 });
    expect(code?.arms[1]?.costUsd).toBeCloseTo(priorCostUsd({ inputCostPerMTok: 1, outputCostPerMTok: 1 }), 12);
    expect(code?.arms[1]?.uncertainty).toBeCloseTo(Math.sqrt(1 / 12), 12);
    expect(code?.choice).toBe('a');
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
