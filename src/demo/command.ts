import { Command, InvalidArgumentError } from 'commander';
import { runDemo } from './run-demo.js';
import { DEMO_CONCURRENCY, DEMO_REQUESTS, JUDGE_SAMPLE_RATE, SHADOW_RATE, USER_RATING_RATE } from './scenario.js';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number');
  return n;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port number (0-65535)');
  return n;
}

function share(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('must be a number from 0 to 1');
  return n;
}

interface DemoFlags {
  requests: number;
  concurrency: number;
  port: number;
  db?: string;
  seed?: number;
  ratingRate: number;
  judgeRate: number;
  shadowRate: number;
  every?: number;
  exit?: boolean;
}

async function demoCommand(flags: DemoFlags) {
  // Ctrl-C while the traffic runs: exit, which removes the temporary folder (the demo listens for 'exit').
  const early = () => process.exit(130);
  process.once('SIGINT', early);
  process.once('SIGTERM', early);
  const demo = await runDemo({
    requests: flags.requests,
    concurrency: Math.max(1, flags.concurrency),
    port: flags.port,
    db: flags.db,
    seed: flags.seed,
    ratingRate: flags.ratingRate,
    judgeRate: flags.judgeRate,
    shadowRate: flags.shadowRate,
    every: flags.every || Math.max(50, Math.round(flags.requests / 5)),
    out: process.stdout,
  });
  process.off('SIGINT', early);
  process.off('SIGTERM', early);
  if (flags.exit) {
    await demo.close();
    return;
  }
  process.stdout.write(
    `\nThe gateway keeps running: ${demo.running.url}/stats (and /dashboard), or point a client at ${demo.running.url}/v1 with model "auto".\nCtrl-C to stop.\n`,
  );
  const stop = () => {
    demo.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/** `tracegate demo`: simulated models and a judge, the gateway on them, and traffic with a little feedback — no API key needed. */
export function withDemoCommand(program: Command): Command {
  program
    .command('demo')
    .description('run the gateway on simulated models with simulated users, a judge and shadow calls, and watch routing converge (no API keys)')
    .option('-n, --requests <n>', 'requests to send', positiveInt, DEMO_REQUESTS)
    .option('--concurrency <n>', 'requests in flight at once', positiveInt, DEMO_CONCURRENCY)
    .option('-p, --port <port>', 'gateway port (0: any free port)', port, 8080)
    .option('--db <path>', 'SQLite file for the traces (default: a new temporary file)')
    .option('--seed <n>', 'seed for the routing policy, the simulated users, the judge and the models', positiveInt)
    .option('--rating-rate <share>', 'share of the answers the simulated users rate', share, USER_RATING_RATE)
    .option('--judge-rate <share>', "the judge's sample rate (router.judge.sampleRate)", share, JUDGE_SAMPLE_RATE)
    .option('--shadow-rate <share>', 'share of the requests also sent to another model (router.shadow.rate; 0: none)', share, SHADOW_RATE)
    .option('--every <n>', 'print the routing table every n requests (default: a fifth of the requests)', positiveInt)
    .option('--exit', 'stop when the traffic is done instead of keeping the gateway running')
    .action(demoCommand);
  return program;
}
