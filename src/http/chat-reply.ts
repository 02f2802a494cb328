import type { ServerResponse } from 'node:http';
import { errors, type GatewayError } from '../core/errors.js';
import type { AnswerRead, RelayedHeaders } from '../pipeline/read-answer.js';
import type { ChatReply, RoutingHeaders } from '../pipeline/types.js';
import type { AttemptAbort, AttemptFailure } from '../upstream/attempt.js';
import { relayedHeaders } from '../upstream/relayed-headers.js';
import { relayStream, type StreamOutcome } from '../upstream/relay-stream.js';
import type { Upstream } from '../upstream/upstream.js';

/** Whole answers larger than this are watched until the client has taken them (smaller ones fit the socket's buffers). */
const WATCHED_ANSWER_BYTES = 64 * 1024;
/** Characters of an upstream's error text (not in OpenAI's shape) quoted in the gateway's message. */
const QUOTED_ERROR_CHARS = 500;

/** Writes a JSON answer, unless the response has started or the client is gone. */
export function sendJson(res: ServerResponse, status: number, headers: Record<string, string | string[]>, body: string | Buffer): void {
  if (res.headersSent || res.destroyed) return;
  // The caller's own object (no spread: one allocation fewer per answer).
  headers['content-type'] = 'application/json';
  headers['content-length'] = String(Buffer.byteLength(body));
  res.writeHead(status, headers);
  res.end(body);
}

/**
 * An upstream error passes through, secrets scrubbed, when it is already in OpenAI's shape; otherwise
 * it is wrapped, quoting the start of its (scrubbed) text.
 */
function upstreamErrorBody(failure: AttemptFailure, upstream: Upstream): string | Buffer {
  const raw = failure.body === undefined ? undefined : upstream.redactor.scrub(failure.body);
  if (raw && raw.length > 0) {
    try {
      const parsed = JSON.parse(raw.toString('utf8')) as { error?: unknown };
      if (parsed && typeof parsed.error === 'object' && parsed.error !== null) return raw;
    } catch {
      // not JSON: wrapped below
    }
  }
  const text = raw ? raw.toString('utf8').slice(0, QUOTED_ERROR_CHARS) : '';
  return JSON.stringify(errors.upstreamStatus(failure.status ?? 502, text).toBody());
}

/** The gateway's error for a failed attempt that brought no answer of its own. */
function failureError(failure: AttemptFailure, upstream: Upstream): GatewayError {
  if (failure.kind === 'timeout') return errors.upstreamTimeout(upstream.key, failure.message);
  if (failure.kind === 'malformed') return errors.upstreamBadResponse(upstream.key);
  return errors.upstreamUnreachable(upstream.key);
}

/**
 * Cuts the connection of a client that does not take the rest of an answer already written: its
 * socket's buffered bytes have not gone down for `ms`.
 */
function cutWhenStalled(res: ServerResponse, ms: number): void {
  const socket = res.socket;
  if (socket === null || res.writableFinished) return;
  let left = socket.writableLength;
  const timer = setInterval(() => {
    const now = socket.writableLength;
    if (now < left) left = now;
    else res.destroy();
  }, ms);
  const stop = () => clearInterval(timer);
  res.once('finish', stop);
  res.once('close', stop);
}

/** The pipeline's answers, written on Node's response. */
export class ServerChatReply implements ChatReply {
  constructor(private readonly res: ServerResponse) {}

  refuse(err: GatewayError, headers: Record<string, string>): void {
    sendJson(this.res, err.status, headers, JSON.stringify(err.toBody()));
  }

  upstreamFailed(failure: AttemptFailure, upstream: Upstream, headers: RoutingHeaders): void {
    if (failure.kind === 'status' && (failure.status === 401 || failure.status === 403)) {
      // The upstream refused the gateway's provider key: not the client's key, so never a 401 to it.
      const err = errors.upstreamAuthFailed(upstream.key, failure.status);
      sendJson(this.res, err.status, headers, JSON.stringify(err.toBody()));
      return;
    }
    if (failure.kind === 'status') {
      const out = failure.headers === undefined ? headers : Object.assign(relayedHeaders(failure.headers, upstream.redactor), headers);
      sendJson(this.res, failure.status!, out, upstreamErrorBody(failure, upstream));
      return;
    }
    const err = failureError(failure, upstream);
    sendJson(this.res, err.status, headers, JSON.stringify(err.toBody()));
  }

  whole(status: number, upstreamHeaders: RelayedHeaders, headers: RoutingHeaders, payload: Buffer, writeStallMs: number): boolean {
    const res = this.res;
    if (res.headersSent || res.destroyed) return false;
    const out = Object.assign(upstreamHeaders, headers);
    out['content-length'] = String(payload.length);
    res.writeHead(status, out);
    res.end(payload);
    if (payload.length > WATCHED_ANSWER_BYTES) cutWhenStalled(res, writeStallMs);
    return true;
  }

  stream(
    read: Extract<AnswerRead, { kind: 'stream' }>,
    headers: RoutingHeaders,
    signal: AttemptAbort,
    startedAt: number,
    beforeEnd: (result: StreamOutcome) => Promise<void>,
    tap: ((chunk: Buffer) => void) | undefined,
    writeStallMs: number,
    dropUsage: boolean,
    responses = false,
  ): Promise<StreamOutcome> {
    const res = this.res;
    const sent = read.response;
    const out = Object.assign(read.headers, headers);
    // The gateway's own, whatever the upstream said: an event stream is not to be cached or held by proxies.
    out['cache-control'] = 'no-cache';
    res.writeHead(sent.status, out);
    res.flushHeaders();
    return relayStream(sent.body, res, signal, startedAt, beforeEnd, tap, { redactor: read.redactor, writeStallMs, dropUsage, responses });
  }

  afterSent(task: () => void): void {
    if (this.res.writableFinished) setImmediate(task);
    else this.res.once('finish', task);
  }
}
