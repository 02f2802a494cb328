import { describe, expect, it } from 'vitest';
import { promptContext } from '../../src/routing/context.js';
import type { LinearBelief } from '../../src/routing/contextual-belief.js';
import { ContextualPolicy } from '../../src/routing/contextual.js';
import { Random } from '../../src/routing/random.js';
import type { QueryContext } from '../../src/routing/types.js';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import type { TraceRecord } from '../../src/traces/types.js';
import { makeTrace } from '../helpers/trace.js';
import { free, LEGAL, options, POEM, priced } from './contextual-fixtures.js';
import { FakeEvidenceSource } from './fake-evidence.js';

/*
 * The contextual reward's two memories: the whole record (no forgetting), which a steady model is
 * judged on, and the recent window (forgetting), which takes over on queries where it differs from
 * the record by more than 3 of its standard deviations.
 */

type Beliefs = Map<string, { record: LinearBelief; window: LinearBelief }>;
const beliefs = (policy: ContextualPolicy): Beliefs => (policy as unknown as { state: { models: Beliefs } }).state.models;

/** The largest difference between two beliefs' weights and inverse information matrices. */
function difference(a: LinearBelief, b: LinearBelief): number {
  let most = 0;
  for (let i = 0; i < a.theta.length; i++) most = Math.max(most, Math.abs(a.theta[i]! - b.theta[i]!));
  for (let i = 0; i < a.s.length; i++) most = Math.max(most, Math.abs(a.s[i]! - b.s[i]!));
  return most;
}

let seq = 0;
/** One answer of `model` to `context`: a failure, a rating, or an unrated success. */
function observe(policy: ContextualPolicy, context: QueryContext, model: string, result: 'failed' | number | null): void {
  policy.observe({
    traceId: `m${++seq}`,
    query: context.query,
    queryClass: context.queryClass,
    model,
    outcome: result === 'failed' ? 'error' : 'success',
    latencyMs: 10,
    costUsd: null,
    feedback: result === 'failed' ? null : result,
    context,
  });
}

