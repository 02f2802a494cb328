import type OpenAI from 'openai';

/**
 * Simulated raters for learning tests: two query classes the built-in classifier tells apart (`code`,
 * `general`), three routed models, and a hidden truth table of how good each model's answers are in
 * each class. The gateway never sees the table; a simulated person (POST /feedback) or a scripted
 * judge scores answers by it. Every prompt is new (a counter in its text), so no request is a resend
 * of an earlier one (which the implicit signal would count as a rating).
 */

export const CLASSES = ['code', 'general'] as const;
export type TruthClass = (typeof CLASSES)[number];

/** class → model key → the quality of that model's answers. */
export const QUALITY: Record<TruthClass, Record<string, number>> = {
  code: { coder: 0.9, writer: 0.2, generalist: 0.55 },
  general: { coder: 0.2, writer: 0.9, generalist: 0.55 },
};
export const BEST: Record<TruthClass, string> = { code: 'coder', general: 'writer' };
export const ROUTED = ['coder', 'writer', 'generalist'];

/** The upstream model name behind a model key: the fake upstream's answers carry it (`answer from coder-model`). */
export const upstreamName = (key: string): string => `${key}-model`;

/**
 * The routed models, all on one fake upstream: coder and writer at the same price, generalist about
 * 16 times cheaper (so the price prior is in play).
 */
export function truthModels(baseURL: string): Record<string, Record<string, unknown>> {
  const model = (key: string, input: number, output: number) => ({
    baseURL,
    model: upstreamName(key),
    inputCostPerMTok: input,
    outputCostPerMTok: output,
    timeoutMs: 5000,
  });
  return { coder: model('coder', 2.5, 10), writer: model('writer', 2.5, 10), generalist: model('generalist', 0.15, 0.6) };
}

/** A small seeded PRNG, so the simulated raters are the same on every run. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let counter = 0;

/** A new prompt of the class: `code` has a fenced block, `general` is 50–500 plain characters with no code or math word. */
export function prompt(cls: TruthClass): string {
  const n = ++counter;
  return cls === 'code'
    ? `Why does this loop never end?\n\`\`\`js\nfor (let i = ${n}; i > 0; i++) {}\n\`\`\``
    : `Tell me a little about the old harbour of town number ${n} and what visitors usually see there.`;
}

/** The class of a prompt made by `prompt` (a judge reads it in the graded exchange). */
export function classOf(text: string): TruthClass {
  return text.includes('```') ? 'code' : 'general';
}

/** A score for a model's answer in a class: its quality ± 0.1 of seeded noise, within [0, 1]. */
export function score(cls: TruthClass, model: string, random: () => number): number {
  const q = QUALITY[cls][model];
  if (q === undefined) throw new Error(`no quality for ${model} in ${cls}`);
  return Math.min(1, Math.max(0, q + (random() - 0.5) * 0.2));
}

export interface Answer {
  cls: TruthClass;
  model: string;
  reason: string;
  traceId: string;
}

/** One `auto` request of the class through the OpenAI SDK: the model that answered and its trace. */
export async function ask(client: OpenAI, cls: TruthClass): Promise<Answer> {
  const { response } = await client.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: prompt(cls) }] }).withResponse();
  const got = response.headers.get('x-router-class');
  if (got !== cls) throw new Error(`a ${cls} prompt was classified ${got}`);
  return { cls, model: response.headers.get('x-router-model')!, reason: response.headers.get('x-router-reason')!, traceId: response.headers.get('x-trace-id')! };
}

/** Per class, the share of `answers` its best model answered. */
export function shareToBest(answers: readonly Answer[]): Record<TruthClass, number> {
  const out = {} as Record<TruthClass, number>;
  for (const cls of CLASSES) {
    const mine = answers.filter((a) => a.cls === cls);
    out[cls] = mine.length === 0 ? NaN : mine.filter((a) => a.model === BEST[cls]).length / mine.length;
  }
  return out;
}

/** Per class × model: the policy's estimate and its count of quality observations, from a GET /stats body. */
export function estimates(stats: { classes: Record<string, { models: Record<string, { estimate: number | null; rated: number | null }> }> }) {
  const out: Record<string, { estimate: number | null; rated: number | null }> = {};
  for (const cls of CLASSES) {
    for (const model of ROUTED) {
      const m = stats.classes[cls]?.models[model];
      out[`${cls}/${model}`] = { estimate: m?.estimate ?? null, rated: m?.rated ?? null };
    }
  }
  return out;
}
