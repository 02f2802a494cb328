import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Services } from '../pipeline/services.js';
import { errors, GatewayError } from '../core/errors.js';
import { answerChat } from '../pipeline/answer-chat.js';
import type { RequestInfo } from '../pipeline/record-attempt.js';
import type { ChatRequest } from '../pipeline/types.js';
import { queryContext } from '../routing/context.js';
import { CLASS_HEADER } from '../routing/rules.js';
import { ClientGone, type AttemptAbort } from '../upstream/attempt.js';
import { ServerChatReply, sendJson } from './chat-reply.js';
import { parseChatRequest } from './chat-request.js';
import { errorAnswer } from './error-answer.js';
import { browserCheck } from './browser-guard.js';
import { admitClient, type Caller } from './guard.js';
import { closeAfterAnswer, readBody } from './read-body.js';

const REQUEST_ID = /^[\w.:-]{1,128}$/;
const CHAT_PATH = '/v1/chat/completions';

export function requestIdOf(headers: IncomingHttpHeaders): string {
  const given = headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

/** Resolves which models a request may use, or throws the client's error. */
function resolveTarget(gw: Services, request: ChatRequest): { routed: boolean } {
  if (request.model === gw.config.router.autoModel) return { routed: true };
  if (gw.upstreams.has(request.model)) return { routed: false };
  throw errors.modelNotFound(request.model, gw.config.router.autoModel, gw.modelKeys);
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
 * Takes one of the caller's slots (429 when it has none left) and gives it back when the answer
 * ends: the response closes once it is finished, whatever it was, or when the client leaves.
 */
function holdSlot(gw: Pick<Services, 'concurrency'>, caller: Caller, outgoing: ServerResponse): void {
  const release = gw.concurrency.acquire(caller.id, caller.maxConcurrent);
  if (release === null) throw errors.tooManyConcurrent(caller.maxConcurrent);
  outgoing.once('close', release);
  // A client that left while its admission was decided.
  if (outgoing.destroyed) release();
}

/**
 * POST /v1/chat/completions, answered straight on Node's request and response: the hot path does
 * not pay for a web Request/Response pair (Hono serves every other route). Never rejects: every
 * error is answered in OpenAI's shape.
 */
export function chatCompletionsListener(gw: Services) {
  const checkBrowser = browserCheck(gw.config, !gw.keys.requiresClientKey);
  const { bodyLimitBytes, bodyDepthLimit } = gw.config.server;
  return async function handleChatCompletion(incoming: IncomingMessage, outgoing: ServerResponse): Promise<void> {
    const requestId = requestIdOf(incoming.headers);
    let queryClass: string | null = null;
    try {
      if (checkBrowser !== null) {
        checkBrowser.request(incoming.headers);
        checkBrowser.jsonBody(incoming.headers);
      }
      const admission = admitClient(gw, incoming);
      const caller = admission instanceof Promise ? await admission : admission;
      if (caller.maxConcurrent > 0) holdSlot(gw, caller, outgoing);
      const raw = await readBody(incoming, bodyLimitBytes);
      const request = parseChatRequest(raw, bodyDepthLimit);
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
        requestBytes: raw.length,
      };
      queryClass = info.queryClass;

      gw.inflight++;
      let current: AttemptAbort | null = null;
      const onClose = () => {
        if (!outgoing.writableFinished) current?.abort(new ClientGone('client disconnected'));
      };
      outgoing.on('close', onClose);
      try {
        await answerChat(gw, request, raw, info, new ServerChatReply(outgoing), (ac) => (current = ac));
      } finally {
        outgoing.off('close', onClose);
        gw.inflight--;
      }
    } catch (err) {
      const answer = errorAnswer(gw, err, requestId);
      const headers: Record<string, string> = answer.headers;
      headers['x-request-id'] = requestId;
      if (queryClass !== null) headers['x-router-class'] = queryClass;
      // The rest of a body refused before it was read whole is not read: the connection closes after the answer.
      if (!incoming.complete) closeAfterAnswer(incoming, outgoing);
      sendJson(outgoing, answer.status, headers, JSON.stringify(answer.body));
    }
  };
}
