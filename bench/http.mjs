// Side-by-side HTTP benchmark: the direct path, a bare relay, Portkey's gateway and tracegate, all
// against the same fast mock upstream, in one run, with autocannon. Each server runs in its own
// child process; its peak RSS (VmHWM) and CPU time come from /proc.
//
//   node bench/http.mjs [--duration 10] [--warmup 2] [--connections 32] [--rows direct,relay,...]
//                       [--no-portkey] [--json FILE] [--cpu-prof DIR] [--keep-db DIR]
//                       [--max-other-load 5] [--retries 1] [--budget 100]
//
// Other processes on the machine skew the figures, so each row also reports the CPU share that
// other processes used meanwhile; a row measured while they used more than --max-other-load percent
// is measured again (--retries times, while the run is under --budget seconds).
// --cpu-prof DIR runs tracegate under `node --cpu-prof` and leaves the profile in DIR.
//
// Run through `npm run bench` (which builds tracegate first).
import { spawn, execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
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
  },
});
const DURATION = Number(args.duration);
/** Flags for the gateway's node process only (not the load generator's or the mock's). */
const NODE_FLAGS = args['node-flags'].split(' ').filter(Boolean);
const WARMUP = Number(args.warmup);
const CONNECTIONS = Number(args.connections);
const ROWS = args.rows.split(',').filter((r) => ALL_ROWS.includes(r) && !(args['no-portkey'] && r === 'portkey'));

const PROMPT =
  'I run a small online shop and I am choosing between two shipping providers for parcels inside Europe. ' +
  'One is cheaper per parcel but slower and has a worse record for lost packages; the other costs about ' +
  'a fifth more but delivers in two days and offers tracking by text message. Which would you pick for a ' +
  'shop that sends about forty parcels a week, and what should I ask each of them before I sign?';
