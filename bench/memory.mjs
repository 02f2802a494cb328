// Where a server's resident memory goes, idle and at its peak under the HTTP benchmark's load: the
// bare relay and tracegate (bench/workload.mjs: the config and request of bench/http.mjs), each alone with the mock upstream.
// RSS is split into file-backed pages (Node's binary, libraries) and anonymous memory, and the
// mappings that hold most of it are listed at the peak (from /proc/PID/smaps).
//
//   node bench/memory.mjs [--rows relay,tracegate] [--seconds 6] [--connections 32] [--node-flags=FLAGS]
//
// It also measures what one idle worker thread adds to a bare Node process (tracegate's store
// thread, which checkpoints the WAL and runs the big reads, is one). Run through `npm run
// bench:memory` (which builds first).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { chatBody, writeTracegateConfig } from './workload.mjs';

const ROOT = resolve(import.meta.dirname, '..');
const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: 'relay,tracegate' },
    seconds: { type: 'string', default: '6' },
    connections: { type: 'string', default: '32' },
    'node-flags': { type: 'string', default: '' },
  },
});
const NODE_FLAGS = args['node-flags'].split(' ').filter(Boolean);
const mb = (kb) => (kb / 1024).toFixed(1);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts a node script that prints {"port":N} once it listens. */
function startListening(argv) {
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolveStart, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const port = /"port":(\d+)/.exec(out)?.[1];
      if (port) resolveStart({ child, port: Number(port) });
    });
    child.once('exit', (code) => reject(new Error(`${argv.join(' ')} exited with ${code}`)));
  });
}

/** Resident memory of a process now, in kB: all, file-backed, anonymous. */
function resident(pid) {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? 0);
  const rss = field('Rss');
  const anon = field('Anonymous');
  return { rss, file: rss - anon, anon };
}

/** The mappings that hold the most resident memory, grouped by what they are. */
function largestMappings(pid, count = 6) {
  const groups = new Map();
  let name = null;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const kb = (parseInt(head[2], 16) - parseInt(head[1], 16)) / 1024;
      // Anonymous mappings by size: V8 allocates its heap in 256 kB pages.
      // (V8 takes its old generation in 256 kB pages and reserves the young one whole; glibc gives
      // each thread that allocates a 64 MB arena.)
      name =
        head[4] ||
        (kb <= 256
          ? 'anonymous, ≤ 256 kB each (V8 heap pages)'
          : kb <= 16384
            ? 'anonymous, 256 kB–16 MB each (thread stacks and the like)'
            : "anonymous, > 16 MB each (V8's young generation, threads' malloc arenas)");
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && name) groups.set(name, (groups.get(name) ?? 0) + Number(rss[1]));
  }
  return [...groups].sort((a, b) => b[1] - a[1]).slice(0, count);
}

async function startTracegate(dir, mockPort) {
  const probe = await startListening(['-e', "const s=require('node:net').createServer().listen(0,'127.0.0.1',()=>{console.log(JSON.stringify({port:s.address().port}));s.close()})"]);
  const port = probe.port;
  const child = spawn(process.execPath, [...NODE_FLAGS, join(ROOT, 'dist', 'cli.js'), 'serve', '--config', writeTracegateConfig(dir, mockPort, port)], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 300; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      if (res.ok) return { child, port };
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error('tracegate did not start');
}

async function measure(row, mockPort) {
  const dir = mkdtempSync(join(tmpdir(), 'tracegate-memory-'));
  const server =
    row === 'relay'
      ? await startListening([...NODE_FLAGS, join(ROOT, 'bench', 'relay.mjs'), `http://127.0.0.1:${mockPort}`, '0'])
      : await startTracegate(dir, mockPort);
  const { pid } = server.child;
  try {
    await sleep(500);
    const idle = resident(pid);
    let peak = idle;
    let mappings = largestMappings(pid);
    const sampler = setInterval(() => {
      const now = resident(pid);
      if (now.rss > peak.rss) {
        peak = now;
        mappings = largestMappings(pid);
      }
    }, 50);
    const body = chatBody(row === 'relay' ? 'bench-model' : 'auto');
    const result = await autocannon({
      url: `http://127.0.0.1:${server.port}/v1/chat/completions`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      connections: Number(args.connections),
      duration: Number(args.seconds),
    });
    clearInterval(sampler);
    const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
    process.stdout.write(
      `\n${row}: ${Math.round(result.requests.average)} req/s, ${result.errors + result.non2xx} errors\n` +
        `  idle: RSS ${mb(idle.rss)} MB = ${mb(idle.file)} file-backed + ${mb(idle.anon)} anonymous\n` +
        `  peak: RSS ${mb(peak.rss)} MB = ${mb(peak.file)} file-backed + ${mb(peak.anon)} anonymous (VmHWM ${mb(hwm)} MB)\n` +
        mappings.map(([name, kb]) => `    ${mb(kb).padStart(6)} MB  ${name}\n`).join(''),
    );
  } finally {
    server.child.kill('SIGTERM');
    await sleep(300);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The RSS one idle worker thread adds to a bare Node process. */
async function workerCost() {
  const script = `
    const { Worker } = require('node:worker_threads');
    const rss = () => process.memoryUsage().rss;
    setTimeout(() => {
      const before = rss();
      new Worker('setInterval(() => {}, 1000)', { eval: true });
      setTimeout(() => { console.log(JSON.stringify({ kb: (rss() - before) / 1024 })); process.exit(0); }, 1500);
    }, 500);`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  await new Promise((r) => child.once('exit', r));
  process.stdout.write(`\none idle worker thread adds ${mb(JSON.parse(out).kb)} MB of RSS to a bare Node process\n`);
}

process.stdout.write(`Node ${process.version}; load: autocannon, ${args.connections} connections, ${args.seconds} s per row${NODE_FLAGS.length ? `; server flags ${NODE_FLAGS.join(' ')}` : ''}\n`);
const mock = await startListening([join(ROOT, 'bench', 'mock-upstream.mjs'), '0']);
try {
  for (const row of args.rows.split(',').filter(Boolean)) await measure(row, mock.port);
  await workerCost();
} finally {
  mock.child.kill('SIGTERM');
}
