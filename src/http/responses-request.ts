import { z } from 'zod';
import { GatewayError } from '../core/errors.js';
import type { ResponsesRequest } from '../pipeline/types.js';
import { invalidField, parseRequestObject } from './chat-request.js';

/**
 * Only what the gateway reads is checked: `model`, the shape of `input` (a string or an array of
 * items, each passed as it is), `stream`, `previous_response_id` and `instructions`. Every other
 * field (tools, reasoning, text, store, metadata, fields the gateway does not know) passes through
 * untouched.
 */
const responsesRequestSchema = z.looseObject({
  model: z.string().min(1),
  input: z.union([z.string(), z.array(z.unknown())], { error: 'must be a string or an array of input items' }).optional(),
  stream: z.boolean().nullish(),
  previous_response_id: z.string().min(1).nullish(),
  instructions: z.string().nullish(),
});

/** The request in a body, or the client's error: not JSON, nested deeper than `depthLimit`, or not a valid Responses API request. */
export function parseResponsesRequest(raw: Buffer, depthLimit: number): ResponsesRequest | GatewayError {
  const parsed = parseRequestObject(raw, depthLimit);
  if (parsed instanceof GatewayError) return parsed;
  const result = responsesRequestSchema.safeParse(parsed);
  if (!result.success) return invalidField(result.error.issues[0]!);
  // The parsed object itself, not zod's copy of it (the input may be large).
  return parsed as ResponsesRequest;
}
