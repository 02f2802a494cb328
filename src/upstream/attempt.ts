import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import { errors as undiciErrors } from 'undici';
import type { Upstream } from './upstream.js';

export type FailureKind = 'unreachable' | 'timeout' | 'status' | 'malformed' | 'cancelled';

/** An attempt that produced no usable answer. `retryable` says whether another model may be tried. */
export interface AttemptFailure {
  ok: false;
  kind: FailureKind;
  message: string;
  status: number | null;
  retryable: boolean;
  /** The upstream's own error body (its first `MAX_ERROR_BODY_BYTES`) and headers, for a `status` failure. */
  body?: Buffer;
  headers?: IncomingHttpHeaders;
}

/** The most of an upstream's error body that is kept; past it the rest is not read (the connection is closed). */
export const MAX_ERROR_BODY_BYTES = 64 * 1024;


/** The gateway's own timer cut the attempt; its message is the failure's (what ran out). */
export class UpstreamTimeout extends Error {
  readonly code = 'TRACEGATE_UPSTREAM_TIMEOUT';
}
/** The client left, or stopped reading (the message says which). */
export class ClientGone extends Error {
  readonly code = 'TRACEGATE_CLIENT_GONE';
}
/** An answer longer than its model's `maxResponseBytes`. */
export class ResponseTooLarge extends Error {
  readonly code = 'TRACEGATE_RESPONSE_TOO_LARGE';

  constructor(readonly limit: number) {
    super(`upstream answer larger than ${limit} bytes (maxResponseBytes)`);
  }
}

/**
 * Aborts one upstream attempt (our timeout, or a client that left). undici takes an EventEmitter as
 * a request's signal; this one costs far less per request than an AbortController and its
 * EventTarget, and carries the reason in the same way.
 */
export class AttemptAbort extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit('abort', reason);
  }
}

/** What an abort signal tells: whether it fired, and why. */
export interface AbortState {
  readonly aborted: boolean;
  readonly reason: unknown;
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

/** Maps what undici threw to a failure; the abort reason tells our own timeouts from a client that left. */
export function describeError(err: unknown, signal: AbortState, upstream: Upstream): AttemptFailure {
  const reason = signal.aborted ? signal.reason : undefined;
  if (reason instanceof ClientGone) {
    return { ok: false, kind: 'cancelled', message: 'client disconnected', status: null, retryable: false };
  }
  const code = (err as { code?: string } | null)?.code;
  if (reason instanceof UpstreamTimeout || (code && TIMEOUT_CODES.has(code))) {
    return {
      ok: false,
      kind: 'timeout',
      message: reason instanceof UpstreamTimeout ? reason.message : `no answer within ${upstream.timeoutMs} ms`,
      status: null,
      retryable: true,
    };
  }
  const detail = code ?? (err instanceof Error ? err.message : String(err));
  return { ok: false, kind: 'unreachable', message: `upstream unreachable (${detail})`, status: null, retryable: true };
}

/** Whether a failing status may be retried on another model: rate limits and server errors. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/**
 * Whether a failure is the upstream's own (a 5xx, a timeout, a connection error), as opposed to one a
 * client's request can cause (a 4xx, a 429 on the team's key, an answer too large or malformed for
 * what was asked). Only the upstream's own failures of a pinned request count against its health.
 */
export function isUpstreamFault(failure: AttemptFailure): boolean {
  if (failure.kind === 'timeout' || failure.kind === 'unreachable') return true;
  return failure.kind === 'status' && failure.status !== null && failure.status >= 500;
}

/** The failure for an answer past `maxResponseBytes`: malformed (502), and retryable on another model. */
export function tooLargeFailure(status: number, limit: number): AttemptFailure {
  return { ok: false, kind: 'malformed', message: new ResponseTooLarge(limit).message, status, retryable: true };
}

/** An error body, kept up to MAX_ERROR_BODY_BYTES. */
class ErrorBody {
  private readonly chunks: Buffer[] = [];
  private size = 0;

  /** Keeps what fits; false once the body is past the cap (the rest is not wanted). */
  add(chunk: Buffer): boolean {
    const room = MAX_ERROR_BODY_BYTES - this.size;
    const fits = chunk.length <= room;
    const kept = fits ? chunk : chunk.subarray(0, room);
    if (kept.length > 0) this.chunks.push(kept);
    this.size += kept.length;
    return fits;
  }