const bodyFor = (model, stream) =>
  JSON.stringify({
    model,
    messages: [
      { role: 'system', content: 'You are a concise, practical assistant.' },
      { role: 'user', content: PROMPT },
    ],
    temperature: 0.2,
    max_tokens: 256,
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  });

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
        const sorted = samples.subarray(0, n).sort();
        res({
          requests: result.requests.total,
          rps: result.requests.total / (result.duration || durationS),
          p50: percentile(sorted, 50),
          p99: percentile(sorted, 99),
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

function tracegateConfig(dir, mockPort, port, database = { path: join(dir, 'traces.db') }) {
  const baseURL = `http://127.0.0.1:${mockPort}/v1`;
  const model = (input, output) => ({ baseURL, model: 'bench-model', inputCostPerMTok: input, outputCostPerMTok: output, timeoutMs: 30_000 });
  const config = {
    server: { host: '127.0.0.1', port },
    database,
    models: { mini: model(0.15, 0.6), pro: model(2.5, 10), coder: model(1, 4), budget: model(0.05, 0.2) },
    router: { autoModel: 'auto', policy: 'adaptive', costWeight: 0, halfLife: 50, updateIntervalSeconds: 0 },
    traces: { storePrompts: 'truncated', truncateChars: 200 },
    logging: { level: 'warn' },
  };
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

async function measureRow(row, mockPort, mock) {
  const stream = row.endsWith('-stream');
  const kind = row.replace(/-stream$/, '');
  let server = null;
  let url;
  let headers = {};
  let body;
  let expectHeader = null;
  let dir = null;
  let pgDb = null;
  try {
    if (kind === 'direct') {
      server = null;
      url = `http://127.0.0.1:${mockPort}/v1/chat/completions`;
      body = bodyFor('bench-model', stream);
    } else if (kind === 'relay') {
      const port = await freePort();
      server = startProcess('relay', [join(ROOT, 'bench', 'relay.mjs'), `http://127.0.0.1:${mockPort}`, String(port)]);
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
      dir = args['keep-db'] ? resolve(args['keep-db']) : mkdtempSync(join(tmpdir(), 'tracegate-bench-'));
      const config = tracegateConfig(dir, mockPort, port);
      const prof = args['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${resolve(args['cpu-prof'])}`] : [];
      server = startProcess('tracegate', [...NODE_FLAGS, ...prof, resolve(args['tracegate-cli']), 'serve', '--config', config]);
      await waitReady(server, `http://127.0.0.1:${port}/health`, 200);
      url = `http://127.0.0.1:${port}/v1/chat/completions`;
      body = bodyFor('auto', stream);
      expectHeader = 'x-trace-id';
    } else if (kind === 'tracegate-pg') {
      // The same gateway and load, its traces in PostgreSQL (a fresh database, dropped afterwards).
      pgDb = await createPgDatabase();
      const port = await freePort();
      dir = mkdtempSync(join(tmpdir(), 'tracegate-bench-'));
      const config = tracegateConfig(dir, mockPort, port, { url: pgDb.url, spoolPath: join(dir, 'spool.db') });
      server = startProcess('tracegate-pg', [...NODE_FLAGS, resolve(args['tracegate-cli']), 'serve', '--config', config]);
      await waitReady(server, `http://127.0.0.1:${port}/health`, 200);
      url = `http://127.0.0.1:${port}/v1/chat/completions`;
      body = bodyFor('auto', stream);
      expectHeader = 'x-trace-id';
    }
    await check(url, body, headers, stream, expectHeader);
    if (WARMUP > 0) await load(url, body, headers, WARMUP);
    const measured = server ?? mock;
    // SQLite writes inside the gateway; PostgreSQL's server processes do that work for tracegate-pg, so
    // their CPU counts as the row's own (in its server CPU, and not as other load).
    const dbCpu = kind === 'tracegate-pg' ? postgresCpuSeconds : () => 0;
    const dbBefore = dbCpu();
    const before = procStats(measured.child.pid);
    const ours = () => procStats(process.pid).cpuSeconds + procStats(mock.child.pid).cpuSeconds + (server ? procStats(server.child.pid).cpuSeconds : 0) + dbCpu();
    const oursBefore = ours();
    const busyBefore = machineBusySeconds();
    const t0 = performance.now();
    const result = await load(url, body, headers, DURATION);
    const after = procStats(measured.child.pid);
    const elapsed = (performance.now() - t0) / 1000;
    const otherCpu = (machineBusySeconds() - busyBefore - (ours() - oursBefore)) / elapsed / cpus().length;
    let traces = null;
    if (kind === 'tracegate') {
      await stopProcess(server); // flushes and closes the database
      traces = await countTraces(join(dir, 'traces.db'));
    } else if (kind === 'tracegate-pg') {
      await stopProcess(server);
      traces = await pgDb.count();
    }
    return {
      row,
      ...result,
      peakRssMb: after.peakRssMb,
      cpuUsPerReq: ((after.cpuSeconds - before.cpuSeconds + dbCpu() - dbBefore) * 1e6) / Math.max(1, result.requests),
      otherCpuPct: Math.max(0, otherCpu * 100),
      traces,
    };
  } catch (err) {
    return { row, unavailable: (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').slice(0, 400) };
  } finally {
    if (server) await stopProcess(server);
    if (dir && !args['keep-db']) rmSync(dir, { recursive: true, force: true });
    if (pgDb) await pgDb.drop().catch(() => {});
  }
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

async function main() {
  process.stdout.write(
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}\n` +
      `load: autocannon, ${CONNECTIONS} connections, ${WARMUP} s warmup + ${DURATION} s per row, one mock upstream process\n\n`,
  );
  const mockPort = await freePort();
  const mock = startProcess('mock', [join(ROOT, 'bench', 'mock-upstream.mjs'), String(mockPort)]);
  const results = [];
  const started = performance.now();
  try {
    await waitReady(mock, `http://127.0.0.1:${mockPort}/`, 0);
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
  } finally {
    await stopProcess(mock);
  }
  const out = `\n${table(results)}\n\n${ratios(results)}\n`;
  process.stdout.write(out);
  if (args.json) writeFileSync(args.json, JSON.stringify({ connections: CONNECTIONS, duration: DURATION, results }, null, 2));
}

await main();
