// Micro-benchmarks of tracegate's hot and heavy parts, with tinybench, on the built code (dist/):
// - classify + select per request (adaptive policy, 4 and 11 models, 1.5k-character prompts);
// - the body an attempt sends: model spliced into the client's bytes, against serializing again;
// - an answer's checks: the whole-answer JSON check (against JSON.parse), and a stream's events
//   through the SSE framing and the usage reading, as events and without event terminators;
// - trace writes through the store's group commit (a real SQLite file in WAL mode);
// - store.stats() and policy.updateFromTraces() (evidence + recentByArm) over 1 M traces, and how
//   long a dashboard's reads (stats, traffic, the window's first trace) and a rebuild hold the
//   event loop.
//
//   node bench/micro.mjs [--traces 1000000] [--time 2000] [--json FILE]
//
// Run through `npm run bench` or `npm run bench:micro` (both build first).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Bench } from 'tinybench';

const ROOT = resolve(import.meta.dirname, '..');
const dist = (p) => import(join(ROOT, 'dist', p));
const { classifyQuery } = await dist('routing/classify.js');
const { queryContext } = await dist('routing/context.js');
const { AdaptivePolicy } = await dist('routing/adaptive.js');
const { ContextualPolicy } = await dist('routing/contextual.js');
const { SqliteTraceStore } = await dist('traces/sqlite-store.js');
const { newTraceId } = await dist('pipeline/record-attempt.js');
const { findModelValue, withModel } = await dist('pipeline/rewrite-model.js');
const { isJsonObject } = await dist('upstream/json-check.js');
const { SseFramer } = await dist('upstream/sse.js');
const { StreamUsageReader } = await dist('upstream/usage.js');

const { values: args } = parseArgs({
  options: {
    traces: { type: 'string', default: '1000000' },
    time: { type: 'string', default: '1000' },
    json: { type: 'string' },
  },
});
const TRACES = Number(args.traces);
const TIME = Number(args.time);
const results = [];

/** A task that threw is reported as such (and the run goes on). */
function failed(task) {
  if (task.result?.state === 'completed') return false;
  record(task.name, 'failed', String(task.result?.error ?? task.result?.state), '', false);
  return true;
}

function record(name, value, unit, target, ok, note = '') {
  results.push({ name, value, unit, target, ok, note });
  process.stdout.write(`${name}: ${value} ${unit}${target ? ` (target ${target}: ${ok ? 'met' : 'MISSED'})` : ''}${note ? ` — ${note}` : ''}\n`);
}

// ---------------------------------------------------------------- routing decision
const CLASSES = ['code', 'math', 'short', 'long', 'general'];
const filler =
  'We are planning the next quarter and want the summary to cover the customer interviews, the support ' +
  'tickets and the usage numbers, with the open questions listed at the end so the team can discuss them. ';
function prompt(i) {
  // 1.5k characters each; the kinds rotate so that every class's patterns are exercised.
  const kinds = [
    (t) => `${t} Here is the snippet we discussed: \`const total = items.reduce((a, b) => a + b, 0)\`.`,
    (t) => `${t} Also, please calculate the expected value of the discount over the year.`,
    (t) => t,
    (t) => `${t} Nothing else for now — thanks!`,
  ];
  let text = '';
  while (text.length < 1500) text += filler;
  return kinds[i % kinds.length](`${i}: ${text.slice(0, 1400)}`).slice(0, 1500).padEnd(1500, '.');
}
const prompts = Array.from({ length: 64 }, (_, i) => prompt(i));
const bodies = prompts.map((content) => ({
  model: 'auto',
  messages: [
    { role: 'system', content: 'You are a concise, practical assistant.' },
    { role: 'user', content },
  ],
}));

function warmPolicy(models, Policy = AdaptivePolicy) {
  const policy = new Policy({
    models: models.map((key, i) => ({ key, inputCostPerMTok: 0.1 * (i + 1), outputCostPerMTok: 0.4 * (i + 1) })),
    minSamples: 5,
    costWeight: 0,
    latencyWeight: 0,
    halfLife: 50,
    seed: 1,
  });
  // Some history, so the posteriors are not all priors.
  for (let i = 0; i < 5000; i++) {
    const model = models[i % models.length];
    const context = Policy === AdaptivePolicy ? undefined : queryContext(bodies[i & 63]);
    policy.observe({
      traceId: `warm-${i}`,
      query: context?.query ?? '',
      context,
      queryClass: context?.queryClass ?? CLASSES[i % CLASSES.length],
      model,
      outcome: i % 13 === 0 ? 'error' : 'success',
      latencyMs: 200 + (i % 50),
      costUsd: 0.001,
      feedback: i % 7 === 0 ? 0.5 : null,
    });
  }
  return policy;
}

