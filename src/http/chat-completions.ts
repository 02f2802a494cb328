import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Gateway } from '../app/gateway.js';
import { FollowUp } from '../judge/follow-up.js';
import { queryContext } from '../routing/context.js';
import { CLASS_HEADER } from '../routing/rules.js';
import type { Decision } from '../routing/types.js';
import { AttemptAbort, ClientGone, describeError, sendStreamAttempt, sendWholeAttempt, UpstreamTimeout, type AttemptFailure } from '../upstream/attempt.js';
import { relayStream } from '../upstream/relay-stream.js';
import { looksLikeJsonObject, usageFromBody } from '../upstream/usage.js';
import type { Upstream } from '../upstream/upstream.js';
import { parseChatRequest, type ChatRequest } from './chat-request.js';
import { errors, GatewayError } from './errors.js';
import { errorAnswer } from './error-answer.js';
import { admitClient } from './guard.js';
import { readBody } from './read-body.js';
import { findModelValue, withModel, type ValueSpan } from './rewrite-model.js';
import { newTraceId, recordAttempt, type AttemptId, type RequestInfo } from '../pipeline/record-attempt.js';

const REQUEST_ID = /^[\w.:-]{1,128}$/;
const CHAT_PATH = '/v1/chat/completions';

/** Upstream response headers that describe the upstream connection, not the answer. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'transfer-encoding', 'content-length', 'content-encoding', 'proxy-connection',
  'upgrade', 'trailer', 'te', 'x-request-id', 'date', 'server', 'set-cookie',
]);

export function requestIdOf(headers: IncomingHttpHeaders): string {
  const given = headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

function relayedHeaders(upstream: IncomingHttpHeaders, routing: Record<string, string>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(upstream)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    out[name] = value;
  }
  const upstreamRequestId = upstream['x-request-id'];
  if (typeof upstreamRequestId === 'string') out['x-upstream-request-id'] = upstreamRequestId;
  return Object.assign(out, routing);
}

function routingHeaders(info: RequestInfo, traceId: string, decision: Decision): Record<string, string> {
  return {
    'x-trace-id': traceId,
    'x-request-id': info.requestId,
    'x-router-model': decision.model,
    'x-router-class': info.queryClass,
    'x-router-reason': decision.reason,
  };
}

function sendJson(res: ServerResponse, status: number, headers: Record<string, string | string[]>, body: string | Buffer) {
  if (res.headersSent || res.destroyed) return;
  // The caller's own object (no spread: see AttemptId in answer()).
  headers['content-type'] = 'application/json';
  headers['content-length'] = String(Buffer.byteLength(body));
  res.writeHead(status, headers);
  res.end(body);
}

/** An upstream error passes through when it is already in OpenAI's shape; otherwise it is wrapped. */
function upstreamErrorBody(failure: AttemptFailure): string | Buffer {
  const raw = failure.body;
  if (raw && raw.length > 0) {
    try {
      const parsed = JSON.parse(raw.toString('utf8')) as { error?: unknown };
      if (parsed && typeof parsed.error === 'object' && parsed.error !== null) return raw;
    } catch {
      // not JSON: wrapped below
    }
  }
  const text = raw ? raw.toString('utf8').slice(0, 500) : '';
  return JSON.stringify(
    new GatewayError(failure.status ?? 502, 'upstream_error', `Upstream answered ${failure.status}${text ? `: ${text}` : ''}`, 'upstream_error').toBody(),
  );
}

function failureError(failure: AttemptFailure, upstream: Upstream): GatewayError {
  if (failure.kind === 'timeout') return errors.upstreamTimeout(upstream.key, upstream.timeoutMs);
  if (failure.kind === 'malformed') return errors.upstreamBadResponse(upstream.key);
  return errors.upstreamUnreachable(upstream.key);
}

function outcomeOf(failure: AttemptFailure) {
  return failure.kind === 'timeout' ? 'timeout' : failure.kind === 'cancelled' ? 'cancelled' : 'error';
}

