import { isBooleanColumn, TRACE_COLUMNS, type TraceColumnSpec, type TraceRecord, type TraceRow } from './trace-columns.js';

export type { TraceRow } from './trace-columns.js';

/** Each column's key in a row and in the record, and whether it is a bool (0/1 from SQLite). */
const FIELDS = (TRACE_COLUMNS as readonly TraceColumnSpec[]).map((c) => ({ column: c.column, field: c.field, boolean: isBooleanColumn(c) }));

/** The trace a `traces` row holds, from either engine (the row's other columns, such as `seq`, are left out). */
export function traceFromRow(row: TraceRow): TraceRecord {
  const r = row as unknown as Record<string, unknown>;
  const trace: Record<string, unknown> = {};
  for (const { column, field, boolean } of FIELDS) {
    const value = r[column];
    trace[field] = boolean ? value === true || value === 1 : value;
  }
  return trace as TraceRecord;
}
