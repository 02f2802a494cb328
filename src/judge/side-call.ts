import type { Services } from '../pipeline/services.js';
import { failedResult } from '../pipeline/attempt-failure.js';
import { recordAttempt, newTraceId, type AttemptResult, type RequestInfo } from '../pipeline/record-attempt.js';
import { AttemptAbort, sendWholeAttempt, UpstreamTimeout, type AttemptFailure } from '../upstream/attempt.js';
import type { Upstream } from '../upstream/upstream.js';
import { statusCause } from '../upstream/failure-kind.js';
import { isJsonObject } from '../upstream/json-check.js';
import { usageFromBody } from '../upstream/usage.js';

/** Why a background call was aborted when the gateway closes. */
export class GatewayClosing extends Error {
  readonly code = 'TRACEGATE_CLOSING';
}

export interface SideCallOptions {
  /** The trace's request: its id, class, routed flag and context. */
  info: RequestInfo;
  reason: string;
  attempt: number;
  timeoutMs: number;
  /** Whether the policy learns from this attempt (`policy.observe`). */
  observe: boolean;
  /** Aborts the call (the owner's shutdown). */
  signal: AttemptAbort;
}

export interface SideCallResult {
  traceId: string;
  /** The whole answer of a successful call (a JSON object), else null. */
  payload: Buffer | null;
  failure: AttemptFailure | null;
  costUsd: number | null;
}

/**
 * One non-streamed call the gateway makes on its own (a judge's grading, a shadow answer), through
 * the model's `Upstream` (its undici Pool, headers and key), traced like a client's attempt. It holds
 * one of the model's concurrency slots while it runs. Resolves once the trace is committed (a store
 * failure is logged); never rejects.
 */
export async function sideCall(gw: Pick<Services, 'config' | 'logger' | 'metrics' | 'policy' | 'store' | 'upstreams'>, upstream: Upstream, body: string, o: SideCallOptions): Promise<SideCallResult> {
  const traceId = newTraceId();
  const ac = new AttemptAbort();
  const forward = (reason: unknown) => ac.abort(reason);
  o.signal.on('abort', forward);
  if (o.signal.aborted) ac.abort(o.signal.reason);
  const timer = setTimeout(() => ac.abort(new UpstreamTimeout(`no answer within ${o.timeoutMs} ms`)), o.timeoutMs);
  timer.unref();
  upstream.inflight++;
  const started = performance.now();
  let sent;
  try {
    sent = await sendWholeAttempt(upstream, body, ac);
  } finally {
    clearTimeout(timer);
    upstream.inflight--;
    o.signal.off('abort', forward);
  }
  const latencyMs = performance.now() - started;
  let failure: AttemptFailure | null = null;
  let payload: Buffer | null = null;
  if (!sent.ok) {
    failure = sent;
    if (failure.kind === 'timeout') failure.message = `no answer within ${o.timeoutMs} ms`;
    if (ac.reason instanceof GatewayClosing) failure = { ...failure, kind: 'cancelled', message: 'gateway closing', retryable: false };
  } else if (!isJsonObject(sent.payload)) {
    failure = { ok: false, kind: 'malformed', message: 'upstream sent a malformed response', status: sent.status, retryable: true };
  } else {
    payload = sent.payload;
  }
  const usage = payload !== null ? usageFromBody(payload) : null;
  const promptTokens = usage?.promptTokens ?? null;
  const completionTokens = usage?.completionTokens ?? null;
  // A failure is traced as an answer's would be: a refused key, a rate limit or a request too big is `refused`.
  const result: AttemptResult =
    failure === null
      ? { outcome: 'success', status: sent.status, error: null, latencyMs, ttfbMs: sent.ok ? sent.headersMs : null, promptTokens, completionTokens }
      : failedResult(failure, statusCause(failure), upstream.redactor, latencyMs);
  try {
    await recordAttempt(gw, o.info, { traceId, modelKey: upstream.key, reason: o.reason, attempt: o.attempt }, result, o.observe);
  } catch (err) {
    gw.logger.error({ err, traceId, reason: o.reason }, 'trace could not be recorded');
  }
  return { traceId, payload, failure, costUsd: upstream.cost(promptTokens, completionTokens) };
}

/**
 * Closing with the gateway: the background calls in flight get `graceMs` to finish, then are aborted
 * (their traces are still recorded, as cancelled).
 */
export async function settleOrAbort(running: ReadonlySet<Promise<unknown>>, stop: AttemptAbort, graceMs: number): Promise<void> {
  if (running.size === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, graceMs);
    timer.unref();
  });
  await Promise.race([Promise.allSettled([...running]), grace]);
  clearTimeout(timer);
  stop.abort(new GatewayClosing('gateway closing'));
  await Promise.allSettled([...running]);
}