function isEventStream(headers: IncomingHttpHeaders): boolean {
  const type = headers['content-type'];
  return typeof type === 'string' && type.includes('text/event-stream');
}

/**
 * Routed models (`routed` not false) not tried yet for this request, without those in a cooldown (unless that leaves none) and
 * those at their concurrency limit (unless that leaves none: the request then waits on a full model's
 * pool rather than failing).
 */
function routableModels(gw: Gateway, tried: readonly string[]): string[] {
  const untried = gw.routedKeys.filter((k) => !tried.includes(k));
  const now = Date.now();
  const healthy = untried.filter((k) => gw.health.isAvailable(k, now) && gw.upstreams.get(k)!.hasCapacity());
  if (healthy.length > 0) return healthy;
  const open = untried.filter((k) => gw.upstreams.get(k)!.hasCapacity());
  return open.length > 0 ? open : untried;
}

/** Resolves which models a request may use, or throws the client's error. */
function resolveTarget(gw: Gateway, request: ChatRequest): { routed: boolean } {
  if (request.model === gw.config.router.autoModel) return { routed: true };
  if (gw.upstreams.has(request.model)) return { routed: false };
  throw errors.modelNotFound(request.model);
}

/** Whether a request is a chat completion (path `/v1/chat/completions`, with or without a query). */
export function isChatCompletion(req: IncomingMessage): boolean {
  const url = req.url;
  return (
    req.method === 'POST' &&
    url !== undefined &&
    url.startsWith(CHAT_PATH) &&
    (url.length === CHAT_PATH.length || url.charCodeAt(CHAT_PATH.length) === 63) // '?'
  );
}

/**
 * POST /v1/chat/completions, answered straight on Node's request and response: the hot path does
 * not pay for a web Request/Response pair (Hono serves every other route). Never rejects: every
 * error is answered in OpenAI's shape.
 */
export function chatCompletionsListener(gw: Gateway) {
  return async function handleChatCompletion(incoming: IncomingMessage, outgoing: ServerResponse): Promise<void> {
    const requestId = requestIdOf(incoming.headers);
    let queryClass: string | null = null;
    try {
      const admission = admitClient(gw, incoming);
      const caller = admission instanceof Promise ? await admission : admission;
      const raw = await readBody(incoming, gw.config.server.bodyLimitBytes);
      const request = parseChatRequest(raw);
      if (request instanceof GatewayError) throw request;
      const { routed } = resolveTarget(gw, request);
      // The routing context, once per request: one pass over the messages, then the class rules.
      const classHeader = incoming.headers[CLASS_HEADER];
      const context = queryContext(request, gw.config.router.classes, typeof classHeader === 'string' ? classHeader : undefined);
      const info: RequestInfo = {
        requestId,
        time: Date.now(),
        query: context.query,
        queryClass: context.queryClass,
        context,
        routed,
        keyName: caller.keyName,
      };
      queryClass = info.queryClass;

      gw.inflight++;
      let current: AttemptAbort | null = null;
      const onClose = () => {
        if (!outgoing.writableFinished) current?.abort(new ClientGone('client disconnected'));
      };
      outgoing.on('close', onClose);
      try {
        await answer(gw, request, raw, info, outgoing, (ac) => (current = ac));
      } finally {
        outgoing.off('close', onClose);
        gw.inflight--;
      }
    } catch (err) {
      const answer = errorAnswer(gw, err, requestId);
      const headers: Record<string, string> = answer.headers;
      headers['x-request-id'] = requestId;
      if (queryClass !== null) headers['x-router-class'] = queryClass;
      sendJson(outgoing, answer.status, headers, JSON.stringify(answer.body));
      // The rest of a refused body is read and dropped, so the connection stays usable.
      if (!incoming.complete) incoming.resume();
    }
  };
}

/**
 * What one attempt sends: the client's bytes with `model`'s value replaced, or, when the bytes alone
 * cannot say where that value is (see findModelValue), the request serialized again with the
 * upstream's model swapped in place (no copy of the request; key order kept).
 */
