// Side-by-side HTTP benchmark: the direct path, a bare relay, Portkey's gateway and tracegate, all
// against the same fast mock upstream, in one run, with autocannon. Each server runs in its own
// child process; its peak RSS (VmHWM) and CPU time come from /proc.
//
//   node bench/http.mjs [--duration 10] [--warmup 2] [--connections 32] [--rows direct,relay,...]
//                       [--no-portkey] [--json FILE] [--cpu-prof DIR] [--keep-db DIR]
//                       [--max-other-load 5] [--retries 1] [--budget 100] [--slices 5] [--slice-seconds 2]
//
// Other processes on the machine skew the figures, so each row also reports the CPU share that
// other processes used meanwhile; a row measured while they used more than --max-other-load percent
// is measured again (--retries times, while the run is under --budget seconds).
// By default every row's server is started at once and the rows are loaded in turn, --slice-seconds
// each, --slices times, in the given order and then reversed, turn after turn: a VM whose speed
// drifts then weighs on every row alike, and the ratios of each turn follow the table. --slices 0
// measures one row after the other instead, --duration each (the only mode where --retries,
// --budget and --max-other-load apply).
// --cpu-prof DIR runs tracegate and the relay under `node --cpu-prof` and leaves the profiles in DIR
// (one folder per row).
//
// Run through `npm run bench` (which builds tracegate first).
import { spawn, execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { chatBody, writeTracegateConfig } from './workload.mjs';
import { request } from 'undici';

const ROOT = resolve(import.meta.dirname, '..');
const PORTKEY_DIR = join(ROOT, '.bench', 'portkey');
const PORTKEY_START = join(PORTKEY_DIR, 'node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js');
const ALL_ROWS = ['direct', 'relay', 'portkey', 'tracegate', 'tracegate-pg', 'direct-stream', 'relay-stream', 'tracegate-stream'];

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '32' },
    rows: { type: 'string', default: ALL_ROWS.join(',') },
    'no-portkey': { type: 'boolean', default: false },
    json: { type: 'string' },
    'keep-db': { type: 'string' },
    'cpu-prof': { type: 'string' },
    'tracegate-cli': { type: 'string', default: join(ROOT, 'dist', 'cli.js') },
    'node-flags': { type: 'string', default: '' },
    'max-other-load': { type: 'string', default: '5' },
    retries: { type: 'string', default: '1' },
    budget: { type: 'string', default: '100' },
    slices: { type: 'string', default: '5' },
    'slice-seconds': { type: 'string', default: '2' },
  },
});
const DURATION = Number(args.duration);
/** Flags for the gateway's node process only (not the load generator's or the mock's). */
const NODE_FLAGS = args['node-flags'].split(' ').filter(Boolean);
const WARMUP = Number(args.warmup);
const CONNECTIONS = Number(args.connections);
/** With --slices N: every row's server runs at once and each gets N turns of --slice-seconds of load. */
const SLICES = Number(args.slices);
const SLICE_S = Number(args['slice-seconds']);
const ROWS = args.rows.split(',').filter((r) => ALL_ROWS.includes(r) && !(args['no-portkey'] && r === 'portkey'));

