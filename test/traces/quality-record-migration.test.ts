import { afterAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { drizzle as sqliteDrizzle } from 'drizzle-orm/better-sqlite3';
import { migrate as sqliteMigrate } from 'drizzle-orm/better-sqlite3/migrator';
import { drizzle as pgDrizzle } from 'drizzle-orm/node-postgres';
import { migrate as pgMigrate } from 'drizzle-orm/node-postgres/migrator';
import { PgTraceStore } from '../../src/traces/pg-store.js';
import type { QualityEvidence } from '../../src/traces/quality-evidence.js';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import type { FeedbackSource, Outcome, TraceStore } from '../../src/traces/types.js';
import { tempDir } from '../helpers/gateway.js';
import { migrationsUpTo } from '../helpers/migrations.js';
import { createTestDatabase, pgUnavailable } from '../helpers/services.js';
import { FakeEvidenceSource } from '../routing/fake-evidence.js';

/**
 * Stores made before `quality_record`: the migration fills it from the traces they hold, puts its
 * triggers on `traces` and gives `traces_quality_idx` its evidence-time order (replacing an index of
 * that name on (query_class, model_key) alone); `qualityEvidence` then answers as brute force does,
 * with what was purged before.
 */

const pgSkip = await pgUnavailable();
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function dir(): string {
  const d = tempDir();
  dirs.push(d);
  return d;
}

type Row = [id: string, queryClass: string, model: string, outcome: Outcome, feedback: number | null, feedbackSource: FeedbackSource | null, source: 'live' | 'offline'];
/** Failures (one rated), ratings from every source and none, unrated successes, offline evidence, a trace without a model. */
const ROWS: Row[] = [
  ['t1', 'short', 'a', 'success', 0.75, 'human', 'live'],
  ['t2', 'short', 'a', 'error', null, null, 'live'],
  ['t3', 'short', 'a', 'success', null, null, 'live'],
  ['t4', 'short', 'a', 'success', 0.5, 'judge', 'live'],
  ['t5', 'short', 'a', 'success', 0.25, 'implicit', 'live'],
  ['t6', 'short', 'a', 'timeout', 1, 'human', 'live'],
  ['t7', 'short', 'a', 'success', 1, null, 'live'],
  ['t8', 'short', 'a', 'success', 0.5, 'offline', 'offline'],
  ['t9', 'code', 'b', 'success', 0, 'human', 'live'],
  ['t10', 'code', 'b', 'success', null, null, 'offline'],
  ['t11', 'code', '', 'error', null, null, 'live'],
];
const INSERT = `INSERT INTO traces (id, time, request_id, query_length, query_class, model_key, upstream_model, routed, reason,
  attempt, outcome, latency_ms, feedback, feedback_time, feedback_source, source)
  VALUES ($1, $2, 'r', 1, $3, $4, 'm', $5, 'learned', 1, $6, 1, $7, $8, $9, $10)`;
const params = ([id, queryClass, model, outcome, feedback, feedbackSource, source]: Row, i: number, routed: boolean | number) =>
  [id, 1_000 + i, queryClass, model, routed, outcome, feedback, feedback === null ? null : 5_000 - i, feedbackSource, source];
/** Purged before, with per-source sums (as the feedback_source migration left them). */
const PURGED = `INSERT INTO purged_evidence (query_class, model_key, count, successes, quality, feedback_count, feedback_sum,
  cost_sum, cost_count, latency_sum_ms, last_time, rated_count, rated_sum, judge_count, judge_sum, implicit_count, implicit_sum)
  VALUES ('short', 'a', 10, 8, 7, 5, 3, 0, 0, 10, 1, 4, 2.5, 1, 0.5, 0, 0)`;
/** The old index of that name, as a development build made it. */
const OLD_INDEX = `CREATE INDEX traces_quality_idx ON traces (query_class, model_key) WHERE (outcome <> 'success' OR feedback IS NOT NULL)`;

function brute(): FakeEvidenceSource {
  return new FakeEvidenceSource().add(
    ...ROWS.map(([id, queryClass, model, outcome, feedback, feedbackSource, source], i) => ({
      id, time: 1_000 + i, queryClass, model, outcome, feedback, feedbackSource, costUsd: null, latencyMs: 1, source,
      ...(feedback === null ? {} : { feedbackTime: 5_000 - i }),
    })),
  );
}

const KEYS = ['failures', 'ratedCount', 'ratedSum', 'judgeCount', 'judgeSum', 'implicitCount', 'implicitSum'] as const;

/**
 * `pastMark`: the traces after t9 are past SQLite's fill mark, so its migration leaves them out of the
 * record (the store reads them from `traces` until its next fill).
 */
async function expectCarriedForward(
  store: TraceStore,
  record: () => Promise<Record<string, unknown>[]>,
  indexSql: () => Promise<string>,
  pastMark: boolean,
) {
  expect(await indexSql()).toMatch(/CASE\s+WHEN/i);
  const byKey = (rows: Record<string, unknown>[]) =>
    Object.fromEntries(rows.map(({ query_class, model_key, source, ...sums }) => [`${query_class}/${model_key}/${source}`, Object.values(sums).map(Number)]));
  // query class/model/source: observations, failures, rated, judge, implicit (count, sum).
  expect(byKey(await record())).toEqual({
    'short/a/live': [6, 2, 2, 1.75, 1, 0.5, 1, 0.25],
    'short/a/offline': [1, 0, 1, 0.5, 0, 0, 0, 0],
    'code/b/live': [1, 0, 1, 0, 0, 0, 0, 0],
    ...(pastMark ? {} : { 'code//live': [1, 1, 0, 0, 0, 0, 0, 0] }),
  });
  const fake = brute();
  for (const decay of [undefined, 0.5]) {
    const got = await store.qualityEvidence({ source: 'live', decay });
    const want = (await fake.qualityEvidence({ source: 'live', decay })).filter((r) => r.model !== '');
    // What was purged: 7 pieces (2 failures, 4 rated by a person, 1 by the judge) behind the stored ones, evenly spread.
    const a = want.find((r) => r.model === 'a')!;
    const g = decay ?? 1;
    const scale = g === 1 ? 1 : (Math.pow(g, a.observations) * (1 - Math.pow(g, 7))) / (1 - g) / 7;
    Object.assign(a, {
      observations: a.observations + 7, failures: a.failures + 2 * scale, ratedCount: a.ratedCount + 4 * scale,
      ratedSum: a.ratedSum + 2.5 * scale, judgeCount: a.judgeCount + scale, judgeSum: a.judgeSum + 0.5 * scale,
    });
    want.sort((x, y) => (`${x.queryClass}/${x.model}` < `${y.queryClass}/${y.model}` ? -1 : 1));
    expect(got.map((r) => [r.queryClass, r.model, r.observations])).toEqual(want.map((r) => [r.queryClass, r.model, r.observations]));
    got.forEach((r: QualityEvidence, i) => {
      for (const k of KEYS) expect(r[k], `${decay} ${r.model} ${k}`).toBeCloseTo(want[i]![k], 12);
    });
  }
  // The triggers are in place: an unrated trace rated now moves the record (SQLite's filled up by the reads above).
  await store.setFeedback('t3', { score: 0.5, comment: null, time: 9_000, source: 'judge' });
  expect(byKey(await record())['short/a/live']).toEqual([7, 2, 2, 1.75, 2, 1, 1, 0.25]);
}

const RECORD = `SELECT query_class, model_key, source, observations, failures, rated_count, rated_sum, judge_count, judge_sum,
  implicit_count, implicit_sum FROM quality_record ORDER BY 1, 2, 3`;

describe('the quality_record migration', () => {
  it('SQLite: carries a store made before it forward', async () => {
    const d = dir();
    const path = join(d, 'traces.db');
    const raw = new Database(path);
    sqliteMigrate(sqliteDrizzle(raw), { migrationsFolder: migrationsUpTo(d, '0005_feedback_source') });
    const insert = raw.prepare(INSERT.replace(/\$\d+/g, '?'));
    ROWS.forEach((r, i) => {
      insert.run(...params(r, i, 1));
      // The store's fill had come up to t9; the last two are past it.
      if (r[0] === 't9') {
        raw.exec(`INSERT INTO trace_arms (query_class, model_key, seq, live, latency_ms)
          SELECT query_class, model_key, seq, source = 'live', latency_ms FROM traces`);
        raw.exec(`INSERT INTO trace_stats SELECT query_class, model_key, instance_id, COUNT(*), SUM(outcome = 'success'),
          SUM(feedback IS NOT NULL), COALESCE(SUM(feedback), 0), 0, 0, 0, MAX(time) FROM traces GROUP BY 1, 2, 3`);
        raw.exec('UPDATE trace_arms_filled SET seq = (SELECT MAX(seq) FROM traces) WHERE id = 1');
      }
    });
    raw.prepare(PURGED).run();
    raw.exec(OLD_INDEX);
    raw.close();
    const store = new SqliteTraceStore({ path });
    try {
      await expectCarriedForward(
        store,
        async () => store.db.prepare(RECORD).all() as Record<string, unknown>[],
        async () => (store.db.prepare(`SELECT sql FROM sqlite_master WHERE name = 'traces_quality_idx'`).pluck().get() as string),
        true,
      );
    } finally {
      await store.close();
    }
  });

  it.skipIf(pgSkip !== null)(`PostgreSQL: carries a store made before it forward${pgSkip ? ` — skipped: ${pgSkip}` : ''}`, async () => {
    const db = await createTestDatabase();
    const d = dir();
    try {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        await pgMigrate(pgDrizzle(client), { migrationsFolder: migrationsUpTo(d, '0004_feedback_source', 'pg') });
        for (const [i, r] of ROWS.entries()) await client.query(INSERT, params(r, i, true));
        await client.query(PURGED);
        await client.query(OLD_INDEX);
      } finally {
        await client.end();
      }
      const store = await PgTraceStore.open({ url: db.url, spoolPath: join(d, 'spool.db') });
      try {
        await expectCarriedForward(
          store,
          () => db.query(RECORD),
          async () => (await db.query<{ indexdef: string }>(`SELECT indexdef FROM pg_indexes WHERE indexname = 'traces_quality_idx'`))[0]!.indexdef,
          false,
        );
      } finally {
        await store.close();
      }
    } finally {
      await db.drop();
    }
  });
});
