import { compileObject } from './compiled.js';
import { isBooleanColumn, TRACE_COLUMNS, type TraceColumnSpec, type TraceRecord, type TraceRow } from './trace-columns.js';

export type { TraceRow } from './trace-columns.js';

/**
 * The trace a `traces` row holds, from either engine (a bool column reads as 0/1 from SQLite); the
 * row's other columns, such as `seq`, are left out.
 */
export const traceFromRow = compileObject<TraceRow, TraceRecord>(
  (TRACE_COLUMNS as readonly TraceColumnSpec[]).map((c) => ({
    from: c.column,
    to: c.field,
    boolean: isBooleanColumn(c) ? 'toBoolean' : undefined,
    nullable: c.nullable === true,
  })),
);
