import type { Services } from './services.js';
import { errors } from '../core/errors.js';
import { FollowUp } from '../judge/follow-up.js';
import type { Decision } from '../routing/types.js';
import { AttemptAbort, UpstreamTimeout, type AttemptFailure } from '../upstream/attempt.js';
import { statusCause, type StatusCause } from '../upstream/failure-kind.js';
import { topLevelId } from '../upstream/response-answer.js';
import type { Upstream } from '../upstream/upstream.js';
import { failedResult, markHealth, MIN_ATTEMPT_MS, rateLimitRetryMs, routingHeaders, sleep } from './attempt-failure.js';
import { estimatedUsage, promptChars, StreamChars } from './estimated-usage.js';
import { readAnswer, type AnswerRead } from './read-answer.js';
import { newTraceId, recordAttempt, type AttemptId, type AttemptResult, type RequestInfo } from './record-attempt.js';
import { findModelValue, findStreamOptionsValue, usageInsert, withModel, withModelAndInsert, type ValueSpan } from './rewrite-model.js';
import { routableModels } from './routable-models.js';
import { settleDurably } from './settle.js';
import type { ChatReply, ChatRequest, ResponsesRequest, RoutingHeaders } from './types.js';

/**
 * A chat request's life once it is parsed: choose a model, send it the request, record the
 * attempt's trace and let the policy observe it, and on a failure before the first byte reached the
 * client, wait out a short 429 and try the same model once more, or fail over to the next model
 * (`nextAfter` says which). The client's answer goes out through `reply`
 * only once its trace is committed. Never rejects for an upstream's failure: every outcome is
 * answered.
 */
export function answerChat(
  gw: Services,
  request: ChatRequest,
  raw: Buffer,
  info: RequestInfo,
  reply: ChatReply,
  setController: (ac: AttemptAbort) => void,
): Promise<void> {
  return answerRequest(gw, request, raw, info, reply, setController, null);
}

/**
 * A Responses API request's life (`info.endpoint` 'responses'), told as a chat request's: routing
 * among the routed models that serve responses, failover before the first byte, the trace recorded
 * before the answer's end (with the answer's `id` as its `response_id`). `holder`: the model that
 * made the response a routed request continues (`previous_response_id`), which holds its state: it
 * alone is tried (reason `sticky`), never failed over from. No `stream_options` (the stream's usage
 * comes in `response.completed`), no judge, shadow or implicit signal.
 */
export function answerResponses(
  gw: Services,
  request: ResponsesRequest,
  raw: Buffer,
  info: RequestInfo,
  reply: ChatReply,
  setController: (ac: AttemptAbort) => void,
  holder: string | null,
): Promise<void> {
  return answerRequest(gw, request, raw, info, reply, setController, holder);
}

/** A request's life, chat or Responses API, with the model of its conversation's earlier turns (router.sticky). */
async function answerRequest(
  gw: Services,
  request: ChatRequest | ResponsesRequest,
  raw: Buffer,
  info: RequestInfo,
  reply: ChatReply,
  setController: (ac: AttemptAbort) => void,
  holder: string | null,
): Promise<void> {
  // From memory, or read from the store.
  const known = info.session ? (gw.sticky?.modelOf(info.session) ?? null) : null;
  const life = new RequestLife(gw, request, raw, info, reply, holder, known instanceof Promise ? await known : known);
  try {
    await life.run(setController);
  } finally {
    life.releaseSlot();
  }
}

/** What one request (chat, or Responses API) carries from attempt to attempt. */
class RequestLife {
  private readonly endpoint: 'chat' | 'responses';
  private readonly stream: boolean;
  private readonly maxAttempts: number;
  private readonly tried: string[] = [];
  /** Traces being recorded (one per attempt); the answer waits for them. */
  private readonly pending: Promise<void>[] = [];
  private readonly modelAt: ValueSpan | null;
  /**
   * A stream whose client did not ask for usage: the gateway asks an upstream with `streamUsage`
   * for it (`"include_usage":true` spliced in at `usageAt`, or, when null, the request serialized
   * again) and takes the usage event out of the stream the client gets.
   */
  private readonly addUsage: boolean;
  private readonly usageAt: { at: number; text: string } | null;
  /** Sampled for the judge or the shadow as the request starts; they run after the answer is out. */
  private readonly followUp: FollowUp | null;
  /** The conversation, as the implicit signal knows it: a resend marks the earlier answer. */
  private readonly conversation: ReturnType<NonNullable<Services['implicit']>['seen']> | undefined;
  /** The upstream whose concurrency slot this request holds (one attempt at a time). */
  private holding: Upstream | null = null;
  /**
   * When (performance.now()) the request's deadline passes: no attempt (nor a 429's wait) starts
   * with less than MIN_ATTEMPT_MS of it left. An attempt that started runs to its own timeout.
   */
  private readonly deadline: number;

