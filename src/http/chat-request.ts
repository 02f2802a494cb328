import { z } from 'zod';
import { errors, GatewayError } from '../core/errors.js';
import type { ChatRequest } from '../pipeline/types.js';

/** Only what the gateway needs is checked; every other field passes through untouched. */
const messageSchema = z.looseObject({ role: z.string().min(1) });
const chatRequestSchema = z.looseObject({
  model: z.string().min(1),
  messages: z.array(messageSchema).min(1),
  stream: z.boolean().nullish(),
});


/**
 * The schema's check by hand, for the hot path: true exactly when `chatRequestSchema` accepts the
 * object (model a non-empty string; messages a non-empty array of objects, each with a non-empty
 * string role; stream a boolean, null or absent). Only a request it rejects goes through zod, which
 * then names the problem, so the error messages stay zod's.
 */
function isValidChatRequest(body: Record<string, unknown>): boolean {
  const { model, messages, stream } = body;
  if (typeof model !== 'string' || model.length === 0) return false;
  if (!Array.isArray(messages) || messages.length === 0) return false;
  for (let i = 0; i < messages.length; i++) {
    const m: unknown = messages[i];
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return false;
    const role = (m as { role?: unknown }).role;
    if (typeof role !== 'string' || role.length === 0) return false;
  }
  return stream === undefined || stream === null || typeof stream === 'boolean';
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/**
 * Whether a body that `JSON.parse` accepted nests arrays and objects more than `limit` deep: one
 * pass over the bytes, strings skipped whole. What the gateway does with a request afterwards
 * (serializing it, hashing its messages) recurses, and a deep enough body would overflow the stack.
 */
export function nestedDeeperThan(body: Buffer, limit: number): boolean {
  if (body.length <= limit) return false;
  let depth = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === QUOTE) {
      // To the closing quote: the first one not escaped by an odd number of backslashes.
      for (;;) {
        const quote = body.indexOf(QUOTE, i + 1);
        if (quote < 0) return false;
        i = quote;
        let backslashes = 0;
        for (let k = quote - 1; body[k] === BACKSLASH; k--) backslashes++;
        if ((backslashes & 1) === 0) break;
      }
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > limit) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

/**
 * A top-level key that equals `model` ignoring case but is not `model`. Upstreams whose JSON
 * decoders match keys ignoring case (Go's, so Ollama's) could read it as the model, the client's
 * choice where the gateway put its own.
 */
function modelKeyVariant(body: Record<string, unknown>): string | undefined {
  for (const key in body) {
    if (key.length === 5 && key !== 'model' && key.toLowerCase() === 'model') return key;
  }
  return undefined;
}

/**
 * A request body as a JSON object, or the client's error: not JSON, not an object, nested deeper
 * than `depthLimit`, or with a key that differs from `model` only in case. What every API checks
 * before its own fields.
 */
export function parseRequestObject(raw: Buffer, depthLimit: number): Record<string, unknown> | GatewayError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    return errors.invalidJson((err as Error).message);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return errors.invalidBody('Request body must be a JSON object');
  }
  if (nestedDeeperThan(raw, depthLimit)) return errors.bodyTooDeep(depthLimit);
  const variant = modelKeyVariant(parsed as Record<string, unknown>);
  if (variant !== undefined) return errors.modelKeyCase(variant);
  return parsed as Record<string, unknown>;
}

/** A zod issue as the client's error: `Invalid 'messages[0].role': …`. */
export function invalidField(issue: z.core.$ZodIssue, what: string = issue.message): GatewayError {
  const param = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
  return errors.invalidBody(`Invalid '${param || '(body)'}': ${what}`, param || null);
}

/** The request in a body, or the client's error: not JSON, nested deeper than `depthLimit`, or not a valid chat request. */
export function parseChatRequest(raw: Buffer, depthLimit: number): ChatRequest | GatewayError {
  const parsed = parseRequestObject(raw, depthLimit);
  if (parsed instanceof GatewayError) return parsed;
  if (isValidChatRequest(parsed)) return parsed as ChatRequest;
  const result = chatRequestSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const what = issue.path[0] === 'messages' && issue.path.length === 1 ? 'must be a non-empty array of messages' : issue.message;
    return invalidField(issue, what);
  }
  return result.data as ChatRequest;
}
