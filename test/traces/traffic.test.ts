import { describe, expect, it } from 'vitest';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import type { TraceRecord } from '../../src/traces/types.js';
import { makeTrace } from '../helpers/trace.js';
import { denseTraffic, niceBucket } from '../../src/http/dashboard/data.js';

const T0 = 1_700_000_000_000; // a multiple of 10 s
function trace(time: number, queryClass: string, modelKey: string, outcome: TraceRecord['outcome'] = 'success'): TraceRecord {
  return makeTrace({ time, queryClass, modelKey, upstreamModel: `${modelKey}-model`, outcome });
}

describe('TraceStore.traffic', () => {
  it('counts traces and successes per time bucket × class × model, in SQL, in order', async () => {
    const store = new SqliteTraceStore({ path: ':memory:' });
    await Promise.all([
      store.insert(trace(T0 + 1_000, 'code', 'large')),
      store.insert(trace(T0 + 9_999, 'code', 'large', 'error')),
      store.insert(trace(T0 + 2_000, 'code', 'small')),
      store.insert(trace(T0 + 3_000, 'math', 'large')),
      store.insert(trace(T0 + 10_000, 'code', 'large')),
      store.insert(trace(T0 + 25_000, 'code', 'small', 'timeout')),
      store.insert(trace(T0 - 1, 'code', 'small')), // before the range
      store.insert(trace(T0 + 30_000, 'code', 'small')), // at `until`: excluded
    ]);
    const rows = await store.traffic({ since: T0, until: T0 + 30_000, bucketMs: 10_000 });
    expect(rows).toEqual([
      { start: T0, queryClass: 'code', model: 'large', count: 2, successes: 1 },
      { start: T0, queryClass: 'code', model: 'small', count: 1, successes: 1 },
      { start: T0, queryClass: 'math', model: 'large', count: 1, successes: 1 },
      { start: T0 + 10_000, queryClass: 'code', model: 'large', count: 1, successes: 1 },
      { start: T0 + 20_000, queryClass: 'code', model: 'small', count: 1, successes: 0 },
    ]);
    const all = await store.traffic({ bucketMs: 60_000 });
    expect(all.reduce((s, r) => s + r.count, 0)).toBe(await store.count());
    await store.close();
  });

  it('is turned into dense arrays without gaps, one slot per bucket', () => {
    const series = denseTraffic(
      [
        { start: T0, queryClass: 'code', model: 'large', count: 2, successes: 1 },
        { start: T0 + 20_000, queryClass: 'code', model: 'large', count: 3, successes: 3 },
      ],
      T0 + 5_000,
      T0 + 25_000,
      10_000,
    );
    expect(series.buckets).toEqual([T0, T0 + 10_000, T0 + 20_000]);
    expect(series.classes.code!.large).toEqual({ count: [2, 0, 3], successes: [1, 0, 3] });
  });

  it('picks a round bucket width that gives at most 60 buckets', () => {
    expect(niceBucket(60_000)).toBe(1_000);
    expect(niceBucket(5 * 60_000)).toBe(5_000);
    expect(niceBucket(3_600_000)).toBe(60_000);
    expect(niceBucket(86_400_000)).toBe(30 * 60_000);
    expect(niceBucket(30 * 86_400_000)).toBe(12 * 3_600_000);
  });
});
