import type { Command } from 'commander';
import { SqliteTraceStore } from '../traces/sqlite-store.js';
import { dbPathFrom, existingDb, timeArg, withDbOptions, type DbFlags } from './options.js';

interface PurgeFlags extends DbFlags {
  before: number;
}

async function purgeCommand(flags: PurgeFlags): Promise<void> {
  const store = new SqliteTraceStore({ path: existingDb(dbPathFrom(flags)) });
  try {
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
  withDbOptions(program.command('purge').description('delete traces older than a date; the policy keeps its statistics'), false)
    .requiredOption('--before <time>', 'delete traces from before this time (ISO date or epoch ms)', timeArg)
    .action(purgeCommand);
  return program;
}
