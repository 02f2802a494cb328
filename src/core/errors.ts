/**
 * The errors a user can meet. Each has a stable code; the CLI prints a TracegateError's message
 * (no stack) and exits with its exit status. Any other error reaching the CLI is a bug, printed whole.
 * The HTTP API answers with GatewayError, in OpenAI's shape (its code is OpenAI's `error.code`).
 */

/** The stable codes of the errors the CLI reports. */
export const ERROR_CODES = {
  config: 'TRACEGATE_CONFIG_INVALID',
  usage: 'TRACEGATE_USAGE',
  evalData: 'TRACEGATE_EVAL_DATA',
  unknownPolicy: 'TRACEGATE_UNKNOWN_POLICY',
  noDatabase: 'TRACEGATE_NO_DATABASE',
  storeOpen: 'TRACEGATE_STORE_OPEN',
  storeUnavailable: 'TRACEGATE_STORE_UNAVAILABLE',
  traceLine: 'TRACEGATE_TRACE_LINE',
} as const;

export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

/** An error a user can act on: its message says what to fix. */
export class TracegateError extends Error {
  /** The CLI's exit status when this error ends a command. */
  readonly exitCode: number = 1;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The config file is missing, not JSON, or fails validation (each problem named). */
export class ConfigError extends TracegateError {
  constructor(message: string) {
    super(ERROR_CODES.config, message);
  }
}

/** A command line that cannot be carried out (a bad flag value, a file that cannot be read, …). */
export class UsageError extends TracegateError {
  constructor(message: string) {
    super(ERROR_CODES.usage, message);
  }
}

/** An evaluation data file that cannot be used (the line and the problem named). */
export class DatasetError extends TracegateError {
  constructor(message: string) {
    super(ERROR_CODES.evalData, message);
  }
}

/** `router.policy` names no known policy. */
export class UnknownPolicyError extends TracegateError {
  constructor(name: string, known: readonly string[]) {
    super(ERROR_CODES.unknownPolicy, `unknown router policy "${name}" (known: ${known.join(', ')})`);
  }
}

/** A command that reads traces was pointed at a database file that does not exist. */
export class MissingDatabaseError extends TracegateError {
  constructor(readonly path: string) {
    super(ERROR_CODES.noDatabase, `no database at ${path}`);
  }
}

/** A read or write that failed because the database cannot be reached now (HTTP: 503, try again later). */
export class StoreUnavailableError extends TracegateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ERROR_CODES.storeUnavailable, message, options);
  }
}

/** The store could not be opened (database unreachable, refused, spool in use): a message for the operator, no stack. */
export class StoreOpenError extends TracegateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ERROR_CODES.storeOpen, message, options);
  }
}

/** A line of a trace import (JSONL) that cannot be used: nothing of the import is added. */
export class TraceLineError extends TracegateError {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(ERROR_CODES.traceLine, `line ${line}: ${message}`);
  }
}

/** The answers of the HTTP API, in OpenAI's shape. */

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

/** The sentence naming the models that serve an API, or saying that none does. */
function servingModels(serving: readonly string[], endpoint: string): string {
  return serving.length > 0
    ? `Name one of the models that serve ${endpoint}: ${serving.join(', ')}`
    : `No configured model serves ${endpoint}: list "${endpoint}" in a model's endpoints`;
}

