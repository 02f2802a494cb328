import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';

const MIGRATIONS = resolve(dirname(fileURLToPath(import.meta.url)), '../../drizzle/pg');

/** pg_advisory_lock key held while migrating, so instances starting together do not race. */
const MIGRATION_LOCK = 7_346_290_113_372_001n;

/** Applies the migrations in drizzle/pg while holding an advisory lock, so instances starting together take turns. */
export async function migrateLocked(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  const onError = () => {};
  client.on('error', onError);
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK.toString()]);
    try {
      await migrate(drizzle(client), { migrationsFolder: MIGRATIONS });
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK.toString()]).catch(() => {});
    }
  } finally {
    client.off('error', onError);
    client.release();
  }
}
