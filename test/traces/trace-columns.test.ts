import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTableConfig as sqliteTableConfig } from 'drizzle-orm/sqlite-core';
import { getTableConfig as pgTableConfig } from 'drizzle-orm/pg-core';
import { PgTraceStore } from '../../src/traces/pg-store.js';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import { traces as sqliteTraces } from '../../src/traces/schema.js';
import { traces as pgTraces } from '../../src/traces/schema-pg.js';
import { newTrace, TRACE_COLUMNS, TRACE_DEFAULTS, type TraceColumnSpec } from '../../src/traces/trace-columns.js';
import { TRACE_FIELDS, toLine } from '../../src/traces/interchange.js';
import { createTestDatabase, pgUnavailable, type TestDatabase } from '../helpers/services.js';

/**
 * The description of a trace (src/traces/trace-columns.ts) against the tables the migrations make
 * (drizzle/sqlite, drizzle/pg): the same columns in the same order, of the same types, NULL where it
 * says nullable, with its defaults. A migration that adds a column the description lacks, or the
 * other way round, fails here.
 */

const COLUMNS: readonly TraceColumnSpec[] = TRACE_COLUMNS;
const pgSkip = await pgUnavailable();

/** A column as both checks compare it. */
interface Shape {
  name: string;
  type: string;
  notNull: boolean;
  default: string | null;
}

function described(type: (c: TraceColumnSpec) => string): Shape[] {
  return COLUMNS.map((c) => ({
    name: c.column,
    type: type(c),
    notNull: c.nullable !== true,
    default: c.default === undefined ? null : `'${c.default}'`,
  }));
}

describe('the description of a trace', () => {
  it('matches the migrated SQLite table: names, order, types, NOT NULL and defaults', async () => {
    const store = new SqliteTraceStore({ path: ':memory:' });
    try {
      const info = store.db.prepare(`PRAGMA table_info('traces')`).all() as {
        name: string;
        type: string;
        notnull: number;
        dflt_value: string | null;
      }[];
      const migrated = info
        .filter((r) => r.name !== 'seq')
        .map((r) => ({ name: r.name, type: r.type.toLowerCase(), notNull: r.notnull === 1, default: r.dflt_value }));
      expect(migrated).toEqual(described((c) => c.sqlite));
    } finally {
      await store.close();
    }
  });

  describe.skipIf(pgSkip !== null)(`PostgreSQL${pgSkip ? ` (skipped: ${pgSkip})` : ''}`, () => {
    let db: TestDatabase;
    beforeAll(async () => {
      db = await createTestDatabase();
    });
    afterAll(async () => {
      await db?.drop();
    });

    it('matches the migrated PostgreSQL table: names, order, types, NOT NULL and defaults', async () => {
      const store = await PgTraceStore.open({ url: db.url, spoolPath: ':memory:', poolSize: 1 });
      await store.close();
      const rows = await db.query<{ column_name: string; udt_name: string; is_nullable: string; column_default: string | null }>(
        `SELECT column_name, udt_name, is_nullable, column_default FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = 'traces' ORDER BY ordinal_position`,
      );
      const migrated = rows
        .filter((r) => r.column_name !== 'seq')
        .map((r) => ({
          name: r.column_name,
          type: r.udt_name,
          notNull: r.is_nullable === 'NO',
          // PostgreSQL shows a text default with its cast: 'live'::text.
          default: r.column_default?.replace(/::text$/, '') ?? null,
        }));
      expect(migrated).toEqual(described((c) => c.pg));
    });
  });

  it('is the drizzle schemas\' trace table, column for column, after `seq`', () => {
    for (const config of [sqliteTableConfig(sqliteTraces), pgTableConfig(pgTraces)]) {
      const columns = config.columns.map((c) => ({ name: c.name, notNull: c.notNull, default: c.default ?? null }));
      expect(columns[0]!.name).toBe('seq');
      expect(columns.slice(1)).toEqual(
        COLUMNS.map((c) => ({ name: c.column, notNull: c.nullable !== true, default: c.default ?? null })),
      );
    }
  });

  it('gives a new trace its defaults, and an export line its keys in column order', () => {
    const trace = newTrace({
      id: 'T1', time: 1, requestId: 'r', queryLength: 0, queryClass: 'short', modelKey: 'a', upstreamModel: 'a-model',
      routed: true, reason: 'learned', attempt: 1, outcome: 'success', latencyMs: 1,
    });
    expect(trace).toMatchObject(TRACE_DEFAULTS);
    expect(trace.source).toBe('live');
    expect(trace.feedback).toBeNull();
    expect(Object.keys(trace).sort()).toEqual(COLUMNS.map((c) => c.field).sort());
    expect(Object.keys(toLine(trace))).toEqual(TRACE_FIELDS);
    expect(TRACE_FIELDS).toEqual(COLUMNS.map((c) => c.json));
  });
});
