import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { prepareReads } from '../../src/traces/sqlite-reads.js';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import { StoreThread } from '../../src/traces/store-thread.js';

const T0 = 1_700_000_000_000;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tracegate-thread-'));
  dirs.push(dir);
  return join(dir, 'traces.db');
}

/** `count` traces, one every 10 ms from T0, in one INSERT … SELECT (around the store's writer). */
function generate(db: Database.Database, count: number): void {
  db.exec(`
    WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${count - 1})
    INSERT INTO traces (id, time, request_id, query, query_length, query_class, model_key, upstream_model,
      routed, reason, attempt, outcome, status, latency_ms, source)
    SELECT printf('T%025d', i), ${T0} + i * 10, printf('r%d', i), NULL, 10,
      CASE i % 3 WHEN 0 THEN 'code' WHEN 1 THEN 'math' ELSE 'general' END,
      CASE i % 2 WHEN 0 THEN 'a' ELSE 'b' END, 'm', 1, 'learned', 1,
      CASE WHEN i % 10 = 0 THEN 'error' ELSE 'success' END, 200, 1 + i % 100, 'live'
    FROM n`);
}

/** Awaits `read` while counting the event loop's turns (setImmediate runs once per turn). */
async function turnsDuring<T>(read: () => Promise<T>): Promise<{ value: T; turns: number }> {
  let turns = 0;
  let spinning = true;
  const spin = () => {
    if (!spinning) return;
    turns++;
    setImmediate(spin);
  };
  setImmediate(spin);
  try {
    return { value: await read(), turns };
  } finally {
    spinning = false;
  }
}

describe("the store's background thread", () => {
  it('runs stats, traffic, list and the rebuild\'s reads over many traces while the event loop goes on', async () => {
    const store = new SqliteTraceStore({ path: tempPath() });
    generate(store.db, 200_000);
    await store.stats(); // fills trace_arms and trace_stats, on this connection (a write)
    const everything = await turnsDuring(() => store.stats());
    expect(everything.value.totalTraces).toBe(200_000);
    expect(everything.turns).toBeGreaterThan(0);
    const ranged = await turnsDuring(() => store.stats({ since: T0 + 10 }));
    expect(ranged.value.totalTraces).toBe(199_999);
    expect(ranged.turns).toBeGreaterThan(0);
    const traffic = await turnsDuring(() => store.traffic({ since: T0, until: T0 + 2_000_000, bucketMs: 60_000 }));
    expect(traffic.value.reduce((n, b) => n + b.count, 0)).toBe(200_000);
    expect(traffic.turns).toBeGreaterThan(0);
    const first = await turnsDuring(() => store.list({ since: T0 + 15, limit: 1 }));
    expect(first.value.map((t) => [t.id, t.time, t.routed])).toEqual([['T0000000000000000000000002', T0 + 20, true]]);
    expect(first.turns).toBeGreaterThan(0);
    // The policy's rebuild: evidence with forgetting, and each arm's newest traces.
    const evidence = await turnsDuring(() => store.evidence({ decay: Math.pow(2, -1 / 50) }));
    expect(evidence.value.reduce((n, arm) => n + arm.count, 0)).toBe(200_000);
    expect(evidence.turns).toBeGreaterThan(0);
    const newest = await turnsDuring(() => store.recentByArm(100));
    expect(newest.value).toHaveLength(6 * 100);
    expect(newest.turns).toBeGreaterThan(0);
    await store.close();
  });

  it.runIf(existsSync('/proc/thread-self'))('runs below the event loop\'s priority (Linux: nice 10), so its reads take the CPU the gateway leaves', async () => {
    const niceOfThreads = () =>
      readdirSync('/proc/self/task').map((tid) => {
        const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
      });
    const store = new SqliteTraceStore({ path: tempPath() });
    await store.stats(); // answered by the thread, so it has started
    expect(niceOfThreads()).toContain(10);
    await store.close();
  });

  it("answers on the store's own connection once the thread is gone, the reads in flight included", async () => {
    const path = tempPath();
    const store = new SqliteTraceStore({ path });
    generate(store.db, 5_000);
    await store.close();
    const db = new Database(path);
    const errors: string[] = [];
    const thread = new StoreThread({ path, fallback: () => prepareReads(db), onError: (m) => errors.push(m) });
    const before = await thread.read('stats', {});
    expect(before.totalTraces).toBe(5_000);
    const inFlight = thread.read('traffic', { bucketMs: 1_000_000 });
    await thread.thread.terminate();
    expect((await inFlight).reduce((n, b) => n + b.count, 0)).toBe(5_000);
    expect(await thread.read('stats', {})).toEqual(before);
    expect(errors).toEqual([expect.stringContaining('exited')]);
    await thread.close();
    db.close();
  });
});
