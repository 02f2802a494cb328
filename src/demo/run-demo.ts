import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import { parseConfig } from '../core/config.js';
import { JUDGE_CLASS } from '../core/reserved-classes.js';
import type { JudgeSnapshot } from '../judge/judge.js';
import type { ShadowSnapshot } from '../judge/shadow.js';
import { Random } from '../routing/random.js';
import { startGateway, type RunningGateway } from '../app/server.js';
import type { FeedbackSource } from '../traces/types.js';
import {
  DEMO_JUDGE,
  DEMO_JUDGE_KEY,
  DEMO_MODELS,
  DEMO_PROMPTS,
  DEMO_QUALITY,
  JUDGE_NOISE,
  JUDGE_SAMPLE_RATE,
  JUDGE_WEIGHT,
  SHADOW_RATE,
  USER_RATING_RATE,
} from './scenario.js';
import { simulatedJudge } from './simulated-judge.js';
import { startSimulatedUpstream, type SimulatedUpstream } from './simulated-upstream.js';

export interface DemoOptions {
  requests: number;
  concurrency: number;
  port: number;
  db?: string;
  seed?: number;
  /** Share of answers the simulated users rate (default USER_RATING_RATE). */
  ratingRate?: number;
  /** router.judge.sampleRate (default JUDGE_SAMPLE_RATE). */
  judgeRate?: number;
  /** router.judge.weight (default JUDGE_WEIGHT). */
  judgeWeight?: number;
  /** router.shadow.rate (default SHADOW_RATE; 0: no shadow calls). */
  shadowRate?: number;
  /** Print a table every this many requests. */
  every: number;
  out: NodeJS.WritableStream;
}

export interface DemoResult {
  running: RunningGateway;
  /** The temporary folder of the traces (removed by close), when no --db was given. */
  tempDir: string | undefined;
  upstream: SimulatedUpstream;
  /** Per class, the share of its last LAST_PER_CLASS requests that went to its best model. */
  bestShare: Record<string, number>;
  answered: number;
  failed: number;
  /** Answers the simulated users rated. */
  rated: number;
  /** What the judge did (GET /stats `judge`), once its queue has drained. */
  judge: JudgeSnapshot;
  /** What the shadow did (GET /stats `shadow`); null without shadow calls. */
  shadow: ShadowSnapshot | null;
  /** The traces of the answers (served and shadow): how many, and their feedback by source. */
  served: TraceTally;
  shadowed: TraceTally;
  /** Dollars of the served answers' attempts, of the shadow calls and of the judge's calls. */
  dollars: { answers: number; shadow: number; judge: number };
  close(): Promise<void>;
}

export interface TraceTally {
  traces: number;
  feedback: Partial<Record<FeedbackSource, number>>;
}

interface Turn {
  cls: string;
  model: string;
}

const CLASSES = Object.keys(DEMO_PROMPTS);
/** How many of each class's last requests the final convergence figure counts. */
export const LAST_PER_CLASS = 300;

function bestModel(cls: string): string {
  const q = DEMO_QUALITY[cls]!;
  return Object.keys(q).reduce((a, b) => (q[b]! > q[a]! ? b : a));
}

function pick<T>(items: readonly T[], random: Random): T {
  return items[Math.floor(random.uniform() * items.length)]!;
}

function pad(text: string, width: number): string {
  return text.length >= width ? text.slice(0, width) : text + ' '.repeat(width - text.length);
}

/** Per class: how the last window of requests was routed, and what the policy would choose now. */
function table(window: Turn[], running: RunningGateway): string {
  const models = Object.keys(DEMO_MODELS);
  const snapshot = running.gateway.policy.snapshot();
  // The snapshot's `choice` ranks every configured model, the unrouted judge too; `auto` uses only the
  // routed ones, and the demo weighs neither cost nor latency, so its pick is the routed model with
  // the highest estimate.
  const choice = new Map(
    snapshot.classes.map((c) => {
      const routed = c.arms.filter((a) => a.model in DEMO_MODELS);
      return [c.queryClass, routed.length === 0 ? '-' : routed.reduce((a, b) => (b.estimate > a.estimate ? b : a)).model];
    }),
  );
  const lines = [`  ${pad('class', 9)}${models.map((m) => pad(m, 14)).join('')}${pad('now routes to', 15)}best`];
  for (const cls of CLASSES) {
    const mine = window.filter((t) => t.cls === cls);
    const cells = models.map((m) => {
      const share = mine.length === 0 ? 0 : mine.filter((t) => t.model === m).length / mine.length;
      return pad(`${Math.round(share * 100)}%`, 14);
    });
    lines.push(`  ${pad(cls, 9)}${cells.join('')}${pad(choice.get(cls) ?? '-', 15)}${bestModel(cls)}`);
  }
  return lines.join('\n');
}

