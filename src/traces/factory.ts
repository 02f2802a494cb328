import { existsSync } from 'node:fs';
import { configSchema, type Config } from '../core/config.js';
import type { StoreLogger } from './pg-connection.js';
import { redactUrl } from './url.js';
import { SqliteTraceStore } from './sqlite-store.js';
import type { TraceStore } from './types.js';
import { MissingDatabaseError } from '../core/errors.js';

/**
 * The one place that knows which database holds the traces: `database.url` (or `DATABASE_URL`,
 * applied by `loadConfig`) selects PostgreSQL, shared by every instance of a fleet; otherwise the
 * embedded SQLite file at `database.path`. Everything else sees a `TraceStore`.
 */

export type DatabaseConfig = Config['database'];

export interface OpenStoreOptions {
  logger?: StoreLogger;
  /** Refuse to create an embedded database file that is not there (commands that only read). */
  mustExist?: boolean;
  /**
   * A command beside the gateways (stats, export…), not a gateway: no spool file (a running
   * instance owns it); a write the database refuses fails instead of waiting in a spool.
   */
  tool?: boolean;
}

export async function createTraceStore(
  database: Partial<DatabaseConfig> & Pick<DatabaseConfig, 'path'>,
  options: OpenStoreOptions = {},
): Promise<TraceStore> {
  if (database.url !== undefined) {
    // Loaded only when configured: the pg driver and its drizzle dialect take heap a SQLite gateway does not need.
    const { PgTraceStore } = await import('./pg-store.js');
    return PgTraceStore.open({
      url: database.url,
      poolSize: database.poolSize,
      spoolPath: options.tool ? ':memory:' : (database.spoolPath ?? configSchema.shape.database.parse(undefined).spoolPath),
      connectTimeoutMs: database.connectTimeoutMs,
      writeTimeoutMs: database.writeTimeoutMs,
      synchronousCommit: database.synchronousCommit,
      groupCommitMs: database.groupCommitMs,
      groupCommitMaxRows: database.groupCommitMaxRows,
      logger: options.logger,
    });
  }
  if (options.mustExist && database.path !== ':memory:' && !existsSync(database.path)) {
    throw new MissingDatabaseError(database.path);
  }
  return new SqliteTraceStore({ path: database.path });
}

/** Where the traces are, for logs and messages (a URL without its password). */
export function describeStore(database: Pick<DatabaseConfig, 'path' | 'url'>): string {
  return database.url !== undefined ? redactUrl(database.url) : database.path;
}
