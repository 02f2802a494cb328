// What the policy's rebuild costs on a store of 1 M traces as the share of rated traces grows: the
// rebuild (`AdaptivePolicy.updateFromTraces`) and its quality reads (`qualityEvidence` with forgetting,
// the whole record without it), beside `evidence` with forgetting; and, with --writes, how many traces
// per second the store records, 32 handed over per event-loop turn (group commit).
//
//   npm run build && node bench/quality-evidence.mjs [--store sqlite|pg] [--rated-every 50] [--traces 1000000]
//     [--reps 3] [--writes 0] [--dist DIR] [--keep]
//
// The traces are those of `bench/micro.mjs` (5 classes × 4 models, 2% failures), every Nth rated by a
// person 5 s after it was recorded (`--rated-every 1`: every trace). SQLite: a fresh file, filled with
// one INSERT … SELECT. PostgreSQL (`--store pg`): a database `tracegate_quality_bench` on
// TRACEGATE_BENCH_PG_URL (default the test server), filled in one INSERT … SELECT and VACUUMed; --keep
// leaves it there afterwards (the next run starts it over). `--dist DIR` measures another build (a `dist` folder with its `../drizzle` beside it), e.g.
// one made from an earlier commit. `--writes N` times N trace writes on a fresh store instead.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';

const { values: args } = parseArgs({
  options: {
    store: { type: 'string', default: 'sqlite' },
    'rated-every': { type: 'string', default: '50' },
    traces: { type: 'string', default: '1000000' },
    reps: { type: 'string', default: '3' },
    writes: { type: 'string', default: '0' },
    dist: { type: 'string', default: resolve(import.meta.dirname, '..', 'dist') },
    keep: { type: 'boolean', default: false },
  },
});
const dist = (p) => import(join(resolve(args.dist), p));
const { AdaptivePolicy } = await dist('routing/adaptive.js');
const COUNT = Number(args.traces);
const EVERY = Number(args['rated-every']);
const WRITES = Number(args.writes);
const GAMMA = Math.pow(2, -1 / 50);
const admin = process.env.TRACEGATE_BENCH_PG_URL ?? process.env.TRACEGATE_TEST_PG_URL ?? 'postgres://root@127.0.0.1:5432/test';
const NAME = WRITES > 0 ? 'tracegate_quality_bench_writes' : 'tracegate_quality_bench';

async function adminQuery(sql) {
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}

/** The i-th trace's columns as SQL over `i` (the same formulas for both engines). */
const COLUMNS = (base, mod, text) => `
  ${text(`'01BENCH' || lpad(i::text, 19, '0')`, `printf('01BENCH%019d', i)`)}, ${base} + i * 10, 'req-' || i, 300,
  CASE ${mod('i * 7919', 20)} WHEN 0 THEN 'code' WHEN 1 THEN 'math' WHEN 2 THEN 'short' WHEN 3 THEN 'short'
    WHEN 4 THEN 'long' WHEN 5 THEN 'long' WHEN 6 THEN 'long' ELSE 'general' END,
  CASE ${mod('i * 104729', 4)} WHEN 0 THEN 'mini' WHEN 1 THEN 'pro' WHEN 2 THEN 'coder' ELSE 'budget' END,
  'bench-model', ${text('true', '1')}, 'learned', 1,
  CASE WHEN ${mod('i * 31', 50)} = 0 THEN 'error' ELSE 'success' END, 200,
  50 + ${mod('i * 2654435761', 1500)}, 20.0, 300, 120, 0.0012,
  CASE WHEN ${mod('i', EVERY)} = 0 THEN ${mod('i * 13', 11)} / 10.0 ELSE NULL END,
  CASE WHEN ${mod('i', EVERY)} = 0 THEN ${base} + i * 10 + 5000 ELSE NULL END,
  CASE WHEN ${mod('i', EVERY)} = 0 THEN 'human' ELSE NULL END, 'live'`;
const INSERT = `INSERT INTO traces (id, time, request_id, query_length, query_class, model_key, upstream_model, routed, reason,
  attempt, outcome, status, latency_ms, ttfb_ms, prompt_tokens, completion_tokens, cost_usd, feedback, feedback_time,
  feedback_source, source)`;

async function openStore(dir) {
  if (args.store === 'sqlite') {
    const { SqliteTraceStore } = await dist('traces/sqlite-store.js');
    return new SqliteTraceStore({ path: join(dir, 'traces.db') });
  }
  if (args.store !== 'pg') throw new Error(`--store sqlite or pg, not ${args.store}`);
  await adminQuery(`DROP DATABASE IF EXISTS ${NAME} WITH (FORCE)`);
  await adminQuery(`CREATE DATABASE ${NAME}`);
  const { PgTraceStore } = await dist('traces/pg-store.js');
  const url = Object.assign(new URL(admin), { pathname: `/${NAME}` }).toString();
  return PgTraceStore.open({ url, spoolPath: join(dir, 'spool.db') });
}

