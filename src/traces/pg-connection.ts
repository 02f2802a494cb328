import pg from 'pg';
import { configSchema } from '../core/config.js';

/**
 * The PostgreSQL store's connections: its options, its pools (how a connection is set up and how
 * values come back), a pooled connection for a piece of work, and which errors mean the database
 * cannot be reached.
 */

export interface StoreLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const silentLogger: StoreLogger = { info() {}, warn() {}, error() {} };

export interface PgStoreOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  /** Most connections of this process for reads (default 10); commits have 2 of their own. */
  poolSize?: number;
  /** The local spool file, where traces wait while the database cannot be reached. */
  spoolPath: string;
  /** Connecting longer than this counts as unreachable (default 2000 ms). */
  connectTimeoutMs?: number;
  /** A commit of traces not acknowledged within this goes to the spool instead (default 5000 ms). */
  writeTimeoutMs?: number;
  /** Reads (evidence, stats…) fail after this (default 30000 ms). */
  readTimeoutMs?: number;
  /**
   * `synchronous_commit` of this instance's sessions (default true: a commit is flushed to the WAL on
   * disk before it is acknowledged). False: acknowledged before the flush, which PostgreSQL does within
   * about 200 ms — a crash of PostgreSQL or of its machine can then lose the last commits, as an OS crash
   * can with SQLite's synchronous=NORMAL; a crash of the gateway loses nothing either way.
   */
  synchronousCommit?: boolean;
  /** Group commit: how long a batch gathers (default 1 ms), and its most rows (default 500). */
  groupCommitMs?: number;
  groupCommitMaxRows?: number;
  logger?: StoreLogger;
}

/** Reads fail after this (not a config key: `database.*` has no read timeout). */
const READ_TIMEOUT_MS = 30_000;

/** The options, with the config's defaults (`database.*`, src/core/config.ts) for those not given. */
export type ResolvedPgOptions = PgStoreOptions &
  Required<Pick<PgStoreOptions, 'poolSize' | 'connectTimeoutMs' | 'writeTimeoutMs' | 'readTimeoutMs' | 'synchronousCommit' | 'groupCommitMs' | 'groupCommitMaxRows'>>;

export function withPgDefaults(options: PgStoreOptions): ResolvedPgOptions {
  const d = configSchema.shape.database.parse(undefined);
  return {
    ...options,
    poolSize: options.poolSize ?? d.poolSize,
    connectTimeoutMs: options.connectTimeoutMs ?? d.connectTimeoutMs,
    writeTimeoutMs: options.writeTimeoutMs ?? d.writeTimeoutMs,
    readTimeoutMs: options.readTimeoutMs ?? READ_TIMEOUT_MS,
    synchronousCommit: options.synchronousCommit ?? d.synchronousCommit,
    groupCommitMs: options.groupCommitMs ?? d.groupCommitMs,
    groupCommitMaxRows: options.groupCommitMaxRows ?? d.groupCommitMaxRows,
  };
}

/** int8 (counts, times, sums of integers) and numeric as JS numbers: every value here fits in 2^53. */
const TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20 || oid === 1700) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format as 'text');
  },
} as pg.CustomTypesConfig;

/** A pool of this store's connections: `max` of them at most. */
export function newPool(options: ResolvedPgOptions, max: number): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.url,
    max,
    connectionTimeoutMillis: options.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    query_timeout: options.readTimeoutMs,
    keepAlive: true,
    application_name: 'tracegate',
    // The planner's cost estimates for the per-arm queries on a large table would start JIT
    // compilation, which costs far more (about 250 ms) than running them.
    options: !options.synchronousCommit ? '-c jit=off -c synchronous_commit=off' : '-c jit=off',
    types: TYPES,
  });
  // An idle connection that breaks (the server restarts) is dropped by the pool; that is not an error here.
  pool.on('error', () => {});
  return pool;
}

/** A pooled connection for `work`; a connection that failed is closed rather than reused. */
export async function withClient<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // A connection that breaks between two statements emits 'error': that must not end the process.
  const onError = () => {};
  client.on('error', onError);
  let failure: Error | undefined;
  try {
    return await work(client);
  } catch (err) {
    failure = err as Error;
    throw err;
  } finally {
    client.off('error', onError);
    client.release(failure !== undefined && isUnreachable(failure) ? failure : undefined);
  }
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  'ECONNABORTED', 'EADDRNOTAVAIL',
]);

/** Whether an error means the database could not be reached (rather than that it refused the statement). */
export function isUnreachable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  // SQLSTATE 08: connection exception; 57P01-03: shutdown, crash, starting up; 53: out of resources.
  if (/^(08|57P0|53)/.test(code) || UNREACHABLE_CODES.has(code)) return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection error|Connection ended|not queryable|Client was closed/i.test(
    message,
  );
}
