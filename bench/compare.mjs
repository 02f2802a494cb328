// Two builds of the gateway side by side: the CPU time (user + system, from /proc) each spends per
// request under the same load, in rounds that alternate which build goes first. On a VM whose speed
// drifts, a pair of rounds run seconds apart says more than two throughput runs minutes apart.
//
//   node bench/compare.mjs --before PATH/dist/cli.js [--after dist/cli.js] [--stream]
//                          [--rounds 6] [--requests 8000] [--connections 32]
//
// A build to compare with: `git worktree add /tmp/before REV && cd /tmp/before &&
// ln -s "$OLDPWD/node_modules" node_modules && npx tsc -p tsconfig.build.json`.
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
    before: { type: 'string' },
    after: { type: 'string', default: join(ROOT, 'dist', 'cli.js') },
    stream: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '6' },
    requests: { type: 'string', default: '8000' },
    connections: { type: 'string', default: '32' },
  },
});
if (!args.before) {
  process.stderr.write('usage: node bench/compare.mjs --before PATH/dist/cli.js [--after dist/cli.js] [--stream]\n');
  process.exit(2);
}
const REQUESTS = Number(args.requests);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TICK_US = 1e6 / 100; // /proc/PID/stat counts in clock ticks of 10 ms (USER_HZ 100)

function cpuMicros(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_US;
}

function startMock() {
  const child = spawn(process.execPath, [join(ROOT, 'bench', 'mock-upstream.mjs'), '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolveStart) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const port = /"port":(\d+)/.exec(out)?.[1];
      if (port) resolveStart({ child, port: Number(port) });
    });
  });
}

async function startGateway(cli, mockPort, port) {
  const dir = mkdtempSync(join(tmpdir(), 'tracegate-compare-'));
  const child = spawn(process.execPath, [resolve(cli), 'serve', '--config', writeTracegateConfig(dir, mockPort, port)], { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) return { child, port, dir };
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${cli} did not start`);
}

const body = chatBody('auto', { stream: args.stream, short: true });
const load = (port, amount) =>
  autocannon({
    url: `http://127.0.0.1:${port}/v1/chat/completions`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections: Number(args.connections),
    amount,
  });

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mock = await startMock();
const gateways = {};
try {
  let port = 40_000 + Math.floor(Math.random() * 10_000);
  for (const name of ['before', 'after']) gateways[name] = await startGateway(args[name], mock.port, port++);
  for (const g of Object.values(gateways)) await load(g.port, 5000); // warm-up
  const micros = { before: [], after: [] };
  for (let round = 0; round < Number(args.rounds); round++) {
    for (const name of round % 2 === 0 ? ['before', 'after'] : ['after', 'before']) {
      const g = gateways[name];
      const cpu = cpuMicros(g.child.pid);
      const result = await load(g.port, REQUESTS);
      if (result.errors + result.non2xx > 0) throw new Error(`${name}: ${result.errors + result.non2xx} failed requests`);
      micros[name].push(Math.round((cpuMicros(g.child.pid) - cpu) / REQUESTS));
    }
  }
  const lower = micros.after.filter((a, i) => a < micros.before[i]).length;
  process.stdout.write(
    `${args.stream ? 'streamed' : 'whole'} requests, ${REQUESTS} per round, ${args.connections} connections; server CPU µs per request\n` +
      `before (${args.before}): ${micros.before.join(', ')} — median ${median(micros.before)}\n` +
      `after  (${args.after}): ${micros.after.join(', ')} — median ${median(micros.after)}\n` +
      `after/before, medians: ${(median(micros.after) / median(micros.before)).toFixed(3)}; after lower in ${lower} of ${micros.after.length} rounds\n`,
  );
} finally {
  for (const g of Object.values(gateways)) {
    g.child.kill('SIGTERM');
  }
  mock.child.kill('SIGTERM');
  await sleep(300);
  for (const g of Object.values(gateways)) rmSync(g.dir, { recursive: true, force: true });
}
