import { describe, expect, it } from 'vitest';
import { BatchWriter } from '../../src/traces/batch-writer.js';

describe('BatchWriter (group commit)', () => {
  it('commits the writes of one event-loop turn together, then settles each', async () => {
    const batches: number[][] = [];
    const writer = new BatchWriter<number>((batch) => batches.push(batch));
    const pending = Array.from({ length: 50 }, (_, i) => writer.write(i));
    expect(batches).toEqual([]);
    await Promise.all(pending);
    expect(batches).toHaveLength(1);
    expect(batches[0]).toHaveLength(50);
    await writer.write(99);
    expect(batches).toEqual([batches[0], [99]]);
  });

  it('waits one more turn while writes keep arriving, up to three poll phases in all', async () => {
    const batches: number[][] = [];
    const writer = new BatchWriter<number>((batch) => batches.push(batch));
    // One write per event-loop turn, as answers arriving under load: each from the check phase of
    // the turn before (an immediate queued after the writer's own check).
    const settled: Promise<void>[] = [];
    await new Promise<void>((done) => {
      let n = 0;
      const next = () => {
        settled.push(writer.write(++n));
        if (n < 7) setImmediate(next);
        else done();
      };
      next();
    });
    await Promise.all(settled);
    expect(batches).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
  });

  it('commits a lone write after one more poll phase, not three', async () => {
    const batches: number[][] = [];
    const writer = new BatchWriter<number>((batch) => batches.push(batch));
    void writer.write(1);
    // The immediates below run in the check phases of the turns after the write's.
    const afterTurns = (turns: number) =>
      new Promise<void>((done) => {
        const step = (left: number) => (left === 0 ? done() : setImmediate(() => step(left - 1)));
        step(turns);
      });
    await afterTurns(1);
    expect(batches).toEqual([]);
    await afterTurns(1);
    expect(batches).toEqual([[1]]);
  });

  it('splits at maxBatch', async () => {
    const sizes: number[] = [];
    const writer = new BatchWriter<number>((batch) => sizes.push(batch.length), 10);
    await Promise.all(Array.from({ length: 25 }, (_, i) => writer.write(i)));
    expect(sizes).toEqual([10, 10, 5]);
  });

  it('rejects every write of a batch whose commit failed, and goes on afterwards', async () => {
    let fail = true;
    const writer = new BatchWriter<number>(() => {
      if (fail) throw new Error('disk full');
    });
    const results = await Promise.allSettled([writer.write(1), writer.write(2)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    await expect(writer.write(3)).resolves.toBeUndefined();
  });

  it('flushed() waits for what was handed over', async () => {
    const committed: number[] = [];
    const writer = new BatchWriter<number>((batch) => committed.push(...batch));
    void writer.write(1);
    void writer.write(2);
    await writer.flushed();
    expect(committed).toEqual([1, 2]);
  });
});
