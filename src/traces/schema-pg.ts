import { sql } from 'drizzle-orm';
import { bigint, bigserial, boolean, doublePrecision, index, integer, pgTable, primaryKey, text, uniqueIndex } from 'drizzle-orm/pg-core';
import { EVIDENCE_TIME } from './quality-evidence.js';

/**
 * The PostgreSQL trace table, mirroring `schema.ts` (SQLite) column for column. Times are epoch
 * milliseconds. `seq` (bigserial) is the fleet-wide order in which traces were committed, which is
 * what per-arm forgetting counts in; `time` is when the request arrived.
 */
export const traces = pgTable(
  'traces',
  {
    seq: bigserial('seq', { mode: 'number' }).primaryKey(),
    id: text('id').notNull(),
    time: bigint('time', { mode: 'number' }).notNull(),
    requestId: text('request_id').notNull(),
    query: text('query'),
    queryLength: integer('query_length').notNull(),
    queryClass: text('query_class').notNull(),
    modelKey: text('model_key').notNull(),
    upstreamModel: text('upstream_model').notNull(),
    routed: boolean('routed').notNull(),
    reason: text('reason').notNull(),
    attempt: integer('attempt').notNull(),
    outcome: text('outcome', { enum: ['success', 'error', 'timeout', 'cancelled'] }).notNull(),
    status: integer('status'),
    error: text('error'),
    latencyMs: doublePrecision('latency_ms').notNull(),
    ttfbMs: doublePrecision('ttfb_ms'),
    promptTokens: integer('prompt_tokens'),
    completionTokens: integer('completion_tokens'),
    costUsd: doublePrecision('cost_usd'),
    feedback: doublePrecision('feedback'),
    feedbackTime: bigint('feedback_time', { mode: 'number' }),
    feedbackComment: text('feedback_comment'),
    /** The name of the client key that made the request (never the key). */
    keyName: text('key_name'),
    /** `live` for traffic, `offline` for evaluation results imported as prior evidence. */
    source: text('source', { enum: ['live', 'offline'] }).notNull().default('live'),
    /** The gateway instance that recorded the trace (config `instanceId`). */
    instanceId: text('instance_id'),
    /** Who gave the feedback (null without feedback; feedback from before this column counts as `human`). */
    feedbackSource: text('feedback_source', { enum: ['human', 'judge', 'implicit', 'offline'] }),
  },
  (t) => [
    uniqueIndex('traces_id_idx').on(t.id),
    index('traces_time_idx').on(t.time),
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
      .where(sql`(${t.outcome} <> 'success' OR ${t.feedback} IS NOT NULL)`),
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
