import { z } from 'zod';

/**
 * The one description of a trace: per column of the `traces` table, the field of `TraceRecord`, the
 * SQL column (the same in SQLite and PostgreSQL), its declared type in each database, whether it may
 * be NULL and its default, and its key in the export format (src/traces/interchange.ts). The record's
 * type, its defaults (`newTrace`), both stores' column lists and row mapping, the export format and its
 * validation, and the drizzle schemas are derived from it; the migrations are checked against it
 * (test/traces/trace-columns.test.ts). The order is the tables' column order and the export's.
 */

/** A column's declared type in the SQLite migrations. */
export type SqliteType = 'text' | 'integer' | 'real';
/** A column's type in the PostgreSQL migrations (`udt_name`; also the cast of the stores' array parameters). */
export type PgType = 'text' | 'int4' | 'int8' | 'float8' | 'bool';

export interface TraceColumnSpec {
  /** The field of `TraceRecord`. */
  readonly field: string;
  /** The column in both databases. */
  readonly column: string;
  /** The key in an exported trace (a JSONL line's object, the CSV header). */
  readonly json: string;
  readonly sqlite: SqliteType;
  readonly pg: PgType;
  /** What a value may be: an import validates against it, and its output type is the field's type. */
  readonly value: z.ZodType;
  /** The column may be NULL: a trace made or imported without it has null. */
  readonly nullable?: true;
  /** The column's default in both databases: a trace made or imported without it has this. */
  readonly default?: string;
}

function column<const C extends TraceColumnSpec>(spec: C): C {
  return spec;
}

/**
 * How an attempt ended. `refused`: the model would not take the request for a reason that says
 * nothing of its answers' quality (its provider key was refused, it was rate limited, the request was
 * too big for it); it counts against availability, never against quality.
 */
const OUTCOMES = ['success', 'error', 'timeout', 'cancelled', 'refused'] as const;
const TRACE_SOURCES = ['live', 'offline'] as const;
/** Who may give feedback (their ranking is src/traces/feedback-source.ts's). */
const FEEDBACK_SOURCE_NAMES = ['human', 'judge', 'implicit', 'offline'] as const;
/** The API a request came through. */
export const ENDPOINTS = ['chat', 'responses', 'embeddings'] as const;
export type Endpoint = (typeof ENDPOINTS)[number];

const count = z.number().int().nonnegative();

