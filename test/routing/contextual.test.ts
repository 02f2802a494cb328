import { describe, expect, it } from 'vitest';
import { priorCostUsd } from '../../src/routing/prior.js';
import { DEFAULT_SOURCE_WEIGHTS } from '../../src/core/config.js';
import { promptContext } from '../../src/routing/context.js';
import { rewardVariance } from '../../src/routing/contextual-belief.js';
import { ContextualPolicy, sampleWidth } from '../../src/routing/contextual.js';
import { FEATURE_DIM, FeatureExtractor, featureTextChars } from '../../src/routing/features.js';
import { Random } from '../../src/routing/random.js';
import type { QueryContext } from '../../src/routing/types.js';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import type { TraceRecord } from '../../src/traces/types.js';
import { makeTrace } from '../helpers/trace.js';
import { free, LEGAL, options, POEM, priced } from './contextual-fixtures.js';
import { FakeEvidenceSource } from './fake-evidence.js';

let seq = 0;
/** One routed request of `kind` with bandit feedback from `quality`; returns the chosen model. */
function step(policy: ContextualPolicy, context: QueryContext, available: string[], quality: (model: string) => number, random: Random): string {
  const decision = policy.select({ query: context.query, queryClass: context.queryClass, available, context });
  const reward = random.uniform() < quality(decision.model) ? 1 : 0;
  policy.observe({
    traceId: `c${++seq}`,
    query: context.query,
    queryClass: context.queryClass,
    model: decision.model,
    outcome: 'success',
    latencyMs: 10,
    costUsd: null,
    feedback: reward,
    context,
  });
  return decision.model;
}

describe('features', () => {
  it('are a fixed number of slots, with the bias, the class, a length bucket, flags and unit-length word groups', () => {
    const extractor = new FeatureExtractor(200);
    const ctx = { query: 'Which planet is largest?', queryLength: 24, system: 'You are terse.', queryClass: 'short', tools: true, images: false, responseFormat: true };
    const x = extractor.extract(ctx);
    expect(x.size).toBeGreaterThan(5);
    expect([...x.index].every((i) => i >= 0 && i < FEATURE_DIM)).toBe(true);
    expect(x.index[0]).toBe(0);
    expect(x.value[0]).toBe(1);
    // The same query, the same vector; another class, another slot.
    expect(extractor.extract(ctx)).toEqual(x);
    expect(extractor.extract({ ...ctx, queryClass: 'long' })).not.toEqual(x);
    // Only the first textChars characters are read: what a truncated trace keeps.
    const long = `${'word '.repeat(40)}tail that differs`;
    const a = extractor.extract({ ...ctx, query: long, queryLength: 500 });
    const b = extractor.extract({ ...ctx, query: long.slice(0, 200), queryLength: 500 });
    expect(b).toEqual(a);
  });

  it('reads as much of a prompt as the store keeps', () => {
    expect(featureTextChars('truncated', 200)).toBe(200);
    expect(featureTextChars('truncated', 80)).toBe(80);
    expect(featureTextChars('full', 200)).toBe(512);
    expect(featureTextChars('none', 200)).toBe(0);
  });
});