  constructor(
    private readonly gw: Services,
    private readonly request: ChatRequest | ResponsesRequest,
    private readonly raw: Buffer,
    private readonly info: RequestInfo,
    private readonly reply: ChatReply,
    /** The model that holds the state of the response a routed Responses API request continues, or null. */
    private readonly holder: string | null,
    /** The model of the conversation's earlier turns (router.sticky), or null. */
    private readonly stuck: string | null,
  ) {
    this.endpoint = info.endpoint === 'responses' ? 'responses' : 'chat';
    const chat = this.endpoint === 'chat';
    this.stream = request.stream === true;
    this.maxAttempts = info.routed && holder === null ? gw.config.router.maxAttempts : 1;
    this.deadline = performance.now() + gw.config.router.deadlineMs;
    this.modelAt = findModelValue(raw);
    const options = request.stream_options;
    const asked = typeof options === 'object' && options !== null && (options as { include_usage?: unknown }).include_usage === true;
    // A Responses API stream carries its usage in `response.completed`: nothing to ask for.
    this.addUsage = chat && this.stream && !asked;
    // A client's own `include_usage` (false) would be there twice if spliced: serialized instead.
    const own = typeof options === 'object' && options !== null && !Array.isArray(options) && 'include_usage' in options;
    if (!this.addUsage || own) this.usageAt = null;
    else if (options === undefined) this.usageAt = usageInsert(raw, null);
    else {
      const optionsAt = findStreamOptionsValue(raw);
      this.usageAt = optionsAt === null ? null : usageInsert(raw, optionsAt);
    }
    this.followUp = info.routed && chat ? FollowUp.plan(gw, this.stream) : null;
    this.conversation = chat ? gw.implicit?.seen(info.keyName, (request as ChatRequest).messages, raw.length) : undefined;
  }

  async run(setController: (ac: AttemptAbort) => void): Promise<void> {
    const { gw, info } = this;
    let next: Decision | null = null;
    for (let attempt = 1; ; attempt++) {
      this.releaseSlot();
      const chosen = next ?? this.choose();
      const upstream = gw.upstreams.get(chosen.model);
      if (!upstream) {
        await Promise.allSettled(this.pending);
        this.reply.refuse(errors.noModelAvailable(), { 'x-request-id': info.requestId, 'x-router-class': info.queryClass });
        return;
      }
      if (!upstream.hasCapacity()) {
        // Only a pinned request gets here: routing skips full models.
        await Promise.allSettled(this.pending);
        const busy = errors.modelBusy(upstream.key, upstream.maxConcurrent!);
        this.reply.refuse(busy, { 'x-request-id': info.requestId, 'x-router-class': info.queryClass, 'retry-after': '1' });
        return;
      }
      this.takeSlot(upstream);
      const decision: Decision = attempt > 1 && next === null ? { model: chosen.model, reason: 'failover' } : chosen;
      if (attempt > 1 && decision.reason !== 'retry') gw.metrics.failover(this.tried[this.tried.length - 1]!, decision.model);
      this.tried.push(decision.model);

      const traceId = newTraceId();
      // The attempt's identity and its result go to recordAttempt as two objects, not merged with a
      // spread, which in Node 20's V8 allocates on a slow path whose garbage reaches the old generation.
      const id: AttemptId = { traceId, modelKey: decision.model, reason: decision.reason, attempt };
      const headers = routingHeaders(info, traceId, decision);
      const ac = new AttemptAbort();
      setController(ac);
      // From the start of the attempt to the answer's headers, a wait for a pool connection included.
      const timer = setTimeout(() => ac.abort(new UpstreamTimeout(`no answer within ${upstream.timeoutMs} ms`)), upstream.timeoutMs);
      const started = performance.now();
      const path = this.endpoint === 'responses' ? upstream.responsesPath : undefined;
      const read = await readAnswer(upstream, this.body(upstream), ac, this.stream, path);

      if (!read.ok) {
        clearTimeout(timer);
        const then = this.failed(read, id, started);
        if (then.kind === 'stop') break;
        if (then.kind === 'answer') {
          await Promise.allSettled(this.pending);
          this.reply.upstreamFailed(read, upstream, headers);
          return;
        }
        if (then.kind === 'retry') {
          this.releaseSlot();
          await sleep(then.waitMs);
          if (ac.aborted) break;
        }
        next = then.kind === 'retry' ? { model: decision.model, reason: 'retry' } : then.kind === 'last-resort' ? { model: then.model, reason: 'fallback' } : null;
        continue;
      }
      gw.health.success(decision.model);
      if (info.requestBytes !== undefined) gw.sizeLimits.answered(decision.model, info.requestBytes);
      clearTimeout(timer);
      if (read.kind === 'whole') await this.deliverWhole(read, id, headers, started, decision.model);
      else await this.deliverStream(read, id, headers, ac, started, decision.model, upstream.streamUsage);
      return;
    }
    await Promise.allSettled(this.pending);
  }

