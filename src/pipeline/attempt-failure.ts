import type { Services } from './services.js';
import type { Decision } from '../routing/types.js';
import { isUpstreamFault, type AttemptFailure } from '../upstream/attempt.js';
import { rateLimitWaitMs, upstreamMessage, type StatusCause } from '../upstream/failure-kind.js';
import type { Redactor } from '../upstream/redact.js';
import type { AttemptResult, RequestInfo } from './record-attempt.js';
import type { RoutingHeaders } from './types.js';

/**
 * What every API's attempts share once an upstream failed: what the failure does to the model's
 * health, what its trace says, and whether a short 429 is waited out.
 */

/**
 * A failed attempt's mark on the model's health. A routed attempt's retryable failure counts
 * against it; a pinned one's only when it is the upstream's own (isUpstreamFault), so that one
 * caller's requests (a 4xx, a 429 on the team's key, an answer too large) cannot take a model out
 * of routing for everyone. A refused provider key (401/403) puts the model in cooldown at once,
 * routed or pinned: nothing sent to it can succeed. A request too big for the model says nothing of
 * its health.
 */
export function markHealth(gw: Pick<Services, 'health'>, failure: AttemptFailure, cause: StatusCause, modelKey: string, routed: boolean): void {
  if (cause === 'auth') gw.health.unavailable(modelKey);
  else if (cause !== 'too-big' && (routed ? failure.retryable : isUpstreamFault(failure))) gw.health.failure(modelKey);
}

/** A failed attempt's trace fields. */
export function failedResult(failure: AttemptFailure, cause: StatusCause, redactor: Redactor, latencyMs: number): AttemptResult {
  return {
    outcome: outcomeOf(failure, cause),
    status: failure.status,
    error: traceError(failure, cause, redactor),
    latencyMs,
    ttfbMs: null,
    promptTokens: null,
    completionTokens: null,
  };
}

/**
 * How long to wait before trying the same model once more: a 429 that asked for a wait within
 * `router.retryAfterMaxMs` and shorter than `leftMs` (what is left of the request's deadline), on an
 * attempt that was not itself that retry; null otherwise.
 */
export function rateLimitRetryMs(
  gw: Pick<Services, 'config'>,
  failure: AttemptFailure,
  cause: StatusCause,
  reason: string,
  leftMs: number,
): number | null {
  if (cause !== 'rate' || reason === 'retry') return null;
  const waitMs = rateLimitWaitMs(failure.headers);
  return waitMs !== null && waitMs <= gw.config.router.retryAfterMaxMs && waitMs < leftMs ? waitMs : null;
}

/** The headers the gateway adds to an attempt's answer (its trace, the request, the decision). */
export function routingHeaders(info: RequestInfo, traceId: string, decision: Decision): RoutingHeaders {
  return {
    'x-trace-id': traceId,
    'x-request-id': info.requestId,
    'x-router-model': decision.model,
    'x-router-class': info.queryClass,
    'x-router-reason': decision.reason,
  };
}

/**
 * The least of a request's deadline (router.deadlineMs) an attempt, or a 429's wait before one, may
 * start with; with less left, the last failure is the answer.
 */
export const MIN_ATTEMPT_MS = 1000;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The trace's error: the failure, and for a status the upstream's own message (secrets scrubbed) when it gave one. */
function traceError(failure: AttemptFailure, cause: StatusCause, redactor: Redactor): string {
  const message = upstreamMessage(failure);
  const said = message === null || !redactor.active ? message : redactor.scrubText(message);
  const what = cause === 'auth' ? ' (provider key refused)' : cause === 'rate' ? ' (rate limited)' : cause === 'too-big' ? ' (request too big for the model)' : '';
  return said === null ? `${failure.message}${what}` : `${failure.message}${what}: ${said}`;
}

/**
 * A failed attempt's outcome. A refused provider key, a rate limit or a request too big for the model
 * is `refused`: the model did not answer, which says nothing of its answers' quality.
 */
function outcomeOf(failure: AttemptFailure, cause: StatusCause): AttemptResult['outcome'] {
  if (cause === 'auth' || cause === 'rate' || cause === 'too-big') return 'refused';
  return failure.kind === 'timeout' ? 'timeout' : failure.kind === 'cancelled' ? 'cancelled' : 'error';
}
