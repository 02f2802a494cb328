import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { PgTraceStore } from '../../src/traces/pg-store.js';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import { parseTraceLine, toJsonLine } from '../../src/traces/interchange.js';
import type { ArmEvidence, FeedbackSource, TraceRecord, TraceStore } from '../../src/traces/types.js';
import { tempDir } from '../helpers/gateway.js';
import { createTestDatabase, pgUnavailable, type TestDatabase } from '../helpers/services.js';
import { makeTrace } from '../helpers/trace.js';
import { qualityConformance } from './quality-conformance.js';

/**
 * One behaviour, two engines: every test here runs against a SQLite file and against a real
 * PostgreSQL server (a fresh database for this file, dropped afterwards). Where PostgreSQL cannot be
 * reached its half is skipped, and the skip names the reason.
 */

const pgSkip = await pgUnavailable();

interface Backend {
  /** Opens the store of the current test (`again` reopens the same data). */
  open(): Promise<TraceStore>;
  /** Before each test: an empty store. */
  reset(): Promise<void>;
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function sqliteBackend(): Backend {
  let path = '';
  return {
    async open() {
      return new SqliteTraceStore({ path });
    },
    async reset() {
      const dir = tempDir();
      dirs.push(dir);
      path = join(dir, 'traces.db');
    },
  };
}

function pgBackend(): Backend & { setup(): Promise<void>; teardown(): Promise<void> } {
  let db: TestDatabase | undefined;
  let spoolPath = '';
  return {
    async setup() {
      db = await createTestDatabase();
    },
    async teardown() {
      await db?.drop();
    },
    async open() {
      return PgTraceStore.open({ url: db!.url, spoolPath, poolSize: 4 });
    },
    async reset() {
      const dir = tempDir();
      dirs.push(dir);
      spoolPath = join(dir, 'spool.db');
      // The first open migrates an empty database; afterwards each test starts from empty tables.
      const tables = await db!.query<{ n: number }>(`SELECT COUNT(*)::int AS n FROM pg_tables WHERE tablename = 'traces'`);
      if (tables[0]!.n > 0) await db!.query('TRUNCATE traces, purged_evidence, sticky_sessions RESTART IDENTITY');
    },
  };
}

let seq = 0;
function trace(over: Partial<TraceRecord> = {}): TraceRecord {
  seq++;
  return makeTrace({ id: `C${String(seq).padStart(25, '0')}`, time: 1_700_000_000_000 + seq * 1000, latencyMs: 10.5, ttfbMs: 5.25, ...over });
}

/** The per-source sums of ArmEvidence over an arm's traces (oldest first), each weighed γ^(newer traces), by brute force. */
function perSourceSums(arm: readonly TraceRecord[], decay = 1) {
  const sums = { ratedCount: 0, ratedSum: 0, judgeCount: 0, judgeSum: 0, implicitCount: 0, implicitSum: 0 };
  arm.forEach((t, i) => {
    if (t.outcome !== 'success' || t.feedback === null) return;
    const w = Math.pow(decay, arm.length - 1 - i);
    const kind = t.feedbackSource === 'judge' ? 'judge' : t.feedbackSource === 'implicit' ? 'implicit' : 'rated';
    sums[`${kind}Count`] += w;
    sums[`${kind}Sum`] += w * t.feedback;
  });
  return sums;
}

const PER_SOURCE_KEYS = ['ratedCount', 'ratedSum', 'judgeCount', 'judgeSum', 'implicitCount', 'implicitSum'] as const;

function expectSums(actual: ArmEvidence, expected: Pick<ArmEvidence, (typeof PER_SOURCE_KEYS)[number]>) {
  for (const key of PER_SOURCE_KEYS) expect(actual[key], `${actual.model}.${key}`).toBeCloseTo(expected[key], 9);
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

function conformance(name: string, backend: Backend, shared: boolean) {
  const open: TraceStore[] = [];
  async function store(): Promise<TraceStore> {
    const s = await backend.open();
    open.push(s);
    return s;
  }
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
  });