  releaseSlot(): void {
    if (this.holding) this.holding.inflight--;
    this.holding = null;
  }

  /**
   * The policy's choice among the models this request may still use, or the pinned model; the
   * conversation's model (router.sticky) while it is one of those.
   */
  private choose(): Decision {
    const { gw, info } = this;
    if (!info.routed) return { model: this.request.model, reason: 'pinned' };
    if (this.holder !== null) return { model: this.holder, reason: 'sticky' };
    const available = routableModels(gw, this.endpoint, this.tried, info.requestBytes);
    if (this.stuck !== null && available.includes(this.stuck)) return { model: this.stuck, reason: 'sticky' };
    return gw.policy.select({
      query: info.query,
      queryClass: info.queryClass,
      available,
      context: info.context,
      exploit: gw.shadow?.exploring(),
      graded: this.followUp?.graded === true,
    });
  }

  private takeSlot(upstream: Upstream): void {
    upstream.inflight++;
    this.holding = upstream;
  }

  /**
   * What one attempt sends: the client's bytes with `model`'s value replaced (and, when the gateway
   * asks this upstream for a stream's usage, `include_usage` spliced in), or, when the bytes alone
   * cannot say where these go (see findModelValue, usageInsert), the request serialized again with
   * the upstream's model (and `stream_options`) swapped in place (no copy of the request; key order kept).
   */
  private body(upstream: Upstream): Buffer | string {
    const model = upstream.model;
    const addUsage = this.addUsage && upstream.streamUsage;
    if (this.modelAt !== null && !addUsage) return withModel(this.raw, this.modelAt, model);
    if (this.modelAt !== null && this.usageAt !== null) return withModelAndInsert(this.raw, this.modelAt, model, this.usageAt);
    const request = this.request;
    const requested = request.model;
    const options = request.stream_options;
    request.model = model;
    if (addUsage) {
      const own = typeof options === 'object' && options !== null && !Array.isArray(options) ? options : {};
      request.stream_options = { ...own, include_usage: true };
    }
    const body = JSON.stringify(request);
    request.model = requested;
    if (addUsage) {
      if (options === undefined) delete request.stream_options;
      else request.stream_options = options;
    }
    return body;
  }

  /** Records a failed attempt, marks the model's health (markHealth) and says what comes next (see `nextAfter`). */
  private failed(failure: AttemptFailure, id: AttemptId, started: number): Next {
    const { gw, info } = this;
    const cause = statusCause(failure);
    markHealth(gw, failure, cause, id.modelKey, info.routed);
    // Learned from routed requests only: one caller's pinned requests do not steer routing for everyone.
    if (cause === 'too-big' && info.routed && info.requestBytes !== undefined) gw.sizeLimits.tooBig(id.modelKey, info.requestBytes);
    this.record(id, failedResult(failure, cause, gw.upstreams.get(id.modelKey)!.redactor, performance.now() - started));
    return this.nextAfter(failure, cause, id);
  }

  /**
   * After a failed attempt: stop (the client left); try the same model once more after the short
   * wait a 429 asked for (within router.retryAfterMaxMs); fail over to another model (routed: a
   * retryable failure, a refused key or a request too big for the model) while `maxAttempts`
   * distinct models have not been tried; past that, `router.fallbackModel` as the last resort when
   * it is untried and not in cooldown; else answer the failure. Nothing starts (no attempt, no wait)
   * with less than MIN_ATTEMPT_MS of the request's deadline left.
   */
  private nextAfter(failure: AttemptFailure, cause: StatusCause, id: AttemptId): Next {
    const { gw, info } = this;
    if (failure.kind === 'cancelled') return { kind: 'stop' };
    // The request's deadline: nothing starts with less than MIN_ATTEMPT_MS of it left.
    const left = this.deadline - performance.now() - MIN_ATTEMPT_MS;
    if (left <= 0) return { kind: 'answer' };
    const waitMs = rateLimitRetryMs(gw, failure, cause, id.reason, left);
    if (waitMs !== null) return { kind: 'retry', waitMs };
    if (!info.routed || this.holder !== null || !(failure.retryable || cause === 'auth' || cause === 'too-big')) return { kind: 'answer' };
    const distinct = new Set(this.tried).size;
    const routed = gw.routedFor(this.endpoint);
    if (distinct < this.maxAttempts && routed.some((k) => !this.tried.includes(k))) return { kind: 'failover' };
    const fallback = gw.config.router.fallbackModel;
    if (fallback !== undefined && !this.tried.includes(fallback) && routed.includes(fallback) && gw.health.isAvailable(fallback)) {
      return { kind: 'last-resort', model: fallback };
    }
    return { kind: 'answer' };
  }

