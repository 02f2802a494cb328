import type { GatewayError } from '../core/errors.js';
import type { AttemptAbort, AttemptFailure } from '../upstream/attempt.js';
import type { StreamOutcome } from '../upstream/relay-stream.js';
import type { Upstream } from '../upstream/upstream.js';
import type { AnswerRead, RelayedHeaders } from './read-answer.js';

/** One message of a chat request: only `role` is checked; every other field passes through. */
export interface ChatMessage extends Record<string, unknown> {
  role: string;
}

/** A chat completion request as parsed: `model`, `messages` and `stream` checked, the rest untouched. */
export type ChatRequest = {
  model: string;
  messages: ChatMessage[];
  stream?: boolean | null;
} & Record<string, unknown>;

/**
 * A Responses API request as parsed: `model`, `input`, `stream`, `previous_response_id` and
 * `instructions` checked, the rest (tools, reasoning, text, store, metadata…) untouched.
 */
export type ResponsesRequest = {
  model: string;
  /** A string, or input items (messages, function call outputs…), each passed as it is; absent when the request does not give one. */
  input?: string | unknown[];
  stream?: boolean | null;
  previous_response_id?: string | null;
  instructions?: string | null;
} & Record<string, unknown>;

/** Headers the gateway adds to an answer (trace id, request id, routing decision). */
export type RoutingHeaders = Record<string, string>;

/**
 * How the pipeline answers the client. The HTTP layer writes the bytes; the pipeline decides what
 * is answered and when (after the trace is committed).
 */
export interface ChatReply {
  /** The gateway's own refusal: no model could take the request, or the pinned one is full. */
  refuse(err: GatewayError, headers: Record<string, string>): void;
  /**
   * The last attempt failed: the upstream's error answer (its allowlisted headers and its body,
   * secrets scrubbed), or the gateway's for a failure without one or for a refused provider key
   * (401/403: a 502 `upstream_auth_failed`).
   */
  upstreamFailed(failure: AttemptFailure, upstream: Upstream, headers: RoutingHeaders): void;
  /**
   * A whole answer (headers and payload as `readAnswer` gives them), unless the client is gone; says
   * whether it went out. A client that stops taking a large one for `writeStallMs` is cut.
   */
  whole(status: number, upstreamHeaders: RelayedHeaders, headers: RoutingHeaders, payload: Buffer, writeStallMs: number): boolean;
  /**
   * Relays a streamed answer as it comes (relayStream). `beforeEnd` runs before the stream's end goes
   * out; `tap` sees every byte relayed; a client that has not drained for `writeStallMs` is cut.
   * With `dropUsage` the usage event (asked for by the gateway, not the client) is not relayed.
   * With `responses`, a Responses API stream: its end is the event that ends the response, and the
   * outcome carries its id and failure (RelayOptions.responses).
   */
  stream(
    read: Extract<AnswerRead, { kind: 'stream' }>,
    headers: RoutingHeaders,
    signal: AttemptAbort,
    startedAt: number,
    beforeEnd: (result: StreamOutcome) => Promise<void>,
    tap: ((chunk: Buffer) => void) | undefined,
    writeStallMs: number,
    dropUsage: boolean,
    responses?: boolean,
  ): Promise<StreamOutcome>;
  /** Runs `task` once the client has the answer's last byte. */
  afterSent(task: () => void): void;
}

/** An embeddings request as parsed: `model` and `input` checked, the rest untouched. */
export type EmbeddingsRequest = {
  model: string;
  /** A string, strings, token ids, or arrays of token ids. */
  input: string | string[] | number[] | number[][];
} & Record<string, unknown>;

/** How the pipeline answers a request whose answer is one JSON body (embeddings): ChatReply's whole answers and refusals. */
export type WholeReply = Pick<ChatReply, 'refuse' | 'upstreamFailed' | 'whole'>;
