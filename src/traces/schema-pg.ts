import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  doublePrecision,
  index,
  integer,
  pgTable,
  primaryKey,
  text,
  uniqueIndex,
  type PgColumnBuilderBase,
} from 'drizzle-orm/pg-core';
import { TRACE_COLUMNS, type TraceColumnSpec, type TraceField } from './trace-columns.js';
import { EVIDENCE_TIME } from './quality-evidence.js';

/** A trace column as drizzle declares it for PostgreSQL: its name, type, NOT NULL and default from the description. */
function traceColumn(c: TraceColumnSpec): PgColumnBuilderBase {
  const types = {
    text: () => text(c.column),
    int4: () => integer(c.column),
    int8: () => bigint(c.column, { mode: 'number' }),
    float8: () => doublePrecision(c.column),
    bool: () => boolean(c.column),
  } as const;
  let column = types[c.pg]();
  if (!c.nullable) column = column.notNull() as typeof column;
  // Every column's builder takes a text default; the union of their signatures cannot say so.
  if (c.default !== undefined) column = (column as unknown as { default(value: string): typeof column }).default(c.default);
  return column;
}

/** The trace's columns (src/traces/trace-columns.ts), by field. */
const traceColumns = Object.fromEntries((TRACE_COLUMNS as readonly TraceColumnSpec[]).map((c) => [c.field, traceColumn(c)])) as Record<
  TraceField,
  PgColumnBuilderBase
>;

/**
 * The PostgreSQL trace table: `seq`, then the trace's columns, as in `schema.ts` (SQLite). Times are epoch
 * milliseconds. `seq` (bigserial) is the fleet-wide order in which traces were committed, which is
 * what per-arm forgetting counts in; `time` is when the request arrived.
 */
export const traces = pgTable(
  'traces',
  {
    seq: bigserial('seq', { mode: 'number' }).primaryKey(),
    ...traceColumns,
  },
  (t) => [
    uniqueIndex('traces_id_idx').on(t.id),
    index('traces_time_idx').on(t.time),
    // A `previous_response_id` finds the trace of the answer it continues.
    index('traces_response_id_idx').on(t.responseId).where(sql`${t.responseId} IS NOT NULL`),
    // Per-arm order: an arm's newest traces and its first one are index scans. Migrations 0002 and
    // 0004 make it cover the columns a policy sync reads (INCLUDE, which drizzle's schema cannot say).
    index('traces_class_model_seq_idx').on(t.queryClass, t.modelKey, t.seq),
    // Offline evidence (imported evaluation results) is read on every sync: its few rows, not the table.
    index('traces_offline_idx').on(t.queryClass, t.modelKey, t.seq).where(sql`${t.source} = 'offline'`),
    // The quality evidence (failures and rated traces: QUALITY_EVIDENCE_ROW) per arm and source in the
    // order it arrived (EVIDENCE_TIME, then seq): an arm's newest pieces are one index range read
    // backwards. Its migration makes it cover what `qualityEvidence` reads (INCLUDE), so that read is an
    // index-only scan. Unrated successful traces are not in it.
    index('traces_quality_idx')
      .on(t.queryClass, t.modelKey, t.source, sql`(${sql.raw(EVIDENCE_TIME)})`, t.seq)
      .where(sql`(${t.outcome} <> 'refused' AND (${t.outcome} <> 'success' OR ${t.feedback} IS NOT NULL))`),
  ],
);

/**
 * What `tracegate purge` deleted, summed per class × model, so the policy keeps its statistics.
 * Plain sums (no forgetting): purged traces are older than every trace still stored.
 */
