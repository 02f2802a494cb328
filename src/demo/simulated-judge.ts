import { classifyQuery } from '../routing/classify.js';
import { Random } from '../routing/random.js';
import type { ChatMessage } from './simulated-upstream.js';

/**
 * The demo's judge model: it answers the gateway's grading request (src/judge/verdict.ts) with
 * `{"score", "reason"}` from the demo's hidden truth. The request's user message holds the user's
 * request and the assistant's answer under `## The user's request` and `## The assistant's answer`;
 * the answer names the model that wrote it, and the request's kind is its query class. The score is
 * how likely a user is to like such an answer (DEMO_QUALITY), give or take 0.05, except that with
 * probability `noise` the judge is wrong and gives 1 − that.
 */

const REQUEST = /## The user's request\n([\s\S]*?)\n\n## The assistant's answer\n/;
const ANSWER = /## The assistant's answer\n\(([^)\s]+)\)/;

export interface SimulatedJudge {
  reply(messages: readonly ChatMessage[]): string;
}

export function simulatedJudge(quality: Record<string, Record<string, number>>, noise: number, seed?: number): SimulatedJudge {
  const random = new Random(seed);
  return {
    reply(messages) {
      const last = messages.at(-1)?.content;
      const text = typeof last === 'string' ? last : '';
      const query = REQUEST.exec(text)?.[1];
      const model = ANSWER.exec(text)?.[1];
      const likeable = query === undefined || model === undefined ? undefined : quality[classifyQuery(query)]?.[model];
      if (likeable === undefined) return JSON.stringify({ score: 0.5, reason: 'I cannot tell who wrote this answer.' });
      // Its score is the share of users who would like the answer (±0.05); a wrong verdict turns it over.
      const fair = Math.min(1, Math.max(0, likeable + 0.1 * (random.uniform() - 0.5)));
      const wrong = random.uniform() < noise;
      const score = Math.round((wrong ? 1 - fair : fair) * 100) / 100;
      return JSON.stringify({ score, reason: score >= 0.5 ? 'The answer does what was asked.' : 'The answer misses what was asked.' });
    },
  };
}
