import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import { tempDir } from '../helpers/gateway.js';
import { CLI } from '../helpers/process.js';
import { makeTrace } from '../helpers/trace.js';

const run = promisify(execFile);
const T0 = 1_750_000_000_000;

async function seeded(path = ':memory:') {
  const store = new SqliteTraceStore({ path });
  await Promise.all([
    store.insert(makeTrace({ time: T0, modelKey: 'a', outcome: 'success', feedback: 0.5, query: 'old secret prompt' })),
    store.insert(makeTrace({ time: T0 + 1, modelKey: 'a', outcome: 'error', costUsd: null })),
    store.insert(makeTrace({ time: T0 + 2, modelKey: 'b', outcome: 'success' })),
    store.insert(makeTrace({ time: T0 + 10, modelKey: 'a', outcome: 'success' })),
    store.insert(makeTrace({ time: T0 + 11, modelKey: 'c', queryClass: 'code', outcome: 'success' })),
  ]);
  return store;
}

describe('purge', () => {
  it('deletes old traces and keeps their sums: plain evidence is unchanged', async () => {
    const store = await seeded();
    const before = await store.evidence();
    expect(await store.purge(T0 + 5)).toEqual({ deleted: 3 });
    expect(await store.count()).toBe(2);
    const after = await store.evidence();
    const byArm = (rows: typeof before) => Object.fromEntries(rows.map((r) => [`${r.queryClass}/${r.model}`, { ...r, lastTime: 0 }]));
    expect(byArm(after)).toEqual(byArm(before));
    // The prompts of purged traces are gone.
    expect((await store.list({})).some((t) => t.query === 'old secret prompt')).toBe(false);
    // A second purge adds to the folded sums rather than replacing them.
    await store.purge(T0 + 100);
    expect(byArm(await store.evidence())).toEqual(byArm(before));
    expect(await store.count()).toBe(0);
    await store.close();
  });

  it('with forgetting, purged traces weigh as the oldest of their arm', async () => {
    const store = await seeded();
    const g = 0.5;
    await store.purge(T0 + 5);
    const a = (await store.evidence({ decay: g })).find((e) => e.model === 'a')!;
    // One stored trace (weight 1), then two purged ones: g + g² in all, half of them successes.
    expect(a.count).toBe(3);
    expect(a.weight).toBeCloseTo(1 + g + g * g);
    expect(a.successes).toBeCloseTo(1 + (g + g * g) / 2);
    // A narrowed query sees only what is stored.
    expect((await store.evidence({ since: T0 })).find((e) => e.model === 'a')!.count).toBe(1);
    await store.close();
  });

  it('tracegate purge --before deletes from a database file', async () => {
    const dir = tempDir();
    const path = join(dir, 'traces.db');
    try {
      await (await seeded(path)).close();
      const { stdout } = await run(process.execPath, [CLI, 'purge', '--db', path, '--before', new Date(T0 + 5).toISOString()]);
      expect(stdout).toMatch(/deleted 3 traces/);
      const store = new SqliteTraceStore({ path });
      expect(await store.count()).toBe(2);
      expect((await store.evidence()).reduce((n, e) => n + e.count, 0)).toBe(5);
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tracegate purge on a database file that is not there: a usage error naming it, nothing created', async () => {
    const dir = tempDir();
    const path = join(dir, 'nope.db');
    try {
      const err = await run(process.execPath, [CLI, 'purge', '--db', path, '--offline']).then(
        () => undefined,
        (e: { code: number; stderr: string }) => e,
      );
      expect(err?.code).toBe(1);
      expect(err?.stderr).toBe(`tracegate purge: no database at ${path}\n`);
      expect(existsSync(path)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