export const purgedEvidence = pgTable(
  'purged_evidence',
  {
    queryClass: text('query_class').notNull(),
    modelKey: text('model_key').notNull(),
    count: bigint('count', { mode: 'number' }).notNull(),
    successes: doublePrecision('successes').notNull(),
    quality: doublePrecision('quality').notNull(),
    feedbackCount: doublePrecision('feedback_count').notNull(),
    feedbackSum: doublePrecision('feedback_sum').notNull(),
    costSum: doublePrecision('cost_sum').notNull(),
    costCount: doublePrecision('cost_count').notNull(),
    latencySumMs: doublePrecision('latency_sum_ms').notNull(),
    lastTime: bigint('last_time', { mode: 'number' }).notNull(),
    /** The successful traces with feedback and the sum of it, per source: a person's (`human`, `offline`, none), a judge's, implicit. */
    ratedCount: doublePrecision('rated_count').notNull().default(0),
    ratedSum: doublePrecision('rated_sum').notNull().default(0),
    judgeCount: doublePrecision('judge_count').notNull().default(0),
    judgeSum: doublePrecision('judge_sum').notNull().default(0),
    implicitCount: doublePrecision('implicit_count').notNull().default(0),
    implicitSum: doublePrecision('implicit_sum').notNull().default(0),
    /** Of the purged traces that failed, those `refused` (no quality evidence). */
    refused: doublePrecision('refused').notNull().default(0),
  },
  (t) => [uniqueIndex('purged_evidence_arm_idx').on(t.queryClass, t.modelKey)],
);

/**
 * How many traces each class × model × source has, kept by statement triggers on `traces` (see the
 * custom migration in drizzle/pg): a policy sync reads an arm's count here instead of counting its
 * traces, so its cost does not grow with the table. Read in the same snapshot as the traces.
 */
export const armCounts = pgTable(
  'arm_counts',
  {
    queryClass: text('query_class').notNull(),
    modelKey: text('model_key').notNull(),
    source: text('source').notNull(),
    count: bigint('count', { mode: 'number' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.queryClass, t.modelKey, t.source] })],
);

/**
 * Each arm's whole quality record per trace source: the sums of `qualityEvidence` without forgetting
 * over the stored traces (what `purge` deleted is in `purged_evidence`). Triggers on `traces` (in the
 * migration) keep it, as they keep `arm_counts`: an insert statement adds its quality evidence, a
 * change of a trace's feedback or outcome moves the trace's share, a delete takes it out, a truncate
 * empties it. Read in the same snapshot as the traces.
 */
export const qualityRecord = pgTable(
  'quality_record',
  {
    queryClass: text('query_class').notNull(),
    modelKey: text('model_key').notNull(),
    /** The traces' source: `live` or `offline`. */
    source: text('source').notNull(),
    /** Failures and rated successes. */
    observations: bigint('observations', { mode: 'number' }).notNull(),
    failures: bigint('failures', { mode: 'number' }).notNull(),
    /** Successes rated by a person (`human`, `offline`, or no source recorded), and the sum of their scores. */
    ratedCount: bigint('rated_count', { mode: 'number' }).notNull(),
    ratedSum: doublePrecision('rated_sum').notNull(),
    judgeCount: bigint('judge_count', { mode: 'number' }).notNull(),
    judgeSum: doublePrecision('judge_sum').notNull(),
    implicitCount: bigint('implicit_count', { mode: 'number' }).notNull(),
    implicitSum: doublePrecision('implicit_sum').notNull(),
  },
  (t) => [primaryKey({ columns: [t.queryClass, t.modelKey, t.source] })],
);

/**
 * Conversations that stay on one model (`router.sticky`), shared by the fleet: the model that
 * answered a session's last routed turn, until `expires_at` (epoch milliseconds; each turn moves it on).
 */
export const stickySessions = pgTable(
  'sticky_sessions',
  {
    /** The session's key: a hash of the caller and the session id (or of the conversation's first messages). */
    session: text('session').primaryKey(),
    modelKey: text('model_key').notNull(),
    expiresAt: bigint('expires_at', { mode: 'number' }).notNull(),
  },
  (t) => [index('sticky_sessions_expires_idx').on(t.expiresAt)],
);
