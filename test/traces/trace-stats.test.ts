import { afterEach, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import type { StatsSummary, TraceRecord } from '../../src/traces/types.js';
import { tempDir as newTempDir } from '../helpers/gateway.js';
import { migrationsUpTo } from '../helpers/migrations.js';
import { makeTrace } from '../helpers/trace.js';

const dirs: string[] = [];
const stores: SqliteTraceStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = newTempDir('tracegate-stats-');
  dirs.push(dir);
  return dir;
}
function open(path: string): SqliteTraceStore {
  const store = new SqliteTraceStore({ path });
  stores.push(store);
  return store;
}

const CLASSES = ['code', 'math', 'short'];
const MODELS = ['mini', 'pro', 'budget'];
const INSTANCES = [null, 'gw-a', 'gw-b'];
function traces(count: number): TraceRecord[] {
  return Array.from({ length: count }, (_, i) =>
    makeTrace({
      queryClass: CLASSES[i % 3]!,
      modelKey: MODELS[(i * 7) % 3]!,
      instanceId: INSTANCES[(i >> 2) % 3]!,
      outcome: i % 11 === 0 ? 'error' : 'success',
      feedback: i % 5 === 0 ? (i % 3) / 2 : null,
      feedbackSource: i % 5 !== 0 ? null : ([null, 'human', 'judge', 'implicit', 'offline'] as const)[(i / 5) % 5]!,
      source: i % 17 === 0 ? 'offline' : 'live',
      latencyMs: 5 + ((i * 7919) % 1000) / 8,
      promptTokens: i % 13 === 0 ? null : 100 + (i % 50),
      completionTokens: i % 13 === 0 ? null : 20 + (i % 30),
      costUsd: i % 4 === 0 ? null : (i % 97) / 1e5,
    }),
  );
}

/** The columns a raw insert writes (those every schema version has), by the trace's field. */
const TRACE_COLUMNS = {
  id: 'id', time: 'time', requestId: 'request_id', query: 'query', queryLength: 'query_length', queryClass: 'query_class',
  modelKey: 'model_key', upstreamModel: 'upstream_model', routed: 'routed', reason: 'reason', attempt: 'attempt',
  outcome: 'outcome', status: 'status', latencyMs: 'latency_ms', feedback: 'feedback', promptTokens: 'prompt_tokens',
  completionTokens: 'completion_tokens', costUsd: 'cost_usd', source: 'source', instanceId: 'instance_id',
} as const;
const traceRow = (t: TraceRecord) =>
  (Object.keys(TRACE_COLUMNS) as (keyof typeof TRACE_COLUMNS)[]).map((k) => (typeof t[k] === 'boolean' ? Number(t[k]) : t[k]));

async function insertInTurns(store: SqliteTraceStore, all: TraceRecord[]): Promise<void> {
  for (let i = 0; i < all.length; i += 50) await Promise.all(all.slice(i, i + 50).map((t) => store.insert(t)));
}

