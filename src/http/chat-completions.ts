import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Services } from '../pipeline/services.js';
import { errors, GatewayError } from '../core/errors.js';
import { answerChat } from '../pipeline/answer-chat.js';
import { SESSION_HEADER } from '../pipeline/sticky-sessions.js';
import type { RequestInfo } from '../pipeline/record-attempt.js';
import type { ChatRequest } from '../pipeline/types.js';
import { queryContext } from '../routing/context.js';
import { CLASS_HEADER } from '../routing/rules.js';
import { admitRequest, answerInFlight, answerRefused, isPostTo, requestIdOf } from './api-admission.js';
import { ServerChatReply } from './chat-reply.js';
import { parseChatRequest } from './chat-request.js';
import { browserCheck } from './browser-guard.js';
import { servingKeys } from './models.js';
import { readBody } from './read-body.js';

const CHAT_PATH = '/v1/chat/completions';

/**
 * Resolves which models a request may use, or throws the client's error (a model that does not
 * serve chat, or `auto` when no routed model does: 400, naming those that serve chat).
 */
function resolveTarget(gw: Services, request: ChatRequest, serving: readonly string[]): { routed: boolean } {
  if (request.model === gw.config.router.autoModel) {
    if (gw.routedFor('chat').length === 0) throw errors.endpointNotRouted(request.model, 'chat', serving);
    return { routed: true };
  }
  if (!gw.upstreams.has(request.model)) throw errors.modelNotFound(request.model, gw.config.router.autoModel, gw.modelKeys);
  if (!serving.includes(request.model)) throw errors.endpointNotServed(request.model, 'chat', serving);
  return { routed: false };
}

/** Whether a request is a chat completion (path `/v1/chat/completions`, with or without a query). */
export function isChatCompletion(req: IncomingMessage): boolean {
  return isPostTo(req, CHAT_PATH);
}

/**
 * POST /v1/chat/completions, answered straight on Node's request and response: the hot path does
 * not pay for a web Request/Response pair (Hono serves every other route). Never rejects: every
 * error is answered in OpenAI's shape.
 */
export function chatCompletionsListener(gw: Services) {
  const checkBrowser = browserCheck(gw.config, !gw.keys.requiresClientKey);
  const { bodyLimitBytes, bodyDepthLimit } = gw.config.server;
  const serving = servingKeys(gw.config, 'chat');
  return async function handleChatCompletion(incoming: IncomingMessage, outgoing: ServerResponse): Promise<void> {
    const requestId = requestIdOf(incoming.headers);
    let queryClass: string | null = null;
    try {
      const admission = admitRequest(gw, checkBrowser, incoming, outgoing);
      const caller = admission instanceof Promise ? await admission : admission;
      const raw = await readBody(incoming, bodyLimitBytes);
      const request = parseChatRequest(raw, bodyDepthLimit);
      if (request instanceof GatewayError) throw request;
      const { routed } = resolveTarget(gw, request, serving);
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
        // The conversation (router.sticky): only a routed request's model depends on it.
        session:
          routed && gw.sticky !== null
            ? gw.sticky.sessionKey(caller.keyName, { header: incoming.headers[SESSION_HEADER], metadata: request.metadata, items: request.messages })
            : null,
      };
      queryClass = info.queryClass;

      await answerInFlight(gw, outgoing, (setController) => answerChat(gw, request, raw, info, new ServerChatReply(outgoing), setController));
    } catch (err) {
      answerRefused(gw, err, requestId, queryClass, incoming, outgoing);
    }
  };
}
