import type Database from 'better-sqlite3';
import { compileEquals, compileRun } from './compiled.js';
import { isBooleanColumn, TRACE_COLUMNS, type TraceColumnSpec, type TraceField, type TraceRecord } from './trace-columns.js';
import type { TimeRange } from './types.js';

/**
 * The SQL of the SQLite store that follows from the description of a trace (src/traces/trace-columns.ts),
 * built once when this module loads, and the fragments the store and its reads share.
 */

const SPECS: readonly TraceColumnSpec[] = TRACE_COLUMNS;

/** The trace's columns, in order. */
export const COLUMNS = SPECS.map((c) => c.column);
export const COLUMN_LIST = COLUMNS.join(', ');

export const SELECT_TRACE = `SELECT ${COLUMN_LIST} FROM traces`;
/** Takes a trace's every column (runInsert). */
export const INSERT = `INSERT INTO traces (${COLUMN_LIST}) VALUES (${COLUMNS.map(() => '?').join(', ')})`;

/**
 * What a live trace recorded on the request path has in these columns: no feedback yet, source
 * 'live'. INSERT_LIVE writes them as constants and takes the other columns as arguments, which
 * costs fewer instructions per trace than binding every column (BENCHMARKS.md).
 */
const FRESH_LIVE: Partial<Record<TraceField, string | null>> = {
  feedback: null, feedbackTime: null, feedbackComment: null, feedbackSource: null, source: 'live',
};
const LIVE_CONSTANTS = SPECS.filter((c) => c.field in FRESH_LIVE);
const LIVE_ARGUMENTS = SPECS.filter((c) => !(c.field in FRESH_LIVE));
const FRESH_LIVE_VALUES = LIVE_CONSTANTS.map((c) => [c.field, FRESH_LIVE[c.field as TraceField] ?? null] as const);

/** A constant of INSERT_LIVE as SQL. */
function sqlLiteral(value: string | null): string {
  return value === null ? 'NULL' : `'${value.replaceAll("'", "''")}'`;
}

/** Takes a fresh live trace's other columns (runInsertLive). */
export const INSERT_LIVE = `INSERT INTO traces (${[...LIVE_ARGUMENTS, ...LIVE_CONSTANTS].map((c) => c.column).join(', ')})
  VALUES (${[...LIVE_ARGUMENTS.map(() => '?'), ...FRESH_LIVE_VALUES.map(([, value]) => sqlLiteral(value))].join(', ')})`;

/** Whether INSERT_LIVE records the trace as it is. */
export const isFreshLive = compileEquals<TraceRecord>(FRESH_LIVE_VALUES.map(([field, equals]) => ({ from: field, equals })));

/** Runs a statement whose arguments are these columns, in order, with a trace's values (a bool as 0 or 1). */
function runner(columns: readonly TraceColumnSpec[]): (statement: Database.Statement, t: TraceRecord) => Database.RunResult {
  return compileRun(columns.map((c) => ({ from: c.field, boolean: isBooleanColumn(c) ? 'toNumber' : undefined, nullable: c.nullable === true })));
}

/** Runs INSERT (or a statement with its arguments) for a trace. */
export const runInsert = runner(SPECS);
/** Runs INSERT_LIVE for a fresh live trace. */
export const runInsertLive = runner(LIVE_ARGUMENTS);

/** q of the evidence: a failure is worth 0, a success its feedback when given, else 1. */
export const QUALITY = `CASE WHEN outcome = 'success' THEN COALESCE(feedback, 1.0) ELSE 0.0 END`;

/**
 * The sums of a `stats` group, named as the fields of a group in sqlite-reads.ts and in
 * `trace_stats`'s column order (so an `INSERT INTO trace_stats SELECT` takes them as they are).
 */
export const STATS_SUMS = `query_class AS queryClass, model_key AS model, instance_id AS instanceId, COUNT(*) AS count,
  SUM(outcome = 'success') AS successes, SUM(feedback IS NOT NULL) AS feedbackCount,
  COALESCE(SUM(feedback), 0) AS feedbackSum, COALESCE(SUM(prompt_tokens), 0) AS promptTokens,
  COALESCE(SUM(completion_tokens), 0) AS completionTokens, COALESCE(SUM(cost_usd), 0) AS costUsd, MAX(time) AS lastTime`;

/** `WHERE` for a time range (or '' for none); pushes its values onto `params`. */
export function rangeWhere(range: TimeRange, params: unknown[]): string {
  const clauses: string[] = [];
  if (range.since !== undefined) {
    clauses.push('time >= ?');
    params.push(range.since);
  }
  if (range.until !== undefined) {
    clauses.push('time < ?');
    params.push(range.until);
  }
  return clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '';
}
