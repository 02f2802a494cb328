import { afterEach, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import { tempDir } from '../helpers/gateway.js';
import { makeTrace } from '../helpers/trace.js';

const trace = makeTrace;

const dirs: string[] = [];
function fileStore() {
  const dir = tempDir();
  dirs.push(dir);
  const path = join(dir, 'traces.db');
  return { path, store: new SqliteTraceStore({ path }) };
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('SqliteTraceStore', () => {
  it('round-trips a trace and keeps it across a reopen', async () => {
    const { path, store } = fileStore();
    const t = trace({ query: null, feedback: 0.5, status: null, ttfbMs: null, routed: false });
    await store.insert(t);
    expect(await store.get(t.id)).toEqual(t);
    await store.close();
    const again = new SqliteTraceStore({ path });
    expect(await again.get(t.id)).toEqual(t);
    expect(again.db.pragma('journal_mode', { simple: true })).toBe('wal');
    await again.close();
  });


  it('writes a fresh live trace (its own statement) and any other trace alike, in one batch', async () => {
    const { store } = fileStore();
    const live = trace({ source: 'live', feedback: null, feedbackTime: null, feedbackComment: null, keyName: 'team-a', instanceId: 'i-1' });
    const rated = trace({ source: 'live', feedback: 1, feedbackTime: 1_700_000_000_500, feedbackComment: 'good' });
    const offline = trace({ source: 'offline', feedback: null, error: 'boom', outcome: 'error', status: 502 });
    await Promise.all([store.insert(live), store.insert(rated), store.insert(offline)]);
    expect(await store.get(live.id)).toEqual(live);
    expect(await store.get(rated.id)).toEqual(rated);
    expect(await store.get(offline.id)).toEqual(offline);
    await store.close();
  });
  it('close() waits for pending writes', async () => {
    const { path, store } = fileStore();
    const pending = [store.insert(trace()), store.insert(trace())];
    await store.close();
    await Promise.all(pending);
    const again = new SqliteTraceStore({ path });
    expect(await again.count()).toBe(2);
    await again.close();
  });

  it('setFeedback stores the score and returns the previous one; unknown ids give undefined', async () => {
    const store = new SqliteTraceStore({ path: ':memory:' });
    const t = trace();
    void store.insert(t);
    // Not awaited: feedback must find a trace still waiting in the batch.
    const first = await store.setFeedback(t.id, { score: 1, comment: 'yes', time: 5, source: 'human' });
    expect(first?.previous).toBeNull();
    expect(first?.trace).toMatchObject({ feedback: 1, feedbackComment: 'yes', feedbackTime: 5 });
    const second = await store.setFeedback(t.id, { score: 0, comment: null, time: 6, source: 'human' });
    expect(second?.previous).toBe(1);
    expect(await store.setFeedback('nope', { score: 1, comment: null, time: 7, source: 'human' })).toBeUndefined();
    await store.close();
  });

  it('evidence sums per class × model, with quality = feedback or success', async () => {
    const store = new SqliteTraceStore({ path: ':memory:' });
    await Promise.all([
      store.insert(trace({ modelKey: 'a', outcome: 'success' })),
      store.insert(trace({ modelKey: 'a', outcome: 'success', feedback: 0.25 })),
      store.insert(trace({ modelKey: 'a', outcome: 'error', feedback: 1, costUsd: null })),
      store.insert(trace({ modelKey: 'b', outcome: 'timeout', latencyMs: 100 })),
      store.insert(trace({ modelKey: 'a', queryClass: 'code', outcome: 'success' })),
    ]);
    const ev = await store.evidence();
    const a = ev.find((e) => e.model === 'a' && e.queryClass === 'short')!;
    expect(a).toMatchObject({ count: 3, weight: 3, successes: 2, quality: 1.25, feedbackCount: 2, feedbackSum: 1.25, costCount: 2 });
    expect(a.costSum).toBeCloseTo(0.002);
    expect(ev.find((e) => e.model === 'b')).toMatchObject({ count: 1, successes: 0, quality: 0, latencySumMs: 100 });
    expect(ev.map((e) => `${e.queryClass}/${e.model}`)).toEqual(['short/a', 'short/b', 'code/a']);
    await store.close();
  });

  it('evidence with decay weighs a trace by γ^(newer traces of its arm)', async () => {
    const store = new SqliteTraceStore({ path: ':memory:' });
    // arm a: success, failure, success (newest); arm b interleaved must not age arm a.
    await Promise.all([
      store.insert(trace({ modelKey: 'a', outcome: 'success' })),
      store.insert(trace({ modelKey: 'b', outcome: 'success' })),
      store.insert(trace({ modelKey: 'a', outcome: 'error' })),
      store.insert(trace({ modelKey: 'b', outcome: 'success' })),
      store.insert(trace({ modelKey: 'a', outcome: 'success' })),
    ]);
    const g = 0.5;
    const a = (await store.evidence({ decay: g })).find((e) => e.model === 'a')!;
    expect(a.count).toBe(3);
    expect(a.weight).toBeCloseTo(1 + g + g * g);
    expect(a.quality).toBeCloseTo(1 + g * g);
    const recent = await store.recentByArm(2);
    expect(recent.filter((r) => r.model === 'a').map((r) => [r.age, r.quality])).toEqual([[1, 0], [0, 1]]);
    await store.close();
  });

  it('evidence honours a time range and maxTraces (newest first)', async () => {
    const store = new SqliteTraceStore({ path: ':memory:' });
    const ts = [trace({ modelKey: 'a' }), trace({ modelKey: 'b' }), trace({ modelKey: 'c' })];
    await Promise.all(ts.map((t) => store.insert(t)));
    expect((await store.evidence({ since: ts[1]!.time })).map((e) => e.model)).toEqual(['b', 'c']);
    expect((await store.evidence({ until: ts[1]!.time })).map((e) => e.model)).toEqual(['a']);
    expect((await store.evidence({ maxTraces: 2 })).map((e) => e.model)).toEqual(['b', 'c']);
    await store.close();
  });

  it('stats gives success rate, feedback, latency percentiles, tokens and cost', async () => {
    const store = new SqliteTraceStore({ path: ':memory:' });
    const latencies = Array.from({ length: 20 }, (_, i) => (i + 1) * 10);
    await Promise.all(
      latencies.map((latencyMs, i) =>
        store.insert(trace({ latencyMs, outcome: i < 15 ? 'success' : 'error', feedback: i < 2 ? 1 : null })),
      ),
    );
    const s = await store.stats();
    expect(s.totalTraces).toBe(20);
    expect(s.byClassModel[0]).toMatchObject({
      count: 20,
      successes: 15,
      successRate: 0.75,
      feedbackCount: 2,
      meanFeedback: 1,
      latencyP50Ms: 100,
      latencyP95Ms: 190,
      promptTokens: 200,
      completionTokens: 100,
    });
    expect(s.byClassModel[0]!.costUsd).toBeCloseTo(0.02);
    await store.close();
  });
});