  describe(name, () => {
    qualityConformance(backend, store);

    it('round-trips a trace (nulls, booleans, fractions, unicode) and keeps it across a reopen', async () => {
      await backend.reset();
      const s = await store();
      const t = trace({ query: 'ünïcödé 🚀 "quoted"\nline', feedback: 0.5, status: null, ttfbMs: null, routed: false, keyName: 'team-a', instanceId: 'gw-1' });
      await s.insert(t);
      expect(await s.get(t.id)).toEqual(t);
      await s.close();
      const again = await store();
      expect(await again.get(t.id)).toEqual(t);
      expect(await again.get('missing')).toBeUndefined();
      expect(again.shared).toBe(shared);
      expect(await again.health()).toEqual({ status: 'ok', spoolDepth: 0 });
      expect(again.spoolDepth()).toBe(0);
    });

    it('commits concurrent inserts together, in the order handed over; close() waits for pending ones', async () => {
      await backend.reset();
      const s = await store();
      const all = Array.from({ length: 300 }, () => trace());
      await Promise.all(all.map((t) => s.insert(t)));
      expect((await s.list({})).map((t) => t.id)).toEqual(all.map((t) => t.id));
      const pending = [s.insert(trace()), s.insert(trace())];
      await s.close();
      await Promise.all(pending);
      const again = await store();
      expect(await again.count()).toBe(302);
    });

    it('modelOfResponse: the model of the trace with that response_id (the newest of several), found while still being written', async () => {
      await backend.reset();
      const s = await store();
      await s.insert(trace({ modelKey: 'a', endpoint: 'responses', responseId: 'resp_one' }));
      await s.insert(trace({ modelKey: 'b', endpoint: 'responses', responseId: null }));
      await s.insert(trace({ modelKey: 'b', endpoint: 'responses', responseId: 'resp_again' }));
      await s.insert(trace({ modelKey: 'c', endpoint: 'responses', responseId: 'resp_again' }));
      const late = trace({ modelKey: 'd', endpoint: 'responses', responseId: 'resp_late' });
      // Not awaited: the lookup must find a trace still waiting in the batch.
      void s.insert(late);
      expect(await s.modelOfResponse('resp_late')).toBe('d');
      expect(await s.modelOfResponse('resp_one')).toBe('a');
      expect(await s.modelOfResponse('resp_again')).toBe('c');
      expect(await s.modelOfResponse('resp_unknown')).toBeUndefined();
      expect(await s.modelOfResponse('')).toBeUndefined();
    });

    it('setFeedback stores the score and returns the previous one; finds a trace still being written; honours the owner', async () => {
      await backend.reset();
      const s = await store();
      const t = trace({ keyName: 'owner' });
      void s.insert(t);
      // Not awaited: feedback must find a trace still waiting in the batch.
      const first = await s.setFeedback(t.id, { score: 1, comment: 'yes', time: 5, source: 'human' });
      expect(first?.previous).toBeNull();
      expect(first?.applied).toBe(true);
      expect(first?.trace).toMatchObject({ id: t.id, feedback: 1, feedbackComment: 'yes', feedbackTime: 5, feedbackSource: 'human', modelKey: 'a' });
      const second = await s.setFeedback(t.id, { score: 0, comment: null, time: 6, source: 'human' }, 'owner');
      expect(second?.previous).toBe(1);
      expect(await s.setFeedback(t.id, { score: 1, comment: null, time: 7, source: 'human' }, 'someone-else')).toBeUndefined();
      expect(await s.setFeedback(t.id, { score: 1, comment: null, time: 7, source: 'human' }, null)).toBeUndefined();
      expect(await s.setFeedback('nope', { score: 1, comment: null, time: 7, source: 'human' })).toBeUndefined();
      expect((await s.get(t.id))?.feedback).toBe(0);
    });

    it('setFeedback stores nothing on a refused attempt (no answer to rate)', async () => {
      await backend.reset();
      const s = await store();
      const t = trace({ outcome: 'refused', status: 429 });
      await s.insert(t);
      const result = await s.setFeedback(t.id, { score: 1, comment: null, time: 5, source: 'human' });
      expect(result).toMatchObject({ applied: false, previous: null, trace: { id: t.id, outcome: 'refused', feedback: null } });
      expect((await s.get(t.id))?.feedback).toBeNull();
    });

    it('round-trips the feedback source through insert, get, export and import', async () => {
      await backend.reset();
      const s = await store();
      const rated = (feedbackSource: FeedbackSource | null, over: Partial<TraceRecord> = {}) =>
        trace({ feedback: 0.5, feedbackTime: 7, feedbackComment: 'c', feedbackSource, ...over });
      const all = [
        trace(),
        rated('human'),
        rated('judge'),
        rated('implicit'),
        rated('offline', { source: 'offline' }),
        // Feedback without a source, as stored before sources were recorded.
        rated(null),
      ];
      for (const t of all) await s.insert(t);
      for (const t of all) expect(await s.get(t.id)).toEqual(t);
      const exported = await collect(s.exportTraces());
      expect(exported).toEqual(all);
      expect(await collect(s.exportTraces({ source: 'offline' }))).toEqual([all[4]]);

      // Through the file format and back in under new ids: a line without a source takes the one it
      // would have had (`human` here); the others keep theirs.
      const copies = exported.map((t) => parseTraceLine(toJsonLine({ ...t, id: `copy-${t.id}` }), 1));
      expect(copies.map((t) => t.feedbackSource)).toEqual([null, 'human', 'judge', 'implicit', 'offline', 'human']);
      expect(await s.importTraces(copies)).toEqual({ inserted: 6, skipped: 0 });
      for (const t of copies) expect(await s.get(t.id)).toEqual(t);
      expect((await s.list({})).slice(6)).toEqual(copies);
    });

    it('feedback from a source may replace only what it outranks: a person anything, implicit a judge, a judge a judge', async () => {
      await backend.reset();
      const s = await store();
      const [a, b, c, d, e, f] = Array.from({ length: 6 }, () => trace());
      for (const t of [a, b, c, d, e, f]) await s.insert(t!);
      const give = (t: TraceRecord, source: FeedbackSource, score: number, time = 1) =>
        s.setFeedback(t.id, { score, comment: `${source} ${score}`, time, source });

      // judge, then human: the human's stands.
      expect(await give(a!, 'judge', 0.2)).toMatchObject({ applied: true, previous: null, trace: { feedback: 0.2, feedbackSource: 'judge' } });
      expect(await give(a!, 'human', 0.9, 2)).toMatchObject({
        applied: true, previous: 0.2, trace: { feedback: 0.9, feedbackSource: 'human', feedbackComment: 'human 0.9', feedbackTime: 2 },
      });
      expect(await s.get(a!.id)).toMatchObject({ feedback: 0.9, feedbackSource: 'human', feedbackComment: 'human 0.9', feedbackTime: 2 });

      // human, then judge: refused, nothing changes, and the answer says what stands.
      await give(b!, 'human', 0.7);
      const stored = await s.get(b!.id);
      const refused = await give(b!, 'judge', 0.1, 3);
      expect(refused).toEqual({ applied: false, previous: 0.7, trace: stored });
      expect(await s.get(b!.id)).toEqual(stored);

      // judge, then implicit: the implicit signal replaces it; implicit, then judge: refused.
      await give(c!, 'judge', 0.3);
      expect(await give(c!, 'implicit', 0.6)).toMatchObject({ applied: true, previous: 0.3, trace: { feedbackSource: 'implicit' } });
      await give(d!, 'implicit', 0.4);
      expect(await give(d!, 'judge', 0.8)).toMatchObject({ applied: false, previous: 0.4, trace: { feedback: 0.4, feedbackSource: 'implicit' } });
      expect(await s.get(d!.id)).toMatchObject({ feedback: 0.4, feedbackSource: 'implicit' });

      // A judge may change its own mind; feedback stored without a source counts as a human's.
      await give(e!, 'judge', 0.5);
      expect(await give(e!, 'judge', 0.6)).toMatchObject({ applied: true, previous: 0.5, trace: { feedback: 0.6 } });
      const legacy = trace({ feedback: 1, feedbackTime: 1, feedbackSource: null });
      await s.insert(legacy);
      expect(await give(legacy, 'implicit', 0)).toMatchObject({ applied: false, previous: 1, trace: { feedbackSource: null } });
      expect(await give(legacy, 'offline', 0.5)).toMatchObject({ applied: true, previous: 1, trace: { feedbackSource: 'offline' } });

      // The owner check comes first: another key's trace is not found, whatever the source.
      const owned = trace({ keyName: 'team-a' });
      await s.insert(owned);
      expect(await s.setFeedback(owned.id, { score: 1, comment: null, time: 1, source: 'human' }, 'team-b')).toBeUndefined();
      expect(await s.get(f!.id)).toMatchObject({ feedback: null, feedbackSource: null });
    });

    it('evidence sums feedback per source over successful traces, with and without decay, and after a purge', async () => {
      await backend.reset();
      const s = await store();
      const T0 = 1_760_000_000_000;
      const sources: (FeedbackSource | null)[] = ['human', null, 'judge', 'implicit', 'offline', 'judge', 'implicit', 'human'];
      const arms = new Map<string, TraceRecord[]>([['a', []], ['b', []]]);
      for (let i = 0; i < 40; i++) {
        const model = i % 3 === 0 ? 'b' : 'a';
        const rated = i % 4 !== 3;
        const t = trace({
          time: T0 + i,
          modelKey: model,
          outcome: i % 7 === 5 ? 'error' : 'success',
          feedback: rated ? ((i * 37) % 100) / 100 : null,
          feedbackTime: rated ? T0 + i : null,
          feedbackSource: rated ? sources[i % sources.length]! : null,
        });
        arms.get(model)!.push(t);
        await s.insert(t);
      }
      const byModel = (rows: ArmEvidence[]) => new Map(rows.map((r) => [r.model, r]));
      const check = async (decay: number | undefined, live: Map<string, TraceRecord[]>) => {
        const ev = byModel(await s.evidence(decay === undefined ? {} : { decay }));
        const narrowed = byModel(await s.evidence({ ...(decay === undefined ? {} : { decay }), until: Number.MAX_SAFE_INTEGER }));
        for (const [model, list] of live) {
          expectSums(ev.get(model)!, perSourceSums(list, decay));
          expectSums(narrowed.get(model)!, perSourceSums(list, decay));
        }
      };
      // Every flavour of the read: plain sums, the forgetting read of the whole store, and a range.
      await check(undefined, arms);
      await check(0.9, arms);
      await check(0.5, arms);
      const a = (await s.evidence()).find((e) => e.model === 'a')!;
      expect(a.ratedCount + a.judgeCount + a.implicitCount).toBe(
        arms.get('a')!.filter((t) => t.outcome === 'success' && t.feedback !== null).length,
      );
      expect(a.judgeCount).toBeGreaterThan(0);
      expect(a.implicitCount).toBeGreaterThan(0);

      // Purged in two steps (the second adds to the sums the first kept): plain sums do not change;
      // with forgetting, what was purged weighs as if evenly spread behind the traces still stored.
      const before = await s.evidence();
      expect(await s.purge(T0 + 10)).toEqual({ deleted: 10 });
      expect(await s.purge(T0 + 25)).toEqual({ deleted: 15 });
      const after = await s.evidence();
      for (const row of before) expectSums(after.find((r) => r.model === row.model)!, row);
      const g = 0.9;
      const decayed = byModel(await s.evidence({ decay: g }));
      for (const [model, list] of arms) {
        const kept = list.filter((t) => t.time >= T0 + 25);
        const purged = list.filter((t) => t.time < T0 + 25);
        const scale = (Math.pow(g, kept.length) * (1 - Math.pow(g, purged.length))) / (1 - g) / purged.length;
        const live = perSourceSums(kept, g);
        const old = perSourceSums(purged);
        const expected = Object.fromEntries(
          Object.entries(live).map(([k, v]) => [k, v + old[k as keyof typeof old] * scale]),
        ) as ReturnType<typeof perSourceSums>;
        expectSums(decayed.get(model)!, expected);
      }
      // Evidence of the stored traces alone (a range) leaves the purged sums out.
      const ranged = byModel(await s.evidence({ since: 0 }));
      for (const [model, list] of arms) expectSums(ranged.get(model)!, perSourceSums(list.filter((t) => t.time >= T0 + 25)));
    });

    it('evidence sums per class × model in order of first appearance, with quality = feedback or success', async () => {
      await backend.reset();
      const s = await store();
      await Promise.all([
        s.insert(trace({ modelKey: 'a', outcome: 'success' })),
        s.insert(trace({ modelKey: 'a', outcome: 'success', feedback: 0.25 })),
        s.insert(trace({ modelKey: 'a', outcome: 'error', feedback: 1, costUsd: null })),
        s.insert(trace({ modelKey: 'b', outcome: 'timeout', latencyMs: 100 })),
        s.insert(trace({ modelKey: 'a', queryClass: 'code', outcome: 'success' })),
      ]);
      const ev = await s.evidence();
      const a = ev.find((e) => e.model === 'a' && e.queryClass === 'short')!;
      expect(a).toMatchObject({ count: 3, weight: 3, successes: 2, quality: 1.25, feedbackCount: 2, feedbackSum: 1.25, costCount: 2 });
      expect(a.costSum).toBeCloseTo(0.002);
      expect(ev.find((e) => e.model === 'b')).toMatchObject({ count: 1, successes: 0, quality: 0, latencySumMs: 100 });
      expect(ev.map((e) => `${e.queryClass}/${e.model}`)).toEqual(['short/a', 'short/b', 'code/a']);
    });

    it('evidence with decay weighs a trace by γ^(newer traces of its arm); recentByArm gives the ages', async () => {
      await backend.reset();
      const s = await store();
      for (const t of [
        trace({ modelKey: 'a', outcome: 'success' }),
        trace({ modelKey: 'b', outcome: 'success' }),
        trace({ modelKey: 'a', outcome: 'error' }),
        trace({ modelKey: 'b', outcome: 'success' }),
        trace({ modelKey: 'a', outcome: 'success' }),
      ]) await s.insert(t);
      const g = 0.5;
      const a = (await s.evidence({ decay: g })).find((e) => e.model === 'a')!;
      expect(a.count).toBe(3);
      expect(a.weight).toBeCloseTo(1 + g + g * g);
      expect(a.quality).toBeCloseTo(1 + g * g);
      const recent = await s.recentByArm(2);
      expect(recent.filter((r) => r.model === 'a').map((r) => [r.age, r.quality])).toEqual([[1, 0], [0, 1]]);
      expect(recent.map((r) => r.age)).toEqual([...recent.map((r) => r.age)].sort((x, y) => y - x));
    });

    it('evidence with forgetting over a long history is the same read whole or narrowed', async () => {
      await backend.reset();
      const s = await store();
      // 400 traces per arm: far more than 80 half-lives at γ = 0.5.
      const all: TraceRecord[] = [];
      for (let i = 0; i < 1200; i++) {
        const feedback = i % 5 === 0 ? (i % 11) / 10 : null;
        const feedbackSource = feedback === null ? null : (['human', 'judge', 'implicit', null, 'offline'] as const)[(i / 5) % 5]!;
        all.push(trace({ modelKey: ['a', 'b', 'c'][i % 3]!, outcome: i % 7 === 0 ? 'error' : 'success', feedback, feedbackSource, costUsd: i % 4 === 0 ? null : i / 1e5, latencyMs: i }));
      }
      await Promise.all(all.map((t) => s.insert(t)));
      // 0.01^399 is below the smallest double: it counts as 0 (PostgreSQL would raise an underflow).
      for (const decay of [0.5, 0.97, 0.01]) {
        const whole = await s.evidence({ decay });
        const narrowed = await s.evidence({ decay, until: Number.MAX_SAFE_INTEGER });
        expect(whole.map((e) => e.count)).toEqual([400, 400, 400]);
        expect(whole.map((e) => e.model)).toEqual(narrowed.map((e) => e.model));
        whole.forEach((e, i) => {
          const n = narrowed[i]!;
          for (const key of Object.keys(e) as (keyof typeof e)[]) {
            // The whole read sums an arm's newest 40 half-lives: what is older weighs under 2^-40 in all.
            if (typeof e[key] === 'number') {
              const [x, y] = [e[key] as number, n[key] as number];
              expect(Math.abs(x - y), `${e.model}.${key}: ${x} vs ${y}`).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(y)));
            }
            else expect(e[key]).toEqual(n[key]);
          }
        });
      }
    });