function bodyFor(raw: Buffer, modelAt: ValueSpan | null, request: ChatRequest, model: string): Buffer | string {
  if (modelAt !== null) return withModel(raw, modelAt, model);
  const requested = request.model;
  request.model = model;
  const body = JSON.stringify(request);
  request.model = requested;
  return body;
}

async function answer(
  gw: Gateway,
  request: ChatRequest,
  raw: Buffer,
  info: RequestInfo,
  res: ServerResponse,
  setController: (ac: AttemptAbort) => void,
): Promise<void> {
  const stream = request.stream === true;
  const maxAttempts = info.routed ? gw.config.router.maxAttempts : 1;
  const tried: string[] = [];
  const pending: Promise<void>[] = [];
  const modelAt = findModelValue(raw);
  // Sampled for the judge or the shadow as the request starts; they run after the answer is out.
  const followUp = info.routed ? FollowUp.plan(gw, stream) : null;
  // A resend of an answered conversation marks that answer as a regenerated one.
  const conversation = gw.implicit?.seen(info.keyName, request.messages, raw.length);
  // The upstream whose concurrency slot this request holds (one attempt at a time).
  let holding: Upstream | null = null;
  const release = () => {
    if (holding) holding.inflight--;
    holding = null;
  };
  try {
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      release();
      const available = info.routed ? routableModels(gw, tried) : [request.model];
      const chosen: Decision = info.routed
        ? gw.policy.select({ query: info.query, queryClass: info.queryClass, available, context: info.context, exploit: gw.shadow?.exploring() })
        : { model: request.model, reason: 'pinned' };
      const upstream = gw.upstreams.get(chosen.model);
      if (!upstream) {
        await Promise.allSettled(pending);
        const err = errors.noModelAvailable();
        sendJson(res, err.status, { 'x-request-id': info.requestId, 'x-router-class': info.queryClass }, JSON.stringify(err.toBody()));
        return;
      }
      if (!upstream.hasCapacity()) {
        // Only a pinned request gets here: routing skips full models.
        await Promise.allSettled(pending);
        const err = errors.modelBusy(upstream.key, upstream.maxConcurrent!);
        sendJson(res, err.status, { 'x-request-id': info.requestId, 'x-router-class': info.queryClass, 'retry-after': '1' }, JSON.stringify(err.toBody()));
        return;
      }
      upstream.inflight++;
      holding = upstream;
      const decision: Decision = attempt > 1 ? { model: chosen.model, reason: 'failover' } : chosen;
      if (attempt > 1) gw.metrics.failover(tried[tried.length - 1]!, decision.model);
      tried.push(decision.model);
      const traceId = newTraceId();
      const headers = routingHeaders(info, traceId, decision);
      const ac = new AttemptAbort();
      setController(ac);
      const timer = setTimeout(() => ac.abort(new UpstreamTimeout('upstream timeout')), upstream.timeoutMs);
      const started = performance.now();
      const body = bodyFor(raw, modelAt, request, upstream.model);
      // The attempt's identity and its result go to recordAttempt as two objects, not merged with a
      // spread: in V8 11.3 (Node 20), `{ ...fresh, more }` takes a slow path (~0.7 µs per property
      // added) whose garbage reaches the old generation; it cost ~15% of the throughput and ~50 MB
      // of peak RSS under load (BENCHMARKS.md).
      const id: AttemptId = { traceId, modelKey: decision.model, reason: decision.reason, attempt };

      // A request without a stream gets its answer whole; a stream request gets the body as it comes
      // (an upstream that answers it with plain JSON is read whole below).
      const sent = stream ? await sendStreamAttempt(upstream, body, ac) : await sendWholeAttempt(upstream, body, ac);
      let failure: AttemptFailure | null = sent.ok ? null : sent;
      let payload: Buffer | null = null;
      let usage = null;
      if (sent.ok) {
        if ('payload' in sent) {
          payload = sent.payload;
        } else if (!isEventStream(sent.headers)) {
          try {
            payload = await sent.body.readAll();
          } catch (err) {
            failure = describeError(err, ac, upstream);
          }
        }
        // Not parsed: a body that is not one JSON object (cut short, HTML…) is malformed, and
        // `usage` is read from the tail.
        if (payload !== null) {
          if (looksLikeJsonObject(payload)) usage = usageFromBody(payload);
          else failure = { ok: false, kind: 'malformed', message: 'upstream sent a malformed response', status: sent.status, retryable: true };
        }
      }
      if (failure) {
        clearTimeout(timer);
        if (failure.retryable) gw.health.failure(decision.model);
        const retry = info.routed && failure.retryable && attempt < maxAttempts && tried.length < gw.routedKeys.length;
        pending.push(
          recordAttempt(gw, info, id, {
            outcome: outcomeOf(failure),
            status: failure.status,
            error: failure.message,
            latencyMs: performance.now() - started,
            ttfbMs: null,
            promptTokens: null,
            completionTokens: null,
          }),
        );
        if (failure.kind === 'cancelled') break;
        if (retry) continue;
        await Promise.allSettled(pending);
        if (failure.kind === 'status') {
          sendJson(res, failure.status!, headers, upstreamErrorBody(failure));
        } else {
          const err = failureError(failure, upstream);
          sendJson(res, err.status, headers, JSON.stringify(err.toBody()));
        }
        return;
      }
      if (!sent.ok) return; // unreachable: a failed attempt has a failure

      gw.health.success(decision.model);
      if (payload) {
        clearTimeout(timer);
        pending.push(
          recordAttempt(gw, info, id, {
            outcome: 'success',
            status: sent.status,
            error: null,
            latencyMs: performance.now() - started,
            ttfbMs: sent.headersMs,
            promptTokens: usage?.promptTokens ?? null,
            completionTokens: usage?.completionTokens ?? null,
          }),
        );
        await settleDurably(pending, gw);
        if (res.headersSent || res.destroyed) return;
        const out = relayedHeaders(sent.headers, headers);
        out['content-length'] = String(payload.length);
        res.writeHead(sent.status, out);
        res.end(payload);
        followUp?.answered(gw, res, request, info, decision.model, traceId, payload);
        gw.implicit?.answered(conversation, { traceId, queryClass: info.queryClass, model: decision.model });
        return;
      }

      // Streaming: from here on bytes reach the client, so there is no failover.
      if ('payload' in sent) return; // unreachable: a whole answer has its payload
      clearTimeout(timer);
      res.writeHead(sent.status, relayedHeaders(sent.headers, headers));
      res.flushHeaders();
      const relayed = await relayStream(sent.body, res, ac, started, async (result) => {
        pending.push(
          recordAttempt(gw, info, id, {
            outcome: result.outcome,
            status: sent.status,
            error: result.error,
            latencyMs: performance.now() - started,
            ttfbMs: result.firstChunkMs,
            promptTokens: result.usage?.promptTokens ?? null,
            completionTokens: result.usage?.completionTokens ?? null,
          }),
        );
        await settleDurably(pending, gw);
      }, followUp?.streamText?.feed);
      if (relayed.outcome === 'success') {
        followUp?.answered(gw, res, request, info, decision.model, traceId, null);
        gw.implicit?.answered(conversation, { traceId, queryClass: info.queryClass, model: decision.model });
      }
      return;
    }
    await Promise.allSettled(pending);
  } finally {
    release();
  }
}

/** Waits for the traces to commit; a store failure is logged, and the answer still goes out. */
async function settleDurably(pending: Promise<void>[], gw: Gateway): Promise<void> {
  if (pending.length === 1) {
    // The common case (one attempt): no allSettled bookkeeping.
    try {
      await pending[0];
    } catch (err) {
      gw.logger.error({ err }, 'trace could not be recorded');
    }
    return;
  }
  const results = await Promise.allSettled(pending);
  for (const r of results) {
    if (r.status === 'rejected') gw.logger.error({ err: r.reason }, 'trace could not be recorded');
  }
}
