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
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import type { TraceStore } from '../../src/traces/types.js';
import { tempDir } from '../helpers/gateway.js';
import { migrationsUpTo } from '../helpers/migrations.js';
import { createTestDatabase, pgUnavailable } from '../helpers/services.js';

/**
 * Stores made before feedback sources: the migration gives the feedback they hold the source it
 * came from then (evaluation results on offline traces, POST /feedback on the others) and counts
 * what was purged as a person's feedback.
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

/** Rows as a version before feedback sources wrote them: with and without feedback, live and offline. */
const ROWS = [
  { id: 'live-rated', source: 'live', feedback: 0.75 },
  { id: 'live-unrated', source: 'live', feedback: null },
  { id: 'offline-rated', source: 'offline', feedback: 0.5 },
  { id: 'offline-unrated', source: 'offline', feedback: null },
] as const;

const INSERT = `INSERT INTO traces (id, time, request_id, query_length, query_class, model_key, upstream_model, routed, reason,
  attempt, outcome, latency_ms, feedback, source) VALUES ($1, 1, 'r', 1, 'short', 'a', 'a', $2, 'learned', 1, 'success', 1, $3, $4)`;
const PURGED = `INSERT INTO purged_evidence (query_class, model_key, count, successes, quality, feedback_count, feedback_sum,
  cost_sum, cost_count, latency_sum_ms, last_time) VALUES ('short', 'a', 10, 8, 7, 4, 2.5, 0, 0, 10, 1)`;

async function expectCarriedForward(store: TraceStore, purged: Record<string, number>) {
  expect(await store.get('live-rated')).toMatchObject({ feedback: 0.75, feedbackSource: 'human' });
  expect(await store.get('live-unrated')).toMatchObject({ feedback: null, feedbackSource: null });
  expect(await store.get('offline-rated')).toMatchObject({ feedback: 0.5, feedbackSource: 'offline' });
  expect(await store.get('offline-unrated')).toMatchObject({ feedback: null, feedbackSource: null });
  expect(purged).toEqual({ rated_count: 4, rated_sum: 2.5, judge_count: 0, judge_sum: 0, implicit_count: 0, implicit_sum: 0 });
  // Both rated traces count as a person's, with what was purged.
  const [arm] = await store.evidence();
  expect(arm).toMatchObject({ ratedCount: 2 + 4, ratedSum: 0.75 + 0.5 + 2.5, judgeCount: 0, implicitCount: 0 });
}

const PURGED_SUMS = 'SELECT rated_count, rated_sum, judge_count, judge_sum, implicit_count, implicit_sum FROM purged_evidence';

describe('the feedback_source migration', () => {
  it('SQLite: carries a store made before it forward', async () => {
    const d = dir();
    const path = join(d, 'traces.db');
    const raw = new Database(path);
    sqliteMigrate(sqliteDrizzle(raw), { migrationsFolder: migrationsUpTo(d, '0004_trace_stats') });
    const insert = raw.prepare(INSERT.replace(/\$\d/g, '?'));
    for (const r of ROWS) insert.run(r.id, 1, r.feedback, r.source);
    raw.prepare(PURGED).run();
    raw.close();
    const store = new SqliteTraceStore({ path });
    try {
      await expectCarriedForward(store, store.db.prepare(PURGED_SUMS).get() as Record<string, number>);
    } finally {
      await store.close();
    }
  });

  it.skipIf(pgSkip !== null)(`PostgreSQL: carries a store made before it forward, and its sync index covers the source${pgSkip ? ` — skipped: ${pgSkip}` : ''}`, async () => {
    const db = await createTestDatabase();
    const d = dir();
    try {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        await pgMigrate(pgDrizzle(client), { migrationsFolder: migrationsUpTo(d, '0003_offline_index', 'pg') });
        for (const r of ROWS) await client.query(INSERT, [r.id, true, r.feedback, r.source]);
        await client.query(PURGED);
      } finally {
        await client.end();
      }
      const store = await PgTraceStore.open({ url: db.url, spoolPath: join(d, 'spool.db') });
      try {
        await expectCarriedForward(store, (await db.query<Record<string, number>>(PURGED_SUMS))[0]!);
        const [index] = await db.query<{ indexdef: string }>(`SELECT indexdef FROM pg_indexes WHERE indexname = 'traces_class_model_seq_idx'`);
        expect(index!.indexdef).toMatch(/INCLUDE \(.*feedback_source.*\)/);
      } finally {
        await store.close();
      }
    } finally {
      await db.drop();
    }
  });
});
