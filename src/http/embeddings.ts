import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Services } from '../pipeline/services.js';
import { EMBEDDING_CLASS } from '../core/reserved-classes.js';
import { errors, GatewayError } from '../core/errors.js';
import { answerEmbeddings } from '../pipeline/answer-embeddings.js';
import type { RequestInfo } from '../pipeline/record-attempt.js';
import { admitRequest, answerInFlight, answerRefused, isPostTo, requestIdOf } from './api-admission.js';
import { browserCheck } from './browser-guard.js';
import { ServerChatReply } from './chat-reply.js';
import { inputText, parseEmbeddingsRequest } from './embeddings-request.js';
import { servingKeys } from './models.js';
import { readBody } from './read-body.js';

export const EMBEDDINGS_PATH = '/v1/embeddings';

/** Whether a request is an embeddings request (path `/v1/embeddings`, with or without a query). */
export function isEmbeddings(req: IncomingMessage): boolean {
  return isPostTo(req, EMBEDDINGS_PATH);
}

/**
 * POST /v1/embeddings, answered on Node's request and response as chat completions are: the same
 * browser checks, client keys, request limits, concurrency slots, body limits and request id.
 * Always pinned: `auto` is refused (400, naming the models that serve embeddings), as is a model
 * whose `endpoints` does not list `embeddings`; an unknown model is a 404. Never rejects: every
 * error is answered in OpenAI's shape.
 */
export function embeddingsListener(gw: Services) {
  const checkBrowser = browserCheck(gw.config, !gw.keys.requiresClientKey);
  const { bodyLimitBytes, bodyDepthLimit } = gw.config.server;
  const autoModel = gw.config.router.autoModel;
  const serving = servingKeys(gw.config, 'embeddings');
  return async function handleEmbeddings(incoming: IncomingMessage, outgoing: ServerResponse): Promise<void> {
    const requestId = requestIdOf(incoming.headers);
    try {
      const admission = admitRequest(gw, checkBrowser, incoming, outgoing);
      const caller = admission instanceof Promise ? await admission : admission;
      const raw = await readBody(incoming, bodyLimitBytes);
      const request = parseEmbeddingsRequest(raw, bodyDepthLimit);
      if (request instanceof GatewayError) throw request;
      const model = request.model;
      if (model === autoModel) throw errors.embeddingsNotRouted(autoModel, serving);
      if (!gw.upstreams.has(model)) throw errors.modelNotFound(model, autoModel, gw.modelKeys);
      if (!serving.includes(model)) throw errors.endpointNotServed(model, 'embeddings', serving);
      const query = inputText(request.input);
      const info: RequestInfo = {
        requestId,
        time: Date.now(),
        query,
        queryClass: EMBEDDING_CLASS,
        routed: false,
        keyName: caller.keyName,
        endpoint: 'embeddings',
        requestBytes: raw.length,
      };

      await answerInFlight(gw, outgoing, (setController) => answerEmbeddings(gw, request, raw, info, new ServerChatReply(outgoing), setController));
    } catch (err) {
      answerRefused(gw, err, requestId, null, incoming, outgoing);
    }
  };
}