async function routingBench() {
  const bench = new Bench({ time: TIME, warmupTime: 300 });
  for (const n of [4, 11]) {
    const models = Array.from({ length: n }, (_, i) => `model-${i}`);
    const policy = warmPolicy(models);
    let i = 0;
    // What the gateway does per request: the routing context (one pass over the messages and the
    // classification), then the policy's choice.
    bench.add(`classify + select, ${n} models, 1.5k-char prompt`, () => {
      const context = queryContext(bodies[i++ & 63]);
      policy.select({ query: context.query, queryClass: context.queryClass, available: models, context });
    });
  }
  {
    // The contextual policy: hashed features of the prompt and the system prompt, then each model's
    // predicted reward and cost (issue #10's target: ≤ 20 µs).
    const models = Array.from({ length: 11 }, (_, i) => `model-${i}`);
    const policy = warmPolicy(models, ContextualPolicy);
    let i = 0;
    bench.add('contextual: classify + features + select, 11 models, 1.5k-char prompt', () => {
      const context = queryContext(bodies[i++ & 63]);
      policy.select({ query: context.query, queryClass: context.queryClass, available: models, context });
    });
  }
  let j = 0;
  bench.add('classify only, 1.5k-char prompt', () => {
    classifyQuery(prompts[j++ & 63]);
  });
  // An attempt's body: what the gateway does (find model's value in the client's bytes, splice the
  // upstream's model in), and what it falls back to (JSON.stringify of the parsed request).
  const raws = bodies.map((b) => Buffer.from(JSON.stringify(b)));
  const parsed = raws.map((raw) => JSON.parse(raw.toString('utf8')));
  let k = 0;
  bench.add('upstream body: model spliced into the client bytes, 1.5k-char prompt', () => {
    const raw = raws[k++ & 63];
    withModel(raw, findModelValue(raw), 'bench-model');
  });
  let m = 0;
  bench.add('upstream body: the parsed request serialized again, 1.5k-char prompt', () => {
    const request = parsed[m++ & 63];
    request.model = 'bench-model';
    JSON.stringify(request);
    request.model = 'auto';
  });
  // A whole answer's check (bench/mock-upstream.mjs's 0.5 KB answer): the byte check the gateway
  // makes, and JSON.parse of the decoded text.
  const answer = Buffer.from(
    JSON.stringify({
      id: 'chatcmpl-bench0000000000000000000000',
      object: 'chat.completion',
      created: 1_700_000_000,
      model: 'bench-model',
      system_fingerprint: 'fp_bench',
      choices: [{ index: 0, message: { role: 'assistant', content: 'A router hums low, / packets find their quiet path, / latency fades.', refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: 120, completion_tokens: 18, total_tokens: 138 },
    }),
  );
  bench.add('whole answer: isJsonObject, 0.5 KB answer', () => {
    if (!isJsonObject(answer)) throw new Error('not an object');
  });
  bench.add('whole answer: JSON.parse of the decoded text, 0.5 KB answer', () => {
    JSON.parse(answer.toString('utf8'));
  });
  // A stream as bench/mock-upstream.mjs sends it (11 events and [DONE], a read each), through the
  // SSE framing and the usage reading; and the same lines without the blank lines that end events.
  const chunk = (o) => `data: ${JSON.stringify({ id: 'chatcmpl-bench0000000000000000000000', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'bench-model', ...o })}`;
  const words = ['A router ', 'hums low, ', 'packets ', 'find their ', 'quiet ', 'path, ', 'latency ', 'fades.'];
  const lines = [
    chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] }),
    ...words.map((w) => chunk({ choices: [{ index: 0, delta: { content: w }, logprobs: null, finish_reason: null }] })),
    chunk({ choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }] }),
    chunk({ choices: [], usage: { prompt_tokens: 120, completion_tokens: 8, total_tokens: 128 } }),
  ];
  const asEvents = [...lines.map((l) => Buffer.from(`${l}\n\n`)), Buffer.from('data: [DONE]\n\n')];
  const unterminated = [...lines.map((l) => Buffer.from(`${l}\n`)), Buffer.from('data: [DONE]\n')];
  const readStream = (reads) => {
    const framer = new SseFramer();
    const usage = new StreamUsageReader();
    for (const read of reads) {
      usage.feed(read);
      framer.feed(read);
    }
    framer.finish();
  };
  bench.add('stream: SSE framing + usage, the 11-event stream, a read per event', () => readStream(asEvents));
  bench.add('stream: the same lines without event terminators', () => readStream(unterminated));
  await bench.run();
  for (const task of bench.tasks) {
    if (failed(task)) continue;
    // The median is the figure: on a shared machine the mean carries the odd preemption.
    const { mean, p50, p99 } = task.result.latency;
    const limit = task.name.startsWith('classify + select') ? 10 : task.name.startsWith('contextual') ? 20 : null;
    const target = limit === null ? '' : `≤ ${limit} µs`;
    record(task.name, (p50 * 1000).toFixed(2), `µs median (mean ${(mean * 1000).toFixed(2)}, p99 ${(p99 * 1000).toFixed(2)} µs)`, target, p50 * 1000 <= (limit ?? 10));
  }
}