    it('evidence honours a time range, maxTraces (newest first) and the source', async () => {
      await backend.reset();
      const s = await store();
      const ts = [trace({ modelKey: 'a' }), trace({ modelKey: 'b' }), trace({ modelKey: 'c' }), trace({ modelKey: 'd', source: 'offline' })];
      for (const t of ts) await s.insert(t);
      expect((await s.evidence({ since: ts[1]!.time })).map((e) => e.model)).toEqual(['b', 'c', 'd']);
      expect((await s.evidence({ until: ts[1]!.time })).map((e) => e.model)).toEqual(['a']);
      expect((await s.evidence({ maxTraces: 2 })).map((e) => e.model)).toEqual(['c', 'd']);
      expect((await s.evidence({ source: 'live' })).map((e) => e.model)).toEqual(['a', 'b', 'c']);
      expect((await s.evidence({ source: 'live', decay: 0.5 })).map((e) => e.model)).toEqual(['a', 'b', 'c']);
      expect((await s.evidence({ source: 'offline', decay: 0.5 })).map((e) => e.model)).toEqual(['d']);
      expect((await s.recentByArm(5)).map((r) => r.model).sort()).toEqual(['a', 'b', 'c']);
    });

    it('stats: success rate, feedback, latency percentiles, tokens, cost, and per instance', async () => {
      await backend.reset();
      const s = await store();
      const latencies = Array.from({ length: 20 }, (_, i) => (i + 1) * 10);
      await Promise.all(
        latencies.map((latencyMs, i) =>
          s.insert(trace({ latencyMs, outcome: i < 15 ? 'success' : 'error', feedback: i < 2 ? 1 : null, instanceId: i % 4 === 0 ? 'gw-b' : 'gw-a' })),
        ),
      );
      await s.insert(trace({ modelKey: 'B', queryClass: 'code', instanceId: null }));
      const st = await s.stats();
      expect(st.totalTraces).toBe(21);
      expect(st.byClassModel.map((r) => `${r.queryClass}/${r.model}`)).toEqual(['code/B', 'short/a']);
      expect(st.byClassModel[1]).toMatchObject({
        count: 20, successes: 15, successRate: 0.75, feedbackCount: 2, meanFeedback: 1,
        latencyP50Ms: 100, latencyP95Ms: 190, promptTokens: 200, completionTokens: 100,
      });
      expect(st.byClassModel[1]!.costUsd).toBeCloseTo(0.02);
      expect(st.byInstance.map((i) => [i.instanceId, i.count, i.successes, i.feedbackCount])).toEqual([
        [null, 1, 1, 0],
        ['gw-a', 15, 11, 1],
        ['gw-b', 5, 4, 1],
      ]);
      const narrowed = await s.stats({ since: 1_700_000_000_000 + 1e15 });
      expect(narrowed).toEqual({ totalTraces: 0, byClassModel: [], byInstance: [], feedbackBySource: [] });
    });

