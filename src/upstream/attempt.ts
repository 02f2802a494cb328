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
  /** The upstream's own error body and headers, for a `status` failure. */
  body?: Buffer;
  headers?: IncomingHttpHeaders;
}

export interface AttemptResponse {
  ok: true;
  status: number;
  headers: IncomingHttpHeaders;
  body: Dispatcher.ResponseData['body'];
  /** Milliseconds from the start of the attempt to the response headers. */
  headersMs: number;
}

export class UpstreamTimeout extends Error {
  readonly code = 'TRACEGATE_UPSTREAM_TIMEOUT';
}
export class ClientGone extends Error {
  readonly code = 'TRACEGATE_CLIENT_GONE';
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
      message: `no answer within ${upstream.timeoutMs} ms`,
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

/** The failure for an upstream's error status, with its body and headers (passed on to the client). */
function statusFailure(status: number, body: Buffer, headers: IncomingHttpHeaders): AttemptFailure {
  return { ok: false, kind: 'status', message: `upstream answered ${status}`, status, retryable: isRetryableStatus(status), body, headers };
}

/** Sends one chat request that asked for a stream and waits for its response headers; the body comes as it arrives. */
export async function sendStreamAttempt(upstream: Upstream, body: Buffer | string, signal: AbortSignal | AttemptAbort): Promise<AttemptResponse | AttemptFailure> {
  const started = performance.now();
  try {
    const res = await upstream.pool.request({
      method: 'POST',
      path: upstream.chatPath,
      headers: { ...upstream.headers, accept: 'text/event-stream' },
      body,
      signal,
    });
    const headersMs = performance.now() - started;
    if (res.statusCode >= 400) {
      let errorBody: Buffer;
      try {
        errorBody = Buffer.from(await res.body.arrayBuffer());
      } catch (err) {
        return describeError(err, signal, upstream);
      }
      return statusFailure(res.statusCode, errorBody, res.headers);
    }
    return { ok: true, status: res.statusCode, headers: res.headers, body: res.body, headersMs };
  } catch (err) {
    return describeError(err, signal, upstream);
  }
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
 * Sends one chat request and reads its whole answer, for a request that did not ask for a stream.
 * It goes through undici's dispatch with a handler that keeps the chunks, not `request()`: no body
 * stream, no consume promise per answer (16% fewer instructions per request in the gateway under
 * callgrind; BENCHMARKS.md).
 * The same pool, timeouts and abort signal as `sendStreamAttempt`; a failure is described the same way.
 */
export function sendWholeAttempt(upstream: Upstream, body: Buffer | string, signal: AttemptAbort): Promise<WholeResponse | AttemptFailure> {
  return new Promise((resolve) => {
    const started = performance.now();
    let controller: Dispatcher.DispatchController | null = null;
    let status = 0;
    let headers: IncomingHttpHeaders = {};
    let headersMs = 0;
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const onAbort = (reason: unknown) => {
      // Before the request has a connection, undici has no controller yet: onRequestStart aborts it.
      controller?.abort(reason instanceof Error ? reason : new undiciErrors.RequestAbortedError());
    };
    const finish = (result: WholeResponse | AttemptFailure) => {
      if (settled) return;
      settled = true;
      signal.off('abort', onAbort);
      resolve(result);
    };
    signal.on('abort', onAbort);
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (signal.aborted) onAbort(signal.reason);
      },
      onResponseStart(_c, statusCode, responseHeaders) {
        if (statusCode < 200) return; // informational (103 Early Hints): the answer follows
        status = statusCode;
        headers = responseHeaders;
        headersMs = performance.now() - started;
      },
      onResponseData(_c, chunk) {
        chunks.push(chunk);
        size += chunk.length;
      },
      onResponseEnd() {
        const payload = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
        finish(status >= 400 ? statusFailure(status, payload, headers) : { ok: true, status, headers, payload, headersMs });
      },
      onResponseError(_c, err) {
        finish(describeError(err, signal, upstream));
      },
    };
    try {
      upstream.pool.dispatch({ method: 'POST', path: upstream.chatPath, headers: upstream.headers, body }, handler);
    } catch (err) {
      finish(describeError(err, signal, upstream));
    }
  });
}
