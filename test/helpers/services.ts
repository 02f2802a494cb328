import { randomBytes } from 'node:crypto';
import net from 'node:net';
import pg from 'pg';

/**
 * The real PostgreSQL and Redis the fleet tests use (this machine runs both on loopback; `.ci/run`
 * starts them when they are down). Point elsewhere with TRACEGATE_TEST_PG_URL / TRACEGATE_TEST_REDIS_URL.
 * Where one cannot be reached, its tests are skipped and say why; in CI (CI=true) that is an error.
 */
export const PG_URL = process.env.TRACEGATE_TEST_PG_URL ?? 'postgres://root@127.0.0.1:5432/test';
export const REDIS_URL = process.env.TRACEGATE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const inCi = process.env.CI === 'true' || process.env.CI === '1';

function unavailable(what: string, reason: string): string {
  const message = `${what} unreachable (${reason})`;
  if (inCi) throw new Error(`${message}: CI needs it (.ci/run starts it)`);
  return message;
}

/** null when PostgreSQL answers at PG_URL, else why not (a skip reason). Throws in CI. */
export async function pgUnavailable(): Promise<string | null> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (err) {
    return unavailable(`PostgreSQL at ${PG_URL}`, (err as Error).message);
  } finally {
    await client.end().catch(() => {});
  }
}

/** null when Redis answers PING at REDIS_URL, else why not (a skip reason). Throws in CI. */
export async function redisUnavailable(): Promise<string | null> {
  const url = new URL(REDIS_URL);
  const reason = await new Promise<string | null>((resolve) => {
    const socket = net.connect({ host: url.hostname, port: Number(url.port || 6379) });
    const done = (why: string | null) => {
      socket.destroy();
      resolve(why);
    };
    socket.setTimeout(2000, () => done('timed out'));
    socket.once('error', (err) => done(err.message));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => done(d.toString().startsWith('+PONG') ? null : `answered ${JSON.stringify(d.toString().trim())}`));
  });
  return reason === null ? null : unavailable(`Redis at ${REDIS_URL}`, reason);
}

export interface TestDatabase {
  url: string;
  name: string;
  /** A query on the test database (its own short-lived connection pool). */
  query<R extends object = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  /** Drops the database (closing any connection still open to it). */
  drop(): Promise<void>;
}

const PREFIX = 'tracegate_t_';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A fresh, empty database on the test server, for one test file (named after this process, dropped afterwards). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `${PREFIX}${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5000 });
  admin.on('error', () => {});
  await admin.connect();
  try {
    // Databases left by runs that died (their process is gone) are removed first.
    const stale = await admin.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE '${PREFIX}%'`);
    for (const { datname } of stale.rows) {
      const pid = Number(/^tracegate_t_(\d+)_/.exec(datname)?.[1]);
      if (Number.isInteger(pid) && !processAlive(pid)) await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`).catch(() => {});
    }
    await admin.query(`CREATE DATABASE "${name}" TEMPLATE template0`);
  } finally {
    await admin.end();
  }
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
  pool.on('error', () => {});
  return {
    url: url.toString(),
    name,
    async query<R extends object>(sql: string, params: unknown[] = []) {
      return (await pool.query<R>(sql, params)).rows;
    },
    async drop() {
      await pool.end().catch(() => {});
      const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5000 });
      client.on('error', () => {});
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** A unique Redis key prefix for one test, so runs never see each other's limits. */
export function redisPrefix(): string {
  return `tracegate:test:${process.pid}:${randomBytes(4).toString('hex')}:`;
}