/** Waits until the judge has graded what it queued (its calls in flight take tens of ms), at most `maxMs`. */
async function judgeDrained(running: RunningGateway, maxMs: number): Promise<JudgeSnapshot> {
  const judge = running.gateway.judge!;
  const deadline = Date.now() + maxMs;
  let before = judge.snapshot();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const now = judge.snapshot();
    if ((now.queued === 0 && now.calls === before.calls) || Date.now() >= deadline) return now;
    before = now;
  }
}

/** The traces recorded, counted apart: served answers, shadow answers, and the judge's calls' dollars. */
async function tally(running: RunningGateway) {
  const served: TraceTally = { traces: 0, feedback: {} };
  const shadowed: TraceTally = { traces: 0, feedback: {} };
  const dollars = { answers: 0, shadow: 0, judge: 0 };
  for await (const trace of running.gateway.store.exportTraces()) {
    const cost = trace.costUsd ?? 0;
    if (trace.queryClass === JUDGE_CLASS) {
      dollars.judge += cost;
      continue;
    }
    const shadow = trace.reason === 'shadow';
    const into = shadow ? shadowed : served;
    if (shadow) dollars.shadow += cost;
    else dollars.answers += cost;
    into.traces++;
    if (trace.feedbackSource !== null) into.feedback[trace.feedbackSource] = (into.feedback[trace.feedbackSource] ?? 0) + 1;
  }
  return { served, shadowed, dollars };
}

function percent(part: number, whole: number): string {
  return `${whole === 0 ? 0 : Math.round((part / whole) * 100)}%`;
}

