/** The writes handed over until the next commit, and the one promise they all wait on. */
interface Batch<T> {
  items: T[];
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
}

function newBatch<T>(): Batch<T> {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { items: [], promise, resolve, reject };
}

/**
 * Group commit: writes handed over during this event-loop turn and the next are committed together
 * by one call of `commit`, and each caller's promise settles once its batch is committed. A commit
 * costs far more than an insert, so this keeps durability without paying a commit per request. The
 * writes of a batch share one promise (it settles for all of them at once, so one is enough).
 */
export class BatchWriter<T> {
  private batch: Batch<T> | null = null;
  private scheduled = false;
  private idle: Promise<void> = Promise.resolve();
  private settleIdle: (() => void) | null = null;

  constructor(
    private readonly commit: (batch: T[]) => void,
    private readonly maxBatch = 1000,
  ) {}

  write(item: T): Promise<void> {
    let batch = this.batch;
    if (batch === null) batch = this.batch = newBatch<T>();
    batch.items.push(item);
    const { promise } = batch;
    if (batch.items.length >= this.maxBatch) this.flush();
    else this.schedule();
    return promise;
  }

  /** Resolves when everything handed over so far is committed (or failed). */
  flushed(): Promise<void> {
    if (this.batch !== null) this.flush();
    return this.idle;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    if (!this.settleIdle) this.idle = new Promise<void>((resolve) => (this.settleIdle = resolve));
    // After the next poll phase, not this turn's: the answers that arrive meanwhile join the batch.
    // Under load that halves the commits (the HTTP benchmark: about 4% more requests/s, see
    // BENCHMARKS.md) for one more event-loop turn before an answer leaves.
    setImmediate(this.flushNextTurn);
  }

  private readonly flushNextTurn = (): void => {
    setImmediate(this.flushNow);
  };

  private readonly flushNow = (): void => this.flush();

  private flush(): void {
    this.scheduled = false;
    const batch = this.batch;
    this.batch = null;
    if (batch !== null) {
      try {
        this.commit(batch.items);
        batch.resolve();
      } catch (err) {
        batch.reject(err as Error);
      }
    }
    if (this.batch === null && this.settleIdle) {
      const settle = this.settleIdle;
      this.settleIdle = null;
      settle();
    }
  }
}
