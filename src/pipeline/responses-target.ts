import type { Services } from './services.js';
import { errors } from '../core/errors.js';
import type { ResponsesRequest } from './types.js';

/** Where a Responses API request may go: routed or pinned, and for a routed one continuing a response, the model that holds its state. */
export interface ResponsesTarget {
  routed: boolean;
  /** The model that made the response `previous_response_id` names (routed requests only), or null. */
  holder: string | null;
}

/**
 * Resolves a Responses API request's target, or throws the client's error. A named model must be
 * configured (else 404) and serve responses (else 400, naming those that do); it is used as asked,
 * `previous_response_id` or not. With `auto`: a `previous_response_id` the trace store knows goes to
 * the model that made that response (its state lives there), even one not routed, unless that model
 * no longer serves responses (400); an id the store does not know (made outside the gateway, or
 * before its traces were purged) is routed as any request, and the upstream chosen answers for it.
 * `auto` with no routed model serving responses is a 400.
 */
export async function responsesTarget(
  gw: Pick<Services, 'config' | 'logger' | 'modelKeys' | 'routedFor' | 'store' | 'upstreams'>,
  request: ResponsesRequest,
  serving: readonly string[],
): Promise<ResponsesTarget> {
  const autoModel = gw.config.router.autoModel;
  const model = request.model;
  if (model !== autoModel) {
    if (!gw.upstreams.has(model)) throw errors.modelNotFound(model, autoModel, gw.modelKeys);
    if (!serving.includes(model)) throw errors.endpointNotServed(model, 'responses', serving);
    return { routed: false, holder: null };
  }
  const previous = request.previous_response_id;
  if (typeof previous === 'string') {
    let holder: string | undefined;
    try {
      holder = await gw.store.modelOfResponse(previous);
    } catch (err) {
      // The store cannot say (PostgreSQL unreachable): routed as an unknown id is.
      gw.logger.warn({ err, previousResponseId: previous }, 'the model of a previous response could not be looked up: routed');
    }
    if (holder !== undefined) {
      if (!serving.includes(holder)) throw errors.previousResponseModelUnavailable(previous, holder);
      return { routed: true, holder };
    }
  }
  if (gw.routedFor('responses').length === 0) throw errors.endpointNotRouted(autoModel, 'responses', serving);
  return { routed: true, holder: null };
}