export const TRACE_COLUMNS = [
  /** ULID: sortable by time. */
  column({ field: 'id', column: 'id', json: 'id', sqlite: 'text', pg: 'text', value: z.string().min(1).max(128) }),
  /** Epoch milliseconds when the request arrived. */
  column({ field: 'time', column: 'time', json: 'time', sqlite: 'integer', pg: 'int8', value: count }),
  column({ field: 'requestId', column: 'request_id', json: 'request_id', sqlite: 'text', pg: 'text', value: z.string().max(256) }),
  /** The last user message, as much as `traces.storePrompts` keeps (null for `none`). */
  column({ field: 'query', column: 'query', json: 'query', sqlite: 'text', pg: 'text', value: z.string(), nullable: true }),
  column({ field: 'queryLength', column: 'query_length', json: 'query_length', sqlite: 'integer', pg: 'int4', value: count }),
  column({ field: 'queryClass', column: 'query_class', json: 'query_class', sqlite: 'text', pg: 'text', value: z.string().min(1) }),
  column({ field: 'modelKey', column: 'model_key', json: 'model_key', sqlite: 'text', pg: 'text', value: z.string().min(1) }),
  column({ field: 'upstreamModel', column: 'upstream_model', json: 'upstream_model', sqlite: 'text', pg: 'text', value: z.string() }),
  column({ field: 'routed', column: 'routed', json: 'routed', sqlite: 'integer', pg: 'bool', value: z.boolean() }),
  column({ field: 'reason', column: 'reason', json: 'reason', sqlite: 'text', pg: 'text', value: z.string().min(1) }),
  column({ field: 'attempt', column: 'attempt', json: 'attempt', sqlite: 'integer', pg: 'int4', value: z.number().int().min(1) }),
  column({ field: 'outcome', column: 'outcome', json: 'outcome', sqlite: 'text', pg: 'text', value: z.enum(OUTCOMES) }),
  column({
    field: 'status', column: 'status', json: 'status', sqlite: 'integer', pg: 'int4',
    value: z.number().int().min(100).max(599), nullable: true,
  }),
  column({ field: 'error', column: 'error', json: 'error', sqlite: 'text', pg: 'text', value: z.string(), nullable: true }),
  column({ field: 'latencyMs', column: 'latency_ms', json: 'latency_ms', sqlite: 'real', pg: 'float8', value: z.number().nonnegative() }),
  column({
    field: 'ttfbMs', column: 'ttfb_ms', json: 'ttfb_ms', sqlite: 'real', pg: 'float8', value: z.number().nonnegative(), nullable: true,
  }),
  column({ field: 'promptTokens', column: 'prompt_tokens', json: 'prompt_tokens', sqlite: 'integer', pg: 'int4', value: count, nullable: true }),
  column({
    field: 'completionTokens', column: 'completion_tokens', json: 'completion_tokens', sqlite: 'integer', pg: 'int4',
    value: count, nullable: true,
  }),
  column({
    field: 'costUsd', column: 'cost_usd', json: 'cost_usd', sqlite: 'real', pg: 'float8', value: z.number().nonnegative(), nullable: true,
  }),
  column({
    field: 'feedback', column: 'feedback', json: 'feedback', sqlite: 'real', pg: 'float8', value: z.number().min(0).max(1), nullable: true,
  }),
  column({ field: 'feedbackTime', column: 'feedback_time', json: 'feedback_time', sqlite: 'integer', pg: 'int8', value: count, nullable: true }),
  column({
    field: 'feedbackComment', column: 'feedback_comment', json: 'feedback_comment', sqlite: 'text', pg: 'text',
    value: z.string(), nullable: true,
  }),
  /** The name of the client key that made the request (never the key; null without client keys). */
  column({ field: 'keyName', column: 'key_name', json: 'key_name', sqlite: 'text', pg: 'text', value: z.string(), nullable: true }),
  /** `live` for traffic, `offline` for evaluation results imported as prior evidence. */
  column({ field: 'source', column: 'source', json: 'source', sqlite: 'text', pg: 'text', value: z.enum(TRACE_SOURCES), default: 'live' }),
  /** The gateway instance that recorded the trace (config `instanceId`). */
  column({ field: 'instanceId', column: 'instance_id', json: 'instance_id', sqlite: 'text', pg: 'text', value: z.string(), nullable: true }),
  /**
   * Who gave the feedback (null when there is none). Feedback stored before sources were recorded
   * has none either, and counts as `human`.
   */
  column({
    field: 'feedbackSource', column: 'feedback_source', json: 'feedback_source', sqlite: 'text', pg: 'text',
    value: z.enum(FEEDBACK_SOURCE_NAMES), nullable: true,
  }),
  /**
   * Whether the token counts were estimated from the text (characters / 4: a stream from a model with
   * `streamUsage: false` whose upstream sent no usage) rather than counted by the upstream; null when
   * the trace has no token counts.
   */
  column({
    field: 'tokensEstimated', column: 'tokens_estimated', json: 'tokens_estimated', sqlite: 'integer', pg: 'bool',
    value: z.boolean(), nullable: true,
  }),
  /** The API the request came through: `chat` (/v1/chat/completions), `responses` (/v1/responses), `embeddings`. */
  column({ field: 'endpoint', column: 'endpoint', json: 'endpoint', sqlite: 'text', pg: 'text', value: z.enum(ENDPOINTS), default: 'chat' }),
  /**
   * The id of the upstream's answer on /v1/responses (`resp_…`): a later request with this
   * `previous_response_id` goes to the model that holds the state. Null elsewhere.
   */
  column({ field: 'responseId', column: 'response_id', json: 'response_id', sqlite: 'text', pg: 'text', value: z.string().max(256), nullable: true }),
  /** The size of the request body the client sent, in bytes (what a model refused as too big is learned from it). */
  column({ field: 'requestBytes', column: 'request_bytes', json: 'request_bytes', sqlite: 'integer', pg: 'int4', value: count, nullable: true }),
] as const;

export type TraceColumn = (typeof TRACE_COLUMNS)[number];
export type TraceField = TraceColumn['field'];

/** The value of a column's field: its validator's output, or null for a nullable column. */
type FieldValue<C extends TraceColumn> = C extends { nullable: true } ? z.output<C['value']> | null : z.output<C['value']>;

/** One upstream attempt, as the rest of tracegate knows it (one field per column). */
export type TraceRecord = { -readonly [C in TraceColumn as C['field']]: FieldValue<C> };

/** A `traces` row as both SQL engines return it (a bool column reads as 0/1 from SQLite, as a boolean from PostgreSQL). */
export type TraceRow = {
  -readonly [C in TraceColumn as C['column']]: C['pg'] extends 'bool' ? number | boolean : FieldValue<C>;
};

/** The columns a trace may be made or imported without: nullable, or with a default. */
type OptionalColumn = Extract<TraceColumn, { nullable: true } | { default: string }>;
export type OptionalTraceField = OptionalColumn['field'];
/** The fields every new trace must be given. */
export type RequiredTraceFields = Omit<TraceRecord, OptionalTraceField>;

/** A bool column is an integer (0 or 1) in SQLite. */
export function isBooleanColumn(c: TraceColumnSpec): boolean {
  return c.pg === 'bool';
}

/** What a trace has in each optional column when it is made or imported without it. */
export const TRACE_DEFAULTS = Object.freeze(
  Object.fromEntries(
    TRACE_COLUMNS.filter((c: TraceColumnSpec) => c.nullable === true || c.default !== undefined).map((c: TraceColumnSpec) => [
      c.field,
      c.default ?? null,
    ]),
  ),
) as Readonly<Pick<TraceRecord, OptionalTraceField>>;

/**
 * A new trace: the required fields and any others given, every other column at its default (null,
 * or the column's default), so a column with a default needs nothing here.
 */
export function newTrace(fields: RequiredTraceFields & Partial<TraceRecord>): TraceRecord {
  return { ...TRACE_DEFAULTS, ...fields };
}
