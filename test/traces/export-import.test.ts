import { describe, expect, it } from 'vitest';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import { TraceLineError } from '../../src/core/errors.js';
import { csvField, parseTraceLine, toCsvRow, toJsonLine, TRACE_FIELDS } from '../../src/traces/interchange.js';
import type { TraceRecord } from '../../src/traces/types.js';
import { makeTrace } from '../helpers/trace.js';

let seq = 0;
function trace(over: Partial<TraceRecord> = {}): TraceRecord {
  seq++;
  return makeTrace({ id: `E${String(seq).padStart(25, '0')}`, time: 1_700_000_000_000 + seq * 1000, latencyMs: 10.5, ttfbMs: 5.25, ...over });
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe('TraceStore.exportTraces', () => {
  it('yields every trace in the order recorded, across pages, and filters by time', async () => {
    const store = new SqliteTraceStore({ path: ':memory:' });
    const all = Array.from({ length: 1234 }, () => trace());
    await Promise.all(all.map((t) => store.insert(t)));
    expect(await collect(store.exportTraces())).toEqual(all);
    const since = all[100]!.time;
    const until = all[700]!.time;
    expect(await collect(store.exportTraces({ since, until }))).toEqual(all.slice(100, 700));
    expect(await collect(store.exportTraces({ since: all[1233]!.time + 1 }))).toEqual([]);
    await store.close();
  });

  it('leaves the connection free between pages: writes go on during an export', async () => {
    const store = new SqliteTraceStore({ path: ':memory:' });
    await Promise.all(Array.from({ length: 1200 }, () => store.insert(trace())));
    let n = 0;
    for await (const _ of store.exportTraces()) {
      if (++n === 600) await store.insert(trace());
    }
    expect(n).toBe(1201);
    await store.close();
  });
});

describe('TraceStore.importTraces', () => {
  it('adds new traces in the order given and skips ids already there (or repeated)', async () => {
    const store = new SqliteTraceStore({ path: ':memory:' });
    const present = trace();
    await store.insert(present);
    const fresh = [trace({ feedback: 0.5, feedbackTime: 1, feedbackComment: 'ok' }), trace(), trace()];
    const result = await store.importTraces([fresh[0]!, present, fresh[1]!, fresh[0]!, fresh[2]!]);
    expect(result).toEqual({ inserted: 3, skipped: 2 });
    expect(await store.list({})).toEqual([present, ...fresh]);
    await store.close();
  });

  it('adds nothing when the input fails part-way', async () => {
    const store = new SqliteTraceStore({ path: ':memory:' });
    async function* failing() {
      for (let i = 0; i < 1100; i++) yield trace();
      throw new TraceLineError(1101, 'bad');
    }
    await expect(store.importTraces(failing())).rejects.toThrow('line 1101: bad');
    expect(await store.count()).toBe(0);
    // and the store still works, including a later import
    expect(await store.importTraces([trace()])).toEqual({ inserted: 1, skipped: 0 });
    await store.close();
  });
});

describe('the interchange format', () => {
  it('round-trips a trace through a JSONL line', () => {
    const t = trace({ query: 'a "quoted", multi\nline query', error: 'x', feedback: 1, feedbackTime: 5, feedbackComment: 'ü', feedbackSource: 'judge' });
    expect(parseTraceLine(toJsonLine(t), 1)).toEqual(t);
    expect(parseTraceLine(toJsonLine(trace()), 1).feedbackSource).toBeNull();
  });

  it('gives feedback from a line without its source the source it had then: offline for offline traces, else human', () => {
    const line = (over: Partial<TraceRecord>) => {
      const { feedback_source: _, ...rest } = JSON.parse(toJsonLine(trace({ feedback: 0.5, feedbackTime: 1, ...over }))) as Record<string, unknown>;
      return JSON.stringify(rest);
    };
    expect(parseTraceLine(line({ source: 'live' }), 1).feedbackSource).toBe('human');
    expect(parseTraceLine(line({ source: 'offline' }), 1).feedbackSource).toBe('offline');
    expect(parseTraceLine(line({ feedback: null, feedbackTime: null }), 1).feedbackSource).toBeNull();
    const good = JSON.parse(toJsonLine(trace({ feedback: 0.5 }))) as Record<string, unknown>;
    expect(parseTraceLine(JSON.stringify({ ...good, feedback_source: null }), 1).feedbackSource).toBe('human');
    expect(() => parseTraceLine(JSON.stringify({ ...good, feedback_source: 'crowd' }), 3)).toThrow(/^line 3: feedback_source: /);
  });

  it('quotes CSV fields with commas, quotes or line breaks, and leaves null empty', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('cr\r')).toBe('"cr\r"');
    expect(csvField(null)).toBe('');
    expect(csvField(true)).toBe('true');
    const row = toCsvRow(trace({ query: 'x,y', status: null }));
    expect(row.endsWith('\r\n')).toBe(true);
    expect(row.split(',').length).toBe(TRACE_FIELDS.length + 1); // the quoted comma
  });

  it('names the line and the field of a bad line', () => {
    const good = JSON.parse(toJsonLine(trace())) as Record<string, unknown>;
    expect(() => parseTraceLine('{nope', 7)).toThrow(/^line 7: invalid JSON/);
    expect(() => parseTraceLine('[1]', 3)).toThrow('line 3: expected a JSON object');
    expect(() => parseTraceLine(JSON.stringify({ ...good, outcome: 'great' }), 9)).toThrow(/^line 9: outcome: /);
    expect(() => parseTraceLine(JSON.stringify({ ...good, feedback: 2 }), 2)).toThrow(/^line 2: feedback: /);
    expect(() => parseTraceLine(JSON.stringify({ ...good, extra: 1 }), 4)).toThrow(/^line 4: .*extra/);
    const { id: _, ...noId } = good;
    expect(() => parseTraceLine(JSON.stringify(noId), 5)).toThrow('line 5: id: missing');
    expect(() => parseTraceLine('{"id": "x"}', 6)).toThrow(/^line 6: time: missing; request_id: missing; query_length: missing; and 8 more$/);
  });

  it('takes absent optional columns as null', () => {
    const { error: _e, ttfb_ms: _t, feedback: _f, feedback_time: _ft, feedback_comment: _fc, ...rest } = JSON.parse(
      toJsonLine(trace()),
    ) as Record<string, unknown>;
    expect(parseTraceLine(JSON.stringify(rest), 1)).toMatchObject({ error: null, ttfbMs: null, feedback: null, feedbackComment: null });
  });
});