  bytes(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
  }
}

/** The failure for an upstream's error status, with its body and headers (passed on to the client). */
function statusFailure(status: number, body: Buffer, headers: IncomingHttpHeaders): AttemptFailure {
  return { ok: false, kind: 'status', message: `upstream answered ${status}`, status, retryable: isRetryableStatus(status), body, headers };
}

const asError = (reason: unknown): Error => (reason instanceof Error ? reason : new undiciErrors.RequestAbortedError());

/**
 * Ties an attempt's abort signal to undici's controller while the response runs. A request still
 * waiting for a connection (the pool at its `connections`) has no controller yet: an abort then
 * ends the attempt at once through `fail` (our timeout runs from the start of the attempt, the wait
 * included), and when the request reaches a connection, `started` throws, which makes undici drop it
 * before a byte is written and keep the connection for the next request.
 */
function wireAbort(signal: AttemptAbort, fail: (reason: unknown) => void) {
  let controller: Dispatcher.DispatchController | null = null;
  const onAbort = (reason: unknown) => {
    if (controller === null) fail(reason);
    else controller.abort(asError(reason));
  };
  signal.on('abort', onAbort);
  return {
    started(c: Dispatcher.DispatchController): void {
      if (signal.aborted) throw asError(signal.reason);
      controller = c;
    },
    done(): void {
      signal.off('abort', onAbort);
    },
  };
}

/** Where a stream's body goes once someone takes it. */
export interface BodySink {
  /** One chunk, in order; false asks the upstream to pause until `UpstreamBody.resume()`. */
  data(chunk: Buffer): boolean;
  end(): void;
  /** The body broke off (the upstream, a timeout, an abort); nothing follows. */
  error(err: Error): void;
}

/**
 * An answer's body as undici's dispatch hands it over, without a Node stream: no Readable, no
 * event per chunk. Chunks that arrive before the body is taken (with its headers, in the same
 * read) are kept and handed on first.
 */
export class UpstreamBody {
  private sink: BodySink | null = null;
  private early: Buffer[] = [];
  private ended = false;
  private failure: Error | null = null;
  /** undici's control of the response (pause, resume, abort), set with its headers. */
  controller: Dispatcher.DispatchController | null = null;

  /** Hands every chunk to `sink` from now on, those that came before first. Once only. */
  take(sink: BodySink): void {
    if (this.sink !== null) throw new Error('the body is already taken');
    this.sink = sink;
    let more = true;
    for (const chunk of this.early) more = sink.data(chunk) && more;
    this.early = [];
    if (!more) this.pause();
    if (this.failure !== null) sink.error(this.failure);
    else if (this.ended) sink.end();
  }

  /** The whole body, read to its end; past `limit` bytes it is aborted and this rejects with ResponseTooLarge. */
  readAll(limit = Infinity): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let over = false;
      this.take({
        data: (chunk) => {
          if (over) return false;
          size += chunk.length;
          if (size > limit) {
            over = true;
            const err = new ResponseTooLarge(limit);
            reject(err);
            this.controller?.abort(err);
            return false;
          }
          chunks.push(chunk);
          return true;
        },
        end: () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)),
        error: reject,
      });
    });
  }

  pause(): void {
    this.controller?.pause();
  }

  resume(): void {
    this.controller?.resume();
  }

  /** From the handler. */
  push(chunk: Buffer): void {
    if (this.sink === null) this.early.push(chunk);
    else if (!this.sink.data(chunk)) this.pause();
  }

  finish(): void {
    this.ended = true;
    this.sink?.end();
  }

  fail(err: Error): void {
    this.failure = err;
    this.sink?.error(err);
  }
}

export interface AttemptResponse {
  ok: true;
  status: number;
  headers: IncomingHttpHeaders;
  body: UpstreamBody;
  /** Milliseconds from the start of the attempt to the response headers. */
  headersMs: number;
}

/**
 * Sends one request that asked for a stream (to the chat completions endpoint, or `path`) and resolves with its response headers; the body
 * comes through `UpstreamBody` as it arrives (an error status is read whole and is a failure).
 * Through undici's dispatch with a handler, as `sendWholeAttempt`: the same pool, timeouts (the
 * pool's body timeout keeps watching the stream) and abort signal, which stays wired until the
 * body ends.
 */
