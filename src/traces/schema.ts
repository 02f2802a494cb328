import { sql } from 'drizzle-orm';
import { index, integer, primaryKey, real, sqliteTable, text, uniqueIndex, type SQLiteColumnBuilderBase } from 'drizzle-orm/sqlite-core';
import { isBooleanColumn, TRACE_COLUMNS, type TraceColumnSpec, type TraceField } from './trace-columns.js';
import { EVIDENCE_TIME } from './quality-evidence.js';

/** A trace column as drizzle declares it for SQLite: its name, type, NOT NULL and default from the description. */
function traceColumn(c: TraceColumnSpec): SQLiteColumnBuilderBase {
  let column = isBooleanColumn(c)
    ? integer(c.column, { mode: 'boolean' })
    : c.sqlite === 'text'
      ? text(c.column)
      : c.sqlite === 'integer'
        ? integer(c.column)
        : real(c.column);
  if (!c.nullable) column = column.notNull() as typeof column;
  // Every column's builder takes a text default; the union of their signatures cannot say so.
  if (c.default !== undefined) column = (column as unknown as { default(value: string): typeof column }).default(c.default);
  return column;
}

/** The trace's columns (src/traces/trace-columns.ts), by field. */
const traceColumns = Object.fromEntries((TRACE_COLUMNS as readonly TraceColumnSpec[]).map((c) => [c.field, traceColumn(c)])) as Record<
  TraceField,
  SQLiteColumnBuilderBase
>;

/**
 * One row per upstream attempt: `seq`, then the trace's columns. Times are epoch milliseconds.
 * `seq` is the order in which traces were recorded (and observed by the policy), which is what
 * per-arm forgetting counts in; `time` is when the request arrived.
 */
export const traces = sqliteTable(
  'traces',
  {
    seq: integer('seq').primaryKey({ autoIncrement: true }),
    ...traceColumns,
  },
  (t) => [
    uniqueIndex('traces_id_idx').on(t.id),
    index('traces_time_idx').on(t.time),
    /** A `previous_response_id` finds the trace of the answer it continues. */
    index('traces_response_id_idx').on(t.responseId).where(sql`${t.responseId} IS NOT NULL`),
    /**
     * The quality evidence (failures and rated traces: QUALITY_EVIDENCE_ROW) per arm and source in
     * the order it arrived (EVIDENCE_TIME, then `seq`), covering what `qualityEvidence` reads of it:
     * an arm's newest pieces are one index range read backwards. Unrated successful traces are not in it.
     */
    index('traces_quality_idx')
      .on(t.queryClass, t.modelKey, t.source, sql`(${sql.raw(EVIDENCE_TIME)})`, t.seq, t.outcome, t.feedback, t.feedbackSource)
      .where(sql`(${t.outcome} <> 'refused' AND (${t.outcome} <> 'success' OR ${t.feedback} IS NOT NULL))`),
  ],
);

/**
 * Each trace's arm (query class × model), `seq` and latency, clustered by arm: the per-arm reads of a
 * policy rebuild (an arm's count, its newest traces) seek here, and `stats` reads each arm's
 * latencies in order without sorting the traces. It is filled in bulk, sorted, every few thousand
 * traces and before such a read (the store's `fillArms`), not by each commit: an index on `traces`
 * in this order had every commit dirty one page per arm, which halved the write rate. The
 * migration makes it WITHOUT ROWID (the key is the row).
 */
export const traceArms = sqliteTable(
  'trace_arms',
  {
    queryClass: text('query_class').notNull(),
    modelKey: text('model_key').notNull(),
    seq: integer('seq').notNull(),
    /** 1 for a live trace, 0 for offline evidence. */
    live: integer('live').notNull(),
    latencyMs: real('latency_ms').notNull(),
  },
  (t) => [primaryKey({ columns: [t.queryClass, t.modelKey, t.seq] })],
);

/**
 * The sums of `stats` per class × model × instance over the traces up to the fill mark, added to at
 * each fill of `trace_arms` (same transaction, same mark), so `stats` over every trace reads a few
 * rows instead of grouping them all. A trigger (in the migration) keeps the feedback sums right when
 * feedback changes on a trace already counted; a purge takes its traces' sums out (`purge --offline`
 * counts them again).
 */
