import { z } from 'zod';
import { FEEDBACK_SOURCES } from './feedback-source.js';
import type { FeedbackSource, TraceRecord } from './types.js';
import { ERROR_CODES, TracegateError } from '../core/errors.js';

/**
 * The traces' file format for `tracegate export` / `tracegate import`: one JSON object per line
 * (or one CSV row), with the database's column names. Times are epoch milliseconds.
 */

/** The fields of an exported trace, in column order (the CSV header). */
export const TRACE_FIELDS = [
  'id', 'time', 'request_id', 'query', 'query_length', 'query_class', 'model_key', 'upstream_model',
  'routed', 'reason', 'attempt', 'outcome', 'status', 'error', 'latency_ms', 'ttfb_ms',
  'prompt_tokens', 'completion_tokens', 'cost_usd', 'feedback', 'feedback_time', 'feedback_comment', 'key_name',
  'source', 'instance_id', 'feedback_source',
] as const;

export type TraceLine = { [K in (typeof TRACE_FIELDS)[number]]: unknown };

export function toLine(t: TraceRecord): TraceLine {
  return {
    id: t.id,
    time: t.time,
    request_id: t.requestId,
    query: t.query,
    query_length: t.queryLength,
    query_class: t.queryClass,
    model_key: t.modelKey,
    upstream_model: t.upstreamModel,
    routed: t.routed,
    reason: t.reason,
    attempt: t.attempt,
    outcome: t.outcome,
    status: t.status,
    error: t.error,
    latency_ms: t.latencyMs,
    ttfb_ms: t.ttfbMs,
    prompt_tokens: t.promptTokens,
    completion_tokens: t.completionTokens,
    cost_usd: t.costUsd,
    feedback: t.feedback,
    feedback_time: t.feedbackTime,
    feedback_comment: t.feedbackComment,
    key_name: t.keyName,
    source: t.source,
    instance_id: t.instanceId,
    feedback_source: t.feedbackSource,
  };
}

/** One JSONL line (with its newline). */
export function toJsonLine(t: TraceRecord): string {
  return `${JSON.stringify(toLine(t))}\n`;
}

/** RFC 4180: a field with a comma, a quote or a line break is quoted, its quotes doubled; null is empty. */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export const CSV_HEADER = `${TRACE_FIELDS.join(',')}\r\n`;

/** One CSV row (with its CRLF). */
export function toCsvRow(t: TraceRecord): string {
  const line = toLine(t);
  return `${TRACE_FIELDS.map((f) => csvField(line[f])).join(',')}\r\n`;
}

const count = z.number().int().nonnegative();
/** Absent and null are the same for the optional columns. */
const nullable = <T extends z.ZodType>(schema: T) => schema.nullable().optional().transform((v) => v ?? null);

export const traceLineSchema = z
  .object({
    id: z.string().min(1).max(128),
    time: count,
    request_id: z.string().max(256),
    query: nullable(z.string()),
    query_length: count,
    query_class: z.string().min(1),
    model_key: z.string().min(1),
    upstream_model: z.string(),
    routed: z.boolean(),
    reason: z.string().min(1),
    attempt: z.number().int().min(1),
    outcome: z.enum(['success', 'error', 'timeout', 'cancelled']),
    status: nullable(z.number().int().min(100).max(599)),
    error: nullable(z.string()),
    latency_ms: z.number().nonnegative(),
    ttfb_ms: nullable(z.number().nonnegative()),
    prompt_tokens: nullable(count),
    completion_tokens: nullable(count),
    cost_usd: nullable(z.number().nonnegative()),
    feedback: nullable(z.number().min(0).max(1)),
    feedback_time: nullable(count),
    feedback_comment: nullable(z.string()),
    key_name: nullable(z.string()),
    source: z.enum(['live', 'offline']).optional().default('live'),
    instance_id: nullable(z.string()),
    /** Absent (files exported before it existed): see `importedFeedbackSource`. */
    feedback_source: nullable(z.enum(FEEDBACK_SOURCES as [FeedbackSource, ...FeedbackSource[]])),
  })
  .strict();

/**
 * The feedback source of an imported trace: none without feedback; as given; else, for a file
 * exported before sources were recorded, `offline` for evaluation results and `human` otherwise
 * (the only feedback there was then).
 */
function importedFeedbackSource(r: { feedback: number | null; feedback_source: FeedbackSource | null; source: TraceRecord['source'] }) {
  if (r.feedback === null) return null;
  return r.feedback_source ?? (r.source === 'offline' ? 'offline' : 'human');
}

export class TraceLineError extends TracegateError {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(ERROR_CODES.traceLine, `line ${line}: ${message}`);
  }
}

/** Parses and validates one JSONL line (1-based `line` for the message). */
export function parseTraceLine(text: string, line: number): TraceRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new TraceLineError(line, `invalid JSON (${(err as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new TraceLineError(line, 'expected a JSON object');
  const result = traceLineSchema.safeParse(raw);
  if (!result.success) {
    const issues = result.error.issues.map((i) => {
      const field = i.path.length > 0 ? i.path.join('.') : '(line)';
      const missing = i.path.length > 0 && i.code === 'invalid_type' && !(i.path[0]! in (raw as object));
      return `${field}: ${missing ? 'missing' : i.message}`;
    });
    const more = issues.length > 3 ? `; and ${issues.length - 3} more` : '';
    throw new TraceLineError(line, issues.slice(0, 3).join('; ') + more);
  }
  const r = result.data;
  return {
    id: r.id,
    time: r.time,
    requestId: r.request_id,
    query: r.query,
    queryLength: r.query_length,
    queryClass: r.query_class,
    modelKey: r.model_key,
    upstreamModel: r.upstream_model,
    routed: r.routed,
    reason: r.reason,
    attempt: r.attempt,
    outcome: r.outcome,
    status: r.status,
    error: r.error,
    latencyMs: r.latency_ms,
    ttfbMs: r.ttfb_ms,
    promptTokens: r.prompt_tokens,
    completionTokens: r.completion_tokens,
    costUsd: r.cost_usd,
    feedback: r.feedback,
    feedbackTime: r.feedback_time,
    feedbackComment: r.feedback_comment,
    feedbackSource: importedFeedbackSource(r),
    keyName: r.key_name,
    source: r.source,
    instanceId: r.instance_id,
  };
}