    it('stats counts rated traces per class × model × source (none recorded: human), over every trace or a range', async () => {
      await backend.reset();
      const s = await store();
      const rated = (queryClass: string, modelKey: string, feedbackSource: FeedbackSource | null, over: Partial<TraceRecord> = {}) =>
        trace({ queryClass, modelKey, feedback: 0.5, feedbackTime: 1, feedbackSource, ...over });
      const ts = [
        rated('short', 'b', 'judge'), rated('code', 'a', 'human'), rated('short', 'a', 'implicit'), rated('short', 'a', null),
        rated('short', 'a', 'human', { outcome: 'error' }), trace({ queryClass: 'short', modelKey: 'a' }), trace({ outcome: 'error' }),
        rated('short', 'a', 'offline', { source: 'offline' }), rated('short', 'a', 'judge'), rated('short', 'a', 'implicit'),
      ];
      for (const t of ts) await s.insert(t);
      // Feedback given afterwards: a judge's score, then one it may not replace, then one replacing it.
      await s.setFeedback(ts[5]!.id, { score: 1, comment: null, time: 2, source: 'judge' });
      await s.setFeedback(ts[0]!.id, { score: 0, comment: null, time: 2, source: 'implicit' });
      await s.setFeedback(ts[8]!.id, { score: 0.2, comment: null, time: 2, source: 'judge' });
      const row = (queryClass: string, model: string, source: FeedbackSource, count: number) => ({ queryClass, model, source, count });
      expect((await s.stats()).feedbackBySource).toEqual([
        row('code', 'a', 'human', 1),
        row('short', 'a', 'human', 2),
        row('short', 'a', 'implicit', 2),
        row('short', 'a', 'judge', 2),
        row('short', 'a', 'offline', 1),
        row('short', 'b', 'implicit', 1),
      ]);
      // From the fourth trace to the eighth.
      expect((await s.stats({ since: ts[3]!.time, until: ts[8]!.time })).feedbackBySource).toEqual([
        row('short', 'a', 'human', 2),
        row('short', 'a', 'judge', 1),
        row('short', 'a', 'offline', 1),
      ]);
    });

