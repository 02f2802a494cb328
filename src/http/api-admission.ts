import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Services } from '../pipeline/services.js';
import { errors } from '../core/errors.js';
import { ClientGone, type AttemptAbort } from '../upstream/attempt.js';
import type { BrowserCheck } from './browser-guard.js';
import { sendJson } from './chat-reply.js';
import { errorAnswer } from './error-answer.js';
import { admitClient, type Caller } from './guard.js';
import { closeAfterAnswer } from './read-body.js';

/**
 * What the model APIs answered on Node's request and response (chat completions, responses, embeddings) do
 * before reading a body and after a refusal: the request id, the browser checks, the client key
 * and request limit, the caller's concurrency slot; the error answer in OpenAI's shape.
 */

const REQUEST_ID = /^[\w.:-]{1,128}$/;

export function requestIdOf(headers: IncomingHttpHeaders): string {
  const given = headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

/** Whether a request is a POST to `path` (with or without a query). */
export function isPostTo(req: IncomingMessage, path: string): boolean {
  const url = req.url;
  return (
    req.method === 'POST' &&
    url !== undefined &&
    url.startsWith(path) &&
    (url.length === path.length || url.charCodeAt(path.length) === 63) // '?'
  );
}

/**
 * Takes one of the caller's slots (429 when it has none left) and gives it back when the answer
 * ends: the response closes once it is finished, whatever it was, or when the client leaves.
 */
function holdSlot(gw: Pick<Services, 'concurrency'>, caller: Caller, outgoing: ServerResponse): Caller {
  if (caller.maxConcurrent === 0) return caller;
  const release = gw.concurrency.acquire(caller.id, caller.maxConcurrent);
  if (release === null) throw errors.tooManyConcurrent(caller.maxConcurrent);
  outgoing.once('close', release);
  // A client that left while its admission was decided.
  if (outgoing.destroyed) release();
  return caller;
}

/**
 * A model API request's admission: the browser checks (keyless mode), the client key and request
 * limit (admitClient), then one of the caller's concurrency slots, held until the response closes.
 * Throws the client's error; a promise only when the request limit is shared (Redis).
 */
export function admitRequest(
  gw: Pick<Services, 'concurrency' | 'config' | 'failedAuth' | 'keys' | 'limiter'>,
  checkBrowser: BrowserCheck | null,
  incoming: IncomingMessage,
  outgoing: ServerResponse,
): Caller | Promise<Caller> {
  if (checkBrowser !== null) {
    checkBrowser.request(incoming.headers);
    checkBrowser.jsonBody(incoming.headers);
  }
  const admission = admitClient(gw, incoming);
  return admission instanceof Promise ? admission.then((caller) => holdSlot(gw, caller, outgoing)) : holdSlot(gw, admission, outgoing);
}

/**
 * Answers a refused request in OpenAI's shape, with its request id (and query class once known).
 * The rest of a body refused before it was read whole is not read: the connection closes after the answer.
 */
export function answerRefused(
  gw: Pick<Services, 'logger'>,
  err: unknown,
  requestId: string,
  queryClass: string | null,
  incoming: IncomingMessage,
  outgoing: ServerResponse,
): void {
  const answer = errorAnswer(gw, err, requestId);
  const headers: Record<string, string> = answer.headers;
  headers['x-request-id'] = requestId;
  if (queryClass !== null) headers['x-router-class'] = queryClass;
  if (!incoming.complete) closeAfterAnswer(incoming, outgoing);
  sendJson(outgoing, answer.status, headers, JSON.stringify(answer.body));
}

/**
 * Runs `answer` as one request in flight (counted for a graceful shutdown): a client that leaves
 * before its answer is finished aborts the attempt running then (`answer` hands each attempt's
 * controller over as it starts).
 */
export async function answerInFlight(
  gw: Pick<Services, 'inflight'>,
  outgoing: ServerResponse,
  answer: (setController: (ac: AttemptAbort) => void) => Promise<void>,
): Promise<void> {
  gw.inflight++;
  let current: AttemptAbort | null = null;
  const onClose = () => {
    if (!outgoing.writableFinished) current?.abort(new ClientGone('client disconnected'));
  };
  outgoing.on('close', onClose);
  try {
    await answer((ac) => (current = ac));
  } finally {
    outgoing.off('close', onClose);
    gw.inflight--;
  }
}
