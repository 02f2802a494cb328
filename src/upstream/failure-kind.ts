import type { IncomingHttpHeaders } from 'node:http';
import type { AttemptFailure } from './attempt.js';

/**
 * Why an upstream's error status happened, as the gateway acts on it:
 * - `auth`: 401/403, the gateway's provider key for that model is wrong or missing;
 * - `rate`: 429, the model's capacity (for now), not its answers;
 * - `too-big`: the request does not fit the model (`context_length_exceeded`, a 413, or a 400 whose
 *   message names the context window or maximum context length);
 * - `other`: anything else.
 * Only `other` says something about the model's answers; the first three are about access, capacity
 * or the request's size.
 */
export type StatusCause = 'auth' | 'rate' | 'too-big' | 'other';

const CONTEXT_WORDS = /context[ _-]?(window|length)|maximum context/i;

export function statusCause(failure: AttemptFailure): StatusCause {
  if (failure.kind !== 'status' || failure.status === null) return 'other';
  const status = failure.status;
  if (status === 401 || status === 403) return 'auth';
  if (status === 429) return 'rate';
  if (status === 413) return 'too-big';
  if (status === 400) {
    const error = errorOf(failure.body);
    if (error?.code === 'context_length_exceeded') return 'too-big';
    if (typeof error?.message === 'string' && CONTEXT_WORDS.test(error.message)) return 'too-big';
  }
  return 'other';
}

/** The `error` object of an OpenAI-shaped error body, if it is one. */
function errorOf(body: Buffer | undefined): { code?: unknown; message?: unknown } | null {
  if (body === undefined || body.length === 0) return null;
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: unknown };
    return typeof parsed?.error === 'object' && parsed.error !== null ? (parsed.error as { code?: unknown; message?: unknown }) : null;
  } catch {
    return null;
  }
}

/** The upstream's error message (OpenAI's `error.message`), for the trace; null when its body has none. */
export function upstreamMessage(failure: AttemptFailure): string | null {
  const message = errorOf(failure.body)?.message;
  return typeof message === 'string' ? message : null;
}

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** OpenAI's `x-ratelimit-reset-*` duration (`1s`, `6m0s`, `20ms`, `1h2m3.5s`) in ms; null if it is not one. */
export function parseResetDuration(value: string): number | null {
  const text = value.trim();
  if (text === '' || !/^(\d+(?:\.\d+)?(ms|h|m|s))+$/.test(text)) return null;
  let ms = 0;
  for (const m of text.matchAll(DURATION_PART)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  return ms;
}

/** `retry-after` in seconds or as an HTTP date, in ms from `now`; null if it is neither. */
export function parseRetryAfter(value: string, now = Date.now()): number | null {
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/**
 * How long a rate-limited upstream asks to wait, in ms: `retry-after-ms`, `retry-after`, else the
 * longer of `x-ratelimit-reset-requests` / `-tokens` (both limits must have reset). Null when it says nothing readable.
 */
export function rateLimitWaitMs(headers: IncomingHttpHeaders | undefined, now = Date.now()): number | null {
  if (headers === undefined) return null;
  const ms = first(headers['retry-after-ms']);
  if (ms !== undefined && /^\d+(\.\d+)?$/.test(ms.trim())) return Number(ms.trim());
  const after = first(headers['retry-after']);
  if (after !== undefined) {
    const wait = parseRetryAfter(after, now);
    if (wait !== null) return wait;
  }
  let wait: number | null = null;
  for (const name of ['x-ratelimit-reset-requests', 'x-ratelimit-reset-tokens']) {
    const value = first(headers[name]);
    const parsed = value === undefined ? null : parseResetDuration(value);
    if (parsed !== null) wait = Math.max(wait ?? 0, parsed);
  }
  return wait;
}