    it('stats percentiles are the nearest rank, whatever the number of traces', async () => {
      await backend.reset();
      const s = await store();
      let x = 7;
      const rand = () => (x = (x * 48271) % 2147483647) / 2147483647;
      const byArm = new Map<string, number[]>();
      const all: TraceRecord[] = [];
      for (let arm = 1; arm <= 40; arm++) {
        const latencies = Array.from({ length: arm }, () => Math.round(rand() * 100000) / 100);
        byArm.set(`m${arm}`, latencies);
        for (const latencyMs of latencies) all.push(trace({ modelKey: `m${arm}`, latencyMs }));
      }
      await Promise.all(all.map((t) => s.insert(t)));
      const st = await s.stats();
      expect(st.totalTraces).toBe(all.length);
      for (const row of st.byClassModel) {
        const sorted = [...byArm.get(row.model)!].sort((a, b) => a - b);
        const rank = (p: number) => sorted[Math.max(1, Math.ceil((sorted.length * p) / 100)) - 1];
        expect([row.latencyP50Ms, row.latencyP95Ms], `${row.model} (${sorted.length})`).toEqual([rank(50), rank(95)]);
      }
    });

    it('traffic counts per time bucket × class × model, in order', async () => {
      await backend.reset();
      const s = await store();
      const T0 = 1_700_000_000_000;
      const at = (time: number, queryClass: string, modelKey: string, outcome: TraceRecord['outcome'] = 'success') =>
        s.insert(trace({ time, queryClass, modelKey, outcome }));
      await Promise.all([
        at(T0 + 1_000, 'code', 'large'), at(T0 + 9_999, 'code', 'large', 'error'), at(T0 + 2_000, 'code', 'small'),
        at(T0 + 3_000, 'math', 'large'), at(T0 + 10_000, 'code', 'large'), at(T0 + 25_000, 'code', 'small', 'timeout'),
        at(T0 - 1, 'code', 'small'), at(T0 + 30_000, 'code', 'small'),
      ]);
      expect(await s.traffic({ since: T0, until: T0 + 30_000, bucketMs: 10_000 })).toEqual([
        { start: T0, queryClass: 'code', model: 'large', count: 2, successes: 1 },
        { start: T0, queryClass: 'code', model: 'small', count: 1, successes: 1 },
        { start: T0, queryClass: 'math', model: 'large', count: 1, successes: 1 },
        { start: T0 + 10_000, queryClass: 'code', model: 'large', count: 1, successes: 1 },
        { start: T0 + 20_000, queryClass: 'code', model: 'small', count: 1, successes: 0 },
      ]);
    });