describe('ContextualPolicy', () => {
  it('returns the default model when nothing is available, and chooses only among the available', () => {
    const policy = new ContextualPolicy(options([free('a'), free('b')], { defaultModel: 'a' }));
    expect(policy.select({ query: 'hi', queryClass: 'short', available: [] })).toEqual({ model: 'a', reason: 'default' });
    for (let i = 0; i < 20; i++) expect(policy.select({ query: 'hi', queryClass: 'short', available: ['b'] }).model).toBe('b');
  });

  it('learns which model serves which kind of query inside one class, from bandit feedback', () => {
    const policy = new ContextualPolicy(options([free('generalist'), free('lawyer'), free('poet')], { seed: 3 }));
    const random = new Random(4);
    const quality = (kind: string) => (model: string) =>
      model === 'generalist' ? 0.6 : (kind === 'legal') === (model === 'lawyer') ? 0.93 : 0.25;
    const picks: { kind: string; model: string }[] = [];
    for (let i = 0; i < 400; i++) {
      const kind = i % 2 === 0 ? 'legal' : 'poem';
      const context = promptContext(kind === 'legal' ? LEGAL(i) : POEM(i));
      expect(context.queryClass).toBe('long');
      picks.push({ kind, model: step(policy, context, ['generalist', 'lawyer', 'poet'], quality(kind), random) });
    }
    const late = picks.slice(300);
    const share = (kind: string, model: string) => late.filter((p) => p.kind === kind && p.model === model).length / 50;
    expect(share('legal', 'lawyer')).toBeGreaterThanOrEqual(0.9);
    expect(share('poem', 'poet')).toBeGreaterThanOrEqual(0.9);
    // Not exploring: its own reason.
    const decision = policy.select({ query: LEGAL(1), queryClass: 'long', available: ['generalist', 'lawyer', 'poet'], context: promptContext(LEGAL(1)) });
    expect(['contextual', 'explore']).toContain(decision.reason);
    const explanation = policy.explain(promptContext(LEGAL(999)));
    expect(explanation.choice).toBe('lawyer');
    const lawyer = explanation.predictions.find((p) => p.model === 'lawyer')!;
    expect(lawyer.reward).toBeGreaterThan(0.8);
    expect(lawyer.features.length).toBeGreaterThan(0);
    // Features are sorted by the size of their contribution.
    const sizes = lawyer.features.map((f) => Math.abs(f.contribution));
    expect([...sizes].sort((a, b) => b - a)).toEqual(sizes);
  });

  it('is deterministic for a seed', () => {
    const run = () => {
      const policy = new ContextualPolicy(options([free('a'), free('b'), free('c')], { seed: 42 }));
      const random = new Random(1);
      return Array.from({ length: 100 }, (_, i) => step(policy, promptContext(i % 2 ? LEGAL(i) : POEM(i)), ['a', 'b', 'c'], () => 0.5, random));
    };
    expect(run()).toEqual(run());
  });

  it('chooses exactly as if it computed both memories\' means and spreads for every model (a spread is skipped only where it cannot change the choice)', () => {
    const models = Array.from({ length: 11 }, (_, i) => priced(`m${i}`, i + 1));
    const keys = models.map((m) => m.key);
    const policy = new ContextualPolicy(options(models, { seed: 7 }));
    const random = new Random(3);
    // Uneven evidence: some models well known, some barely tried; m3, the best, turns bad (its
    // window and record part).
    for (let i = 0; i < 400; i++) {
      const m3 = i < 300 ? 0.9 : 0;
      step(policy, promptContext(i % 3 ? LEGAL(i % 5) : POEM(i % 5)), keys.slice(0, 2 + (i % 9)), (m) => (m === 'm3' ? m3 : 0.5), random);
    }
    // The reference draws the same normals (the policy draws one per available model, in order,
    // from its own seeded source) and scores every model in full: both reward beliefs' means and
    // spreads, the window's taken where it is more than 3 of its standard deviations from the record.
    const draws = new Random(0);
    type Belief = { mean(x: unknown): number; spread(x: unknown): number };
    const internals = policy as unknown as { random: Random; state: { models: Map<string, { record: Belief; window: Belief }> } };
    let pruned = 0;
    let fromWindow = 0;
    for (let i = 0; i < 2000; i++) {
      const context = promptContext(i % 2 ? LEGAL(5000 + i) : POEM(5000 + i));
      const x = policy.featuresOf({ query: context.query, queryClass: context.queryClass, context });
      const predictions = new Map(policy.explain(context).predictions.map((p) => [p.model, p]));
      Object.assign(draws, internals.random); // the policy's random state, copied
      let best = '';
      let bestScore = -Infinity;
      for (const key of keys) {
        const p = predictions.get(key)!;
        const m = internals.state.models.get(key)!;
        const windowMean = m.window.mean(x);
        const windowSpread = Math.max(0, m.window.spread(x));
        const changed = Math.abs(windowMean - m.record.mean(x)) > 3 * Math.sqrt(rewardVariance(windowMean) * windowSpread);
        if (changed) fromWindow++;
        const belief = changed ? m.window : m.record;
        expect(p.reward).toBeCloseTo(belief.mean(x), 12);
        const draw = draws.normal();
        const sampled = p.utility + sampleWidth(p.reward, Math.max(0, belief.spread(x))) * draw;
        if (draw <= 0 && p.utility <= bestScore) pruned++;
        if (sampled > bestScore) {
          best = key;
          bestScore = sampled;
        }
      }
      expect(policy.select({ query: context.query, queryClass: context.queryClass, available: keys, context }).model).toBe(best);
    }
    // The shortcut was taken, often; and the window was the estimate on some queries.
    expect(pruned).toBeGreaterThan(2000);
    expect(fromWindow).toBeGreaterThan(0);
  });

  it('takes configured prices as the cost prior: an untried expensive model is not free', () => {
    const models = [priced('cheap', 0.1), priced('dear', 30)];
    const policy = new ContextualPolicy(options(models, { costWeight: 200 }));
    const e = policy.explain(promptContext('hello there'));
    const dear = e.predictions.find((p) => p.model === 'dear')!;
    expect(dear.costUsd).toBeCloseTo(priorCostUsd(models[1]!), 12);
    expect(dear.utility).toBeLessThan(e.predictions.find((p) => p.model === 'cheap')!.utility);
    const picks = Array.from({ length: 50 }, () => policy.select({ query: 'hello there', queryClass: 'short', available: ['cheap', 'dear'] }).model);
    expect(picks.filter((m) => m === 'dear')).toHaveLength(0);
  });

  it('counts a late feedback once: a repeat changes nothing, a changed mind replaces it', () => {
    const policy = new ContextualPolicy(options([free('a')], { halfLife: 0 }));
    const context = promptContext('Tell me a story about dragons.');
    const obs = { traceId: 't1', query: context.query, queryClass: context.queryClass, model: 'a', outcome: 'success' as const, latencyMs: 1, costUsd: null, feedback: null, context };
    policy.observe(obs);
    const reward = () => policy.explain(context).predictions[0]!.reward;
    const unrated = reward();
    const fb = { traceId: 't1', queryClass: context.queryClass, model: 'a', outcome: 'success' as const, score: 0, previous: null, source: 'human' as const };
    policy.observeFeedback(fb);
    const afterDown = reward();
    expect(afterDown).toBeLessThan(unrated);
    policy.observeFeedback({ ...fb, previous: 0 });
    expect(reward()).toBeCloseTo(afterDown, 12);
    policy.observeFeedback({ ...fb, score: 1, previous: 0 });
    // As if the answer had been rated 1 from the start.
    const once = new ContextualPolicy(options([free('a')], { halfLife: 0 }));
    once.observe({ ...obs, feedback: 1 });
    const afterUp = once.explain(context).predictions[0]!;
    expect(reward()).toBeCloseTo(afterUp.reward, 12);
    expect(policy.explain(context).predictions[0]!.sd).toBeCloseTo(afterUp.sd, 12);
    // Observing the same trace again (a rebuild raced it) is not a second observation.
    policy.observe(obs);
    expect(reward()).toBeCloseTo(afterUp.reward, 12);
    // Feedback on a trace it never saw is ignored.
    policy.observeFeedback({ ...fb, traceId: 'unknown', score: 0 });
    expect(reward()).toBeCloseTo(afterUp.reward, 12);
  });

  it('learns quality from ratings and failures only: unrated successes move the cost estimate, not the reward or its uncertainty', () => {
    const models = [priced('a', 1)];
    const policy = new ContextualPolicy(options(models, { costWeight: 100 }));
    const context = promptContext(LEGAL(1));
    const before = policy.explain(context).predictions[0]!;
    for (let i = 0; i < 50; i++) {
      const query = LEGAL(i);
      const base = { query, queryClass: context.queryClass, model: 'a', outcome: 'success' as const, latencyMs: 10, costUsd: 0.01 };
      policy.observe({ ...base, traceId: `u${i}`, feedback: null, context: promptContext(query) });
    }
    const after = policy.explain(context).predictions[0]!;
    expect(after.reward).toBe(before.reward);
    expect(after.sd).toBe(before.sd);
    expect(before.costUsd).toBeCloseTo(priorCostUsd(models[0]!), 12);
    expect(after.costUsd).toBeGreaterThan(0.008);
    expect(after.utility).toBeLessThan(before.utility);
    const arm = policy.snapshot().classes.find((c) => c.queryClass === context.queryClass)!.arms[0]!;
    expect(arm).toMatchObject({ samples: 50, rated: 0 });
    // One rating moves it.
    policy.observe({ traceId: 'r', query: context.query, queryClass: context.queryClass, model: 'a', outcome: 'success', latencyMs: 10, costUsd: 0.01, feedback: 1, context });
    expect(policy.explain(context).predictions[0]!.reward).toBeGreaterThan(before.reward);
    expect(policy.explain(context).predictions[0]!.sd).toBeLessThan(before.sd);
  });

  it('learns a late rating on an unrated answer as the same rating given with the answer', () => {
    const run = (late: boolean) => {
      const policy = new ContextualPolicy(options([priced('a', 1), priced('b', 2)], { halfLife: 30 }));
      const random = new Random(5);
      for (let i = 0; i < 120; i++) {
        const query = i % 2 ? LEGAL(i) : POEM(i);
        const context = promptContext(query);
        const model = i % 3 ? 'a' : 'b';
        const rating = random.uniform() < 0.3 ? (random.uniform() < 0.7 ? 1 : 0) : null;
        const source = i % 4 === 0 ? ('judge' as const) : ('human' as const);
        const failed = i % 17 === 0;
        const base = { traceId: `t${i}`, query, queryClass: context.queryClass, model, latencyMs: 10 + i, costUsd: 0.001 * (1 + (i % 5)), context };
        policy.observe({ ...base, outcome: failed ? 'error' : 'success', feedback: late ? null : rating, feedbackSource: source });
        if (late && rating !== null) {
          policy.observeFeedback({ traceId: `t${i}`, queryClass: context.queryClass, model, outcome: 'success', score: rating, previous: null, source });
        }
      }
      return policy;
    };
    const now = run(false);
    const later = run(true);
    for (const query of [LEGAL(500), POEM(501), 'something else']) {
      const a = now.explain(promptContext(query)).predictions;
      const b = later.explain(promptContext(query)).predictions;
      for (let k = 0; k < a.length; k++) {
        expect(b[k]!.reward).toBeCloseTo(a[k]!.reward, 12);
        expect(b[k]!.sd).toBeCloseTo(a[k]!.sd, 12);
        expect(b[k]!.costUsd).toBeCloseTo(a[k]!.costUsd, 12);
      }
    }
    expect(later.snapshot()).toEqual(now.snapshot());
  });

  it('counts a failure as 0 whatever is said of it, and ignores feedback that says the attempt failed', () => {
    const context = promptContext('Summarise this paragraph.');
    const base = { query: context.query, queryClass: context.queryClass, model: 'a', latencyMs: 1, costUsd: null, context };
    const failed = new ContextualPolicy(options([free('a')], { halfLife: 0 }));
    failed.observe({ ...base, traceId: 'f', outcome: 'error', feedback: 1 });
    const zero = new ContextualPolicy(options([free('a')], { halfLife: 0 }));
    zero.observe({ ...base, traceId: 'z', outcome: 'success', feedback: 0 });
    const p = () => failed.explain(context).predictions[0]!;
    expect(p().reward).toBeCloseTo(zero.explain(context).predictions[0]!.reward, 12);
    const fb = { traceId: 'f', queryClass: context.queryClass, model: 'a', outcome: 'success' as const, score: 1, previous: null, source: 'human' as const };
    failed.observeFeedback(fb);
    expect(p().reward).toBeCloseTo(zero.explain(context).predictions[0]!.reward, 12);
    // Feedback that says the attempt did not succeed is not a rating of a success.
    const unrated = new ContextualPolicy(options([free('a')], { halfLife: 0 }));
    unrated.observe({ ...base, traceId: 'u', outcome: 'success', feedback: null });
    const prior = unrated.explain(context).predictions[0]!.reward;
    unrated.observeFeedback({ ...fb, traceId: 'u', outcome: 'error', score: 0 });
    expect(unrated.explain(context).predictions[0]!.reward).toBe(prior);
  });

  it("counts a judge's rating with its weight, and a replacing rating from another source in place of it", () => {
    const context = promptContext('Translate this sentence into French.');
    const base = { query: context.query, queryClass: context.queryClass, model: 'a', outcome: 'success' as const, latencyMs: 1, costUsd: null, context };
    const at = (policy: ContextualPolicy) => policy.explain(context).predictions[0]!;
    // Without forgetting, two ratings of weight ½ are one of weight 1.
    const judged = new ContextualPolicy(options([free('a')], { halfLife: 0, sourceWeights: { judge: 0.5, implicit: 1 } }));
    judged.observe({ ...base, traceId: 'j1', feedback: 1, feedbackSource: 'judge' });
    const one = at(judged);
    judged.observe({ ...base, traceId: 'j2', feedback: 1, feedbackSource: 'judge' });
    const human = new ContextualPolicy(options([free('a')], { halfLife: 0 }));
    human.observe({ ...base, traceId: 'h', feedback: 1 });
    expect(at(judged).reward).toBeCloseTo(at(human).reward, 12);
    expect(at(judged).sd).toBeCloseTo(at(human).sd, 12);
    expect(one.reward).toBeLessThan(at(human).reward);
    // By default a judge's rating counts DEFAULT_SOURCE_WEIGHTS.judge of a person's: from the prior
    // (mean ½, zᵀSz = r), one rating 1 of weight w moves the mean by w·r/(1 + w·r) × ½.
    const byDefault = new ContextualPolicy(options([free('a')], { halfLife: 0 }));
    const r = at(byDefault).sd ** 2 / 0.25;
    byDefault.observe({ ...base, traceId: 'd', feedback: 1, feedbackSource: 'judge' });
    const w = DEFAULT_SOURCE_WEIGHTS.judge;
    expect(w).toBeLessThan(1);
    expect(at(byDefault).reward).toBeCloseTo(0.5 + ((w * r) / (1 + w * r)) * 0.5, 12);
    expect(at(human).reward).toBeCloseTo(0.5 + (r / (1 + r)) * 0.5, 12);
    // Configured to count as much as a person's, one judge rating is one human rating.
    const trusted = new ContextualPolicy(options([free('a')], { halfLife: 0, sourceWeights: { judge: 1, implicit: 1 } }));
    trusted.observe({ ...base, traceId: 'j', feedback: 1, feedbackSource: 'judge' });
    expect(at(trusted).reward).toBeCloseTo(at(human).reward, 12);
    // A person's rating replacing the judge's takes the judge's out (it then counts as the person's alone).
    const replaced = new ContextualPolicy(options([free('a')], { halfLife: 0 }));
    replaced.observe({ ...base, traceId: 'r', feedback: null });
    replaced.observeFeedback({ traceId: 'r', queryClass: context.queryClass, model: 'a', outcome: 'success', score: 0, previous: null, source: 'judge' });
    replaced.observeFeedback({ traceId: 'r', queryClass: context.queryClass, model: 'a', outcome: 'success', score: 1, previous: 0, source: 'human' });
    expect(at(replaced).reward).toBeCloseTo(at(human).reward, 12);
    expect(at(replaced).sd).toBeCloseTo(at(human).sd, 12);
    expect(replaced.snapshot().classes[0]!.arms[0]!.rated).toBe(1);
  });

  it('explores in proportion to the answers that bring quality evidence back, and names a shadow candidate other than the served model', () => {
    const keys = ['a', 'b', 'c'];
    const policy = new ContextualPolicy(options(keys.map(free), { seed: 4 }));
    const random = new Random(9);
    const reasons: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const query = i % 2 ? LEGAL(i) : POEM(i);
      const context = promptContext(query);
      const decision = policy.select({ query, queryClass: context.queryClass, available: keys, context });
      reasons.push(decision.reason);
      // One answer in 20 is rated.
      const feedback = i % 20 === 0 ? (random.uniform() < 0.5 ? 1 : 0) : null;
      policy.observe({ traceId: `s${i}`, query, queryClass: context.queryClass, model: decision.model, outcome: 'success', latencyMs: 1, costUsd: null, feedback, context });
    }
    const explored = reasons.slice(200).filter((r) => r === 'explore').length / 800;
    expect(explored).toBeLessThan(0.1);
    const snap = policy.snapshot().classes.find((c) => c.queryClass === 'long')!;
    expect(snap.arms.reduce((s, a) => s + a.samples, 0)).toBe(1000);
    expect(snap.arms.reduce((s, a) => s + (a.rated ?? 0), 0)).toBe(50);
    expect(snap.confidence).toBe(50);
    const context = promptContext(LEGAL(2000));
    const ctx = { query: context.query, queryClass: context.queryClass, available: keys, context };
    const shadows = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const served = keys[i % 3]!;
      const shadow = policy.shadowCandidate(ctx, served);
      expect(shadow).toBeDefined();
      expect(shadow).not.toBe(served);
      shadows.add(shadow!);
    }
    expect(shadows.size).toBe(3);
    expect(policy.shadowCandidate({ ...ctx, available: ['a'] }, 'a')).toBeUndefined();
    expect(policy.shadowCandidate({ ...ctx, available: ['a', 'unknown'] }, 'a')).toBeUndefined();
  });

  it('explores every request the judge will grade, and none while shadow calls explore (exploit)', () => {
    const keys = ['a', 'b', 'c'];
    const policy = new ContextualPolicy(options(keys.map(free), { seed: 4 }));
    const reasons = (extra: { graded?: boolean; exploit?: boolean }) =>
      Array.from({ length: 600 }, (_, i) => {
        const query = LEGAL(i);
        const context = promptContext(query);
        return policy.select({ query, queryClass: context.queryClass, available: keys, context, ...extra }).reason;
      });
    const share = (list: string[]) => list.filter((r) => r === 'explore').length / list.length;
    for (let i = 0; i < 300; i++) {
      const query = LEGAL(i);
      const context = promptContext(query);
      policy.observe({ traceId: `g${i}`, query, queryClass: context.queryClass, model: keys[i % 3]!, outcome: 'success', latencyMs: 1, costUsd: null, feedback: null, context });
    }
    // Nothing rated: a plain request draws on the floor's 3% of requests; a draw lands on another
    // model than the greedy one about 2 times in 3.
    expect(share(reasons({}))).toBeLessThan(0.06);
    expect(share(reasons({ graded: true }))).toBeGreaterThan(0.5);
    expect(share(reasons({ graded: true, exploit: true }))).toBe(0);
  });

  it('converges to the best model of each class (≥ 90% of the later decisions), whatever it does elsewhere', () => {
    const quality: Record<string, Record<string, number>> = {
      code: { m1: 0.85, m2: 0.6, m3: 0.4 },
      math: { m1: 0.4, m2: 0.85, m3: 0.6 },
      long: { m1: 0.6, m2: 0.4, m3: 0.85 },
    };
    const best: Record<string, string> = { code: 'm1', math: 'm2', long: 'm3' };
    for (const seed of [1, 2, 3]) {
      const policy = new ContextualPolicy(options([free('m1'), free('m2'), free('m3')], { seed }));
      const random = new Random(seed + 100);
      const picks: Record<string, string[]> = { code: [], math: [], long: [] };
      for (let i = 0; i < 800; i++) {
        for (const cls of ['code', 'math', 'long']) {
          const context = { ...promptContext(`a ${cls} question`), queryClass: cls };
          picks[cls]!.push(step(policy, context, ['m1', 'm2', 'm3'], (m) => quality[cls]![m]!, random));
        }
      }
      for (const cls of ['code', 'math', 'long']) {
        const later = picks[cls]!.slice(400);
        expect(later.filter((m) => m === best[cls]).length / later.length, `seed ${seed} ${cls}`).toBeGreaterThanOrEqual(0.9);
        expect(policy.explain({ ...promptContext(`a ${cls} question`), queryClass: cls }).choice).toBe(best[cls]);
      }
    }
  });

  it('rebuilds from the store what it learned online (a restart routes as before)', async () => {
    const store = new SqliteTraceStore({ path: ':memory:' });
    const models = [priced('lawyer', 1), priced('poet', 2)];
    const online = new ContextualPolicy(options(models, { halfLife: 0, seed: 5 }));
    const random = new Random(8);
    for (let i = 0; i < 200; i++) {
      const query = i % 2 ? LEGAL(i) : POEM(i);
      const context = promptContext(query);
      const model = online.select({ query, queryClass: context.queryClass, available: ['lawyer', 'poet'], context }).model;
      const feedback = random.uniform() < ((i % 2 === 1) === (model === 'lawyer') ? 0.9 : 0.2) ? 1 : 0;
      const trace: TraceRecord = makeTrace({ query: query.slice(0, 200), queryLength: query.length, queryClass: context.queryClass, modelKey: model, feedback, costUsd: 0.001 * (model === 'poet' ? 2 : 1) });
      await store.insert(trace);
      online.observe({ traceId: trace.id, query, queryClass: context.queryClass, model, outcome: 'success', latencyMs: 10, costUsd: trace.costUsd, feedback, context });
    }
    const restarted = new ContextualPolicy(options(models, { halfLife: 0, seed: 5, source: store }));
    expect(await restarted.updateFromTraces()).toMatchObject({ updated: true, total_traces: 200 });
    for (const query of [LEGAL(7), POEM(8), 'something else entirely']) {
      const a = online.explain(promptContext(query)).predictions;
      const b = restarted.explain(promptContext(query)).predictions;
      for (let k = 0; k < a.length; k++) {
        expect(b[k]!.reward).toBeCloseTo(a[k]!.reward, 9);
        expect(b[k]!.sd).toBeCloseTo(a[k]!.sd, 9);
        expect(b[k]!.costUsd).toBeCloseTo(a[k]!.costUsd, 12);
      }
    }
    // Late feedback on a trace the rebuild read lands on the rebuilt state too.
    const [last] = await store.recent(1);
    const fb = { traceId: last!.id, queryClass: last!.queryClass, model: last!.modelKey, outcome: 'success' as const, score: 1 - last!.feedback!, previous: last!.feedback, source: 'human' as const };
    online.observeFeedback(fb);
    restarted.observeFeedback(fb);
    expect(restarted.explain(promptContext(LEGAL(7))).predictions[0]!.reward).toBeCloseTo(online.explain(promptContext(LEGAL(7))).predictions[0]!.reward, 9);
    await store.close();
  });

  it('rebuilds from the store what it learned online from sparse, late, judged ratings and failures (with forgetting)', async () => {
    const store = new SqliteTraceStore({ path: ':memory:' });
    const models = [priced('lawyer', 1), priced('poet', 2), priced('clerk', 0.5)];
    const keys = models.map((m) => m.key);
    const online = new ContextualPolicy(options(models, { halfLife: 40, seed: 5, costWeight: 20 }));
    const random = new Random(8);
    const start = 1_800_000_000_000;
    const late: { trace: TraceRecord; score: number; source: 'human' | 'judge'; at: number }[] = [];
    for (let i = 0; i < 400; i++) {
      const time = start + 10 * i;
      // Ratings given since the previous trace reach the store and the policy before this one.
      for (const r of late.filter((r) => r.at === i)) {
        await store.setFeedback(r.trace.id, { score: r.score, comment: null, time: time - 5, source: r.source });
        const { id: traceId, queryClass, modelKey: model } = r.trace;
        online.observeFeedback({ traceId, queryClass, model, outcome: 'success', score: r.score, previous: null, source: r.source });
      }
      const query = i % 2 ? LEGAL(i) : POEM(i);
      const context = promptContext(query);
      const model = online.select({ query, queryClass: context.queryClass, available: keys, context }).model;
      const failed = random.uniform() < 0.05;
      const costUsd = failed ? null : 0.001 * (model === 'poet' ? 2 : model === 'lawyer' ? 1 : 0.5) * (1 + random.uniform());
      const trace: TraceRecord = makeTrace({
        time,
        query: query.slice(0, 200),
        queryLength: query.length,
        queryClass: context.queryClass,
        modelKey: model,
        outcome: failed ? 'error' : 'success',
        costUsd,
        latencyMs: 10 + (i % 7),
      });
      await store.insert(trace);
      online.observe({ traceId: trace.id, query, queryClass: context.queryClass, model, outcome: trace.outcome, latencyMs: trace.latencyMs, costUsd, feedback: null, context });
      // One answer in ten is rated, some by the judge, one to twenty traces later.
      if (!failed && random.uniform() < 0.1) {
        const good = (i % 2 === 1) === (model === 'lawyer') ? 0.9 : 0.2;
        const score = random.uniform() < good ? 1 : 0;
        const source = random.uniform() < 0.3 ? ('judge' as const) : ('human' as const);
        late.push({ trace, score, source, at: i + 1 + Math.floor(random.uniform() * 20) });
      }
    }
    const restarted = new ContextualPolicy(options(models, { halfLife: 40, seed: 5, costWeight: 20, source: store }));
    expect(await restarted.updateFromTraces()).toMatchObject({ updated: true, total_traces: 400 });
    for (const query of [LEGAL(7), POEM(8), 'something else entirely']) {
      const a = online.explain(promptContext(query)).predictions;
      const b = restarted.explain(promptContext(query)).predictions;
      for (let k = 0; k < a.length; k++) {
        expect(b[k]!.reward).toBeCloseTo(a[k]!.reward, 9);
        expect(b[k]!.sd).toBeCloseTo(a[k]!.sd, 9);
        expect(b[k]!.costUsd).toBeCloseTo(a[k]!.costUsd, 12);
        expect(b[k]!.utility).toBeCloseTo(a[k]!.utility, 9);
      }
    }
    const arms = (policy: ContextualPolicy) => policy.snapshot().classes.map((c) => c.arms.map((a) => [a.model, a.samples, a.rated]));
    expect(arms(restarted)).toEqual(arms(online));
    await store.close();
  });

  it('between full rebuilds, folds in only the traces it has not seen (another instance\'s, on a shared store)', async () => {
    const store = new SqliteTraceStore({ path: ':memory:' });
    const models = [free('lawyer'), free('poet')];
    const a = new ContextualPolicy(options(models, { halfLife: 0, seed: 1, source: store }));
    const b = new ContextualPolicy(options(models, { halfLife: 0, seed: 2, source: store }));
    await a.updateFromTraces();
    await b.updateFromTraces();
    const serve = async (policy: ContextualPolicy, query: string, model: string, feedback: number) => {
      const context = promptContext(query);
      const trace = makeTrace({ query: query.slice(0, 200), queryLength: query.length, queryClass: context.queryClass, modelKey: model, feedback });
      await store.insert(trace);
      policy.observe({ traceId: trace.id, query, queryClass: context.queryClass, model, outcome: 'success', latencyMs: 1, costUsd: null, feedback, context });
      return trace;
    };
    // Instance a serves 60 requests; b folds them in.
    for (let i = 0; i < 30; i++) {
      await serve(a, LEGAL(i), 'lawyer', 1);
      await serve(a, POEM(i), 'lawyer', 0);
    }
    expect(await b.updateFromTraces()).toMatchObject({ updated: true, total_traces: 60 });
    const lawyerOn = (policy: ContextualPolicy, query: string) => policy.explain(promptContext(query)).predictions.find((p) => p.model === 'lawyer')!.reward;
    expect(lawyerOn(b, LEGAL(100))).toBeCloseTo(lawyerOn(a, LEGAL(100)), 9);
    expect(lawyerOn(b, POEM(100))).toBeCloseTo(lawyerOn(a, POEM(100)), 9);
    // a reads nothing new (it observed all of it); b's own traces reach a.
    expect(await a.updateFromTraces()).toMatchObject({ updated: false, total_traces: 0 });
    const own = await serve(b, POEM(200), 'poet', 1);
    expect(await a.updateFromTraces()).toMatchObject({ updated: true, total_traces: 1 });
    // Feedback that b takes later on its trace reaches a at the next fold-in, once.
    await store.setFeedback(own.id, { score: 0, comment: null, time: Date.now(), source: 'human' });
    b.observeFeedback({ traceId: own.id, queryClass: own.queryClass, model: 'poet', outcome: 'success', score: 0, previous: 1, source: 'human' });
    const poetOn = (policy: ContextualPolicy) => policy.explain(promptContext(POEM(300))).predictions.find((p) => p.model === 'poet')!.reward;
    await a.updateFromTraces();
    expect(poetOn(a)).toBeCloseTo(poetOn(b), 9);
    await a.updateFromTraces();
    expect(poetOn(a)).toBeCloseTo(poetOn(b), 9);
    await store.close();
  });

  it('takes offline evidence as a prior of at most priorWeight observations per class × model, which live traffic overrides', async () => {
    const store = new SqliteTraceStore({ path: ':memory:' });
    // 1000 offline traces say "a is great"; live traffic says it fails.
    await store.importTraces(
      Array.from({ length: 1000 }, (_, i) =>
        makeTrace({ query: `Question ${i % 7}: what is the capital?`, queryLength: 30, queryClass: 'short', modelKey: 'a', feedback: 1, source: 'offline' }),
      ),
    );
    const weak = new ContextualPolicy(options([free('a')], { priorWeight: 10, halfLife: 0, source: store }));
    const strong = new ContextualPolicy(options([free('a')], { priorWeight: 1000, halfLife: 0, source: store }));
    await weak.updateFromTraces();
    await strong.updateFromTraces();
    const ctx = promptContext('Question 3: what is the capital?');
    const w = weak.explain(ctx).predictions[0]!;
    const s = strong.explain(ctx).predictions[0]!;
    expect(w.reward).toBeGreaterThan(0.6);
    expect(s.reward).toBeGreaterThan(0.95);
    expect(w.sd).toBeGreaterThan(2 * s.sd);
    // 40 live failures: the weak prior gives way, the strong one holds longer.
    for (const policy of [weak, strong]) {
      for (let i = 0; i < 40; i++) {
        policy.observe({ traceId: `live-${i}`, query: ctx.query, queryClass: 'short', model: 'a', outcome: 'error', latencyMs: 1, costUsd: null, feedback: null, context: promptContext(ctx.query) });
      }
    }
    expect(weak.explain(ctx).predictions[0]!.reward).toBeLessThan(0.3);
    expect(strong.explain(ctx).predictions[0]!.reward).toBeGreaterThan(0.5);
    // Without the offline traces, the prior is gone.
    await store.purgeOffline();
    expect(await strong.updateFromTraces()).toEqual({ updated: false, reason: 'no traces' });
    await store.close();
  });

  it('warms from per-class sums when the source has no traces to read', async () => {
    const source = new FakeEvidenceSource();
    for (let i = 0; i < 60; i++) {
      source.add({ id: `f${i}`, time: i, queryClass: 'code', model: i % 2 ? 'a' : 'b', outcome: 'success', feedback: i % 2 ? 0.9 : 0.2, costUsd: null, latencyMs: 5 });
    }
    const policy = new ContextualPolicy(options([free('a'), free('b')], { source }));
    expect(await policy.updateFromTraces()).toMatchObject({ updated: true, total_traces: 60 });
    expect(policy.explain(promptContext('def f(x): return x')).choice).toBe('a');
  });

  it('snapshots per class (estimates, shares, samples) and the strongest features per model', () => {
    const policy = new ContextualPolicy(options([free('lawyer'), free('poet')], { seed: 7 }));
    const random = new Random(3);
    for (let i = 0; i < 200; i++) {
      const legal = i % 2 === 0;
      step(policy, promptContext(legal ? LEGAL(i) : POEM(i)), ['lawyer', 'poet'], (m) => ((m === 'lawyer') === legal ? 0.9 : 0.2), random);
    }
    const snap = policy.snapshot();
    expect(snap.policy).toBe('contextual');
    const long = snap.classes.find((c) => c.queryClass === 'long')!;
    expect(long.arms.map((a) => a.model).sort()).toEqual(['lawyer', 'poet']);
    expect(long.arms.reduce((s, a) => s + a.samples, 0)).toBe(200);
    expect(long.arms.reduce((s, a) => s + (a.rated ?? 0), 0)).toBe(200);
    expect(long.arms.reduce((s, a) => s + a.share, 0)).toBeCloseTo(1, 9);
    expect(Object.keys(snap.features!).sort()).toEqual(['lawyer', 'poet']);
    const lawyer = snap.features!.lawyer!;
    expect(lawyer[0]!.feature).toBe('(bias)');
    expect(lawyer.length).toBeGreaterThan(2);
    expect(lawyer.some((f) => f.feature.includes('user words'))).toBe(true);
  });

  it('decides in a few microseconds (features + scoring 11 models; reported, not asserted)', () => {
    const models = Array.from({ length: 11 }, (_, i) => priced(`m${i}`, i + 1));
    const policy = new ContextualPolicy(options(models, { costWeight: 50 }));
    const random = new Random(1);
    const keys = models.map((m) => m.key);
    const prompts = Array.from({ length: 64 }, (_, i) => `${i % 2 ? LEGAL(i) : POEM(i)} ${'extra words here '.repeat(60)}`);
    for (let i = 0; i < 2000; i++) step(policy, promptContext(prompts[i % 64]!), keys, () => 0.6, random);
    const contexts = prompts.map((p) => promptContext(p, { system: 'You are a careful assistant for the legal team of ACME.' }));
    const n = 20_000;
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      // A fresh context object each time, so features are computed every decision (no cache).
      const c = contexts[i % 64]!;
      const context: QueryContext = { query: c.query, system: c.system, messageCount: 2, tools: false, images: false, responseFormat: false, queryClass: c.queryClass };
      policy.select({ query: context.query, queryClass: context.queryClass, available: keys, context });
    }
    const us = ((performance.now() - start) * 1000) / n;
    console.log(`contextual decision (features of a ${prompts[0]!.length}-character prompt + system prompt, 11 models): ${us.toFixed(2)} µs`);
    expect(us).toBeGreaterThan(0);
  });
});