/**
 * Starts simulated models and a gateway on them, then sends traffic: users rate a few answers, a
 * judge grades a sample, and shadow calls try other models on a sample.
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const out = options.out;
  const ratingRate = options.ratingRate ?? USER_RATING_RATE;
  const judgeRate = options.judgeRate ?? JUDGE_SAMPLE_RATE;
  const shadowRate = options.shadowRate ?? SHADOW_RATE;
  // With --seed, the simulated users (which queries, which answers they rate and how), the judge's
  // scores and the models' latencies and failures draw the same numbers on every run (which request
  // gets which draw still depends on how the concurrent requests, the judge's and the shadow's calls
  // interleave).
  const seed = options.seed;
  const judge = simulatedJudge(DEMO_QUALITY, JUDGE_NOISE, seed === undefined ? undefined : seed ^ 0x6a756467);
  const upstream = await startSimulatedUpstream(
    { ...DEMO_MODELS, [DEMO_JUDGE_KEY]: { ...DEMO_JUDGE, reply: judge.reply } },
    { seed: seed === undefined ? undefined : seed ^ 0x75707374 },
  );
  // Without --db the traces go to a new temporary folder, removed when the demo closes.
  const tempDir = options.db === undefined ? mkdtempSync(join(tmpdir(), 'tracegate-demo-')) : undefined;
  const dbPath = options.db ?? join(tempDir!, 'traces.db');
  const removeTemp = () => {
    if (tempDir !== undefined) rmSync(tempDir, { recursive: true, force: true });
    process.off('exit', removeTemp);
  };
  // A process that exits before close (Ctrl-C while the traffic runs) removes it too.
  if (tempDir !== undefined) process.on('exit', removeTemp);
  const priced = (key: string, m: { inputCostPerMTok: number; outputCostPerMTok: number }) => ({
    baseURL: upstream.baseURL,
    model: key,
    timeoutMs: 5000,
    inputCostPerMTok: m.inputCostPerMTok,
    outputCostPerMTok: m.outputCostPerMTok,
    endpoints: ['chat' as const, 'responses' as const],
  });
  const config = parseConfig({
    server: { host: '127.0.0.1', port: options.port },
    database: { path: dbPath },
    models: {
      ...Object.fromEntries(Object.entries(DEMO_MODELS).map(([key, m]) => [key, priced(key, m)])),
      [DEMO_JUDGE_KEY]: { ...priced(DEMO_JUDGE_KEY, DEMO_JUDGE), routed: false },
    },
    router: {
      policy: 'adaptive',
      defaultModel: 'mini-chat',
      maxAttempts: 3,
      seed,
      // The demo sends a few hundred requests a second: the judge's cap and queue are sized for that.
      judge: {
        model: DEMO_JUDGE_KEY,
        sampleRate: judgeRate,
        weight: options.judgeWeight ?? JUDGE_WEIGHT,
        maxPerMinute: 60_000,
        dailyBudgetUsd: 10,
        queueSize: 1000,
      },
      ...(shadowRate > 0 ? { shadow: { rate: shadowRate, dailyBudgetUsd: 10 } } : {}),
    },
    logging: { level: 'warn' },
  });
  let running: RunningGateway;
  try {
    running = await startGateway(config, { logger: pino({ level: 'warn' }) });
  } catch (err) {
    await upstream.close();
    removeTemp();
    throw err;
  }
  out.write(
    `tracegate demo: ${Object.keys(DEMO_MODELS).length} simulated models and a judge model, gateway on ${running.url}, traces in ${dbPath}\n`,
  );
  const shadowing = shadowRate > 0 ? `; ${percent(shadowRate, 1)} also go to another model in the background (shadow calls), and the judge grades both answers` : '';
  out.write(
    `sending ${options.requests} requests ("model": "auto"): users rate ${percent(ratingRate, 1)} of the answers (thumbs up/down); ` +
      `the judge grades ${percent(judgeRate, 1)} (wrong ${percent(JUDGE_NOISE, 1)} of the time)${shadowing}...\n\n`,
  );

  const random = new Random(seed);
  const turns: Turn[] = [];
  let answered = 0;
  let failed = 0;
  let rated = 0;
  let next = 0;
  let nextReport = options.every;
  const worker = async () => {
    while (next < options.requests) {
      next++;
      const cls = pick(CLASSES, random);
      // Every conversation is a new one (its own system prompt): the same conversation sent again
      // within router.implicit's window would count as a regenerated answer, a thumbs-down.
      const messages = [
        { role: 'system', content: `You are the assistant of a demo app, in conversation ${next}.` },
        { role: 'user', content: pick(DEMO_PROMPTS[cls]!, random) },
      ];
      const res = await request(`${running.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'auto', stream: random.uniform() < 0.3, messages }),
      });
      await res.body.dump();
      if (res.statusCode !== 200) {
        failed++;
        continue;
      }
      answered++;
      const routedClass = String(res.headers['x-router-class']);
      const model = String(res.headers['x-router-model']);
      turns.push({ cls: routedClass, model });
      const rates = random.uniform() < ratingRate;
      const liked = random.uniform() < (DEMO_QUALITY[routedClass]?.[model] ?? 0.5);
      if (rates) {
        rated++;
        const fb = await request(`${running.url}/feedback`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ trace_id: res.headers['x-trace-id'], thumbs: liked ? 'up' : 'down' }),
        });
        await fb.body.dump();
      }
      if (turns.length >= nextReport) {
        nextReport += options.every;
        out.write(`after ${turns.length} requests — routing of the last ${options.every}:\n${table(turns.slice(-options.every), running)}\n\n`);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));

  const bestShare: Record<string, number> = {};
  for (const cls of CLASSES) {
    const mine = turns.filter((t) => t.cls === cls).slice(-LAST_PER_CLASS);
    bestShare[cls] = mine.length === 0 ? 0 : mine.filter((t) => t.model === bestModel(cls)).length / mine.length;
  }
  const judged = await judgeDrained(running, 5000);
  const shadow = running.gateway.shadow?.snapshot() ?? null;
  const { served, shadowed, dollars } = await tally(running);
  const servedJudged = served.feedback.judge ?? 0;
  const shadowJudged = shadowed.feedback.judge ?? 0;
  const regenerated = served.feedback.implicit ? `; ${served.feedback.implicit} answers were regenerated` : '';
  out.write(
    `done: ${answered} answered, ${failed} failed (budget-flaky fails 35% of its calls; failover answers those).\n` +
      `signals: users rated ${rated} answers (${percent(rated, answered)}); the judge scored ${servedJudged} answers (${percent(servedJudged, answered)})` +
      `${shadow !== null ? ` and ${shadowJudged} shadow answers` : ''}${regenerated}; the other answers brought no rating\n` +
      `share of each class's last ${LAST_PER_CLASS} requests that went to its best model: ` +
      `${CLASSES.map((c) => `${c} ${Math.round(bestShare[c]! * 100)}%`).join(', ')}\n` +
      `spent $${dollars.answers.toFixed(4)} on ${served.traces} upstream attempts for the answers` +
      `${shadow !== null ? `, $${dollars.shadow.toFixed(4)} on ${shadowed.traces} shadow calls` : ''}` +
      `, $${dollars.judge.toFixed(4)} on ${judged.calls} judge calls\n`,
  );
  return {
    running,
    upstream,
    bestShare,
    answered,
    failed,
    rated,
    judge: judged,
    shadow,
    served,
    shadowed,
    dollars,
    tempDir,
    async close() {
      await running.close();
      await upstream.close();
      removeTemp();
    },
  };
}