describe('the contextual reward: a whole record and a recent window', () => {
  it('keeps the whole record through long steady traffic: the estimate and its uncertainty are those of no forgetting', () => {
    const models = [free('lawyer'), free('poet')];
    const forgetting = new ContextualPolicy(options(models, { halfLife: 50 }));
    const never = new ContextualPolicy(options(models, { halfLife: 0 }));
    const random = new Random(11);
    for (let i = 0; i < 3000; i++) {
      const legal = i % 2 === 0;
      const context = promptContext(legal ? LEGAL(i) : POEM(i));
      const model = i % 3 === 0 ? 'poet' : 'lawyer';
      const good = (model === 'lawyer') === legal ? 0.85 : 0.3;
      const result = random.uniform() < 0.05 ? 'failed' : random.uniform() < good ? 1 : 0;
      for (const policy of [forgetting, never]) observe(policy, context, model, result);
    }
    for (const query of [LEGAL(9001), POEM(9002), 'something else entirely']) {
      const a = forgetting.explain(promptContext(query)).predictions;
      const b = never.explain(promptContext(query)).predictions;
      for (let k = 0; k < a.length; k++) {
        expect(a[k]!.reward).toBeCloseTo(b[k]!.reward, 9);
        expect(a[k]!.sd).toBeCloseTo(b[k]!.sd, 9);
      }
    }
    // The record is the no-forgetting belief itself; the window beside it holds about 1/(1 − γ) ≈ 72
    // observations along a recurring direction, so its standard deviation stays several times larger.
    for (const [key, m] of beliefs(forgetting)) expect(difference(m.record, beliefs(never).get(key)!.record), key).toBeLessThan(1e-9);
    const lawyer = promptContext(LEGAL(9001));
    const x = forgetting.featuresOf({ query: lawyer.query, queryClass: lawyer.queryClass, context: lawyer });
    const m = beliefs(forgetting).get('lawyer')!;
    expect(m.window.spread(x)).toBeGreaterThan(4 * m.record.spread(x));
    expect(forgetting.explain(lawyer).predictions.find((p) => p.model === 'lawyer')!.sd).toBeLessThan(0.03);
  });

  for (const change of ['starts failing', 'is rated worse'] as const) {
    it(`leaves a model that ${change} within tens of requests, after a long record of good answers`, () => {
      for (const seed of [1, 2, 3]) {
        const policy = new ContextualPolicy(options([free('m1'), free('m2')], { seed }));
        const random = new Random(seed + 200);
        const p: Record<string, number> = { m1: 0.9, m2: 0.75 };
        let broken = false;
        const context = (i: number) => promptContext(`Question ${i % 8}: which of these two summaries of the report is more accurate?`);
        const answer = (ctx: QueryContext, model: string) => {
          if (broken && model === 'm1' && change === 'starts failing') observe(policy, ctx, model, 'failed');
          else observe(policy, ctx, model, random.uniform() < (broken && model === 'm1' ? 0.3 : p[model]!) ? 1 : 0);
        };
        const request = (i: number): string => {
          const ctx = context(i);
          const model = policy.select({ query: ctx.query, queryClass: ctx.queryClass, available: ['m1', 'm2'], context: ctx }).model;
          answer(ctx, model);
          return model;
        };
        // A long record: m1 answers most requests, m2 is known from a shadow call on every third.
        for (let i = 0; i < 1500; i++) {
          if (request(i) === 'm1' && i % 3 === 0) answer(context(i), 'm2');
        }
        expect(policy.explain(context(0)).choice).toBe('m1');
        broken = true;
        let switchedAt = -1;
        const picks: string[] = [];
        for (let i = 1; i <= 150; i++) {
          picks.push(request(i));
          if (switchedAt < 0 && policy.explain(context(i)).choice === 'm2') switchedAt = i;
        }
        expect(switchedAt, `seed ${seed}`).toBeGreaterThan(0);
        expect(switchedAt, `seed ${seed}`).toBeLessThanOrEqual(40);
        expect(picks.slice(50).filter((m) => m === 'm1').length / 100, `seed ${seed}`).toBeLessThanOrEqual(0.15);
      }
    });
  }

  it('rebuilds both memories from the store as they were learned online (a model that changed, late ratings), and a replaced rating lands on both alike', async () => {
    const store = new SqliteTraceStore({ path: ':memory:' });
    const models = [priced('lawyer', 1), priced('poet', 2)];
    const keys = models.map((m) => m.key);
    const online = new ContextualPolicy(options(models, { halfLife: 30, seed: 5 }));
    const random = new Random(8);
    const start = 1_800_000_000_000;
    const late: { trace: TraceRecord; score: number; at: number }[] = [];
    let changed = 0;
    for (let i = 0; i < 600; i++) {
      const time = start + 10 * i;
      for (const r of late.filter((r) => r.at === i)) {
        await store.setFeedback(r.trace.id, { score: r.score, comment: null, time: time - 5, source: 'human' });
        const { id: traceId, queryClass, modelKey: model } = r.trace;
        online.observeFeedback({ traceId, queryClass, model, outcome: 'success', score: r.score, previous: null, source: 'human' });
      }
      const legal = i % 2 === 1;
      const query = legal ? LEGAL(i % 4) : POEM(i % 4);
      const context = promptContext(query);
      const model = online.select({ query, queryClass: context.queryClass, available: keys, context }).model;
      // The lawyer is good at legal reviews and the poet at poems, until the lawyer turns bad at everything.
      const good = model === 'lawyer' ? (i >= 350 ? 0.05 : legal ? 0.9 : 0.3) : legal ? 0.3 : 0.9;
      const score = random.uniform() < good ? 1 : 0;
      // One answer in four is rated a few requests later, the others at once.
      const later = random.uniform() < 0.25;
      const feedback = later ? null : score;
      const trace: TraceRecord = makeTrace({ time, query: query.slice(0, 200), queryLength: query.length, queryClass: context.queryClass, modelKey: model, feedback, costUsd: 0.001 });
      await store.insert(trace);
      online.observe({ traceId: trace.id, query, queryClass: context.queryClass, model, outcome: 'success', latencyMs: 10, costUsd: 0.001, feedback, context });
      if (later) late.push({ trace, score, at: i + 1 + Math.floor(random.uniform() * 5) });
      const x = online.featuresOf({ query, queryClass: context.queryClass, context });
      const lawyer = beliefs(online).get('lawyer')!;
      if (Math.abs(online.explain(context).predictions[0]!.reward - lawyer.window.mean(x)) < 1e-12 && Math.abs(lawyer.window.mean(x) - lawyer.record.mean(x)) > 1e-6) changed++;
    }
    // The window was the lawyer's estimate on some queries.
    expect(changed).toBeGreaterThan(0);
    const restarted = new ContextualPolicy(options(models, { halfLife: 30, seed: 5, source: store }));
    expect(await restarted.updateFromTraces()).toMatchObject({ updated: true, total_traces: 600 });
    for (const key of keys) {
      const a = beliefs(online).get(key)!;
      const b = beliefs(restarted).get(key)!;
      expect(a.record).not.toBe(a.window);
      expect(difference(a.record, b.record), `${key} record`).toBeLessThan(1e-9);
      expect(difference(a.window, b.window), `${key} window`).toBeLessThan(1e-9);
    }
    for (const query of [LEGAL(7), POEM(8), 'something else entirely']) {
      const a = online.explain(promptContext(query)).predictions;
      const b = restarted.explain(promptContext(query)).predictions;
      for (let k = 0; k < a.length; k++) {
        expect(b[k]!.reward).toBeCloseTo(a[k]!.reward, 9);
        expect(b[k]!.sd).toBeCloseTo(a[k]!.sd, 9);
      }
    }
    // A changed mind on a trace both remember: taken out of and added to both memories alike.
    const last = (await store.recent(20)).find((t) => t.feedback !== null);
    const feedback = { traceId: last!.id, queryClass: last!.queryClass, model: last!.modelKey, outcome: 'success' as const, score: 1 - last!.feedback!, previous: last!.feedback, source: 'human' as const };
    online.observeFeedback(feedback);
    restarted.observeFeedback(feedback);
    const m = beliefs(online).get(last!.modelKey)!;
    expect(difference(m.record, beliefs(restarted).get(last!.modelKey)!.record)).toBeLessThan(1e-9);
    expect(difference(m.window, beliefs(restarted).get(last!.modelKey)!.window)).toBeLessThan(1e-9);
    await store.close();
  });

  it('warms the record from the whole sums and the window from the decayed ones when the source has only sums', async () => {
    const source = new FakeEvidenceSource();
    for (let i = 0; i < 300; i++) {
      // a is rated well, then badly for its last 60 answers.
      const model = i % 2 ? 'a' : 'b';
      const feedback = model === 'a' ? (i < 180 ? 0.9 : 0.1) : 0.5;
      source.add({ id: `w${i}`, time: i, queryClass: 'code', model, outcome: 'success', feedback, costUsd: null, latencyMs: 5 });
    }
    const forgetting = new ContextualPolicy(options([free('a'), free('b')], { source }));
    const never = new ContextualPolicy(options([free('a'), free('b')], { halfLife: 0, source }));
    await forgetting.updateFromTraces();
    await never.updateFromTraces();
    const a = beliefs(forgetting).get('a')!;
    expect(difference(a.record, beliefs(never).get('a')!.record)).toBeLessThan(1e-12);
    const x = forgetting.featuresOf({ query: 'def f(x): return x', queryClass: 'code' });
    expect(a.window.mean(x)).toBeLessThan(a.record.mean(x) - 0.1);
  });

  it('is one belief without forgetting', () => {
    const policy = new ContextualPolicy(options([free('a')], { halfLife: 0 }));
    const m = beliefs(policy).get('a')!;
    expect(m.record).toBe(m.window);
  });
});
