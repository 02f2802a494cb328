// Instructions per request that the gateway executes, counted by valgrind (callgrind), not timed: on a
// VM whose speed drifts from one minute to the next, a count is what tells two builds apart. The
// gateway runs under `valgrind --tool=callgrind` with `node --single-threaded` (no JIT or GC helper
// threads; two runs of one build side by side differ by about 2%, a run alone by more, so compare
// builds in one run, side by side); it takes --warm requests first (its JIT settles),
// then the counters are zeroed and --requests more are counted. User-space instructions only: the
// kernel's side of the sockets is not in the count.
//
//   node bench/instructions.mjs [--warm 3000] [--requests 1500] [--tracegate-cli dist/cli.js]
//
// Needs valgrind (`apt-get install -y valgrind`); about 1.5 minutes.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { chatBody } from './workload.mjs';
import { request } from 'undici';

const ROOT = resolve(import.meta.dirname, '..');
const { values: args } = parseArgs({
  options: {
    warm: { type: 'string', default: '3000' },
    requests: { type: 'string', default: '1500' },
    'tracegate-cli': { type: 'string', default: join(ROOT, 'dist', 'cli.js') },
  },
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const body = chatBody('auto', { short: true });

/** A port nothing listens on now (asked of the system, then released for the gateway). */
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

function lineOf(child) {
  return new Promise((res, rej) => {
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
      if (out.includes('\n')) res(JSON.parse(out.split('\n')[0]));
    });
    child.once('exit', (code) => rej(new Error(`exited with ${code}`)));
  });
}

function load(url, amount) {
  return new Promise((res, rej) =>
    autocannon({ url, method: 'POST', headers: { 'content-type': 'application/json' }, body, connections: 32, amount, timeout: 60 }, (err, r) =>
      err ? rej(err) : res(r),
    ),
  );
}

const dir = mkdtempSync(join(tmpdir(), 'tracegate-instructions-'));
const mock = spawn(process.execPath, [join(ROOT, 'bench', 'mock-upstream.mjs'), '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
let gateway = null;
try {
  const { port: mockPort } = await lineOf(mock);
  const port = await freePort();
  const model = (input, output) => ({ baseURL: `http://127.0.0.1:${mockPort}/v1`, model: 'bench-model', inputCostPerMTok: input, outputCostPerMTok: output });
  const config = join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      server: { host: '127.0.0.1', port },
      database: { path: join(dir, 'traces.db') },
      models: { mini: model(0.15, 0.6), pro: model(2.5, 10), coder: model(1, 4), budget: model(0.05, 0.2) },
      router: { autoModel: 'auto', policy: 'adaptive', updateIntervalSeconds: 0 },
      logging: { level: 'warn' },
    }),
  );
  const out = join(dir, 'callgrind.out');
  gateway = spawn('valgrind', ['--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${out}`, process.execPath, '--single-threaded', resolve(args['tracegate-cli']), 'serve', '--config', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  gateway.stderr.on('data', (c) => (log += c));
  const exited = new Promise((r) => gateway.once('exit', r));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      const res = await request(`${url}/health`);
      await res.body.dump();
      if (res.statusCode === 200) break;
    } catch {
      if (i > 300) throw new Error(`the gateway did not start under valgrind: ${log.slice(-500)}`);
    }
    await sleep(500);
  }
  await load(`${url}/v1/chat/completions`, Number(args.warm));
  execFileSync('callgrind_control', ['-z', String(gateway.pid)], { stdio: 'ignore' });
  const counted = await load(`${url}/v1/chat/completions`, Number(args.requests));
  gateway.kill('SIGTERM');
  await exited;
  const total = Number(/Collected : (\d+)/.exec(log)?.[1]);
  const answered = counted['2xx'];
  process.stdout.write(
    `${args['tracegate-cli']}: ${total.toLocaleString('en')} instructions for ${answered} answered requests ` +
      `(after ${args.warm} to warm up) = ${Math.round(total / answered).toLocaleString('en')} per request\n`,
  );
} finally {
  if (gateway && gateway.exitCode === null) gateway.kill('SIGKILL');
  mock.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
