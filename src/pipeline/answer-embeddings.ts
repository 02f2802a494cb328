import type { Services } from './services.js';
import { errors } from '../core/errors.js';
import type { RouteReason } from '../routing/types.js';
import { AttemptAbort, UpstreamTimeout } from '../upstream/attempt.js';
import { statusCause } from '../upstream/failure-kind.js';
import type { Upstream } from '../upstream/upstream.js';
import { failedResult, markHealth, MIN_ATTEMPT_MS, rateLimitRetryMs, routingHeaders, sleep } from './attempt-failure.js';
import { readAnswer } from './read-answer.js';
import { newTraceId, recordAttempt, type AttemptId, type RequestInfo } from './record-attempt.js';
import { findModelValue, withModel } from './rewrite-model.js';
import { settleDurably } from './settle.js';
import type { EmbeddingsRequest, WholeReply } from './types.js';

type EmbeddingsServices = Pick<Services, 'config' | 'health' | 'logger' | 'metrics' | 'policy' | 'store' | 'upstreams'>;

/**
 * An embeddings request's life once it is parsed and its model resolved (always pinned: one
 * model's vectors cannot stand in for another's): send the client's bytes, `model` alone replaced,
 * to the model's embeddings endpoint; record each attempt's trace (class `embedding`, endpoint
 * `embeddings`), which no policy observes; answer once it is committed. A 429 asking for a short
 * wait (`router.retryAfterMaxMs`) is waited out and tried once more; any other failure is answered
 * as a pinned chat request's is. Never rejects for an upstream's failure.
 */
export async function answerEmbeddings(
  gw: EmbeddingsServices,
  request: EmbeddingsRequest,
  raw: Buffer,
  info: RequestInfo,
  reply: WholeReply,
  setController: (ac: AttemptAbort) => void,
): Promise<void> {
  const upstream = gw.upstreams.get(request.model)!;
  const body = upstreamBody(request, raw, upstream.model);
  /** Traces being recorded (one per attempt); the answer waits for them. */
  const pending: Promise<void>[] = [];
  let reason: RouteReason = 'pinned';
  const deadline = performance.now() + gw.config.router.deadlineMs;
  for (let attempt = 1; ; attempt++) {
    if (!upstream.hasCapacity()) {
      await Promise.allSettled(pending);
      const busy = errors.modelBusy(upstream.key, upstream.maxConcurrent!);
      reply.refuse(busy, { 'x-request-id': info.requestId, 'x-router-class': info.queryClass, 'retry-after': '1' });
      return;
    }
    const traceId = newTraceId();
    const id: AttemptId = { traceId, modelKey: upstream.key, reason, attempt };
    const headers = routingHeaders(info, traceId, { model: upstream.key, reason });
    const ac = new AttemptAbort();
    setController(ac);
    const read = await attemptOnce(upstream, body, ac);
    const latencyMs = performance.now() - read.started;

    if (read.answer.ok && read.answer.kind === 'whole') {
      const answer = read.answer;
      gw.health.success(upstream.key);
      const result = {
        outcome: 'success' as const,
        status: answer.status,
        error: null,
        latencyMs,
        ttfbMs: answer.headersMs,
        promptTokens: answer.usage?.promptTokens ?? null,
        completionTokens: answer.usage?.completionTokens ?? null,
      };
      pending.push(recordAttempt(gw, info, id, result, false));
      await settleDurably(pending, gw.logger);
      reply.whole(answer.status, answer.headers, headers, answer.payload, gw.config.limits.writeStallMs);
      return;
    }
    if (read.answer.ok) throw new Error('an embeddings answer is read whole');
    const failure = read.answer;
    const cause = statusCause(failure);
    markHealth(gw, failure, cause, upstream.key, false);
    pending.push(recordAttempt(gw, info, id, failedResult(failure, cause, upstream.redactor, latencyMs), false));
    if (failure.kind === 'cancelled') break;
    const waitMs = rateLimitRetryMs(gw, failure, cause, reason, deadline - performance.now() - MIN_ATTEMPT_MS);
    if (waitMs === null) {
      await Promise.allSettled(pending);
      reply.upstreamFailed(failure, upstream, headers);
      return;
    }
    await sleep(waitMs);
    if (ac.aborted) break;
    reason = 'retry';
  }
  // The client left: nobody to answer.
  await Promise.allSettled(pending);
}

/** One attempt at the model's embeddings endpoint, holding its concurrency slot and under its timeout. */
async function attemptOnce(upstream: Upstream, body: Buffer | string, ac: AttemptAbort) {
  upstream.inflight++;
  const timer = setTimeout(() => ac.abort(new UpstreamTimeout(`no answer within ${upstream.timeoutMs} ms`)), upstream.timeoutMs);
  const started = performance.now();
  try {
    return { answer: await readAnswer(upstream, body, ac, false, upstream.embeddingsPath), started };
  } finally {
    clearTimeout(timer);
    upstream.inflight--;
  }
}

/**
 * What the upstream receives: the client's bytes with `model`'s value replaced, or, when the bytes
 * alone cannot say where it is (see findModelValue), the request serialized again with the
 * upstream's model in its place (key order kept).
 */
function upstreamBody(request: EmbeddingsRequest, raw: Buffer, model: string): Buffer | string {
  const at = findModelValue(raw);
  if (at !== null) return withModel(raw, at, model);
  const requested = request.model;
  request.model = model;
  const body = JSON.stringify(request);
  request.model = requested;
  return body;
}
