import { afterAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { PgTraceStore } from '../../src/traces/pg-store.js';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import type { QualityEvidenceQuery } from '../../src/traces/quality-evidence.js';
import { tempDir } from '../helpers/gateway.js';
import { createTestDatabase, pgUnavailable } from '../helpers/services.js';

/**
 * How the stores read quality evidence: the whole record from `quality_record` (on SQLite with the
 * traces past its fill mark, a rowid range), and with forgetting each arm's newest pieces as a
 * backward range read of `traces_quality_idx`: never a scan of `traces`. What they answer is checked against brute force in the conformance
 * suite (test/traces/quality-conformance.ts).
 */

const pgSkip = await pgUnavailable();
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const COUNT = 40_000;
/** Traces over 5 classes × 4 models, two in three rated, 1 in 25 failed, 1 in 23 offline: the SELECT of an INSERT, over `i`. */
const COLUMNS = (text: (pg: string, sqlite: string) => string) => `
  ${text(`'T' || lpad(i::text, 25, '0')`, `printf('T%025d', i)`)}, 1700000000000 + i * 10, 'r', 1,
  CASE i % 5 WHEN 0 THEN 'code' WHEN 1 THEN 'math' WHEN 2 THEN 'short' WHEN 3 THEN 'long' ELSE 'general' END,
  CASE (i / 5) % 4 WHEN 0 THEN 'mini' WHEN 1 THEN 'pro' WHEN 2 THEN 'coder' ELSE 'budget' END,
  'u', ${text('true', '1')}, 'learned', 1, CASE WHEN i % 25 = 0 THEN 'error' ELSE 'success' END, 10,
  CASE WHEN i % 3 > 0 THEN (i % 10) / 10.0 END, CASE WHEN i % 3 > 0 THEN 1700000000000 + i * 10 + (i % 7) * 1000 END,
  CASE WHEN i % 3 > 0 THEN CASE (i / 3) % 3 WHEN 0 THEN 'human' WHEN 1 THEN 'judge' ELSE 'implicit' END END,
  CASE WHEN i % 23 = 1 THEN 'offline' ELSE 'live' END`;
const INSERT = `INSERT INTO traces (id, time, request_id, query_length, query_class, model_key, upstream_model, routed, reason,
  attempt, outcome, latency_ms, feedback, feedback_time, feedback_source, source)`;

const READS: [string, QualityEvidenceQuery, boolean][] = [
  ['the live record', { source: 'live' }, false],
  ['the whole record', {}, false],
  ['live, with forgetting', { source: 'live', decay: Math.pow(2, -1 / 50) }, true],
  ['live and offline, with forgetting', { decay: 0.9 }, true],
  ['offline, with forgetting', { source: 'offline', decay: 0.5 }, true],
];

describe('quality evidence reads', () => {
  it('SQLite: the record reads only the traces past the fill mark; forgetting seeks each arm along the covering index; no scan of traces', async () => {
    const store = new SqliteTraceStore({ path: ':memory:' });
    try {
      store.db.exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${COUNT - 1})
        ${INSERT} SELECT ${COLUMNS((_pg, sqlite) => sqlite)} FROM n`);
      store.db.exec('ANALYZE');
      const prepare = store.db.prepare.bind(store.db);
      // The fill of trace_arms, trace_stats and quality_record: the traces it adds by rowid.
      const filling: string[] = [];
      store.db.prepare = ((text: string) => {
        filling.push(text);
        return prepare(text);
      }) as typeof store.db.prepare;
      await store.recentByArm(1);
      store.db.prepare = prepare;
      const fill = filling.find((t) => t.includes('INSERT INTO quality_record'))!;
      expect((prepare(`EXPLAIN QUERY PLAN ${fill}`).all(0, 1) as { detail: string }[]).map((r) => r.detail)).toContain(
        'SEARCH traces USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)',
      );
      const seek = 'SEARCH traces USING COVERING INDEX traces_quality_idx (query_class=? AND model_key=? AND source=?)';
      const pastMark = 'SEARCH traces USING INTEGER PRIMARY KEY (rowid>?)';
      for (const [what, query, perArm] of READS) {
        const texts: string[] = [];
        store.db.prepare = ((text: string) => {
          texts.push(text);
          return prepare(text);
        }) as typeof store.db.prepare;
        try {
          // Each statement is prepared at its first use: what this read adds to the earlier ones'.
          expect((await store.qualityEvidence(query)).length, what).toBe(20);
        } finally {
          store.db.prepare = prepare;
        }
        const seeks: number[] = [];
        for (const text of texts.filter((t) => /\bFROM traces\b/.test(t))) {
          const params = text.includes('@keep') ? { queryClass: 'code', model: 'mini', keep: 3200, decay: 0.9 } : {};
          const plan = (prepare(`EXPLAIN QUERY PLAN ${text}`).all(params) as { detail: string }[]).map((r) => r.detail);
          expect(plan.filter((d) => /\btraces\b/.test(d) && d !== seek && d !== pastMark), `${what}: ${plan.join(' | ')}`).toEqual([]);
          if (plan.includes(seek)) seeks.push(plan.filter((d) => d === seek).length);
        }
        expect(seeks, what).toEqual(perArm ? [query.source === undefined ? 2 : 1] : []);
      }
    } finally {
      await store.close();
    }
  });

  it.skipIf(pgSkip !== null)(`PostgreSQL: the record reads no trace; forgetting is an index-only scan backwards per arm${pgSkip ? ` — skipped: ${pgSkip}` : ''}`, async () => {
    const db = await createTestDatabase();
    const dir = tempDir();
    dirs.push(dir);
    const store = await PgTraceStore.open({ url: db.url, spoolPath: join(dir, 'spool.db') });
    try {
      await store.pool.query(`${INSERT} SELECT ${COLUMNS((pgText) => pgText)} FROM generate_series(0, ${COUNT - 1}) i`);
      await store.pool.query('VACUUM ANALYZE traces');
      const query = store.pool.query.bind(store.pool);
      for (const [what, q, perArm] of READS) {
        const sent: [string, unknown[]][] = [];
        store.pool.query = ((text: string, params: unknown[]) => {
          sent.push([text, params]);
          return query(text, params);
        }) as typeof store.pool.query;
        try {
          expect((await store.qualityEvidence(q)).length, what).toBe(20);
        } finally {
          store.pool.query = query;
        }
        const onTraces = sent.filter(([text]) => /\bFROM traces\b/.test(text));
        expect(onTraces.length, what).toBe(perArm ? 1 : 0);
        for (const [text, params] of onTraces) {
          const plan = ((await query(`EXPLAIN ${text}`, params)) as pg.QueryResult<{ 'QUERY PLAN': string }>).rows.map((r) => r['QUERY PLAN']).join('\n');
          expect(plan.match(/Index Only Scan Backward using traces_quality_idx on traces/g)?.length, `${what}:\n${plan}`).toBe(q.source === undefined ? 2 : 1);
          expect(plan, what).not.toMatch(/Seq Scan on traces|Bitmap Heap Scan on traces/);
        }
      }
    } finally {
      await store.close();
      await db.drop();
    }
  });
});