// ---------------------------------------------------------------- trace writes
function trace(i, time) {
  return {
    id: newTraceId(),
    time,
    requestId: `req-${i}`,
    query: 'What is the best way to ship forty parcels a week inside Europe? Compare the two options.',
    queryLength: 91,
    queryClass: CLASSES[i % 5],
    modelKey: ['mini', 'pro', 'coder', 'budget'][i % 4],
    upstreamModel: 'bench-model',
    routed: true,
    reason: 'learned',
    attempt: 1,
    outcome: 'success',
    status: 200,
    error: null,
    latencyMs: 1.5 + (i % 10) / 10,
    ttfbMs: 1.2,
    promptTokens: 120,
    completionTokens: 18,
    costUsd: 0.00012,
    feedback: null,
    feedbackTime: null,
    feedbackComment: null,
    feedbackSource: null,
    keyName: null,
    source: 'live',
    instanceId: null,
  };
}

async function writeBench(dir) {
  const store = new SqliteTraceStore({ path: join(dir, 'writes.db') });
  try {
    let n = 0;
    const bench = new Bench({ time: TIME, warmupTime: 300 });
    for (const batch of [1, 32, 256]) {
      bench.add(`insert ${batch} trace${batch > 1 ? 's' : ''} handed over in one turn, awaited (group commit)`, async () => {
        const now = Date.now();
        const pending = new Array(batch);
        for (let k = 0; k < batch; k++) pending[k] = store.insert(trace(n++, now));
        await Promise.all(pending);
      });
    }
    await bench.run();
    for (const [k, task] of bench.tasks.entries()) {
      if (failed(task)) continue;
      const batch = [1, 32, 256][k];
      const perSecond = (batch * 1000) / task.result.latency.mean;
      const target = batch === 32 ? '≥ 50,000/s' : '';
      record(task.name, Math.round(perSecond).toLocaleString('en-US'), 'traces/s', target, perSecond >= 50_000,
        `${((task.result.latency.mean * 1000) / batch).toFixed(1)} µs per trace`);
    }
  } finally {
    await store.close();
  }
}

// ---------------------------------------------------------------- 1 M traces
/** Fills the store with `count` traces (2% offline evidence) in one INSERT … SELECT over a recursive CTE. */
function generate(store, count) {
  const started = performance.now();
  const base = Date.now() - count * 10;
  store.db.exec(`
    WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${count - 1})
    INSERT INTO traces (id, time, request_id, query, query_length, query_class, model_key, upstream_model,
      routed, reason, attempt, outcome, status, error, latency_ms, ttfb_ms, prompt_tokens, completion_tokens,
      cost_usd, feedback, feedback_time, feedback_comment, source)
    SELECT printf('01BENCH%019d', i), ${base} + i * 10, printf('req-%d', i), NULL, 300,
      CASE (i * 7919) % 20 WHEN 0 THEN 'code' WHEN 1 THEN 'math' WHEN 2 THEN 'short' WHEN 3 THEN 'short'
        WHEN 4 THEN 'long' WHEN 5 THEN 'long' WHEN 6 THEN 'long' ELSE 'general' END,
      CASE (i * 104729) % 4 WHEN 0 THEN 'mini' WHEN 1 THEN 'pro' WHEN 2 THEN 'coder' ELSE 'budget' END,
      'bench-model', 1, 'learned', 1,
      CASE WHEN (i * 31) % 50 = 0 THEN 'error' ELSE 'success' END,
      CASE WHEN (i * 31) % 50 = 0 THEN 502 ELSE 200 END,
      CASE WHEN (i * 31) % 50 = 0 THEN 'upstream answered 502' ELSE NULL END,
      50 + (i * 2654435761) % 1500 / 1.0, 20.0, 300, 120, 0.0012,
      CASE WHEN i % 9 = 0 THEN ((i * 13) % 11) / 10.0 ELSE NULL END,
      CASE WHEN i % 9 = 0 THEN ${base} + i * 10 + 5000 ELSE NULL END,
      NULL,
      CASE WHEN i % 50 = 7 THEN 'offline' ELSE 'live' END
    FROM n`);
  return performance.now() - started;
}

