import { z } from 'zod';
import { errors, type GatewayError } from '../core/errors.js';
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

export function parseChatRequest(raw: Buffer): ChatRequest | GatewayError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    return errors.invalidJson((err as Error).message);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return errors.invalidBody('Request body must be a JSON object');
  }
  if (isValidChatRequest(parsed as Record<string, unknown>)) return parsed as ChatRequest;
  const result = chatRequestSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const param = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
    const what = issue.path[0] === 'messages' && issue.path.length === 1 ? 'must be a non-empty array of messages' : issue.message;
    return errors.invalidBody(`Invalid '${param || '(body)'}': ${what}`, param || null);
  }
  return result.data as ChatRequest;
}
