import type { SimulatedModel } from './simulated-upstream.js';

/**
 * The demo's made-up world: four models, each good at different kinds of queries, one of them flaky;
 * a judge model that grades a sample of their answers (and of shadow calls' answers); and users who
 * rate a few of them.
 */

export interface DemoModel extends SimulatedModel {
  /** Dollars per million prompt / completion tokens, as a real config would give. */
  inputCostPerMTok: number;
  outputCostPerMTok: number;
}

export const DEMO_MODELS: Record<string, DemoModel> = {
  'mini-chat': { failureRate: 0, latencyMs: 8, inputCostPerMTok: 0.15, outputCostPerMTok: 0.6 },
  'code-pro': { failureRate: 0, latencyMs: 20, inputCostPerMTok: 1, outputCostPerMTok: 4 },
  'deep-thinker': { failureRate: 0, latencyMs: 35, inputCostPerMTok: 5, outputCostPerMTok: 20 },
  'budget-flaky': { failureRate: 0.35, latencyMs: 12, inputCostPerMTok: 0.05, outputCostPerMTok: 0.2 },
};

/** The judge: not routed (`auto` never reaches it), priced like a large general model. */
export const DEMO_JUDGE_KEY = 'judge';
export const DEMO_JUDGE: DemoModel = { failureRate: 0, latencyMs: 5, inputCostPerMTok: 2.5, outputCostPerMTok: 10 };

/** `tracegate demo`'s defaults: requests sent, and how many are in flight at once. */
export const DEMO_REQUESTS = 3000;
export const DEMO_CONCURRENCY = 8;

/** Share of answers a simulated user rates (thumbs up or down). */
export const USER_RATING_RATE = 0.05;
/** router.judge.sampleRate: the share of answers the judge grades. */
export const JUDGE_SAMPLE_RATE = 0.25;
/**
 * router.judge.weight: how much one judge score counts against one user's rating. The demo's judge
 * is wrong 10% of the time and otherwise within 0.05 of the truth, less noisy than one thumbs up or
 * down, so its score counts as much.
 */
export const JUDGE_WEIGHT = 1;
/** router.shadow.rate: the share of requests also sent, in the background, to another model. */
export const SHADOW_RATE = 0.3;
/** How often the simulated judge gives the wrong verdict. */
export const JUDGE_NOISE = 0.1;

/** Probability that the simulated user gives a thumbs-up, per query class and model. */
export const DEMO_QUALITY: Record<string, Record<string, number>> = {
  code: { 'mini-chat': 0.45, 'code-pro': 0.93, 'deep-thinker': 0.75, 'budget-flaky': 0.5 },
  math: { 'mini-chat': 0.35, 'code-pro': 0.6, 'deep-thinker': 0.94, 'budget-flaky': 0.4 },
  short: { 'mini-chat': 0.93, 'code-pro': 0.7, 'deep-thinker': 0.72, 'budget-flaky': 0.8 },
  long: { 'mini-chat': 0.4, 'code-pro': 0.55, 'deep-thinker': 0.92, 'budget-flaky': 0.45 },
  general: { 'mini-chat': 0.92, 'code-pro': 0.6, 'deep-thinker': 0.7, 'budget-flaky': 0.75 },
};

const LONG_CONTEXT =
  'Our quarterly report covers revenue across three regions, churn by customer segment, the hiring plan ' +
  'for engineering and support, infrastructure spending after the migration to the new cloud provider, ' +
  'and the risks we see for the next two quarters, including currency exposure, a pending contract ' +
  'renewal with our largest customer, and the delayed launch of the mobile application. ';

export const DEMO_PROMPTS: Record<string, string[]> = {
  code: [
    'Why does this throw? ```js\nconst xs = [1, 2, 3];\nxs.forEach(async x => await save(x));\n```',
    'def parse(line): return line.split(",") — make this handle quoted fields',
    'Refactor `fetchAll()` so that it retries with exponential backoff',
    'import pandas as pd — how do I group by two columns and keep the max?',
  ],
  math: [
    'Solve for x: 3x^2 - 12x + 9 = 0, and explain each step of the method',
    'Calculate the compound interest on $2,000 at 4.5% for 6 years, monthly',
    'Compute the integral of x·e^x from 0 to 1 and show the integration by parts',
    'What is the equation of the line through (2, 3) and (5, 11)? Show your work',
  ],
  short: ['hi!', 'thanks a lot', 'what is a monad?', 'capital of Peru?', 'translate "good night" to French'],
  long: [
    `${LONG_CONTEXT.repeat(2)}Summarize this report in five bullet points for the board.`,
    `${LONG_CONTEXT.repeat(2)}Which of these risks should we address first, and why?`,
  ],
  general: [
    'Write a friendly reminder email to a colleague about tomorrow morning’s design review',
    'Give me three ideas for a team offsite that does not involve any travel at all',
    'Explain the difference between a mutual fund and an ETF for a beginner investor',
  ],
};
