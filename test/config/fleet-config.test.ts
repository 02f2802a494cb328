import { afterAll, describe, expect, it } from 'vitest';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, parseConfig } from '../../src/core/config.js';
import { describeStore } from '../../src/traces/factory.js';
import { tempDir } from '../helpers/gateway.js';
import { ConfigError } from '../../src/core/errors.js';

const minimal = { models: { a: { baseURL: 'http://127.0.0.1:1/v1', model: 'm' } } };
const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(raw: unknown): string {
  const path = join(dir, `c${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(raw));
  return path;
}

describe('config for several instances', () => {
  it('defaults: SQLite, a sync every 2 s with a shared store, limits in memory', () => {
    const config = parseConfig(minimal);
    expect(config.database).toEqual({
      path: './data/traces.db', poolSize: 10, spoolPath: './data/spool.db', connectTimeoutMs: 2000, writeTimeoutMs: 5000,
      synchronousCommit: true, groupCommitMs: 1, groupCommitMaxRows: 500,
    });
    expect(config.router.syncIntervalMs).toBe(2000);
    expect(config.limits.redisUrl).toBeUndefined();
    expect(config.limits).toMatchObject({ redisTimeoutMs: 200, redisKeyPrefix: 'tracegate:limit:' });
  });

  it('database.url must be a PostgreSQL URL and limits.redisUrl a Redis one', () => {
    expect(parseConfig({ ...minimal, database: { url: 'postgres://u@127.0.0.1:5432/db' } }).database.url).toBe('postgres://u@127.0.0.1:5432/db');
    expect(parseConfig({ ...minimal, database: { url: 'postgresql://127.0.0.1/db' } }).database.url).toBe('postgresql://127.0.0.1/db');
    expect(() => parseConfig({ ...minimal, database: { url: 'mysql://127.0.0.1/db' } })).toThrow(/database\.url/);
    expect(parseConfig({ ...minimal, limits: { redisUrl: 'redis://127.0.0.1:6379' } }).limits.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(() => parseConfig({ ...minimal, limits: { redisUrl: 'http://127.0.0.1:6379' } })).toThrow(ConfigError);
    expect(() => parseConfig({ ...minimal, database: { poolSize: 0 } })).toThrow(/database\.poolSize/);
  });

  it('DATABASE_URL sets database.url when the file gives none', () => {
    const env = { DATABASE_URL: 'postgres://env@127.0.0.1:5432/fleet' };
    expect(loadConfig(file(minimal), env).database.url).toBe(env.DATABASE_URL);
    expect(loadConfig(file({ ...minimal, database: { path: './x.db' } }), env).database).toMatchObject({ path: './x.db', url: env.DATABASE_URL });
    expect(loadConfig(file({ ...minimal, database: { url: 'postgres://file@127.0.0.1/db' } }), env).database.url).toBe('postgres://file@127.0.0.1/db');
    expect(loadConfig(file(minimal), {}).database.url).toBeUndefined();
  });

  it('logs name the database without its password', () => {
    expect(describeStore({ path: './data/traces.db' })).toBe('./data/traces.db');
    expect(describeStore({ path: 'x', url: 'postgres://user:s3cret@127.0.0.1:5432/db' })).toBe('postgres://user:***@127.0.0.1:5432/db');
  });
});
