import { afterEach, describe, expect, it } from 'vitest';
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import { StoreThread } from '../../src/traces/store-thread.js';
import { makeTrace } from '../helpers/trace.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('the write-ahead log is checkpointed off the event loop', () => {
  it('copies committed traces into the database file while the gateway writes, and leaves no log at close', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tracegate-wal-'));
    dirs.push(dir);
    const path = join(dir, 'traces.db');
    const store = new SqliteTraceStore({ path });
    // The store's own connection never checkpoints (that would stall the event loop)…
    expect(store.db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    const before = statSync(path).size;
    await Promise.all(Array.from({ length: 3000 }, (_, i) => store.insert(makeTrace({ query: `query ${i} `.repeat(20) }))));
    // …yet the pages reach the database file: the worker's checkpoints copy them there.
    await expect.poll(() => statSync(path).size, { timeout: 5000, message: 'the database file grows' }).toBeGreaterThan(before + 500_000);
    expect(await store.count()).toBe(3000);
    await store.close();
    expect(existsSync(`${path}-wal`)).toBe(false);
    const reopened = new SqliteTraceStore({ path });
    expect(await reopened.count()).toBe(3000);
    await reopened.close();
  });

  it('regression: a process whose last work is closing the store finishes the close (the worker kept no hold on it, so the process ended mid-close, exit 13 under top-level await)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tracegate-wal-'));
    dirs.push(dir);
    const path = join(dir, 'traces.db');
    const store = pathToFileURL(resolve('dist/traces/sqlite-store.js')).href;
    const script = `import { SqliteTraceStore } from ${JSON.stringify(store)};
const s = new SqliteTraceStore({ path: ${JSON.stringify(path)} });
await s.close();
console.log('closed');`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout.trim()).toBe('closed');
    expect(existsSync(`${path}-wal`)).toBe(false);
  });

  it('regression: under steady writes the log grew without end (the worker never caught up with the last frames, so no write could start the log over)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tracegate-wal-'));
    dirs.push(dir);
    const path = join(dir, 'traces.db');
    const store = new SqliteTraceStore({ path });
    // The log's header counts the times it was started over (bytes 12–15, big-endian).
    const restarts = () => {
      const header = Buffer.alloc(16);
      const fd = openSync(`${path}-wal`, 'r');
      try {
        readSync(fd, header, 0, 16, 0);
      } finally {
        closeSync(fd);
      }
      return header.readUInt32BE(12);
    };
    await store.insert(makeTrace());
    const first = restarts();
    let largest = 0;
    // Batches back to back (the log never sits idle long enough for the worker to catch up) until
    // the log is started over, for at most 10 s.
    const end = Date.now() + 10_000;
    while (restarts() === first && Date.now() < end) {
      await Promise.all(Array.from({ length: 32 }, (_, i) => store.insert(makeTrace({ query: `steady ${i} `.repeat(10) }))));
      largest = Math.max(largest, statSync(`${path}-wal`).size);
    }
    expect(restarts() - first, `the log was never started over (largest ${largest} bytes)`).toBeGreaterThanOrEqual(1);
    await store.close();
  });

  it('reports a worker that cannot checkpoint (so the store falls back on the automatic checkpoint)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tracegate-wal-'));
    dirs.push(dir);
    const errors: string[] = [];
    const thread = new StoreThread({
      path: join(dir, 'missing.db'),
      fallback: () => {
        throw new Error('no reads in this test');
      },
      onError: (m) => errors.push(m),
    });
    await expect.poll(() => errors.length, { timeout: 5000 }).toBeGreaterThan(0);
    await thread.close();
  });

  it('an in-memory store needs no checkpointer', async () => {
    const store = new SqliteTraceStore({ path: ':memory:' });
    await store.insert(makeTrace());
    expect(await store.count()).toBe(1);
    await store.close();
  });
});
