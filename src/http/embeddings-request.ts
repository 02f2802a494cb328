import { z } from 'zod';
import { GatewayError } from '../core/errors.js';
import type { EmbeddingsRequest } from '../pipeline/types.js';
import { invalidField, parseRequestObject } from './chat-request.js';

/** Only `model` and the shape of `input` are checked; every other field passes through untouched. */
const tokens = z.array(z.number().int().nonnegative());
const embeddingsRequestSchema = z.looseObject({
  model: z.string().min(1),
  input: z.union([z.string(), z.array(z.string()), tokens, z.array(tokens)], {
    error: (issue) =>
      issue.input === undefined ? 'is required' : 'must be a string, an array of strings, an array of token ids, or an array of arrays of token ids',
  }),
});

/** The request in a body, or the client's error: not JSON, nested deeper than `depthLimit`, or not a valid embeddings request. */
export function parseEmbeddingsRequest(raw: Buffer, depthLimit: number): EmbeddingsRequest | GatewayError {
  const parsed = parseRequestObject(raw, depthLimit);
  if (parsed instanceof GatewayError) return parsed;
  const result = embeddingsRequestSchema.safeParse(parsed);
  if (!result.success) return invalidField(result.error.issues[0]!);
  // The parsed object itself, not zod's copy of it (the input may be large).
  return parsed as EmbeddingsRequest;
}

/** The text of an embeddings request's input as a trace keeps it: the strings, one a line; token ids have none. */
export function inputText(input: EmbeddingsRequest['input']): string {
  if (typeof input === 'string') return input;
  return input.every((item) => typeof item === 'string') ? (input as string[]).join('\n') : '';
}
