import { z } from 'zod';
import { compileObject } from './compiled.js';
import { TRACE_COLUMNS, type TraceColumnSpec } from './trace-columns.js';
import type { FeedbackSource, TraceRecord } from './types.js';
import { TraceLineError } from '../core/errors.js';

/**
 * The traces' file format for `tracegate export` / `tracegate import`: one JSON object per line
 * (or one CSV row), with the database's column names. Times are epoch milliseconds.
 */

/** Each column's key in an exported trace and its field in the record. */
const KEYS = (TRACE_COLUMNS as readonly TraceColumnSpec[]).map((c) => ({ json: c.json, field: c.field }));

/** The keys of an exported trace, in column order (the CSV header). */
export const TRACE_FIELDS = TRACE_COLUMNS.map((c) => c.json);

export type TraceLine = { [K in (typeof TRACE_COLUMNS)[number]['json']]: unknown };

/** A trace as an exported object: the columns' keys, in column order. */
export const toLine = compileObject<TraceRecord, TraceLine>(KEYS.map(({ json, field }) => ({ from: field, to: json })));

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

/**
 * What an imported line's value may be, per column: the column's `value`; absent and null are the
 * same for a nullable column, and an absent value takes the column's default.
 */
function lineValue(c: TraceColumnSpec): z.ZodType {
  if (c.nullable) return c.value.nullable().optional().transform((v) => v ?? null);
  if (c.default !== undefined) return c.value.optional().default(c.default);
  return c.value;
}

/** An exported trace as import reads it: the columns' keys and none other (a nullable column, or one with a default, may be absent). */
export const traceLineSchema = z
  .object(Object.fromEntries((TRACE_COLUMNS as readonly TraceColumnSpec[]).map((c) => [c.json, lineValue(c)])))
  .strict();

/**
 * The feedback source of an imported trace: none without feedback; as given; else, for a file
 * exported before sources were recorded, `offline` for evaluation results and `human` otherwise
 * (the only feedback there was then).
 */
function importedFeedbackSource(t: TraceRecord): FeedbackSource | null {
  if (t.feedback === null) return null;
  return t.feedbackSource ?? (t.source === 'offline' ? 'offline' : 'human');
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
  const r = result.data as Record<string, unknown>;
  const trace = {} as Record<string, unknown>;
  for (const { json, field } of KEYS) trace[field] = r[json];
  const imported = trace as TraceRecord;
  imported.feedbackSource = importedFeedbackSource(imported);
  return imported;
}
