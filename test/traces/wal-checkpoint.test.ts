import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import { makeTrace } from '../helpers/trace.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return true;
    await sleep(50);
  }
  return check();
}

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
    expect(await until(() => statSync(path).size > before + 500_000, 5000), `database file stayed at ${statSync(path).size} bytes`).toBe(true);
    expect(await store.count()).toBe(3000);
    await store.close();
    expect(existsSync(`${path}-wal`)).toBe(false);
    const reopened = new SqliteTraceStore({ path });
    expect(await reopened.count()).toBe(3000);
    await reopened.close();
  });

  it('an in-memory store needs no checkpointer', async () => {
    const store = new SqliteTraceStore({ path: ':memory:' });
    await store.insert(makeTrace());
    expect(await store.count()).toBe(1);
    await store.close();
  });
});
