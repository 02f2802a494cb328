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

/** Poll phases after its first that a batch may wait for more writes (BENCHMARKS.md). */
const MAX_EXTRA_TURNS = 2;

/**
 * Group commit: writes handed over during the same few event-loop turns are committed together by
 * one call of `commit`, and each caller's promise settles once its batch is committed. A commit
 * costs far more than an insert, so this keeps durability without paying a commit per request.
 * A batch is committed in the check phase after the next poll, or, while each poll phase adds writes
 * to it (answers arriving under load), after up to MAX_EXTRA_TURNS of them: at a low rate an answer
 * waits one poll (which returns at once, an immediate being queued), under load a commit carries
 * more traces. The writes of a batch share one promise (it settles for all of them at once, so one
 * is enough).
 */
export class BatchWriter<T> {
  private batch: Batch<T> | null = null;
  /** A batch is waiting for its commit. */
  private scheduled = false;
  private checkQueued = false;
  /** Turns the batch has waited, and its size at the last check. */
  private turnsWaited = 0;
  private sizeAtCheck = 0;
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
    this.turnsWaited = 0;
    this.sizeAtCheck = 0;
    if (!this.settleIdle) this.idle = new Promise<void>((resolve) => (this.settleIdle = resolve));
    this.queueCheck();
  }

  /** The check phase after the next poll (one queued at a time, whatever flushed meanwhile). */
  private queueCheck(): void {
    if (this.checkQueued) return;
    this.checkQueued = true;
    setImmediate(this.check);
  }

  private readonly check = (): void => {
    this.checkQueued = false;
    if (!this.scheduled) return;
    const size = this.batch === null ? 0 : this.batch.items.length;
    if (size > this.sizeAtCheck && this.turnsWaited < MAX_EXTRA_TURNS) {
      this.sizeAtCheck = size;
      this.turnsWaited++;
      this.queueCheck();
      return;
    }
    this.flush();
  };

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
