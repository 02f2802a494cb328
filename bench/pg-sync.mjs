// What one policy sync costs on a large PostgreSQL trace table: the reads of a rebuild (evidence with
// forgetting, the newest traces per arm, the quality evidence with forgetting and its whole record),
// as `router.syncIntervalMs` runs them.
//
//   npm run build && node bench/pg-sync.mjs [--traces 1000000] [--recent 100000] [--reps 5] [--keep]
//
// Makes a database (tracegate_sync_bench) on TRACEGATE_BENCH_PG_URL (default
// postgres://root@127.0.0.1:5432/test), loads --traces traces over 5 classes × 4 models and VACUUMs, then
// adds --recent more without a vacuum (the newest pages are then not all-visible, as under live
// traffic), and times each read. --keep keeps the database for the next run (the load is skipped).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';

const ROOT = resolve(import.meta.dirname, '..');
const { PgTraceStore } = await import(join(ROOT, 'dist', 'traces', 'pg-store.js'));
const { createRouterPolicy } = await import(join(ROOT, 'dist', 'app', 'gateway.js'));
const { parseConfig } = await import(join(ROOT, 'dist', 'core', 'config.js'));

const { values: args } = parseArgs({
  options: {
    traces: { type: 'string', default: '1000000' },
    recent: { type: 'string', default: '100000' },
    reps: { type: 'string', default: '5' },
    'half-life': { type: 'string', default: '50' },
    keep: { type: 'boolean', default: false },
  },
});
const admin = process.env.TRACEGATE_BENCH_PG_URL ?? process.env.TRACEGATE_TEST_PG_URL ?? 'postgres://root@127.0.0.1:5432/test';
const NAME = 'tracegate_sync_bench';
const url = Object.assign(new URL(admin), { pathname: `/${NAME}` }).toString();

async function adminQuery(sql) {
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}

const exists = (await adminQuery(`SELECT 1 FROM pg_database WHERE datname = '${NAME}'`)).rowCount > 0;
if (!exists) await adminQuery(`CREATE DATABASE ${NAME}`);
const dir = mkdtempSync(join(tmpdir(), 'tracegate-sync-bench-'));
const store = await PgTraceStore.open({ url, spoolPath: join(dir, 'spool.db') });
const c = new pg.Client({ connectionString: url });
await c.connect();

const INSERT = (prefix) => `INSERT INTO traces (id, time, request_id, query, query_length, query_class, model_key, upstream_model,
    routed, reason, attempt, outcome, status, latency_ms, ttfb_ms, prompt_tokens, completion_tokens, cost_usd, feedback, source, instance_id)
  SELECT '${prefix}' || lpad(g::text, 25, '0'), 1700000000000 + g, 'r' || g, repeat('x', 120), 120,
    (array['code','math','short','long','general'])[1 + g % 5], (array['mini','pro','coder','budget'])[1 + (g / 5) % 4], 'm', true, 'learned', 1,
    CASE WHEN g % 9 = 0 THEN 'error' ELSE 'success' END, 200, 100 + g % 50, 20, 500, 200, 0.001,
    CASE WHEN g % 3 = 0 THEN (g % 10) / 10.0 ELSE NULL END, 'live', 'gw-' || (g % 2)
  FROM generate_series($1::int + 1, $2::int) g`;

try {
  const want = Number(args.traces);
  const have = (await c.query(`SELECT COUNT(*)::int AS n FROM traces WHERE id LIKE 'B%'`)).rows[0].n;
  if (have < want) {
    const t0 = performance.now();
    await c.query(INSERT('B'), [have, want]);
    // Offline evidence too: 3,000 evaluation results per model (imported with `tracegate import --eval`).
    await c.query(`${INSERT('O').replace("'live'", "'offline'")}`, [0, 12_000]);
    await c.query('VACUUM ANALYZE traces');
    process.stdout.write(`loaded ${want - have} traces and vacuumed in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  const recent = Number(args.recent);
  if (recent > 0) {
    const from = (await c.query(`SELECT COUNT(*)::int AS n FROM traces WHERE id LIKE 'R%'`)).rows[0].n;
    await c.query(INSERT('R'), [from, from + recent]);
  }
  const total = (await c.query('SELECT COUNT(*)::int AS n FROM traces')).rows[0].n;
  const gamma = Math.pow(2, -1 / Number(args['half-life']));
  const perArm = 20 * Number(args['half-life']); // what the adaptive policy asks for
  process.stdout.write(`${total} traces, half-life ${args['half-life']}; median of ${args.reps} runs:\n`);
  const time = async (label, f) => {
    const ts = [];
    let rows;
    for (let i = 0; i < Number(args.reps); i++) {
      const t0 = performance.now();
      rows = await f();
      ts.push(performance.now() - t0);
    }
    ts.sort((a, b) => a - b);
    process.stdout.write(`  ${label.padEnd(44)} ${ts[Math.floor(ts.length / 2)].toFixed(1).padStart(7)} ms  (${rows.length} rows)\n`);
  };
  await time(`evidence({ decay, source: 'live' })`, () => store.evidence({ decay: gamma, source: 'live' }));
  await time(`recentByArm(${perArm})`, () => store.recentByArm(perArm));
  await time(`evidence({ source: 'offline' })`, () => store.evidence({ source: 'offline' }));
  await time(`qualityEvidence({ decay, source: 'live' })`, () => store.qualityEvidence({ decay: gamma, source: 'live' }));
  await time(`qualityEvidence({ source: 'live' })`, () => store.qualityEvidence({ source: 'live' }));
  // What a sync runs: the default policy's rebuild from the store, reads and all.
  const model = { baseURL: 'http://127.0.0.1:9/v1', model: 'm' };
  const config = parseConfig({
    models: { mini: model, pro: model, coder: model, budget: model },
    router: { policy: 'adaptive', halfLife: Number(args['half-life']) },
  });
  const policy = createRouterPolicy(config, store);
  await time('one sync: adaptive policy.updateFromTraces()', () => policy.updateFromTraces().then(() => []));
  await time('evidence over a time range (a full scan)', () => store.evidence({ decay: gamma, source: 'live', until: 9e15 }));
} finally {
  await c.end();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  if (!args.keep) await adminQuery(`DROP DATABASE IF EXISTS ${NAME} WITH (FORCE)`);
}