    it('recent, list and count', async () => {
      await backend.reset();
      const s = await store();
      const ts = Array.from({ length: 5 }, () => trace());
      for (const t of ts) await s.insert(t);
      expect((await s.recent(2)).map((t) => t.id)).toEqual([ts[4]!.id, ts[3]!.id]);
      expect((await s.list({ since: ts[1]!.time, until: ts[3]!.time })).map((t) => t.id)).toEqual([ts[1]!.id, ts[2]!.id]);
      expect((await s.list({ limit: 2 })).map((t) => t.id)).toEqual([ts[0]!.id, ts[1]!.id]);
      expect(await s.count()).toBe(5);
    });

    it('exports every trace in order, across pages, by time range, source and newest N', async () => {
      await backend.reset();
      const s = await store();
      const all = Array.from({ length: 1234 }, (_, i) => trace({ source: i % 10 === 0 ? 'offline' : 'live' }));
      await Promise.all(all.map((t) => s.insert(t)));
      expect(await collect(s.exportTraces())).toEqual(all);
      expect(await collect(s.exportTraces({ since: all[100]!.time, until: all[700]!.time }))).toEqual(all.slice(100, 700));
      expect(await collect(s.exportTraces({ source: 'offline' }))).toEqual(all.filter((t) => t.source === 'offline'));
      expect(await collect(s.exportTraces({ newest: 3 }))).toEqual(all.slice(-3));
      expect(await collect(s.exportTraces({ since: all[1233]!.time + 1 }))).toEqual([]);
    });

