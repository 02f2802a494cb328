import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Services } from '../pipeline/services.js';
import { GatewayError } from '../core/errors.js';
import { answerResponses } from '../pipeline/answer-chat.js';
import type { RequestInfo } from '../pipeline/record-attempt.js';
import { responsesTarget } from '../pipeline/responses-target.js';
import { responsesContext } from '../routing/context.js';
import { CLASS_HEADER } from '../routing/rules.js';
import { admitRequest, answerInFlight, answerRefused, isPostTo, requestIdOf } from './api-admission.js';
import { browserCheck } from './browser-guard.js';
import { ServerChatReply } from './chat-reply.js';
import { servingKeys } from './models.js';
import { readBody } from './read-body.js';
import { parseResponsesRequest } from './responses-request.js';

export const RESPONSES_PATH = '/v1/responses';

/** Whether a request creates a response (POST `/v1/responses`, with or without a query). */
export function isResponses(req: IncomingMessage): boolean {
  return isPostTo(req, RESPONSES_PATH);
}

/**
 * POST /v1/responses (OpenAI's Responses API), answered on Node's request and response as chat
 * completions are: the same browser checks, client keys, request limits, concurrency slots, body
 * limits, request id and routing headers. Routed (`auto`, among the routed models whose `endpoints`
 * list `responses`) or pinned; see responsesTarget for `previous_response_id`. Never rejects: every
 * error is answered in OpenAI's shape.
 */
export function responsesListener(gw: Services) {
  const checkBrowser = browserCheck(gw.config, !gw.keys.requiresClientKey);
  const { bodyLimitBytes, bodyDepthLimit } = gw.config.server;
  const serving = servingKeys(gw.config, 'responses');
  return async function handleResponses(incoming: IncomingMessage, outgoing: ServerResponse): Promise<void> {
    const requestId = requestIdOf(incoming.headers);
    let queryClass: string | null = null;
    try {
      const admission = admitRequest(gw, checkBrowser, incoming, outgoing);
      const caller = admission instanceof Promise ? await admission : admission;
      const raw = await readBody(incoming, bodyLimitBytes);
      const request = parseResponsesRequest(raw, bodyDepthLimit);
      if (request instanceof GatewayError) throw request;
      const { routed, holder } = await responsesTarget(gw, request, serving);
      const classHeader = incoming.headers[CLASS_HEADER];
      const context = responsesContext(request, gw.config.router.classes, typeof classHeader === 'string' ? classHeader : undefined);
      const info: RequestInfo = {
        requestId,
        time: Date.now(),
        query: context.query,
        queryClass: context.queryClass,
        context,
        routed,
        keyName: caller.keyName,
        endpoint: 'responses',
        requestBytes: raw.length,
      };
      queryClass = info.queryClass;

      await answerInFlight(gw, outgoing, (setController) => answerResponses(gw, request, raw, info, new ServerChatReply(outgoing), setController, holder));
    } catch (err) {
      answerRefused(gw, err, requestId, queryClass, incoming, outgoing);
    }
  };
}
