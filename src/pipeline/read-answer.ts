import { describeError, ResponseTooLarge, sendStreamAttempt, sendWholeAttempt, tooLargeFailure, type AttemptAbort, type AttemptFailure, type AttemptResponse } from '../upstream/attempt.js';
import { isJsonObject } from '../upstream/json-check.js';
import type { Redactor } from '../upstream/redact.js';
import { relayedHeaders } from '../upstream/relayed-headers.js';
import { usageFromBody, type Usage } from '../upstream/usage.js';
import type { Upstream } from '../upstream/upstream.js';

/** The upstream headers a client gets (allowlisted, secrets scrubbed); the gateway adds its own. */
export type RelayedHeaders = Record<string, string | string[]>;

/** An attempt's answer, read as far as the gateway needs before anything reaches the client. */
export type AnswerRead =
  | AttemptFailure
  | {
      ok: true;
      kind: 'whole';
      status: number;
      headers: RelayedHeaders;
      /** The answer, its secrets scrubbed. */
      payload: Buffer;
      /** Tokens as the upstream counted them, when it said. */
      usage: Usage | null;
      /** Milliseconds from the start of the attempt to the response headers. */
      headersMs: number;
    }
  | {
      ok: true;
      kind: 'stream';
      response: AttemptResponse;
      headers: RelayedHeaders;
      /** Scrubs the stream as it is relayed. */
      redactor: Redactor;
    };

/**
 * Sends one attempt (to the chat completions endpoint, or `path`: the embeddings endpoint, whole
 * answers only, or the Responses API's) and reads its answer: a request without a stream gets its answer whole; a
 * stream request gets the body as it comes, unless the upstream answers it with plain JSON, which
 * is then read whole. A whole answer is read up to the model's `maxResponseBytes`, and must be one
 * JSON object (checked byte by byte, nothing built: isJsonObject); otherwise (cut short, HTML, too
 * large…) it is a malformed answer. `usage` is read from its tail without parsing the rest.
 */
export async function readAnswer(upstream: Upstream, body: Buffer | string, signal: AttemptAbort, stream: boolean, path?: string): Promise<AnswerRead> {
  const sent = stream ? await sendStreamAttempt(upstream, body, signal, path) : await sendWholeAttempt(upstream, body, signal, path);
  if (!sent.ok) return sent;
  let payload: Buffer;
  if ('payload' in sent) {
    payload = sent.payload;
  } else if (isEventStream(sent.headers['content-type'])) {
    return { ok: true, kind: 'stream', response: sent, headers: relayedHeaders(sent.headers, upstream.redactor), redactor: upstream.redactor };
  } else {
    try {
      payload = await sent.body.readAll(upstream.maxResponseBytes);
    } catch (err) {
      if (err instanceof ResponseTooLarge) return tooLargeFailure(sent.status, err.limit);
      return describeError(err, signal, upstream);
    }
  }
  if (!isJsonObject(payload)) {
    return { ok: false, kind: 'malformed', message: 'upstream sent a malformed response', status: sent.status, retryable: true };
  }
  return {
    ok: true,
    kind: 'whole',
    status: sent.status,
    headers: relayedHeaders(sent.headers, upstream.redactor),
    payload: upstream.redactor.scrub(payload),
    usage: usageFromBody(payload),
    headersMs: sent.headersMs,
  };
}

function isEventStream(type: string | string[] | undefined): boolean {
  return typeof type === 'string' && type.includes('text/event-stream');
}