async function fill(store) {
  const base = Date.now() - COUNT * 10;
  const started = performance.now();
  if (args.store === 'sqlite') {
    store.db.exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${COUNT - 1})
      ${INSERT} SELECT ${COLUMNS(base, (x, m) => `(${x}) % ${m}`, (_pg, sqlite) => sqlite)} FROM n`);
    await store.stats(); // fills trace_arms and trace_stats, as the gateway's first rebuild would
  } else {
    await store.pool.query({
      text: `${INSERT} SELECT ${COLUMNS(base, (x, m) => `((${x}) % ${m})`, (pgText) => pgText)} FROM generate_series(0::int8, ${COUNT - 1}) i`,
      query_timeout: 3_600_000,
    });
    await store.pool.query({ text: 'VACUUM ANALYZE traces', query_timeout: 3_600_000 });
  }
  process.stdout.write(`${args.store}: ${COUNT.toLocaleString('en-US')} traces, 1 in ${EVERY} rated, filled in ${((performance.now() - started) / 1000).toFixed(1)} s (${args.dist})\n`);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function reads(store) {
  const policy = new AdaptivePolicy({
    models: ['mini', 'pro', 'coder', 'budget'].map((key) => ({ key, inputCostPerMTok: 1, outputCostPerMTok: 4 })),
    minSamples: 5, costWeight: 0, latencyWeight: 0, halfLife: 50, seed: 1, source: store,
  });
  // A read that fails is reported with its error (NaN), and the others go on.
  const timed = async (f) => {
    const t = performance.now();
    try {
      await f();
    } catch (err) {
      process.stdout.write(`  failed: ${err.message}\n`);
      return NaN;
    }
    return performance.now() - t;
  };
  const runs = { update: [], decay: [], plain: [], evidence: [] };
  for (let k = 0; k < Number(args.reps); k++) {
    runs.update.push(await timed(() => policy.updateFromTraces()));
    runs.decay.push(await timed(() => store.qualityEvidence({ decay: GAMMA, source: 'live' })));
    runs.plain.push(await timed(() => store.qualityEvidence({ source: 'live' })));
    runs.evidence.push(await timed(() => store.evidence({ decay: GAMMA, source: 'live' })));
    const [u, d, p, e] = [runs.update, runs.decay, runs.plain, runs.evidence].map((r) => r.at(-1).toFixed(0));
    process.stdout.write(`update ${u} ms; qualityEvidence decay ${d} ms, plain ${p} ms; evidence ${e} ms\n`);
  }
  const [u, d, p, e] = [runs.update, runs.decay, runs.plain, runs.evidence].map((r) => median(r).toFixed(0));
  process.stdout.write(`median: update ${u} ms; qualityEvidence decay ${d} ms, plain ${p} ms; evidence ${e} ms\n`);
}

async function writes(store) {
  const trace = (i, time) => ({
    id: `01WRITE${String(i).padStart(19, '0')}`, time, requestId: `req-${i}`, query: 'q', queryLength: 1,
    queryClass: ['code', 'math', 'short', 'long', 'general'][i % 5], modelKey: ['mini', 'pro', 'coder', 'budget'][i % 4],
    upstreamModel: 'bench-model', routed: true, reason: 'learned', attempt: 1, outcome: i % 50 === 0 ? 'error' : 'success',
    status: 200, error: null, latencyMs: 1.5, ttfbMs: 1.2, promptTokens: 120, completionTokens: 18, costUsd: 0.00012,
    feedback: null, feedbackTime: null, feedbackComment: null, feedbackSource: null, keyName: null, source: 'live', instanceId: null,
  });
  let n = 0;
  const round = async (count) => {
    const started = performance.now();
    for (let done = 0; done < count; done += 32) {
      const now = Date.now();
      const pending = [];
      for (let k = 0; k < 32; k++) pending.push(store.insert(trace(n++, now)));
      await Promise.all(pending);
    }
    return (count * 1000) / (performance.now() - started);
  };
  await round(3_200); // warm-up
  const rates = [];
  for (let k = 0; k < Number(args.reps); k++) rates.push(await round(Math.max(1, Math.round(WRITES / 32)) * 32));
  process.stdout.write(`${args.store}: trace writes, 32 per turn (2% failures, none rated): ${rates.map((r) => Math.round(r)).join(', ')} /s; median ${Math.round(median(rates))} /s (${args.dist})\n`);
}

const dir = mkdtempSync(join(tmpdir(), 'tracegate-quality-bench-'));
const store = await openStore(dir);
try {
  if (WRITES > 0) await writes(store);
  else {
    await fill(store);
    await reads(store);
  }
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  if (args.store === 'pg' && !args.keep) await adminQuery(`DROP DATABASE IF EXISTS ${NAME} WITH (FORCE)`);
}