export const errors = {
  invalidJson: (detail: string) =>
    new GatewayError(400, 'invalid_request_error', `Request body is not valid JSON: ${detail}`, 'invalid_json'),
  invalidBody: (message: string, param: string | null = null) =>
    new GatewayError(400, 'invalid_request_error', message, 'invalid_request', param),
  bodyTooLarge: (limit: number) =>
    new GatewayError(413, 'invalid_request_error', `Request body exceeds the limit of ${limit} bytes`, 'body_too_large'),
  /** An unknown `model`: the answer names the auto model and the configured keys a client can send instead. */
  modelNotFound: (model: string, autoModel: string, keys: readonly string[]) =>
    new GatewayError(
      404,
      'invalid_request_error',
      `The model '${model}' does not exist or you do not have access to it. Use "${autoModel}" or one of: ${keys.join(', ')}`,
      'model_not_found',
      'model',
    ),
  /** `model: "auto"` on embeddings: routing would mix vector spaces; the answer names the models that serve them. */
  embeddingsNotRouted: (autoModel: string, serving: readonly string[]) =>
    new GatewayError(
      400,
      'invalid_request_error',
      `The model "${autoModel}" cannot be used for embeddings: the vectors of different models are not interchangeable, so embeddings are never routed. ${servingModels(serving, 'embeddings')}`,
      'model_not_routable',
      'model',
    ),
  /** A configured model whose `models.<key>.endpoints` does not list the API asked for; the answer names the models that do. */
  endpointNotServed: (model: string, endpoint: string, serving: readonly string[]) =>
    new GatewayError(
      400,
      'invalid_request_error',
      `The model '${model}' does not serve ${endpoint} (models.${model}.endpoints). ${servingModels(serving, endpoint)}`,
      'model_endpoint_not_served',
      'model',
    ),
  /** `model: "auto"` on an API no routed model serves (`routed` true and `endpoints` listing it); the answer names the models that serve it. */
  endpointNotRouted: (autoModel: string, endpoint: string, serving: readonly string[]) =>
    new GatewayError(
      400,
      'invalid_request_error',
      `The model "${autoModel}" cannot be used for ${endpoint}: no routed model serves it (models.<key>.routed and endpoints). ${servingModels(serving, endpoint)}`,
      'model_not_routable',
      'model',
    ),
  /**
   * A routed request continuing a response (`previous_response_id`) whose model, which holds the
   * response's state, cannot take it: no longer configured, or no longer serving responses.
   */
  previousResponseModelUnavailable: (responseId: string, model: string) =>
    new GatewayError(
      400,
      'invalid_request_error',
      `The response '${responseId}' was made by the model '${model}', which holds its state, and that model does not serve responses here now: start a new response, or name a model that can continue it`,
      'previous_response_model_unavailable',
      'previous_response_id',
    ),
  routeNotFound: (method: string, path: string) =>
    new GatewayError(404, 'invalid_request_error', `Unknown request URL: ${method} ${path}`, 'unknown_url'),
  methodNotAllowed: (method: string, path: string) =>
    new GatewayError(405, 'invalid_request_error', `Method ${method} not allowed on ${path}`, 'method_not_allowed'),
  /** Feedback on a refused attempt (a rate limit, a refused key, a request too big): there was no answer to rate. */
  traceNotRateable: (id: string) =>
    new GatewayError(
      409,
      'invalid_request_error',
      `Trace '${id}' is a refused attempt (the model did not take the request: a rate limit, a refused provider key or a request too big for it); there is no answer to rate`,
      'trace_not_rateable',
      'trace_id',
    ),
  traceNotFound: (id: string) =>
    new GatewayError(404, 'invalid_request_error', `No trace with id '${id}'`, 'trace_not_found', 'trace_id'),
  unsupportedMediaType: () =>
    new GatewayError(415, 'invalid_request_error', 'Content-Type must be application/json', 'unsupported_media_type'),
  upstreamUnreachable: (model: string) =>
    new GatewayError(502, 'upstream_error', `Upstream for model '${model}' could not be reached`, 'upstream_unreachable'),
  /** The model did not answer in time; `what` says what ran out (its timeout, or the request's deadline). */
  upstreamTimeout: (model: string, what: string) => new GatewayError(504, 'timeout_error', `Upstream for model '${model}': ${what}`, 'upstream_timeout'),
  /** An upstream's error answer not in OpenAI's shape, wrapped in it with the start of its text. */
  upstreamStatus: (status: number, quoted: string) =>
    new GatewayError(status, 'upstream_error', `Upstream answered ${status}${quoted ? `: ${quoted}` : ''}`, 'upstream_error'),
  /** The upstream refused the gateway's own provider key for the model (401/403): the operator's to fix, not the client's. */
  upstreamAuthFailed: (model: string, status: number) =>
    new GatewayError(
      502,
      'upstream_error',
      `Upstream for model '${model}' refused the gateway's provider key (${status}); check models.${model}.apiKey / apiKeyEnv`,
      'upstream_auth_failed',
    ),
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

  /** Client keys are configured but no admin key: the admin endpoints stay closed. */
  adminKeyRequired: () =>
    new GatewayError(
      403,
      'invalid_request_error',
      'This endpoint needs the admin key, and this gateway has none: make one with `tracegate keys add NAME --admin` and put its entry in the config as auth.adminKey.',
      'admin_key_required',
    ),
  /** Keyless mode: a Host header that is not this machine's (a DNS-rebinding page, say). */
  hostNotAllowed: (host: string) =>
    new GatewayError(
      403,
      'invalid_request_error',
      `Host '${host}' is not served: without client keys the gateway answers only requests addressed to a loopback name (localhost, 127.0.0.1, [::1]) or to server.host`,
      'host_not_allowed',
    ),
  /** Keyless mode: a browser request from a page of another site. */
  originNotAllowed: (origin: string) =>
    new GatewayError(
      403,
      'invalid_request_error',
      `Origin '${origin}' is not allowed: without client keys the gateway answers no web page but those of this machine`,
      'origin_not_allowed',
    ),
  bodyTooDeep: (limit: number) =>
    new GatewayError(400, 'invalid_request_error', `Request body is nested more than ${limit} levels deep`, 'body_too_deep'),
  /** A top-level key that some upstreams' decoders would read as `model` (they match keys ignoring case). */
  modelKeyCase: (key: string) =>
    new GatewayError(
      400,
      'invalid_request_error',
      `Invalid '${key}': the model is named by 'model' only; a key that differs from it only in case is refused`,
      'invalid_request',
      key,
    ),
  /** An admin query parameter that is not what it should be. */
  invalidQuery: (name: string, expected: string) =>
    new GatewayError(400, 'invalid_request_error', `Invalid '${name}': expected ${expected}`, 'invalid_request', name),
  /** A session id (`x-session-id`, `metadata.session_id`) too long to be one. */
  sessionIdTooLong: (where: string, max: number) =>
    new GatewayError(400, 'invalid_request_error', `Invalid '${where}': a session id is at most ${max} characters`, 'invalid_session_id', where),
  /** The client closed its connection before its request body was complete. */
  uploadAborted: () =>
    new GatewayError(400, 'invalid_request_error', 'The request body was cut short: the client closed the connection', 'request_aborted'),
  tooManyConcurrent: (limit: number) =>
    new GatewayError(
      429,
      'requests',
      `Too many concurrent requests: this key may have ${limit} in flight at once. Please try again shortly.`,
      'too_many_concurrent_requests',
    ).withHeaders({ 'retry-after': '1' }),
  /** Too many wrong keys from one client address: it is refused until its allowance refills. */
  tooManyFailedAuth: (retryAfter: number) =>
    new GatewayError(
      429,
      'requests',
      `Too many requests with a wrong API key from this address. Please try again in ${retryAfter}s.`,
      'too_many_failed_auth',
    ).withHeaders({ 'retry-after': String(retryAfter) }),
  /** Node's own refusals of a request it could not read as HTTP. */
  badHttpRequest: () => new GatewayError(400, 'invalid_request_error', 'The request is not valid HTTP', 'bad_http_request'),
  requestTimeout: () =>
    new GatewayError(408, 'invalid_request_error', 'The request was not received in time', 'request_timeout'),
  headersTooLarge: () =>
    new GatewayError(431, 'invalid_request_error', 'The request headers are too large', 'headers_too_large'),
};