/** What `stats` must say, computed here from every stored trace (`list`), independently of the store's SQL. */
async function grouped(store: SqliteTraceStore, keep: (t: TraceRecord) => boolean = () => true): Promise<StatsSummary> {
  const all = (await store.list({})).filter(keep);
  const byText = (a: string | null, b: string | null) => (a === b ? 0 : a === null ? -1 : b === null ? 1 : a < b ? -1 : 1);
  const arms = new Map<string, TraceRecord[]>();
  const instances = new Map<string | null, TraceRecord[]>();
  for (const t of all) {
    const key = `${t.queryClass}\u0000${t.modelKey}`;
    arms.set(key, [...(arms.get(key) ?? []), t]);
    instances.set(t.instanceId, [...(instances.get(t.instanceId) ?? []), t]);
  }
  const sum = (ts: TraceRecord[], f: (t: TraceRecord) => number | null) => ts.reduce((n, t) => n + (f(t) ?? 0), 0);
  const rank = (sorted: number[], p: number) => sorted[Math.max(1, Math.ceil((sorted.length * p) / 100)) - 1] ?? null;
  const byClassModel = [...arms.values()]
    .sort((a, b) => byText(a[0]!.queryClass, b[0]!.queryClass) || byText(a[0]!.modelKey, b[0]!.modelKey))
    .map((ts) => {
      const latencies = ts.map((t) => t.latencyMs).sort((x, y) => x - y);
      const successes = ts.filter((t) => t.outcome === 'success').length;
      const judged = ts.filter((t) => t.feedback !== null);
      return {
        queryClass: ts[0]!.queryClass,
        model: ts[0]!.modelKey,
        count: ts.length,
        successes,
        feedbackCount: judged.length,
        meanFeedback: judged.length > 0 ? sum(judged, (t) => t.feedback) / judged.length : null,
        latencyP50Ms: rank(latencies, 50),
        latencyP95Ms: rank(latencies, 95),
        promptTokens: sum(ts, (t) => t.promptTokens),
        completionTokens: sum(ts, (t) => t.completionTokens),
        costUsd: sum(ts, (t) => t.costUsd),
        successRate: successes / ts.length,
      };
    });
  const byInstance = [...instances.entries()]
    .sort(([a], [b]) => byText(a, b))
    .map(([instanceId, ts]) => ({
      instanceId,
      count: ts.length,
      successes: ts.filter((t) => t.outcome === 'success').length,
      feedbackCount: ts.filter((t) => t.feedback !== null).length,
      costUsd: sum(ts, (t) => t.costUsd),
      lastTime: Math.max(...ts.map((t) => t.time)),
    }));
  const rated = new Map<string, StatsSummary['feedbackBySource'][number]>();
  for (const t of all) {
    if (t.feedback === null) continue;
    const source = t.feedbackSource ?? 'human';
    const key = `${t.queryClass}\u0000${t.modelKey}\u0000${source}`;
    const row = rated.get(key) ?? { queryClass: t.queryClass, model: t.modelKey, source, count: 0 };
    row.count++;
    rated.set(key, row);
  }
  const feedbackBySource = [...rated.values()].sort(
    (a, b) => byText(a.queryClass, b.queryClass) || byText(a.model, b.model) || byText(a.source, b.source),
  );
  return { totalTraces: all.length, byClassModel, byInstance, feedbackBySource };
}

/** The same figures; sums of doubles added in another order may differ in their last bits. */
function expectSameStats(actual: StatsSummary, expected: StatsSummary): void {
  expect(actual.totalTraces).toBe(expected.totalTraces);
  expect(actual.feedbackBySource).toEqual(expected.feedbackBySource);
  for (const [rows, want] of [[actual.byClassModel, expected.byClassModel], [actual.byInstance, expected.byInstance]] as const) {
    expect(rows.length).toBe(want.length);
    rows.forEach((row, i) => {
      const other = want[i] as unknown as Record<string, unknown>;
      for (const [key, value] of Object.entries(row)) {
        if (typeof value === 'number' && !Number.isInteger(value)) {
          expect(Math.abs(value - (other[key] as number)), key).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(value)));
        } else {
          expect(value, key).toEqual(other[key]);
        }
      }
    });
  }
}

const mark = (store: SqliteTraceStore) => store.db.prepare('SELECT seq FROM trace_arms_filled WHERE id = 1').pluck().get() as number;
const newest = (store: SqliteTraceStore) => store.db.prepare('SELECT MAX(seq) FROM traces').pluck().get() as number;
const summedCount = (store: SqliteTraceStore) => store.db.prepare('SELECT COALESCE(SUM(count), 0) FROM trace_stats').pluck().get() as number;