const bodyFor = (model, stream) => chatBody(model, { stream });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** A child process whose output is kept (the last 8 KB) for error reports. */
function startProcess(name, argv, options = {}) {
  const child = spawn(process.execPath, argv, {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (c) => {
    out = (out + c.toString()).slice(-8192);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  return { name, child, output: () => out, exited };
}

async function stopProcess(p) {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const t = setTimeout(() => p.child.kill('SIGKILL'), 5000);
  await p.exited;
  clearTimeout(t);
}

/** Polls `url` until it answers `okStatus` (or any status when okStatus is 0). */
async function waitReady(p, url, okStatus = 200, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (p.child.exitCode !== null) throw new Error(`${p.name} exited with ${p.child.exitCode}: ${p.output().slice(-600)}`);
    try {
      const res = await request(url, { headersTimeout: 1000, bodyTimeout: 1000 });
      await res.body.dump();
      if (okStatus === 0 || res.statusCode === okStatus) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${p.name} did not become ready at ${url}: ${p.output().slice(-600)}`);
    await sleep(100);
  }
}

/** Peak resident set (VmHWM) in MB, and user+system CPU seconds, of a process. */
function procStats(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14 and 15)
  return { peakRssMb: hwm, cpuSeconds: ticks / 100 };
}

/** CPU seconds spent by all processes of the machine (user + system, all cores), from /proc/stat. */
function machineBusySeconds() {
  const [user, nice, system] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (user + nice + system) / 100;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** One autocannon run; latencies are taken from every response at sub-millisecond resolution. */
function load(url, body, headers, durationS) {
  return new Promise((res, rej) => {
    let samples = new Float64Array(1 << 18);
    let n = 0;
    const instance = autocannon(
      {
        url,
        method: 'POST',
        connections: CONNECTIONS,
        duration: durationS,
        headers: { 'content-type': 'application/json', ...headers },
        body,
        timeout: 10,
      },
      (err, result) => {
        if (err) return rej(err);
        res({
          requests: result.requests.total,
          latencies: samples.slice(0, n),
          errors: result.errors + result.timeouts + result.non2xx,
        });
      },
    );
    instance.on('response', (_client, status, _bytes, ms) => {
      if (status < 200 || status >= 300) return;
      if (n === samples.length) {
        const bigger = new Float64Array(samples.length * 2);
        bigger.set(samples);
        samples = bigger;
      }
      samples[n++] = ms;
    });
  });
}

/** One request before the load: the server must answer it correctly, or the row is not measured. */
async function check(url, body, headers, stream, expectHeader) {
  const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`check request answered ${res.statusCode}: ${text.slice(0, 300)}`);
  if (stream ? !text.includes('data: [DONE]') : !text.includes('"choices"')) {
    throw new Error(`check request got an unexpected body: ${text.slice(0, 300)}`);
  }
  if (expectHeader && !res.headers[expectHeader]) throw new Error(`check request: no ${expectHeader} header`);
}

function run(cmd, argv, options) {
  return new Promise((res) => {
    execFile(cmd, argv, { ...options, maxBuffer: 1 << 24 }, (err, stdout, stderr) => res({ err, stdout, stderr }));
  });
}

/** Installs Portkey's gateway into .bench/portkey (git-ignored) unless it is there. Returns an error text or null. */
async function ensurePortkey() {
  if (existsSync(PORTKEY_START)) return null;
  process.stdout.write('installing @portkey-ai/gateway into .bench/portkey (once) …\n');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const { err, stderr } = await run(
    npm,
    ['install', '--prefix', PORTKEY_DIR, '--no-audit', '--no-fund', '@portkey-ai/gateway'],
    { cwd: ROOT, timeout: 180_000 },
  );
  if (err || !existsSync(PORTKEY_START)) {
    const why = (stderr || String(err)).trim().split('\n').slice(-3).join(' ');
    return `npm install @portkey-ai/gateway failed: ${why.slice(0, 300)}`;
  }
  return null;
}

/**
 * Starts what a row measures (its server, a fresh database), checks one request and warms it up.
 * Returns the row's context, or `{ row, unavailable }` with the reason.
 */
async function startRow(row, mockPort, mock) {
  const stream = row.endsWith('-stream');
  const kind = row.replace(/-stream$/, '');
  const profileFlags = () => (args['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${join(resolve(args['cpu-prof']), row)}`] : []);
  let server = null;
  let url;
  let headers = {};
  let body;
  let expectHeader = null;
  let dir = null;
  let pgDb = null;
  const cleanup = async () => {
    if (server) await stopProcess(server);
    if (dir && !args['keep-db']) rmSync(dir, { recursive: true, force: true });
    if (pgDb) await pgDb.drop().catch(() => {});
  };
  try {
    if (kind === 'direct') {
      server = null;
      url = `http://127.0.0.1:${mockPort}/v1/chat/completions`;
      body = bodyFor('bench-model', stream);
    } else if (kind === 'relay') {
      const port = await freePort();
      server = startProcess('relay', [...profileFlags(), join(ROOT, 'bench', 'relay.mjs'), `http://127.0.0.1:${mockPort}`, String(port)]);
      await waitReady(server, `http://127.0.0.1:${port}/`, 0);
      url = `http://127.0.0.1:${port}/v1/chat/completions`;
      body = bodyFor('whatever', stream);
    } else if (kind === 'portkey') {
      const failed = await ensurePortkey();
      if (failed) return { row, unavailable: failed };
      const port = await freePort();
      server = startProcess('portkey', [PORTKEY_START, `--port=${port}`], { cwd: PORTKEY_DIR });
      await waitReady(server, `http://127.0.0.1:${port}/`, 200, 60_000);
      url = `http://127.0.0.1:${port}/v1/chat/completions`;
      headers = {
        'x-portkey-provider': 'openai',
        'x-portkey-custom-host': `http://127.0.0.1:${mockPort}/v1`,
        authorization: 'Bearer bench-key',
      };
      body = bodyFor('bench-model', stream);
    } else if (kind === 'tracegate') {
      const port = await freePort();
      // One folder per row: the rows' gateways run at the same time, each with its own SQLite file.
      dir = args['keep-db'] ? join(resolve(args['keep-db']), row) : mkdtempSync(join(tmpdir(), 'tracegate-bench-'));
      mkdirSync(dir, { recursive: true });
      const config = writeTracegateConfig(dir, mockPort, port);
      server = startProcess('tracegate', [...NODE_FLAGS, ...profileFlags(), resolve(args['tracegate-cli']), 'serve', '--config', config]);
      await waitReady(server, `http://127.0.0.1:${port}/health`, 200);
      url = `http://127.0.0.1:${port}/v1/chat/completions`;
      body = bodyFor('auto', stream);
      expectHeader = 'x-trace-id';
    } else if (kind === 'tracegate-pg') {
      // The same gateway and load, its traces in PostgreSQL (a fresh database, dropped afterwards).
      pgDb = await createPgDatabase();
      const port = await freePort();
      dir = mkdtempSync(join(tmpdir(), 'tracegate-bench-'));
      const config = writeTracegateConfig(dir, mockPort, port, { url: pgDb.url, spoolPath: join(dir, 'spool.db') });
      server = startProcess('tracegate-pg', [...NODE_FLAGS, resolve(args['tracegate-cli']), 'serve', '--config', config]);
      await waitReady(server, `http://127.0.0.1:${port}/health`, 200);
      url = `http://127.0.0.1:${port}/v1/chat/completions`;
      body = bodyFor('auto', stream);
      expectHeader = 'x-trace-id';
    }
    await check(url, body, headers, stream, expectHeader);
    if (WARMUP > 0) await load(url, body, headers, WARMUP);
    return { row, kind, stream, server, url, headers, body, dir, pgDb, mock, cleanup };
  } catch (err) {
    await cleanup();
    return { row, unavailable: (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').slice(0, 400) };
  }
}

/**
 * The CPU seconds of what a row's measurement is made of: this process (the load generator), the
 * mock, the row's server (and PostgreSQL for tracegate-pg). Everything else, the other rows' idle
 * servers included, is other load.
 */
function ownCpuSeconds(ctx) {
  let total = procStats(process.pid).cpuSeconds + procStats(ctx.mock.child.pid).cpuSeconds;
  if (ctx.server) total += procStats(ctx.server.child.pid).cpuSeconds;
  if (ctx.kind === 'tracegate-pg') total += postgresCpuSeconds();
  return total;
}

/** Loads a started row for `seconds`: its requests, latencies, errors, server CPU and other load. */
async function measureSlice(ctx, seconds) {
  const measured = ctx.server ?? ctx.mock;
  // SQLite writes inside the gateway; PostgreSQL's server processes do that work for tracegate-pg, so
  // their CPU counts as the row's own (in its server CPU, and not as other load).
  const dbCpu = ctx.kind === 'tracegate-pg' ? postgresCpuSeconds : () => 0;
  const dbBefore = dbCpu();
  const before = procStats(measured.child.pid);
  const oursBefore = ownCpuSeconds(ctx);
  const busyBefore = machineBusySeconds();
  const t0 = performance.now();
  const result = await load(ctx.url, ctx.body, ctx.headers, seconds);
  const after = procStats(measured.child.pid);
  const elapsed = (performance.now() - t0) / 1000;
  const otherCpu = (machineBusySeconds() - busyBefore - (ownCpuSeconds(ctx) - oursBefore)) / elapsed / cpus().length;
  return { ...result, elapsed, cpuSeconds: after.cpuSeconds - before.cpuSeconds + dbCpu() - dbBefore, otherCpu: Math.max(0, otherCpu) };
}

/** Stops a row's server (which flushes its traces), counts the traces, cleans up. */
async function finishRow(ctx) {
  let traces = null;
  const peakRssMb = ctx.server ? procStats(ctx.server.child.pid).peakRssMb : procStats(ctx.mock.child.pid).peakRssMb;
  try {
    if (ctx.kind === 'tracegate') {
      await stopProcess(ctx.server);
      traces = await countTraces(join(ctx.dir, 'traces.db'));
    } else if (ctx.kind === 'tracegate-pg') {
      await stopProcess(ctx.server);
      traces = await ctx.pgDb.count();
    }
  } finally {
    await ctx.cleanup();
  }
  return { peakRssMb, traces };
}

/** A row's figures from its slices of load (one slice unless --slices). */
function rowResult(row, slices, finished) {
  const requests = slices.reduce((n, s) => n + s.requests, 0);
  const elapsed = slices.reduce((t, s) => t + s.elapsed, 0);
  const latencies = new Float64Array(slices.reduce((n, s) => n + s.latencies.length, 0));
  let at = 0;
  for (const s of slices) {
    latencies.set(s.latencies, at);
    at += s.latencies.length;
  }
  latencies.sort();
  return {
    row,
    requests,
    rps: requests / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    errors: slices.reduce((n, s) => n + s.errors, 0),
    peakRssMb: finished.peakRssMb,
    cpuUsPerReq: (slices.reduce((t, s) => t + s.cpuSeconds, 0) * 1e6) / Math.max(1, requests),
    otherCpuPct: (slices.reduce((t, s) => t + s.otherCpu * s.elapsed, 0) / elapsed) * 100,
    traces: finished.traces,
    sliceRps: slices.map((s) => s.requests / s.elapsed),
  };
}

/** One row on its own: start, DURATION seconds of load, stop. */
async function measureRow(row, mockPort, mock) {
  const ctx = await startRow(row, mockPort, mock);
  if (ctx.unavailable) return { row, unavailable: ctx.unavailable };
  let slice;
  try {
    slice = await measureSlice(ctx, DURATION);
  } catch (err) {
    await ctx.cleanup();
    return { row, unavailable: (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').slice(0, 400) };
  }
  return rowResult(row, [slice], await finishRow(ctx));
}

/**
 * The rows' order in turn `turn`: as given in odd turns, reversed in even ones. Each row then follows
 * two different rows (a server's work left over from its turn, Portkey's garbage collection say,
 * would weigh on the row after it), each pair of rows swaps which goes first, and the rows compared
 * stay as close in time as in the given order (this VM's slow spells last seconds: a shuffled order,
 * tried first, put them farther apart).
 */
function turnOrder(rows, turn) {
  return turn % 2 === 1 ? rows : [...rows].reverse();
}

/**
 * Every row started at once, then loaded in turn, SLICE_S seconds each, SLICES times: a VM whose
 * speed drifts from one minute to the next (seen here: the bare relay at 6,700 and 11,800 req/s in
 * one run) then weighs on every row alike, and the ratios hold.
 */
async function measureSliced(rows, mockPort, mock) {
  const contexts = [];
  const unavailable = [];
  for (const row of rows) {
    process.stdout.write(`${row}: starting …`);
    const ctx = await startRow(row, mockPort, mock);
    if (ctx.unavailable) {
      unavailable.push({ row, unavailable: ctx.unavailable });
      process.stdout.write(` unavailable (${ctx.unavailable})\n`);
    } else {
      contexts.push(ctx);
      process.stdout.write(' ready\n');
    }
  }
  const slices = new Map(contexts.map((c) => [c.row, []]));
  const finished = new Map();
  try {
    for (let i = 1; i <= SLICES; i++) {
      process.stdout.write(`slice ${i}/${SLICES}:`);
      for (const ctx of turnOrder(contexts, i)) {
        const s = await measureSlice(ctx, SLICE_S);
        slices.get(ctx.row).push(s);
        process.stdout.write(` ${ctx.row} ${fmt(s.requests / s.elapsed)}`);
      }
      process.stdout.write('\n');
    }
  } finally {
    for (const ctx of contexts) finished.set(ctx.row, await finishRow(ctx));
  }
  return rows.map((row) => unavailable.find((u) => u.row === row) ?? rowResult(row, slices.get(row), finished.get(row)));
}

/** User + system CPU seconds of every PostgreSQL server process on this machine. */
function postgresCpuSeconds() {
  let ticks = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (!stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).startsWith('postgres')) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone meanwhile
    }
  }
  return ticks / 100;
}

/** A fresh PostgreSQL database for the tracegate-pg row (TRACEGATE_BENCH_PG_URL names the server). */
async function createPgDatabase() {
  const { default: pg } = await import('pg');
  const admin = process.env.TRACEGATE_BENCH_PG_URL ?? process.env.TRACEGATE_TEST_PG_URL ?? 'postgres://root@127.0.0.1:5432/test';
  const name = `tracegate_bench_${process.pid}`;
  const run = async (sql) => {
    const client = new pg.Client({ connectionString: admin, connectionTimeoutMillis: 3000 });
    await client.connect();
    try {
      return await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await run(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await run(`CREATE DATABASE "${name}"`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async count() {
      const client = new pg.Client({ connectionString: url.toString() });
      await client.connect();
      try {
        return Number((await client.query('SELECT COUNT(*) AS n FROM traces')).rows[0].n);
      } finally {
        await client.end();
      }
    },
    drop: () => run(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
  };
}

async function countTraces(dbPath) {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.prepare('SELECT COUNT(*) AS n FROM traces').get().n;
  } finally {
    db.close();
  }
}

const fmt = (v, digits = 0) => (v === null || v === undefined || Number.isNaN(v) ? '—' : v.toFixed(digits));

function table(results) {
  const lines = [];
  lines.push('| row | req/s | p50 ms | p99 ms | errors | peak RSS MB | server CPU µs/req | other load |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    if (r.unavailable) {
      lines.push(`| ${r.row} | unavailable: ${r.unavailable} | | | | | | |`);
      continue;
    }
    lines.push(
      `| ${r.row} | ${fmt(r.rps)} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${r.errors} | ${fmt(r.peakRssMb, 1)} | ${fmt(r.cpuUsPerReq)} | ${fmt(r.otherCpuPct)}% |`,
    );
  }
  return lines.join('\n');
}

function ratios(results) {
  const by = Object.fromEntries(results.filter((r) => !r.unavailable).map((r) => [r.row, r]));
  const lines = [];
  const ratio = (a, b, label) => {
    if (!by[a] || !by[b]) return;
    lines.push(`- ${a} / ${b} ${label}: ${(by[a].rps / by[b].rps).toFixed(by[a].rps / by[b].rps >= 10 ? 1 : 3)}×` +
      ` throughput; p50 ${by[a].p50 - by[b].p50 >= 0 ? '+' : ''}${(by[a].p50 - by[b].p50).toFixed(2)} ms`);
  };
  ratio('tracegate', 'relay', '');
  ratio('tracegate-pg', 'tracegate', '(PostgreSQL / SQLite)');
  ratio('tracegate', 'portkey', '');
  ratio('tracegate', 'direct', '');
  ratio('relay', 'direct', '');
  ratio('portkey', 'direct', '');
  ratio('tracegate-stream', 'relay-stream', '');
  ratio('tracegate-stream', 'direct-stream', '');
  ratio('relay-stream', 'direct-stream', '');
  for (const r of results) {
    if (r.traces !== null && r.traces !== undefined) {
      lines.push(`- ${r.row}: ${r.traces} traces committed for ${r.requests} measured requests (plus the warmup and check requests)`);
    }
  }
  return lines.join('\n');
}

/** tracegate / relay (and the other pairs) in each turn of --slices, with their median. */
function sliceRatios(results) {
  const by = Object.fromEntries(results.filter((r) => !r.unavailable).map((r) => [r.row, r]));
  const lines = [];
  for (const [a, b] of [['tracegate', 'relay'], ['tracegate', 'portkey'], ['tracegate-stream', 'relay-stream']]) {
    if (!by[a] || !by[b]) continue;
    const per = by[a].sliceRps.map((rps, i) => rps / by[b].sliceRps[i]);
    const sorted = [...per].sort((p, q) => p - q);
    const mid = sorted.length / 2;
    const median = sorted.length % 2 ? sorted[Math.floor(mid)] : (sorted[mid - 1] + sorted[mid]) / 2;
    const f = (v) => v.toFixed(v >= 10 ? 1 : 2);
    lines.push(`- ${a} / ${b} in each turn: median ${f(median)}×, from ${f(sorted[0])} to ${f(sorted.at(-1))} (${per.map(f).join(', ')})`);
  }
  return lines.join('\n');
}

async function main() {
  const plan = SLICES > 0 ? `${SLICES} turns of ${SLICE_S} s per row, every server running` : `${DURATION} s per row`;
  process.stdout.write(
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}\n` +
      `load: autocannon, ${CONNECTIONS} connections, ${WARMUP} s warmup + ${plan}, one mock upstream process\n\n`,
  );
  const mockPort = await freePort();
  const mock = startProcess('mock', [join(ROOT, 'bench', 'mock-upstream.mjs'), String(mockPort)]);
  const results = [];
  const started = performance.now();
  try {
    await waitReady(mock, `http://127.0.0.1:${mockPort}/`, 0);
    if (SLICES > 0) {
      results.push(...(await measureSliced(ROWS, mockPort, mock)));
    } else {
      for (const row of ROWS) {
        process.stdout.write(`${row} …`);
        let r = await measureRow(row, mockPort, mock);
        // Other processes on the machine skew a row: measure it again (a few times at most).
        for (
          let retry = 0;
          retry < Number(args.retries) && !r.unavailable && r.otherCpuPct > Number(args['max-other-load']) &&
          (performance.now() - started) / 1000 < Number(args.budget);
          retry++
        ) {
          process.stdout.write(` ${fmt(r.rps)} req/s with ${fmt(r.otherCpuPct)}% other load, again …`);
          await sleep(3000);
          r = await measureRow(row, mockPort, mock);
        }
        results.push(r);
        process.stdout.write(r.unavailable ? ` unavailable (${r.unavailable})\n` : ` ${fmt(r.rps)} req/s\n`);
      }
    }
  } finally {
    await stopProcess(mock);
  }
  let out = `\n${table(results)}\n\n${ratios(results)}\n`;
  if (SLICES > 0) out += `${sliceRatios(results)}\n`;
  process.stdout.write(out);
  if (args.json) {
    writeFileSync(args.json, JSON.stringify({ connections: CONNECTIONS, duration: DURATION, slices: SLICES, sliceSeconds: SLICE_S, results }, null, 2));
  }
}

await main();
