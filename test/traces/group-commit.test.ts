import { describe, expect, it } from 'vitest';
import { AsyncBatchWriter } from '../../src/traces/group-commit.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A promise the test settles when it chooses. */
function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * A commit the test drives: each call records its batch as started, and ends when the test calls
 * `finish(i)` for it (the i-th commit); `started(n)` resolves once n commits have started.
 */
function heldCommit() {
  const batches: number[][] = [];
  const finished: number[][] = [];
  const ends: (() => void)[] = [];
  const waiting: { n: number; resolve: () => void }[] = [];
  let running = 0;
  let most = 0;
  const commit = async (batch: number[]) => {
    running++;
    most = Math.max(most, running);
    batches.push(batch);
    const end = deferred();
    ends.push(end.resolve);
    for (const w of waiting.filter((w) => batches.length >= w.n)) w.resolve();
    await end.promise;
    finished.push(batch);
    running--;
  };
  const started = (n: number) => {
    if (batches.length >= n) return Promise.resolve();
    const d = deferred();
    waiting.push({ n, resolve: d.resolve });
    return d.promise;
  };
  return { commit, batches, finished, started, finish: (i: number) => ends[i]!(), most: () => most };
}

/** A commit that takes `ms` and records its batches (and how many ran at once). */
function slowCommit(ms: number) {
  const batches: number[][] = [];
  let running = 0;
  let most = 0;
  const commit = async (batch: number[]) => {
    running++;
    most = Math.max(most, running);
    await sleep(ms);
    batches.push(batch);
    running--;
  };
  return { commit, batches, most: () => most };
}

describe('AsyncBatchWriter (group commit with an asynchronous commit)', () => {
  it('gathers the writes of a short window into one commit, then settles each', async () => {
    const c = slowCommit(5);
    const writer = new AsyncBatchWriter<number>(c.commit, { delayMs: 2 });
    const pending = Array.from({ length: 50 }, (_, i) => writer.write(i));
    expect(c.batches).toEqual([]);
    await Promise.all(pending);
    expect(c.batches).toEqual([Array.from({ length: 50 }, (_, i) => i)]);
  });

  it('runs one commit at a time, in order; what arrives meanwhile is the next batch', async () => {
    const c = heldCommit();
    const writer = new AsyncBatchWriter<number>(c.commit, { delayMs: 1 });
    const first = writer.write(0);
    await c.started(1); // the first batch is committing now
    const rest = Array.from({ length: 30 }, (_, i) => writer.write(i + 1));
    c.finish(0);
    await c.started(2);
    c.finish(1);
    await Promise.all([first, ...rest]);
    expect(c.most()).toBe(1);
    expect(c.batches).toEqual([[0], Array.from({ length: 30 }, (_, i) => i + 1)]);
  });

  it('with maxInFlight, commits overlap; flushed() still waits for every write handed over before it', async () => {
    const c = heldCommit();
    const writer = new AsyncBatchWriter<number>(c.commit, { delayMs: 1, maxInFlight: 3 });
    // Each write is its own batch: the next is handed over once the one before is committing.
    const first = writer.write(0);
    await c.started(1);
    const second = writer.write(1);
    await c.started(2);
    const third = writer.write(2);
    await c.started(3);
    expect(c.most()).toBe(3);
    const flushed = writer.flushed().then(() => [...c.finished]);
    // The first batch is slow, the next ones fast: they finish first.
    c.finish(1);
    c.finish(2);
    await Promise.all([second, third]);
    expect(c.finished).toEqual([[1], [2]]);
    // Not before the slow first batch: it was handed over before.
    c.finish(0);
    expect(await flushed).toEqual([[1], [2], [0]]);
    await first;
  });

  it('commits at once at maxBatch rows', async () => {
    const c = slowCommit(1);
    const writer = new AsyncBatchWriter<number>(c.commit, { delayMs: 1000, maxBatch: 10 });
    const started = Date.now();
    await Promise.all(Array.from({ length: 25 }, (_, i) => writer.write(i)));
    // 10 at once, 10 right after, and the last 5 wait for company (the delay) only once idle.
    expect(c.batches.map((b) => b.length)).toEqual([10, 10, 5]);
    expect(Date.now() - started).toBeLessThan(900);
  });

  it('rejects every write of a failed batch, and goes on afterwards', async () => {
    let fail = true;
    const writer = new AsyncBatchWriter<number>(async () => {
      if (fail) throw new Error('unreachable');
    });
    const results = await Promise.allSettled([writer.write(1), writer.write(2)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    await expect(writer.write(3)).resolves.toBeUndefined();
  });

  it('flushed() waits for what was handed over, not for later writes', async () => {
    const c = slowCommit(10);
    const writer = new AsyncBatchWriter<number>(c.commit, { delayMs: 50 });
    void writer.write(1);
    void writer.write(2);
    const flushed = writer.flushed().then(() => [...c.batches]);
    void writer.write(3);
    // flushed() commits at once rather than after the delay, and resolves before 3 is committed.
    expect(await flushed).toEqual([[1, 2]]);
    await writer.flushed();
    expect(c.batches).toEqual([[1, 2], [3]]);
    await expect(writer.flushed()).resolves.toBeUndefined();
  });
});
