import { Command, InvalidArgumentError } from 'commander';
import { loadConfig, parseConfig, type Config } from '../core/config.js';
import { policyNames } from '../routing/registry.js';
import { createTraceStore } from '../traces/factory.js';
import type { TraceStore } from '../traces/types.js';
import { parseTime } from '../reports/stats.js';
import { UsageError, MissingDatabaseError } from '../core/errors.js';
import { isRoutingEvidence } from '../core/reserved-classes.js';

/** Options shared by the commands that read the trace database without a running server. */

export interface DbFlags {
  config?: string;
  db?: string;
}

/** `--since` / `--until`: epoch milliseconds or an ISO date. */
export function timeArg(value: string): number {
  const t = parseTime(value);
  if (t === undefined) throw new InvalidArgumentError('must be an ISO date (2025-01-31, 2025-01-31T12:00:00Z) or epoch milliseconds');
  return t;
}

export function withRangeOptions(cmd: Command): Command {
  return cmd
    .option('--since <time>', 'only traces from this time on (ISO date or epoch ms, inclusive)', timeArg)
    .option('--until <time>', 'only traces before this time (ISO date or epoch ms, exclusive)', timeArg);
}

/** `--config` (required when `required`) and `--db`, as `tracegate update` takes them. */
export function withDbOptions(cmd: Command, configRequired: boolean): Command {
  const config = '-c, --config <file>';
  const describe = configRequired
    ? 'path to the JSON config file'
    : 'path to the JSON config file (for its database: database.url, DATABASE_URL or database.path)';
  return (configRequired ? cmd.requiredOption(config, describe) : cmd.option(config, describe)).option(
    '--db <path>',
    'SQLite database file (overrides the config\'s database)',
  );
}

/** A config file, validated with the names only the layers above the config know (the registered router policies). */
export function readConfig(file: string): Config {
  return loadConfig(file, process.env, { policies: policyNames() });
}

/** `parseConfig` with the registered router policies checked too. */
export function checkedConfig(raw: unknown, source: string): Config {
  return parseConfig(raw, source, { policies: policyNames() });
}

/** The config file with `--db` applied (a SQLite file, which wins over database.url and DATABASE_URL). */
export function configFrom(flags: DbFlags & { config: string }): Config {
  const config = readConfig(flags.config);
  if (flags.db !== undefined) config.database = { ...config.database, path: flags.db, url: undefined };
  return config;
}

/** The database a command works on: `--db` (a SQLite file), else the config's (or `config`, already loaded). */
export function databaseFrom(flags: DbFlags, config?: Config): Config['database'] | { path: string } {
  if (flags.db !== undefined) return { path: flags.db };
  if (config !== undefined) return config.database;
  if (flags.config !== undefined) return readConfig(flags.config).database;
  throw new UsageError('give --db PATH or --config FILE (its database)');
}

/**
 * The trace store a command works on: `--db` (a SQLite file), else the config's database
 * (PostgreSQL with database.url or DATABASE_URL, else its SQLite file). `mustExist`: a SQLite file
 * that is not there is a usage error rather than a new empty database.
 */
export async function openStore(flags: DbFlags, options: { mustExist?: boolean } = {}): Promise<TraceStore> {
  return openDatabase(databaseFrom(flags), options);
}

/** `createTraceStore` for a command: no spool, and a missing SQLite file is a usage error when `mustExist`. */
export async function openDatabase(database: Config['database'] | { path: string }, options: { mustExist?: boolean } = {}): Promise<TraceStore> {
  try {
    return await createTraceStore(database, { mustExist: options.mustExist, tool: true });
  } catch (err) {
    if (err instanceof MissingDatabaseError) throw new UsageError(err.message);
    throw err;
  }
}

/**
 * Opens a command's store, or writes the usage error (no --db/--config, a SQLite file that is not
 * there…) as `tracegate NAME: message`, sets exit code 1 and resolves undefined.
 */
export async function openOrReport(name: string, open: () => Promise<TraceStore>): Promise<TraceStore | undefined> {
  try {
    return await open();
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`tracegate ${name}: ${err.message}\n`);
    process.exitCode = 1;
    return undefined;
  }
}

/**
 * The config of a command that reads traces and routes on them (stats, explain): the file's with
 * `--db` applied, or with `--db` alone (the demo writes no config) one made from that database: its
 * traced models (a model traced only as the judge is not routed), no prices (the traces carry their
 * costs), the router's defaults. `note` says which, for the command to print.
 */
export async function readingConfig(flags: DbFlags): Promise<{ config: Config; note: string }> {
  if (flags.config !== undefined) return { config: configFrom({ ...flags, config: flags.config }), note: '' };
  if (flags.db === undefined) throw new UsageError('give --db PATH (a SQLite file) or --config FILE');
  const store = await openDatabase({ path: flags.db }, { mustExist: true });
  let rows;
  try {
    rows = (await store.stats()).byClassModel;
  } finally {
    await store.close();
  }
  const routed = new Set(rows.filter((r) => isRoutingEvidence(r.queryClass)).map((r) => r.model));
  const keys = [...new Set(rows.map((r) => r.model))].sort();
  if (keys.length === 0) throw new UsageError(`${flags.db} has no traces to name the models from: give --config FILE too`);
  const models = Object.fromEntries(
    keys.map((key) => [key, { baseURL: 'http://127.0.0.1:1/v1', model: key, routed: routed.has(key) || routed.size === 0 }]),
  );
  const config = checkedConfig({ database: { path: flags.db }, models }, `config made from ${flags.db}`);
  return {
    config,
    note: `no --config: the models traced in ${flags.db} (${[...routed].sort().join(', ')}), the router's defaults (policy ${config.router.policy})\n`,
  };
}

