import { Command, InvalidArgumentError } from 'commander';
import { runDemo } from './run-demo.js';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number');
  return n;
}

async function demoCommand(flags: { requests: number; concurrency: number; port: number; db?: string; seed?: number; exit?: boolean }) {
  const demo = await runDemo({
    requests: flags.requests,
    concurrency: Math.max(1, flags.concurrency),
    port: flags.port,
    db: flags.db,
    seed: flags.seed,
    every: Math.max(50, Math.round(flags.requests / 6)),
    out: process.stdout,
  });
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

/** `tracegate demo`: simulated models, the gateway on them, and traffic with feedback — no API key needed. */
export function withDemoCommand(program: Command): Command {
  program
    .command('demo')
    .description('run the gateway on simulated models with simulated users, and watch routing converge (no API keys)')
    .option('-n, --requests <n>', 'requests to send', positiveInt, 1200)
    .option('--concurrency <n>', 'requests in flight at once', positiveInt, 4)
    .option('-p, --port <port>', 'gateway port (0: any free port)', positiveInt, 8080)
    .option('--db <path>', 'SQLite file for the traces (default: a new temporary file)')
    .option('--seed <n>', 'seed for the routing policy', positiveInt)
    .option('--exit', 'stop when the traffic is done instead of keeping the gateway running')
    .action(demoCommand);
  return program;
}