    it('imports new traces in the order given, skips known ids, and adds nothing when the input fails', async () => {
      await backend.reset();
      const s = await store();
      const present = trace();
      await s.insert(present);
      const fresh = [trace({ feedback: 0.5, feedbackTime: 1, feedbackComment: 'ok' }), trace(), trace()];
      expect(await s.importTraces([fresh[0]!, present, fresh[1]!, fresh[0]!, fresh[2]!])).toEqual({ inserted: 3, skipped: 2 });
      expect(await s.list({})).toEqual([present, ...fresh]);
      async function* failing() {
        for (let i = 0; i < 1100; i++) yield trace();
        throw new Error('line 1101: bad');
      }
      await expect(s.importTraces(failing())).rejects.toThrow('line 1101: bad');
      expect(await s.count()).toBe(4);
      expect(await s.importTraces([trace()])).toEqual({ inserted: 1, skipped: 0 });
    });

    it('purge deletes old live traces and keeps their sums; purgeOffline removes offline evidence', async () => {
      await backend.reset();
      const s = await store();
      const T0 = 1_750_000_000_000;
      for (const t of [
        trace({ time: T0, modelKey: 'a', outcome: 'success', feedback: 0.5 }),
        trace({ time: T0 + 1, modelKey: 'a', outcome: 'error', costUsd: null }),
        trace({ time: T0 + 2, modelKey: 'b', outcome: 'success' }),
        trace({ time: T0 + 3, modelKey: 'o', outcome: 'success', source: 'offline' }),
        trace({ time: T0 + 10, modelKey: 'a', outcome: 'success' }),
        trace({ time: T0 + 11, modelKey: 'c', queryClass: 'code', outcome: 'success' }),
      ]) await s.insert(t);
      const plain = (rows: Awaited<ReturnType<TraceStore['evidence']>>) =>
        Object.fromEntries(rows.map((r) => [`${r.queryClass}/${r.model}`, { ...r, lastTime: 0 }]));
      const before = plain(await s.evidence());
      expect(await s.purge(T0 + 5)).toEqual({ deleted: 3 });
      expect(plain(await s.evidence())).toEqual(before);
      const g = 0.5;
      const a = (await s.evidence({ decay: g })).find((e) => e.model === 'a')!;
      expect(a.count).toBe(3);
      expect(a.weight).toBeCloseTo(1 + g + g * g);
      expect(a.successes).toBeCloseTo(1 + (g + g * g) / 2);
      expect(await s.purgeOffline()).toEqual({ deleted: 1 });
      expect(await s.count()).toBe(2);
    });