export const traceStats = sqliteTable(
  'trace_stats',
  {
    queryClass: text('query_class').notNull(),
    modelKey: text('model_key').notNull(),
    instanceId: text('instance_id'),
    count: integer('count').notNull(),
    successes: integer('successes').notNull(),
    feedbackCount: integer('feedback_count').notNull(),
    feedbackSum: real('feedback_sum').notNull(),
    promptTokens: integer('prompt_tokens').notNull(),
    completionTokens: integer('completion_tokens').notNull(),
    costUsd: real('cost_usd').notNull(),
    lastTime: integer('last_time').notNull(),
  },
  (t) => [index('trace_stats_group_idx').on(t.queryClass, t.modelKey, t.instanceId)],
);

/** The highest `seq` whose arm is in `trace_arms` and whose sums are in `trace_stats` (one row, id 1). */
export const traceArmsFilled = sqliteTable('trace_arms_filled', {
  id: integer('id').primaryKey(),
  seq: integer('seq').notNull(),
});


/**
 * What `tracegate purge` deleted, summed per class × model, so the policy keeps its statistics.
 * Plain sums (no forgetting): purged traces are older than every trace still stored.
 */
export const purgedEvidence = sqliteTable('purged_evidence', {
  queryClass: text('query_class').notNull(),
  modelKey: text('model_key').notNull(),
  count: integer('count').notNull(),
  successes: real('successes').notNull(),
  quality: real('quality').notNull(),
  feedbackCount: real('feedback_count').notNull(),
  feedbackSum: real('feedback_sum').notNull(),
  costSum: real('cost_sum').notNull(),
  costCount: real('cost_count').notNull(),
  latencySumMs: real('latency_sum_ms').notNull(),
  lastTime: integer('last_time').notNull(),
  /** The successful traces with feedback and the sum of it, per source: a person's (`human`, `offline`, none), a judge's, implicit. */
  ratedCount: real('rated_count').notNull().default(0),
  ratedSum: real('rated_sum').notNull().default(0),
  judgeCount: real('judge_count').notNull().default(0),
  judgeSum: real('judge_sum').notNull().default(0),
  implicitCount: real('implicit_count').notNull().default(0),
  implicitSum: real('implicit_sum').notNull().default(0),
  /** Of the purged traces that failed, those `refused` (no quality evidence). */
  refused: real('refused').notNull().default(0),
}, (t) => [uniqueIndex('purged_evidence_arm_idx').on(t.queryClass, t.modelKey)]);

/**
 * Each arm's whole quality record per trace source: the sums of `qualityEvidence` without forgetting
 * over the stored traces up to the fill mark of `trace_arms` (what `purge` deleted is in
 * `purged_evidence`; `qualityEvidence` reads the traces past the mark itself). Like `trace_stats`, each
 * fill adds its traces, so recording a trace costs nothing more; triggers on `traces` (in the
 * migration) move a counted trace's share when its feedback or outcome changes, and take it out when
 * it is deleted.
 */
export const qualityRecord = sqliteTable(
  'quality_record',
  {
    queryClass: text('query_class').notNull(),
    modelKey: text('model_key').notNull(),
    /** The traces' source: `live` or `offline`. */
    source: text('source').notNull(),
    /** Failures and rated successes. */
    observations: integer('observations').notNull(),
    failures: integer('failures').notNull(),
    /** Successes rated by a person (`human`, `offline`, or no source recorded), and the sum of their scores. */
    ratedCount: integer('rated_count').notNull(),
    ratedSum: real('rated_sum').notNull(),
    judgeCount: integer('judge_count').notNull(),
    judgeSum: real('judge_sum').notNull(),
    implicitCount: integer('implicit_count').notNull(),
    implicitSum: real('implicit_sum').notNull(),
  },
  (t) => [primaryKey({ columns: [t.queryClass, t.modelKey, t.source] })],
);

/**
 * Conversations that stay on one model (`router.sticky`): the model that answered a session's last
 * routed turn, until `expires_at` (epoch milliseconds; each turn moves it on). Shared through the store so
 * a restart, and every instance of a fleet, keeps a conversation where it is.
 */
export const stickySessions = sqliteTable(
  'sticky_sessions',
  {
    /** The session's key: a hash of the caller and the session id (or of the conversation's first messages). */
    session: text('session').primaryKey(),
    modelKey: text('model_key').notNull(),
    expiresAt: integer('expires_at').notNull(),
  },
  (t) => [index('sticky_sessions_expires_idx').on(t.expiresAt)],
);