describe('stats over every trace: trace_stats up to the fill mark, the traces past it', () => {
  it('gives what grouping every trace gives, before and after a fill', async () => {
    const store = open(join(tempDir(), 'traces.db'));
    await insertInTurns(store, traces(2_600));
    // One fill so far (at 2,000 traces): the sums hold those, the rest are past the mark.
    expect(summedCount(store)).toBe(mark(store));
    expect(mark(store)).toBeGreaterThanOrEqual(2_000);
    expect(newest(store) - mark(store)).toBeGreaterThan(0);
    const before = await store.stats();
    expect(before.totalTraces).toBe(2_600);
    expectSameStats(before, await grouped(store));
    // A time range goes through the traces themselves.
    const since = (await store.list({}))[1_300]!.time;
    expectSameStats(await store.stats({ since }), await grouped(store, (t) => t.time >= since));
    expectSameStats(await store.stats({ until: since }), await grouped(store, (t) => t.time < since));
    // A per-arm read fills up to the newest trace: nothing past the mark.
    await store.evidence({ decay: 0.99 });
    expect(mark(store)).toBe(newest(store));
    expectSameStats(await store.stats(), before);
    await insertInTurns(store, traces(7));
    expectSameStats(await store.stats(), await grouped(store));
  });

  it('stats fills the sums itself once the traces past the mark are many', async () => {
    const store = open(join(tempDir(), 'traces.db'));
    // Written around the store's writer (as another tool would): nothing is filled.
    const insert = store.db.prepare(`INSERT INTO traces (${Object.values(TRACE_COLUMNS).join(', ')})
      VALUES (${Object.keys(TRACE_COLUMNS).map(() => '?').join(', ')})`);
    for (const t of traces(2_100)) insert.run(...traceRow(t));
    expect(mark(store)).toBe(0);
    expectSameStats(await store.stats(), await grouped(store));
    expect(mark(store)).toBe(2_100);
    expect(summedCount(store)).toBe(2_100);
  });

  it('feedback on a trace already summed moves its group\'s sums (a trigger), and on one past the mark waits for the fill', async () => {
    const store = open(join(tempDir(), 'traces.db'));
    const all = traces(2_300);
    await insertInTurns(store, all);
    const filled = mark(store);
    // Summed: new feedback, changed feedback, the same again.
    for (const [i, score] of [[1, 1], [2, 0.25], [5, 0.5], [10, 0], [10, 1], [1, 0.75]] as const) {
      expect(i).toBeLessThan(filled);
      await store.setFeedback(all[i]!.id, { score, time: all[i]!.time + 1, comment: null, source: 'human' });
    }
    // Past the mark.
    await store.setFeedback(all[2_250]!.id, { score: 0.125, time: 1, comment: null, source: 'human' });
    expectSameStats(await store.stats(), await grouped(store));
    await store.evidence({ decay: 0.99 });
    expectSameStats(await store.stats(), await grouped(store));
    await store.setFeedback(all[2_250]!.id, { score: 1, time: 2, comment: null, source: 'human' });
    const st = await store.stats();
    expectSameStats(st, await grouped(store));
    expect(st.byClassModel.reduce((n, r) => n + r.feedbackCount, 0)).toBe(
      store.db.prepare('SELECT COUNT(*) FROM traces WHERE feedback IS NOT NULL').pluck().get(),
    );
  });

  it('a purge keeps the sums right: live traces by age, then the offline evidence', async () => {
    const store = open(join(tempDir(), 'traces.db'));
    const all = traces(2_400);
    await insertInTurns(store, all);
    await store.evidence({ decay: 0.99 });
    const { deleted } = await store.purge(all[1_200]!.time);
    expect(deleted).toBeGreaterThan(1_000);
    expect(summedCount(store)).toBe(await store.count());
    expectSameStats(await store.stats(), await grouped(store));
    const offline = await store.purgeOffline();
    expect(offline.deleted).toBeGreaterThan(50);
    expect(summedCount(store)).toBe(await store.count());
    expectSameStats(await store.stats(), await grouped(store));
  });

  it('a purge in chunks of 100 leaves the same figures and evidence as one transaction; a group left with older offline traces only takes their last time, an emptied one goes', async () => {
    // The oldest traces: one group (instance gw-z) with a live trace and an older offline one, and
    // one (gw-y) with a live trace only, which the purge empties.
    const offline = makeTrace({ queryClass: 'math', modelKey: 'solo', instanceId: 'gw-z', source: 'offline' });
    const live = makeTrace({ queryClass: 'math', modelKey: 'solo', instanceId: 'gw-z' });
    const gone = makeTrace({ queryClass: 'long', modelKey: 'gone', instanceId: 'gw-y' });
    const all = [offline, live, gone, ...traces(2_400)];
    const once = open(join(tempDir(), 'traces.db'));
    const chunked = open(join(tempDir(), 'traces.db'));
    for (const store of [once, chunked]) {
      await insertInTurns(store, all);
      await store.evidence({ decay: 0.99 }); // fills: every trace is summed
      await store.setFeedback(all[5]!.id, { score: 0.5, time: 1, comment: null, source: 'human' });
    }
    const cutoff = all[1_300]!.time;
    const a = await once.purge(cutoff);
    const b = await chunked.purge(cutoff, 100);
    expect(b.deleted).toBe(a.deleted);
    expect(b.deleted).toBeGreaterThan(1_000);
    expectSameStats(await chunked.stats(), await grouped(chunked));
    expect(summedCount(chunked)).toBe(await chunked.count());
    expect((await chunked.stats()).byInstance.find((i) => i.instanceId === 'gw-z')).toMatchObject({ count: 1, lastTime: offline.time });
    expect((await chunked.stats()).byInstance.map((i) => i.instanceId)).not.toContain('gw-y');
    const evidence = (store: SqliteTraceStore) =>
      store.db.prepare('SELECT * FROM purged_evidence ORDER BY query_class, model_key').all() as Record<string, number | string>[];
    const [x, y] = [evidence(once), evidence(chunked)];
    expect(y.map((r) => [r.query_class, r.model_key, r.count, r.successes, r.quality, r.feedback_count, r.last_time])).toEqual(
      x.map((r) => [r.query_class, r.model_key, r.count, r.successes, r.quality, r.feedback_count, r.last_time]),
    );
    for (const [i, r] of y.entries()) {
      for (const k of ['feedback_sum', 'cost_sum', 'cost_count', 'latency_sum_ms']) expect(r[k]).toBeCloseTo(x[i]![k] as number, 9);
    }
  });

  it('counts another process\'s traces past the mark', async () => {
    const path = join(tempDir(), 'traces.db');
    const writer = open(path);
    const reader = open(path);
    await insertInTurns(writer, traces(2_100));
    expect(mark(reader)).toBeGreaterThanOrEqual(2_000);
    expect((await reader.stats()).totalTraces).toBe(2_100);
    await insertInTurns(writer, traces(30));
    expectSameStats(await reader.stats(), await grouped(reader));
    expect((await reader.stats()).totalTraces).toBe(2_130);
  });

  it('takes a time range that holds every trace as every trace', async () => {
    const store = open(join(tempDir(), 'traces.db'));
    await insertInTurns(store, traces(2_100));
    const all = await store.list({});
    const [first, last] = [all[0]!.time, all.at(-1)!.time];
    // Tampered sums show which way a read went: through trace_stats, or through the traces.
    store.db.prepare('UPDATE trace_stats SET count = count + 1000').run();
    const tampered = (await store.stats()).totalTraces;
    expect(tampered).toBeGreaterThan(2_100);
    expect((await store.stats({ since: first })).totalTraces).toBe(tampered);
    expect((await store.stats({ since: first - 5_000, until: last + 1 })).totalTraces).toBe(tampered);
    expect((await store.stats({ since: first + 1 })).totalTraces).toBe(2_099);
    expect((await store.stats({ until: last })).totalTraces).toBe(2_099);
  });

  it('reads the latencies in the order of trace_arms: no sort over the traces', async () => {
    const store = open(':memory:');
    const plan = (sql: string) =>
      (store.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join('; ');
    const latencies = plan('SELECT query_class, model_key, group_concat(latency_ms) FROM trace_arms GROUP BY query_class, model_key');
    expect(latencies).not.toMatch(/TEMP B-TREE/);
    // What it replaced: grouping the traces sorts them.
    expect(plan('SELECT query_class, model_key, group_concat(latency_ms) FROM traces GROUP BY query_class, model_key')).toMatch(
      /TEMP B-TREE/,
    );
  });

  it('a database made before trace_stats gets its sums and its arms\' latencies when it is migrated', async () => {
    const dir = tempDir();
    const path = join(dir, 'traces.db');
    const raw = new Database(path);
    migrate(drizzle(raw), { migrationsFolder: migrationsUpTo(dir, '0003_trace_arms') });
    const all = traces(700);
    const insert = raw.prepare(`INSERT INTO traces (${Object.values(TRACE_COLUMNS).join(', ')})
      VALUES (${Object.keys(TRACE_COLUMNS).map(() => '?').join(', ')})`);
    for (const t of all.slice(0, 500)) insert.run(...traceRow(t));
    // As the store of that version filled it: the first 500 traces' arms, then 200 more past the mark.
    raw.prepare(`INSERT INTO trace_arms SELECT query_class, model_key, seq, source = 'live' FROM traces ORDER BY 1, 2, 3`).run();
    raw.prepare('UPDATE trace_arms_filled SET seq = 500 WHERE id = 1').run();
    for (const t of all.slice(500)) insert.run(...traceRow(t));
    raw.close();
    const store = open(path);
    expect(mark(store)).toBe(500);
    expect(summedCount(store)).toBe(500);
    expect(store.db.prepare('SELECT COUNT(*) FROM trace_arms a JOIN traces t USING (seq) WHERE a.latency_ms = t.latency_ms').pluck().get()).toBe(500);
    expectSameStats(await store.stats(), await grouped(store));
    // The trigger came with it.
    await store.setFeedback(all[3]!.id, { score: 0.5, time: 1, comment: null, source: 'human' });
    expectSameStats(await store.stats(), await grouped(store));
    await store.evidence({ decay: 0.99 });
    expect(summedCount(store)).toBe(700);
    expectSameStats(await store.stats(), await grouped(store));
  });
});
