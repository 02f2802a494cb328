import { describe, expect, it } from 'vitest';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import { makeTrace } from '../helpers/trace.js';
import type { RecentArmTrace } from '../../src/traces/types.js';

/**
 * The rebuild's and /stats's queries read the (class, model, seq) index arm by arm instead of
 * sorting every trace; these pin them to the plain definitions on a few thousand varied traces.
 */
const CLASSES = ['code', 'math', 'short', 'long', 'general'];
const MODELS = ['a', 'b', 'c'];

async function filled(count: number) {
  const store = new SqliteTraceStore({ path: ':memory:' });
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const traces = Array.from({ length: count }, (_, i) => {
    const failed = rand() < 0.1;
    return makeTrace({
      queryClass: CLASSES[Math.floor(rand() * CLASSES.length)]!,
      modelKey: MODELS[Math.floor(rand() * MODELS.length)]!,
      outcome: failed ? 'error' : 'success',
      feedback: !failed && rand() < 0.2 ? Math.round(rand() * 10) / 10 : null,
      costUsd: rand() < 0.9 ? rand() / 1000 : null,
      latencyMs: 1 + rand() * 500,
      time: 1_700_000_000_000 + i * 7 - Math.floor(rand() * 50),
      source: rand() < 0.05 ? 'offline' : 'live',
      instanceId: [null, 'gw-1', 'gw-2'][Math.floor(rand() * 3)]!,
      promptTokens: rand() < 0.1 ? null : Math.floor(rand() * 100),
    });
  });
  await Promise.all(traces.map((t) => store.insert(t)));
  return { store, traces };
}

describe('store queries read off the index', () => {
  it('evidence with forgetting equals the plain window query', async () => {
    const { store } = await filled(3000);
    for (const [decay, source] of [
      [Math.pow(2, -1 / 50), undefined],
      [Math.pow(2, -1 / 50), 'live'],
      [Math.pow(2, -1 / 3), 'live'],
      [0.5, undefined],
    ] as const) {
      const fast = await store.evidence({ decay, source });
      // A time bound far in the future takes the general query (every trace, same sums).
      const plain = await store.evidence({ decay, source, until: 8e15 });
      expect(fast.map((e) => [e.queryClass, e.model])).toEqual(plain.map((e) => [e.queryClass, e.model]));
      fast.forEach((e, i) => {
        const p = plain[i]!;
        expect(e.count).toBe(p.count);
        expect(e.lastTime).toBe(p.lastTime);
        for (const key of ['weight', 'successes', 'quality', 'feedbackCount', 'feedbackSum', 'costSum', 'costCount', 'latencySumMs'] as const) {
          expect(e[key]).toBeCloseTo(p[key], 9);
        }
      });
    }
    await store.close();
  });

  it('offline evidence (undiscounted) is what the general query gives', async () => {
    const { store, traces } = await filled(1500);
    const offline = await store.evidence({ source: 'offline' });
    expect(offline.reduce((n, e) => n + e.count, 0)).toBe(traces.filter((t) => t.source === 'offline').length);
    await store.close();
  });

  it('recentByArm gives each arm its newest live traces with their age', async () => {
    const { store, traces } = await filled(2000);
    const got = await store.recentByArm(25);
    const expected: RecentArmTrace[] = [];
    for (const c of CLASSES) {
      for (const m of MODELS) {
        const arm = traces.filter((t) => t.queryClass === c && t.modelKey === m && t.source === 'live').reverse().slice(0, 25);
        arm.forEach((t, age) =>
          expected.push({
            id: t.id, queryClass: c, model: m, age, quality: t.outcome === 'success' ? (t.feedback ?? 1) : 0, failed: t.outcome !== 'success',
            feedback: t.feedback, feedbackSource: t.feedback === null ? null : (t.feedbackSource ?? 'human'),
          }),
        );
      }
    }
    const key = (r: { id: string }) => r.id;
    expect([...got].sort((a, b) => key(a).localeCompare(key(b)))).toEqual(expected.sort((a, b) => key(a).localeCompare(key(b))));
    for (let i = 1; i < got.length; i++) expect(got[i]!.age).toBeLessThanOrEqual(got[i - 1]!.age);
    await store.close();
  });

  it('stats: sums per arm and per instance from one pass; percentiles the nearest-rank p50 and p95, exactly', async () => {
    const { store, traces } = await filled(2500);
    const stats = await store.stats();
    expect(stats.totalTraces).toBe(traces.length);
    expect(stats.byClassModel.map((r) => `${r.queryClass}/${r.model}`)).toEqual(
      [...new Set(traces.map((t) => `${t.queryClass}/${t.modelKey}`))].sort(),
    );
    expect(stats.byInstance.map((i) => i.instanceId)).toEqual([null, 'gw-1', 'gw-2']);
    for (const inst of stats.byInstance) {
      const mine = traces.filter((t) => t.instanceId === inst.instanceId);
      expect(inst.count).toBe(mine.length);
      expect(inst.successes).toBe(mine.filter((t) => t.outcome === 'success').length);
      expect(inst.feedbackCount).toBe(mine.filter((t) => t.feedback !== null).length);
      expect(inst.costUsd).toBeCloseTo(mine.reduce((sum, t) => sum + (t.costUsd ?? 0), 0), 12);
      expect(inst.lastTime).toBe(Math.max(...mine.map((t) => t.time)));
    }
    for (const row of stats.byClassModel) {
      const latencies = traces
        .filter((t) => t.queryClass === row.queryClass && t.modelKey === row.model)
        .map((t) => t.latencyMs)
        .sort((a, b) => a - b);
      const rank = (p: number) => latencies[Math.max(1, Math.ceil((latencies.length * p) / 100)) - 1];
      expect(row.count).toBe(latencies.length);
      const mine = traces.filter((t) => t.queryClass === row.queryClass && t.modelKey === row.model);
      const scored = mine.filter((t) => t.feedback !== null);
      expect(row.feedbackCount).toBe(scored.length);
      if (scored.length === 0) expect(row.meanFeedback).toBeNull();
      else expect(row.meanFeedback).toBeCloseTo(scored.reduce((sum, t) => sum + t.feedback!, 0) / scored.length, 12);
      expect(row.promptTokens).toBe(mine.reduce((sum, t) => sum + (t.promptTokens ?? 0), 0));
      expect(row.successRate).toBe(row.successes / row.count);
      expect(row.latencyP50Ms).toBe(rank(50));
      expect(row.latencyP95Ms).toBe(rank(95));
    }
    await store.close();
  });
});
