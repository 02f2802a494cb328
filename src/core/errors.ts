/** The one factory for errors the gateway answers with, in OpenAI's shape. */

export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'api_error'
  | 'upstream_error'
  | 'timeout_error';

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class GatewayError extends Error {
  /** Headers the answer carries besides the body (retry-after). */
  headers: Record<string, string> | undefined;

  constructor(
    readonly status: number,
    readonly type: ErrorType | string,
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'GatewayError';
  }

  withHeaders(headers: Record<string, string>): this {
    this.headers = { ...this.headers, ...headers };
    return this;
  }

  toBody(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const errors = {
  invalidJson: (detail: string) =>
    new GatewayError(400, 'invalid_request_error', `Request body is not valid JSON: ${detail}`, 'invalid_json'),
  invalidBody: (message: string, param: string | null = null) =>
    new GatewayError(400, 'invalid_request_error', message, 'invalid_request', param),
  bodyTooLarge: (limit: number) =>
    new GatewayError(413, 'invalid_request_error', `Request body exceeds the limit of ${limit} bytes`, 'body_too_large'),
  modelNotFound: (model: string) =>
    new GatewayError(
      404,
      'invalid_request_error',
      `The model '${model}' does not exist or you do not have access to it.`,
      'model_not_found',
      'model',
    ),
  routeNotFound: (method: string, path: string) =>
    new GatewayError(404, 'invalid_request_error', `Unknown request URL: ${method} ${path}`, 'unknown_url'),
  methodNotAllowed: (method: string, path: string) =>
    new GatewayError(405, 'invalid_request_error', `Method ${method} not allowed on ${path}`, 'method_not_allowed'),
  traceNotFound: (id: string) =>
    new GatewayError(404, 'invalid_request_error', `No trace with id '${id}'`, 'trace_not_found', 'trace_id'),
  unsupportedMediaType: () =>
    new GatewayError(415, 'invalid_request_error', 'Content-Type must be application/json', 'unsupported_media_type'),
  upstreamUnreachable: (model: string) =>
    new GatewayError(502, 'upstream_error', `Upstream for model '${model}' could not be reached`, 'upstream_unreachable'),
  upstreamTimeout: (model: string, ms: number) =>
    new GatewayError(504, 'timeout_error', `Upstream for model '${model}' did not answer within ${ms} ms`, 'upstream_timeout'),
  upstreamBadResponse: (model: string) =>
    new GatewayError(502, 'upstream_error', `Upstream for model '${model}' sent a malformed response`, 'upstream_bad_response'),
  noModelAvailable: () =>
    new GatewayError(503, 'api_error', 'No upstream model is available to answer', 'no_model_available'),
  unavailable: (message: string) => new GatewayError(503, 'api_error', message, 'service_unavailable'),
  missingApiKey: () =>
    new GatewayError(
      401,
      'invalid_request_error',
      "You didn't provide an API key. Send it in the Authorization header as 'Bearer YOUR_KEY'.",
      'missing_api_key',
    ),
  invalidApiKey: () => new GatewayError(401, 'invalid_request_error', 'Incorrect API key provided.', 'invalid_api_key'),
  rateLimited: (perMinute: number, retryAfter: number) =>
    new GatewayError(
      429,
      'requests',
      `Rate limit reached: ${perMinute} requests per minute. Please try again in ${retryAfter}s.`,
      'rate_limit_exceeded',
    ).withHeaders({ 'retry-after': String(retryAfter) }),
  modelBusy: (model: string, limit: number) =>
    new GatewayError(429, 'requests', `Model '${model}' already has ${limit} requests in flight; try again shortly.`, 'model_busy'),
  internal: () => new GatewayError(500, 'api_error', 'Internal gateway error', 'internal_error'),
};