export function sendStreamAttempt(
  upstream: Upstream,
  body: Buffer | string,
  signal: AttemptAbort,
  path: string = upstream.chatPath,
): Promise<AttemptResponse | AttemptFailure> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve(describeError(signal.reason, signal, upstream));
      return;
    }
    const started = performance.now();
    let status = 0;
    let headers: IncomingHttpHeaders = {};
    /** The body of a successful answer, once its headers are in. */
    let answer: UpstreamBody | null = null;
    /** The body of an error status, read whole up to its cap. */
    const errorBody = new ErrorBody();
    let settled = false;
    const settle = (result: AttemptResponse | AttemptFailure) => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    const abort = wireAbort(signal, (reason) => {
      abort.done();
      settle(describeError(reason, signal, upstream));
    });
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart: abort.started,
      onResponseStart(c, statusCode, responseHeaders) {
        if (statusCode < 200) return; // informational (103 Early Hints): the answer follows
        status = statusCode;
        headers = responseHeaders;
        if (statusCode >= 400) return;
        answer = new UpstreamBody();
        answer.controller = c;
        settle({ ok: true, status, headers, body: answer, headersMs: performance.now() - started });
      },
      onResponseData(c, chunk) {
        if (answer !== null) {
          answer.push(chunk);
        } else if (!errorBody.add(chunk)) {
          abort.done();
          settle(statusFailure(status, errorBody.bytes(), headers));
          c.abort(new Error('error body past its cap'));
        }
      },
      onResponseEnd() {
        abort.done();
        if (answer !== null) answer.finish();
        else settle(statusFailure(status, errorBody.bytes(), headers));
      },
      onResponseError(_c, err) {
        abort.done();
        if (answer !== null) answer.fail(err);
        else settle(describeError(err, signal, upstream));
      },
    };
    try {
      upstream.pool.dispatch({ method: 'POST', path, headers: upstream.streamHeaders, body }, handler);
    } catch (err) {
      abort.done();
      settle(describeError(err, signal, upstream));
    }
  });
}

export interface WholeResponse {
  ok: true;
  status: number;
  headers: IncomingHttpHeaders;
  /** The whole answer. */
  payload: Buffer;
  /** Milliseconds from the start of the attempt to the response headers. */
  headersMs: number;
}

/**
 * Sends one request and reads its whole answer, for a request that did not ask for a stream: to
 * the chat completions endpoint unless `path` names another (the embeddings endpoint).
 * It goes through undici's dispatch with a handler that keeps the chunks, not `request()`: no body
 * stream, no consume promise per answer (fewer instructions per request: BENCHMARKS.md).
 * The same pool, timeouts and abort signal as `sendStreamAttempt`; a failure is described the same way.
 */
export function sendWholeAttempt(
  upstream: Upstream,
  body: Buffer | string,
  signal: AttemptAbort,
  path: string = upstream.chatPath,
): Promise<WholeResponse | AttemptFailure> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve(describeError(signal.reason, signal, upstream));
      return;
    }
    const started = performance.now();
    const limit = upstream.maxResponseBytes;
    let status = 0;
    let headers: IncomingHttpHeaders = {};
    let headersMs = 0;
    const chunks: Buffer[] = [];
    let size = 0;
    let errorBody: ErrorBody | null = null;
    let settled = false;
    const finish = (result: WholeResponse | AttemptFailure) => {
      if (settled) return;
      settled = true;
      abort.done();
      resolve(result);
    };
    const abort = wireAbort(signal, (reason) => finish(describeError(reason, signal, upstream)));
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart: abort.started,
      onResponseStart(_c, statusCode, responseHeaders) {
        if (statusCode < 200) return; // informational (103 Early Hints): the answer follows
        status = statusCode;
        headers = responseHeaders;
        headersMs = performance.now() - started;
        if (statusCode >= 400) errorBody = new ErrorBody();
      },
      onResponseData(c, chunk) {
        if (errorBody !== null) {
          if (errorBody.add(chunk)) return;
          finish(statusFailure(status, errorBody.bytes(), headers));
          c.abort(new Error('error body past its cap'));
          return;
        }
        size += chunk.length;
        if (size > limit) {
          chunks.length = 0;
          finish(tooLargeFailure(status, limit));
          c.abort(new ResponseTooLarge(limit));
          return;
        }
        chunks.push(chunk);
      },
      onResponseEnd() {
        if (errorBody !== null) {
          finish(statusFailure(status, errorBody.bytes(), headers));
          return;
        }
        finish({ ok: true, status, headers, payload: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), headersMs });
      },
      onResponseError(_c, err) {
        finish(describeError(err, signal, upstream));
      },
    };
    try {
      upstream.pool.dispatch({ method: 'POST', path, headers: upstream.headers, body }, handler);
    } catch (err) {
      finish(describeError(err, signal, upstream));
    }
  });
}
