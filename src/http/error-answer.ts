import type { Services } from '../pipeline/services.js';
import { errors, GatewayError, type OpenAIErrorBody, StoreUnavailableError } from '../core/errors.js';

export interface ErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: OpenAIErrorBody;
}

/**
 * What the client gets for an error thrown while answering: a GatewayError as it is; a shared trace
 * store that is away, 503 with retry-after; anything else, logged, 500. Every answer is in OpenAI's shape.
 */
export function errorAnswer(gw: Pick<Services, 'logger'>, err: unknown, requestId: string): ErrorAnswer {
  if (err instanceof GatewayError) {
    // A client that hung up mid-upload is no fault of the gateway's: worth a debug line only.
    if (err.code === 'request_aborted') gw.logger.debug({ requestId }, 'client closed the connection before its request body was complete');
    return { status: err.status, headers: { ...err.headers }, body: err.toBody() };
  }
  if (err instanceof StoreUnavailableError) {
    // A shared database that is away (chat requests are still answered; reads and some feedback wait for it).
    gw.logger.warn({ error: err.message, requestId }, 'trace store unavailable');
    const unavailable = new GatewayError(503, 'api_error', 'The trace store is unavailable; try again shortly', 'store_unavailable');
    return { status: 503, headers: { 'retry-after': '5' }, body: unavailable.toBody() };
  }
  gw.logger.error({ err, requestId }, 'unhandled error');
  const internal = errors.internal();
  return { status: internal.status, headers: {}, body: internal.toBody() };
}
