import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import { parseConfig } from '../config.js';
import { Random } from '../routing/random.js';
import { startGateway, type RunningGateway } from '../server.js';
import { DEMO_MODELS, DEMO_PROMPTS, DEMO_QUALITY } from './scenario.js';
import { startSimulatedUpstream, type SimulatedUpstream } from './simulated-upstream.js';

export interface DemoOptions {
  requests: number;
  concurrency: number;
  port: number;
  db?: string;
  seed?: number;
  /** Print a table every this many requests. */
  every: number;
  out: NodeJS.WritableStream;
}

export interface DemoResult {
  running: RunningGateway;
  upstream: SimulatedUpstream;
  /** Per class, the share of the last quarter of the requests that went to the class's best model. */
  bestShare: Record<string, number>;
  answered: number;
  failed: number;
  close(): Promise<void>;
}

interface Turn {
  cls: string;
  model: string;
}

const CLASSES = Object.keys(DEMO_PROMPTS);

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
  const choice = new Map(snapshot.classes.map((c) => [c.queryClass, c.choice]));
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

/** Starts simulated models and a gateway on them, then sends traffic with simulated feedback. */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const out = options.out;
  const upstream = await startSimulatedUpstream(DEMO_MODELS);
  const dbPath = options.db ?? join(mkdtempSync(join(tmpdir(), 'tracegate-demo-')), 'traces.db');
  const config = parseConfig({
    server: { host: '127.0.0.1', port: options.port },
    database: { path: dbPath },
    models: Object.fromEntries(
      Object.entries(DEMO_MODELS).map(([key, m]) => [
        key,
        { baseURL: upstream.baseURL, model: key, timeoutMs: 5000, inputCostPerMTok: m.inputCostPerMTok, outputCostPerMTok: m.outputCostPerMTok },
      ]),
    ),
    router: { policy: 'adaptive', defaultModel: 'mini-chat', maxAttempts: 3, seed: options.seed },
    logging: { level: 'warn' },
  });
  const running = await startGateway(config, { logger: pino({ level: 'warn' }) });
  out.write(`tracegate demo: ${Object.keys(DEMO_MODELS).length} simulated models, gateway on ${running.url}, traces in ${dbPath}\n`);
  out.write(`sending ${options.requests} requests ("model": "auto") with simulated thumbs up/down...\n\n`);

  // With --seed, the simulated users (which queries, which thumbs) are the same on every run too.
  const random = new Random(options.seed);
  const turns: Turn[] = [];
  let answered = 0;
  let failed = 0;
  let next = 0;
  let nextReport = options.every;
  const worker = async () => {
    while (next < options.requests) {
      next++;
      const cls = pick(CLASSES, random);
      const res = await request(`${running.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'auto', stream: random.uniform() < 0.3, messages: [{ role: 'user', content: pick(DEMO_PROMPTS[cls]!, random) }] }),
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
      const liked = random.uniform() < (DEMO_QUALITY[routedClass]?.[model] ?? 0.5);
      const fb = await request(`${running.url}/feedback`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ trace_id: res.headers['x-trace-id'], thumbs: liked ? 'up' : 'down' }),
      });
      await fb.body.dump();
      if (turns.length >= nextReport) {
        nextReport += options.every;
        out.write(`after ${turns.length} requests — routing of the last ${options.every}:\n${table(turns.slice(-options.every), running)}\n\n`);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));

  const lastQuarter = turns.slice(-Math.max(1, Math.floor(turns.length / 4)));
  const bestShare: Record<string, number> = {};
  for (const cls of CLASSES) {
    const mine = lastQuarter.filter((t) => t.cls === cls);
    bestShare[cls] = mine.length === 0 ? 0 : mine.filter((t) => t.model === bestModel(cls)).length / mine.length;
  }
  const stats = await running.gateway.store.stats();
  const cost = stats.byClassModel.reduce((sum, s) => sum + s.costUsd, 0);
  out.write(
    `done: ${answered} answered, ${failed} failed (budget-flaky fails 35% of its calls; failover answers those).\n` +
      `share of the last ${lastQuarter.length} requests that went to each class's best model: ` +
      `${CLASSES.map((c) => `${c} ${Math.round(bestShare[c]! * 100)}%`).join(', ')}\n` +
      `spent $${cost.toFixed(4)} over ${stats.totalTraces} upstream attempts\n`,
  );
  return {
    running,
    upstream,
    bestShare,
    answered,
    failed,
    async close() {
      await running.close();
      await upstream.close();
    },
  };
}
