import { newTrace } from '../../src/traces/trace-columns.js';
import type { TraceRecord } from '../../src/traces/types.js';

let n = 0;

/** A complete, successful trace with unique id, request id and increasing time (other columns at their defaults); override any field. */
export function makeTrace(over: Partial<TraceRecord> = {}): TraceRecord {
  n++;
  return newTrace({
    id: `T${String(n).padStart(25, '0')}`,
    time: 1_700_000_000_000 + n,
    requestId: `r${n}`,
    query: 'q',
    queryLength: 1,
    queryClass: 'short',
    modelKey: 'a',
    upstreamModel: 'a-model',
    routed: true,
    reason: 'learned',
    attempt: 1,
    outcome: 'success',
    status: 200,
    latencyMs: 10,
    ttfbMs: 5,
    promptTokens: 10,
    completionTokens: 5,
    costUsd: 0.001,
    ...over,
  });
}
