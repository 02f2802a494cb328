import type { Services } from './services.js';
import type { QueryContext } from '../routing/types.js';
import { newTrace, type Endpoint } from '../traces/trace-columns.js';
import type { Outcome } from '../traces/types.js';
import { monotonicUlidFactory } from '../traces/ulid.js';

export const newTraceId = monotonicUlidFactory();

/** What is known about a request before any upstream is called. */
export interface RequestInfo {
  requestId: string;
  time: number;
  query: string;
  queryClass: string;
  routed: boolean;
  /** The client key's name, when client keys are configured. */
  keyName: string | null;
  /** The conversation's session key (router.sticky, a routed request that names one); null or absent: none. */
  session?: string | null;
  /** The routing context, built once per request (what the policy saw at select). */
  context?: QueryContext;
  /** The API the request came through (absent: `chat`). */
  endpoint?: Endpoint;
  /** The size of the request body, in bytes (absent: not recorded). */
  requestBytes?: number;
}

/** Which attempt: its trace id, the model tried, why, and its number in the request. */
export interface AttemptId {
  traceId: string;
  modelKey: string;
  reason: string;
  attempt: number;
}

/** How the attempt went. */
export interface AttemptResult {
  outcome: Outcome;
  status: number | null;
  error: string | null;
  latencyMs: number;
  ttfbMs: number | null;
  promptTokens: number | null;
  completionTokens: number | null;
  /** The token counts were estimated from the text, not counted by the upstream (absent: counted). */
  tokensEstimated?: boolean;
  /** The Responses API answer's id (`resp_…`), which a later `previous_response_id` names (absent: none). */
  responseId?: string | null;
}

/** Text from a request (or about it) as `traces.storePrompts` keeps it: whole, truncated, or not at all. */
export function storedText(gw: Pick<Services, 'config' | 'logger' | 'metrics' | 'policy' | 'store' | 'upstreams'>, text: string): string | null {
  const { storePrompts, truncateChars } = gw.config.traces;
  if (storePrompts === 'none') return null;
  if (storePrompts === 'truncated' && text.length > truncateChars) return text.slice(0, truncateChars);
  return text;
}

/**
 * Records one upstream attempt: hands the trace to the store (the promise settles once it is
 * committed) and lets the policy learn from it right away, in the same order as the store
 * (`observe` false: the policy does not see it — a judge's call or an embedding is no routing evidence).
 */
export function recordAttempt(gw: Pick<Services, 'config' | 'logger' | 'metrics' | 'policy' | 'store' | 'upstreams'>, request: RequestInfo, id: AttemptId, a: AttemptResult, observe = true): Promise<void> {
  const upstream = gw.upstreams.get(id.modelKey)!;
  const costUsd = upstream.cost(a.promptTokens, a.completionTokens);
  const trace = newTrace({
    id: id.traceId,
    time: request.time,
    requestId: request.requestId,
    query: storedText(gw, request.query),
    queryLength: request.query.length,
    queryClass: request.queryClass,
    modelKey: id.modelKey,
    upstreamModel: upstream.model,
    routed: request.routed,
    reason: id.reason,
    attempt: id.attempt,
    outcome: a.outcome,
    status: a.status,
    error: a.error,
    latencyMs: a.latencyMs,
    ttfbMs: a.ttfbMs,
    promptTokens: a.promptTokens,
    completionTokens: a.completionTokens,
    costUsd,
    tokensEstimated: a.promptTokens === null && a.completionTokens === null ? null : a.tokensEstimated === true,
    keyName: request.keyName,
    instanceId: gw.config.instanceId,
    endpoint: request.endpoint ?? 'chat',
    requestBytes: request.requestBytes ?? null,
    responseId: a.responseId ?? null,
  });
  const committed = gw.store.insert(trace);
  if (observe) {
    gw.policy.observe({
      traceId: trace.id,
      query: request.query,
      queryClass: request.queryClass,
      model: id.modelKey,
      outcome: a.outcome,
      latencyMs: a.latencyMs,
      costUsd,
      feedback: null,
      shadow: id.reason === 'shadow',
      context: request.context,
    });
  }
  gw.metrics.attempt({
    model: id.modelKey,
    queryClass: request.queryClass,
    reason: id.reason,
    outcome: a.outcome,
    latencyMs: a.latencyMs,
    ttfbMs: a.ttfbMs,
    promptTokens: a.promptTokens,
    completionTokens: a.completionTokens,
    costUsd,
  });
  // The line's object is built only when the level lets it through.
  if (gw.logger.isLevelEnabled('info')) {
    gw.logger.info(
      {
        requestId: request.requestId,
        traceId: trace.id,
        class: request.queryClass,
        model: id.modelKey,
        reason: id.reason,
        attempt: id.attempt,
        outcome: a.outcome,
        status: a.status,
        latencyMs: Math.round(a.latencyMs * 10) / 10,
      },
      request.endpoint === 'embeddings' ? 'embeddings attempt' : request.endpoint === 'responses' ? 'responses attempt' : 'chat completion attempt',
    );
  }
  return committed;
}
