import type { TraceRecord } from './types.js';

/** A `traces` row as both SQL engines return it (SQLite gives `routed` as 0/1, PostgreSQL as a boolean). */
export interface TraceRow {
  id: string; time: number; request_id: string; query: string | null; query_length: number;
  query_class: string; model_key: string; upstream_model: string; routed: number | boolean; reason: string;
  attempt: number; outcome: TraceRecord['outcome']; status: number | null; error: string | null;
  latency_ms: number; ttfb_ms: number | null; prompt_tokens: number | null;
  completion_tokens: number | null; cost_usd: number | null; feedback: number | null;
  feedback_time: number | null; feedback_comment: string | null; key_name: string | null;
  source: TraceRecord['source']; instance_id: string | null; feedback_source: TraceRecord['feedbackSource'];
}

export function traceFromRow(r: TraceRow): TraceRecord {
  return {
    id: r.id, time: r.time, requestId: r.request_id, query: r.query, queryLength: r.query_length,
    queryClass: r.query_class, modelKey: r.model_key, upstreamModel: r.upstream_model,
    routed: r.routed === true || r.routed === 1, reason: r.reason, attempt: r.attempt, outcome: r.outcome,
    status: r.status, error: r.error, latencyMs: r.latency_ms, ttfbMs: r.ttfb_ms,
    promptTokens: r.prompt_tokens, completionTokens: r.completion_tokens, costUsd: r.cost_usd,
    feedback: r.feedback, feedbackTime: r.feedback_time, feedbackComment: r.feedback_comment,
    feedbackSource: r.feedback_source, keyName: r.key_name, source: r.source, instanceId: r.instance_id,
  };
}
