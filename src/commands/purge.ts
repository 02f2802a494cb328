import type { Command } from 'commander';
import { openOrReport, openStore, timeArg, withDbOptions, type DbFlags } from './options.js';

interface PurgeFlags extends DbFlags {
  before?: number;
  /** Delete the offline evidence (tracegate import --eval) instead. */
  offline?: boolean;
}

async function purgeCommand(flags: PurgeFlags): Promise<void> {
  if ((flags.before === undefined) === (flags.offline !== true)) {
    process.stderr.write('tracegate purge: give either --before TIME or --offline\n');
    process.exitCode = 1;
    return;
  }
  const store = await openOrReport('purge', () => openStore(flags, { mustExist: true }));
  if (store === undefined) return;
  try {
    if (flags.before === undefined) {
      const { deleted } = await store.purgeOffline();
      process.stdout.write(`deleted ${deleted} offline traces (imported evaluation results); the policies lose that prior at their next update\n`);
      return;
    }
    const { deleted } = await store.purge(flags.before);
    process.stdout.write(
      `deleted ${deleted} traces from before ${new Date(flags.before).toISOString()}; their sums stay as evidence for the routing policy\n`,
    );
  } finally {
    await store.close();
  }
}

/** `tracegate purge --before DATE`: delete old traces (prompts and all), keeping what the policy learned from them. */
export function withPurgeCommand(program: Command): Command {
  withDbOptions(
    program.command('purge').description('delete live traces older than a date (the policy keeps their statistics), or the offline evidence'),
    false,
  )
    .option('--before <time>', 'delete live traces from before this time (ISO date or epoch ms)', timeArg)
    .option('--offline', 'delete every offline trace (imported evaluation results: tracegate import --eval)')
    .action(purgeCommand);
  return program;
}