async function bigBench(dir) {
  const store = new SqliteTraceStore({ path: join(dir, 'big.db') });
  try {
    const ms = generate(store, TRACES);
    const count = await store.count();
    process.stdout.write(`generated ${count.toLocaleString('en-US')} traces in ${(ms / 1000).toFixed(1)} s\n`);
    const policy = new AdaptivePolicy({
      models: ['mini', 'pro', 'coder', 'budget'].map((key) => ({ key, inputCostPerMTok: 1, outputCostPerMTok: 4 })),
      minSamples: 5,
      costWeight: 0,
      latencyWeight: 0,
      halfLife: 50,
      seed: 1,
      source: store,
    });
    // The traces were written around the store: the first read that needs them filled
    // (`trace_arms`, `trace_stats`) fills them, as the gateway's first rebuild would.
    const fillStarted = performance.now();
    await store.stats();
    record(`first store.stats() over ${count.toLocaleString('en-US')} traces written around the store (fills trace_arms and trace_stats)`,
      (performance.now() - fillStarted).toFixed(0), 'ms, once', '', true);
    const bench = new Bench({ time: 0, iterations: 2, warmup: true, warmupIterations: 1, warmupTime: 0 });
    bench.add(`store.stats() over ${count.toLocaleString('en-US')} traces`, async () => {
      await store.stats();
    });
    const [, second] = await store.list({ limit: 2 });
    bench.add(`store.stats({ since }) over ${count.toLocaleString('en-US')} traces, a range that holds all but the oldest (grouped through the time index)`, async () => {
      await store.stats({ since: second.time });
    });
    bench.add(`store.stats({ since }) over ${count.toLocaleString('en-US')} traces, a range that holds them all (read as every trace)`, async () => {
      await store.stats({ since: 0 });
    });
    bench.add(`policy.updateFromTraces() over ${count.toLocaleString('en-US')} traces`, async () => {
      const summary = await policy.updateFromTraces();
      if (!summary.updated) throw new Error(`no update: ${JSON.stringify(summary)}`);
    });
    bench.add(`store.evidence({ decay }) over ${count.toLocaleString('en-US')} traces`, async () => {
      await store.evidence({ decay: Math.pow(2, -1 / 50) });
    });
    bench.add(`store.recentByArm(1000) over ${count.toLocaleString('en-US')} traces`, async () => {
      await store.recentByArm(1000);
    });
    await bench.run();
    for (const task of bench.tasks) {
      if (failed(task)) continue;
      const ms = task.result.latency.mean;
      const target = task.name.startsWith('store.stats() ') || task.name.startsWith('policy.update') ? '≤ 1 s' : '';
      record(task.name, ms.toFixed(0), `ms mean of ${task.result.latency.samplesCount ?? 2} (after a warmup run)`, target, ms <= 1000);
    }
    // What a dashboard's poll reads (GET /stats and /dashboard/data over the whole store) and a
    // rebuild, and the longest the event loop went without a turn while each ran (a 1-ms interval
    // timer's gaps).
    const now = Date.now();
    for (const [name, read] of [
      ['store.stats()', () => store.stats()],
      ['store.traffic() of every trace in 1-min buckets', () => store.traffic({ since: 0, until: now + 1, bucketMs: 60_000 })],
      ["store.list({ since, limit: 1 }) (the dashboard's first trace of the day)", () => store.list({ since: now - 86_400_000, limit: 1 })],
      ['policy.updateFromTraces() (a rebuild)', () => policy.updateFromTraces()],
    ]) {
      await read();
      const { took, held } = await eventLoopHeld(read);
      record(`event loop held while ${name} reads ${count.toLocaleString('en-US')} traces`, held.toFixed(1), `ms at most (the read took ${took.toFixed(0)} ms)`, '', true);
    }
  } finally {
    await store.close();
  }
}

/** Runs `read`, and the longest the event loop went meanwhile without running a 1-ms interval timer. */
async function eventLoopHeld(read) {
  let last = performance.now();
  let held = 0;
  const timer = setInterval(() => {
    const at = performance.now();
    held = Math.max(held, at - last);
    last = at;
  }, 1);
  const started = performance.now();
  await read();
  const ended = performance.now();
  clearInterval(timer);
  return { took: ended - started, held: Math.max(held, ended - last) };
}

const dir = mkdtempSync(join(tmpdir(), 'tracegate-micro-'));
try {
  await routingBench();
  await writeBench(dir);
  await bigBench(dir);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (args.json) writeFileSync(args.json, JSON.stringify(results, null, 2));