    it('sticky sessions: set, moved, extended, expired, kept across a reopen, written beside traces, purged', async () => {
      await backend.reset();
      const s = await store();
      const T0 = 1_750_000_000_000;
      expect(await s.stickySession('s1', T0)).toBeUndefined();
      // A session written together with traces (one batch) and alone.
      const t = trace();
      await Promise.all([s.insert(t), s.setStickySession('s1', 'small', T0 + 1000), s.insert(trace())]);
      await s.setStickySession('s2', 'large', T0 + 5000);
      expect(await s.stickySession('s1', T0)).toEqual({ modelKey: 'small', expiresAt: T0 + 1000 });
      expect(await s.stickySession('s1', T0 + 999)).toEqual({ modelKey: 'small', expiresAt: T0 + 1000 });
      // Expired at its expiry.
      expect(await s.stickySession('s1', T0 + 1000)).toBeUndefined();
      // Moved to another model and extended: the last write wins.
      await s.setStickySession('s1', 'large', T0 + 3000);
      expect(await s.stickySession('s1', T0 + 2000)).toEqual({ modelKey: 'large', expiresAt: T0 + 3000 });
      expect(await s.count()).toBe(2);
      expect(await s.get(t.id)).toEqual(t);
      await s.close();
      const again = await store();
      expect(await again.stickySession('s1', T0)).toEqual({ modelKey: 'large', expiresAt: T0 + 3000 });
      // Expires_at is epoch milliseconds: far past 2^31.
      expect((await again.stickySession('s2', T0))?.expiresAt).toBe(T0 + 5000);
      expect(await again.purgeStickySessions(T0 + 3000)).toEqual({ deleted: 1 });
      expect(await again.stickySession('s1', T0)).toBeUndefined();
      expect(await again.stickySession('s2', T0)).toEqual({ modelKey: 'large', expiresAt: T0 + 5000 });
      expect(await again.purgeStickySessions(T0 + 3000)).toEqual({ deleted: 0 });
    });
  });
}

describe('SQLite file store', () => conformance('conformance', sqliteBackend(), false));

const pgb = pgBackend();
describe.skipIf(pgSkip !== null)(`PostgreSQL store${pgSkip ? ` — skipped: ${pgSkip}` : ''}`, () => {
  beforeAll(() => pgb.setup(), 30_000);
  afterAll(() => pgb.teardown(), 30_000);
  conformance('conformance', pgb, true);
});