  /** A whole answer: recorded, committed, then sent; the follow-ups start once it is out. */
  private async deliverWhole(read: Extract<AnswerRead, { kind: 'whole' }>, id: AttemptId, headers: RoutingHeaders, started: number, model: string): Promise<void> {
    this.record(id, {
      outcome: 'success',
      status: read.status,
      error: null,
      latencyMs: performance.now() - started,
      ttfbMs: read.headersMs,
      promptTokens: read.usage?.promptTokens ?? null,
      completionTokens: read.usage?.completionTokens ?? null,
      responseId: this.endpoint === 'responses' ? topLevelId(read.payload) : null,
    });
    await settleDurably(this.pending, this.gw.logger);
    if (!this.reply.whole(read.status, read.headers, headers, read.payload, this.gw.config.limits.writeStallMs)) return;
    this.answered(id.traceId, model, read.payload);
  }

  /**
   * A stream: relayed as it comes (no failover from here on), recorded before its last event goes out.
   * With `streamUsage` the upstream was asked for usage, and its usage event is not relayed to a
   * client that did not ask; without, such a stream's tokens are estimated from its text (StreamChars).
   */
  private async deliverStream(
    read: Extract<AnswerRead, { kind: 'stream' }>,
    id: AttemptId,
    headers: RoutingHeaders,
    ac: AttemptAbort,
    started: number,
    model: string,
    streamUsage: boolean,
  ): Promise<void> {
    const sent = read.response;
    const chars = this.addUsage && !streamUsage ? new StreamChars() : null;
    const followTap = this.followUp?.streamText?.feed;
    const tap =
      chars === null
        ? followTap
        : followTap === undefined
          ? chars.feed
          : (chunk: Buffer) => {
              followTap(chunk);
              chars.feed(chunk);
            };
    const relayed = await this.reply.stream(
      read,
      headers,
      ac,
      started,
      async (result) => {
        const estimated = result.usage === null && chars !== null;
        const usage = estimated ? estimatedUsage(promptChars((this.request as ChatRequest).messages), chars.chars) : result.usage;
        // A Responses API stream relayed whole may still say the response failed (`response.failed`, `error`).
        const failure = result.outcome === 'success' ? (result.response?.failure ?? null) : null;
        this.record(id, {
          outcome: failure !== null ? 'error' : result.outcome,
          status: sent.status,
          error: failure ?? result.error,
          latencyMs: performance.now() - started,
          ttfbMs: result.firstChunkMs,
          promptTokens: usage?.promptTokens ?? null,
          completionTokens: usage?.completionTokens ?? null,
          tokensEstimated: estimated,
          responseId: result.response?.id ?? null,
        });
        await settleDurably(this.pending, this.gw.logger);
      },
      tap,
      this.gw.config.limits.writeStallMs,
      this.addUsage && streamUsage,
      this.endpoint === 'responses',
    );
    if (relayed.outcome === 'success') this.answered(id.traceId, model, null);
  }

  /** After a successful answer reached the client: the judge and shadow follow-ups, and the implicit signal. */
  private answered(traceId: string, model: string, payload: Buffer | null): void {
    const { gw, info } = this;
    // Planned for chat requests only.
    this.followUp?.answered(gw, this.reply, this.request as ChatRequest, info, model, traceId, payload);
    gw.implicit?.answered(this.conversation, { traceId, queryClass: info.queryClass, model });
  }

  /**
   * Records an attempt's trace. A routed attempt that succeeded carries its conversation on with its
   * model (router.sticky), stored, like the trace, before the answer's last byte goes out: the next
   * turn, on this instance or another, finds it.
   */
  private record(id: AttemptId, result: AttemptResult): void {
    this.pending.push(recordAttempt(this.gw, this.info, id, result));
    if (result.outcome === 'success' && this.info.routed && this.gw.sticky !== null) {
      const stored = this.gw.sticky.answered(this.info.session ?? null, id.modelKey, id.reason);
      if (stored !== null) this.pending.push(stored);
    }
  }
}

type Next = { kind: 'stop' } | { kind: 'answer' } | { kind: 'failover' } | { kind: 'retry'; waitMs: number } | { kind: 'last-resort'; model: string };
