#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { isLoopback, type Config } from './core/config.js';
import { checkedConfig, readConfig, timeArg } from './commands/options.js';
import { withDemoCommand } from './demo/command.js';
import { withExportCommand } from './commands/export.js';
import { withImportCommand } from './commands/import.js';
import { withKeysCommand } from './commands/keys.js';
import { checkModels, withCheckCommand } from './commands/check.js';
import { withPurgeCommand } from './commands/purge.js';
import { withExplainCommand } from './commands/explain.js';
import { withStatsCommand } from './commands/stats.js';
import { withEvalCommand } from './eval/command.js';
import { createRouterPolicy } from './app/gateway.js';
import { createLogger } from './core/logger.js';
import { startGateway } from './app/server.js';
import { createTraceStore, describeStore } from './traces/factory.js';
import { TracegateError } from './core/errors.js';

/** The version in package.json, one folder up from this module (dist/cli.js, or src/cli.ts): where npm installs it too. */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** The errors of a path on this machine: missing, not a folder, a file in the way, not allowed, read-only, disk full. */
const FILE_SYSTEM_CODES = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'EEXIST', 'EACCES', 'EPERM', 'EROFS', 'ENOSPC']);

function isFileSystemError(err: unknown): err is NodeJS.ErrnoException {
  const e = err as NodeJS.ErrnoException | null;
  return e instanceof Error && typeof e.code === 'string' && FILE_SYSTEM_CODES.has(e.code) && typeof e.path === 'string';
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError('must be a port number (0-65535)');
  return port;
}

interface ConfigFlags {
  config: string;
  port?: number;
  host?: string;
  db?: string;
}

/** The config file with the command line's overrides applied. */
function configFrom(flags: ConfigFlags): Config {
  const config = readConfig(flags.config);
  const server = { ...config.server, port: flags.port ?? config.server.port, host: flags.host ?? config.server.host };
  // --db names a SQLite file: it wins over database.url (and DATABASE_URL).
  const database = flags.db !== undefined ? { ...config.database, path: flags.db, url: undefined } : config.database;
  // Checked again: a --host may need client keys that the file's host did not.
  return checkedConfig({ ...config, server, database }, `config file ${flags.config} with command-line overrides`);
}

async function serveCommand(flags: ConfigFlags): Promise<void> {
  const config = configFrom(flags);
  const logger = createLogger(config.logging.level);
  const running = await startGateway(config, { logger });
  logger.info(
    {
      url: running.url,
      db: describeStore(config.database),
      instance: config.instanceId,
      policy: running.gateway.policy.name,
      models: running.gateway.modelKeys,
    },
    `tracegate listening on ${running.url}`,
  );
  // The checks of `tracegate check`, in the background: each model that fails, one warning line.
  void checkModels(config).then(
    (results) => {
      for (const r of results) if (!r.ok) logger.warn({ model: r.key }, `check: ${r.line}`);
    },
    (err: unknown) => logger.warn({ err }, 'check: the start-up check of the upstreams failed'),
  );
  if (config.auth.clientKeys.length === 0) {
    logger.warn(
      { host: config.server.host },
      isLoopback(config.server.host)
        ? 'no client keys configured (auth.clientKeys): serving this machine only, on a loopback address'
        : 'no client keys configured and auth.allowUnauthenticated is set: anyone who can reach this address can spend your upstream keys',
    );
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    running.close().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function updateCommand(flags: ConfigFlags & { since?: number; until?: number }): Promise<void> {
  const config = configFrom(flags);
  // A command beside the gateways: it writes nothing, so it takes no spool.
  const store = await createTraceStore(config.database, { tool: true });
  try {
    const policy = createRouterPolicy(config, store);
    const summary = await policy.updateFromTraces({
      since: flags.since,
      until: flags.until,
    });
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } finally {
    await store.close();
  }
}

function withConfigOptions(cmd: Command): Command {
  return cmd
    .requiredOption('-c, --config <file>', 'path to the JSON config file')
    .option('--db <path>', 'SQLite database file (overrides database.path)');
}

export function buildCli(): Command {
  const program = new Command('tracegate')
    .description('An OpenAI-compatible LLM gateway that learns from traces which model should answer')
    .version(packageVersion(), '-V, --version', 'print the version')
    // A command line commander cannot read (a bad flag value, a missing argument): one line, in every
    // subcommand too (they inherit this), pointing at --help rather than printing it.
    .configureOutput({
      outputError: (message, write) => write(`tracegate: ${message.replace(/^error: /, '').trimEnd()} (see --help)\n`),
    });

  withConfigOptions(program.command('serve').description('run the gateway'))
    .option('-p, --port <port>', 'port to listen on (overrides server.port)', parsePort)
    .option('-H, --host <host>', 'address to bind (overrides server.host)')
    .action(serveCommand);

  withConfigOptions(program.command('update').description('recompute the routing policy from the traces and print what changed'))
    .option('--since <time>', 'only traces from this time on (ISO date or epoch ms)', timeArg)
    .option('--until <time>', 'only traces before this time (ISO date or epoch ms)', timeArg)
    .action(updateCommand);

  withEvalCommand(program);
  withStatsCommand(program);
  withExportCommand(program);
  withImportCommand(program);
  withPurgeCommand(program);
  withExplainCommand(program);
  withKeysCommand(program);
  withCheckCommand(program);
  withDemoCommand(program);

  return program;
}

buildCli()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    // A user's error is its message; anything else is a bug, printed whole.
    if (err instanceof TracegateError) {
      process.stderr.write(`tracegate: ${err.message}\n`);
      process.exit(err.exitCode);
    }
    // A file or folder the user named that cannot be made or opened (--db, --out, database.path):
    // Node's message names the path and the reason.
    if (isFileSystemError(err)) {
      process.stderr.write(`tracegate: ${err.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`tracegate: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
