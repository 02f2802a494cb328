import { afterEach, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import type { TraceRecord } from '../../src/traces/types.js';
import { tempDir as newTempDir } from '../helpers/gateway.js';
import { migrationsUpTo } from '../helpers/migrations.js';
import { makeTrace } from '../helpers/trace.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = newTempDir('tracegate-arms-');
  dirs.push(dir);
  return dir;
}

const CLASSES = ['code', 'math', 'short', 'long', 'general'];
const MODELS = ['mini', 'pro', 'coder', 'budget'];
function traces(count: number): TraceRecord[] {
  return Array.from({ length: count }, (_, i) =>
    makeTrace({
      queryClass: CLASSES[i % 5]!,
      modelKey: MODELS[(i * 7) % 4]!,
      outcome: i % 11 === 0 ? 'error' : 'success',
      feedback: i % 5 === 0 ? (i % 3) / 2 : null,
      source: i % 17 === 0 ? 'offline' : 'live',
      latencyMs: 5 + (i % 13),
    }),
  );
}

const armRows = (store: SqliteTraceStore) => (store.db.prepare('SELECT COUNT(*) FROM trace_arms').pluck().get() as number);

describe('trace_arms: the per-arm table filled in bulk', () => {
  it('is filled every few thousand traces, not by each commit, and before a per-arm read', async () => {
    const store = new SqliteTraceStore({ path: join(tempDir(), 'traces.db') });
    const reference = new SqliteTraceStore({ path: ':memory:' });
    const all = traces(2_600);
    for (let i = 0; i < all.length; i += 20) {
      await Promise.all(all.slice(i, i + 20).map((t) => store.insert(t)));
      await Promise.all(all.slice(i, i + 20).map((t) => reference.insert(t)));
    }
    // One bulk fill so far (at 2,000 traces); the last 600 wait for the next fill.
    expect(armRows(store)).toBeGreaterThanOrEqual(2_000);
    expect(armRows(store)).toBeLessThan(2_600);
    // A per-arm read sees every trace: the same as the general query over the table.
    const decayed = await store.evidence({ decay: 0.99 });
    expect(armRows(store)).toBe(2_600);
    const general = await store.evidence({ decay: 0.99, since: 0 });
    expect(decayed.map((a) => [a.queryClass, a.model, a.count])).toEqual(general.map((a) => [a.queryClass, a.model, a.count]));
    expect(await store.recentByArm(50)).toEqual(await reference.recentByArm(50));
    await store.close();
    await reference.close();
  });

  it('loses the arms of purged traces, live and offline', async () => {
    const store = new SqliteTraceStore({ path: join(tempDir(), 'traces.db') });
    const all = traces(300);
    await Promise.all(all.map((t) => store.insert(t)));
    await store.evidence({ decay: 0.99 }); // fills
    expect(armRows(store)).toBe(300);
    const { deleted } = await store.purge(all[150]!.time);
    expect(armRows(store)).toBe(300 - deleted);
    const offline = await store.purgeOffline();
    expect(offline.deleted).toBeGreaterThan(0);
    expect(armRows(store)).toBe(300 - deleted - offline.deleted);
    expect(armRows(store)).toBe(await store.count());
    await store.close();
  });

  it('a database made before trace_arms gets every trace\'s arm when it is migrated', async () => {
    const dir = tempDir();
    const before = migrationsUpTo(dir, '0002_trace_source_and_instance');
    const path = join(dir, 'traces.db');
    const raw = new Database(path);
    migrate(drizzle(raw), { migrationsFolder: before });
    const all = traces(500);
    const insert = raw.prepare(`INSERT INTO traces (id, time, request_id, query, query_length, query_class, model_key,
      upstream_model, routed, reason, attempt, outcome, status, latency_ms, feedback, source)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, 'learned', 1, ?, 200, ?, ?, ?)`);
    for (const t of all) {
      insert.run(t.id, t.time, t.requestId, t.query, t.queryLength, t.queryClass, t.modelKey, t.upstreamModel, t.outcome, t.latencyMs, t.feedback, t.source);
    }
    raw.close();
    const store = new SqliteTraceStore({ path });
    expect(armRows(store)).toBe(500);
    const reference = new SqliteTraceStore({ path: ':memory:' });
    await Promise.all(all.map((t) => reference.insert({ ...t, status: 200, error: null, ttfbMs: null, promptTokens: null, completionTokens: null, costUsd: null })));
    expect(await store.evidence({ decay: 0.98 })).toEqual(await reference.evidence({ decay: 0.98 }));
    expect(await store.recentByArm(20)).toEqual(await reference.recentByArm(20));
    await store.close();
    await reference.close();
  });
});
