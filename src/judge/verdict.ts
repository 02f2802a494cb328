import { wholeAnswerText } from './answer-text.js';

/** What the judge is asked, and how its reply is read. */

export const DEFAULT_RUBRIC =
  "You grade an AI assistant's answer to a user's request. Judge whether the answer is correct, " +
  'helpful and complete for what was asked, and whether it follows the system prompt if there is one. ' +
  'A wrong or harmful answer scores near 0; a fully correct, helpful answer scores near 1.';

const REPLY_FORMAT =
  'Reply with only a JSON object, no other text: {"score": <a number from 0 to 1>, "reason": "<one short sentence>"}';

/** Most characters of the system prompt and of the user message put before the judge. */
const MAX_PROMPT_CHARS = 16 * 1024;
/** Most characters of the judge's reason kept as the trace's feedback comment. */
export const MAX_REASON_CHARS = 500;

/** What one grading is about: the request's system prompt and last user message, and the answer. */
export interface GradedExchange {
  system: string;
  query: string;
  answer: string;
}

/** The judge's chat request body (non-streamed). */
export function judgeRequestBody(upstreamModel: string, exchange: GradedExchange, rubric: string | undefined, jsonMode: boolean): string {
  const parts: string[] = [];
  if (exchange.system !== '') parts.push(`## The assistant's system prompt\n${exchange.system.slice(0, MAX_PROMPT_CHARS)}`);
  parts.push(`## The user's request\n${exchange.query.slice(0, MAX_PROMPT_CHARS)}`);
  parts.push(`## The assistant's answer\n${exchange.answer}`);
  const body: Record<string, unknown> = {
    model: upstreamModel,
    messages: [
      { role: 'system', content: `${rubric ?? DEFAULT_RUBRIC}\n\n${REPLY_FORMAT}` },
      { role: 'user', content: parts.join('\n\n') },
    ],
    stream: false,
  };
  if (jsonMode) body.response_format = { type: 'json_object' };
  return JSON.stringify(body);
}

export interface Verdict {
  score: number;
  reason: string | null;
}

const SCORE = /"score"\s*:\s*"?(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)/;
const REASON = /"reason"\s*:\s*"((?:[^"\\]|\\.)*)"/;

function asScore(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'string' && value.trim() !== '') {
    const n = Number(value);
    return Number.isFinite(n) ? n : null;
  }
  return null;
}

function unescape(text: string): string {
  try {
    return JSON.parse(`"${text}"`) as string;
  } catch {
    return text;
  }
}

/**
 * The first score the judge's text gives: its JSON object's `score` (the text parsed whole, or the
 * first `{…}` in it), else a `"score": <number>` anywhere in it. Null when there is none, or when it
 * is not from 0 to 1.
 */
export function parseVerdict(text: string): Verdict | null {
  let score: number | null = null;
  let reason: string | null = null;
  const candidates = [text.trim()];
  const open = text.indexOf('{');
  const close = text.lastIndexOf('}');
  if (open !== -1 && close > open) candidates.push(text.slice(open, close + 1));
  for (const candidate of candidates) {
    try {
      const parsed: unknown = JSON.parse(candidate);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
        const o = parsed as { score?: unknown; reason?: unknown };
        score = asScore(o.score);
        if (typeof o.reason === 'string') reason = o.reason;
        if (score !== null) break;
      }
    } catch {
      // not JSON: the next candidate, then the pattern
    }
  }
  if (score === null) {
    const match = SCORE.exec(text);
    if (match) score = Number(match[1]);
    const said = REASON.exec(text);
    if (said) reason = unescape(said[1]!);
  }
  if (score === null || !Number.isFinite(score) || score < 0 || score > 1) return null;
  return { score, reason: reason === null ? null : reason.slice(0, MAX_REASON_CHARS) };
}

/** The verdict in a judge's whole completion, or null when it gives none from 0 to 1. */
export function verdictOfCompletion(payload: Buffer): Verdict | null {
  const text = wholeAnswerText(payload);
  return text === null ? null : parseVerdict(text);
}
