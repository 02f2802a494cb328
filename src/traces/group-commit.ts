interface Pending<T> {
  item: T;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface GroupCommitOptions {
  /** How long the first write of a batch waits for others to join it, in ms (0: the next event-loop turn). */
  delayMs?: number;
  /** A batch is committed at once when it reaches this many writes. */
  maxBatch?: number;
  /**
   * Batches being committed at once (default 1: one after the other, in order). More lets a
   * database's commits overlap (its own group commit shares one WAL flush among them); batches may
   * then complete out of order.
   */
  maxInFlight?: number;
}

/**
 * Group commit for a store whose commit is asynchronous (a database over the network): writes are
 * gathered for `delayMs` or until `maxBatch`, committed together by one call of `commit`, and each
 * caller's promise settles once its batch is committed. At most `maxInFlight` commits run at a time
 * (1: batches are committed in the order they were handed over); what arrives while they run forms
 * the next batch, which is committed as soon as one ends (it has waited a commit already). Under load
 * a batch is then as large as the writes that arrive during a commit, so the database's commit
 * latency is paid once per batch, not once per write.
 *
 * `BatchWriter` is the same idea for a synchronous commit (SQLite).
 */
export class AsyncBatchWriter<T> {
  private queue: Pending<T>[] = [];
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  /** Commits running now. */
  private inFlight = 0;
  /** Writes handed over since the start; every write before `settled` is settled (committed or failed). */
  private handedOver = 0;
  private taken = 0;
  private settled = 0;
  /** Batches settled out of order: their first write's number → their size. */
  private early = new Map<number, number>();
  private waiters: { upTo: number; resolve: () => void }[] = [];
  private readonly delayMs: number;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;

  constructor(
    private readonly commit: (batch: T[]) => Promise<void>,
    options: GroupCommitOptions = {},
  ) {
    this.delayMs = Math.max(0, options.delayMs ?? 1);
    this.maxBatch = Math.max(1, options.maxBatch ?? 500);
    this.maxInFlight = Math.max(1, Math.floor(options.maxInFlight ?? 1));
  }

  /** Writes waiting for a commit, and being committed. */
  get pending(): number {
    return this.handedOver - this.settled;
  }

  write(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.handedOver++;
      if (this.inFlight >= this.maxInFlight) return; // a running commit starts the next batch when it ends
      if (this.queue.length >= this.maxBatch) this.start();
      else this.schedule();
    });
  }

  /** Resolves when everything handed over so far is committed (or failed); later writes are not waited for. */
  flushed(): Promise<void> {
    if (this.settled >= this.handedOver) return Promise.resolve();
    const upTo = this.handedOver;
    const done = new Promise<void>((resolve) => this.waiters.push({ upTo, resolve }));
    if (this.inFlight < this.maxInFlight) this.start(); // no need to wait for company
    return done;
  }

  private schedule(): void {
    if (this.timer !== null || this.immediate !== null) return;
    if (this.delayMs === 0) this.immediate = setImmediate(() => this.start());
    else this.timer = setTimeout(() => this.start(), this.delayMs);
  }

  private start(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.immediate !== null) {
      clearImmediate(this.immediate);
      this.immediate = null;
    }
    if (this.inFlight >= this.maxInFlight || this.queue.length === 0) return;
    const batch = this.queue.length <= this.maxBatch ? this.queue : this.queue.slice(0, this.maxBatch);
    this.queue = this.queue.length <= this.maxBatch ? [] : this.queue.slice(this.maxBatch);
    const first = this.taken;
    this.taken += batch.length;
    this.inFlight++;
    let result: Promise<void>;
    try {
      result = this.commit(batch.map((p) => p.item));
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      () => this.finish(batch, first, null),
      (err: unknown) => this.finish(batch, first, err instanceof Error ? err : new Error(String(err))),
    );
    // Room for another commit: what is queued goes now rather than wait for this one.
    if (this.queue.length > 0 && this.inFlight < this.maxInFlight) this.start();
  }

  private finish(batch: Pending<T>[], first: number, err: Error | null): void {
    this.inFlight--;
    for (const p of batch) {
      if (err) p.reject(err);
      else p.resolve();
    }
    // `settled` moves over every batch settled so far without a gap.
    this.early.set(first, batch.length);
    for (let size = this.early.get(this.settled); size !== undefined; size = this.early.get(this.settled)) {
      this.early.delete(this.settled);
      this.settled += size;
    }
    if (this.waiters.length > 0) {
      const still: typeof this.waiters = [];
      for (const w of this.waiters) {
        if (w.upTo <= this.settled) w.resolve();
        else still.push(w);
      }
      this.waiters = still;
    }
    if (this.queue.length > 0) this.start();
  }
}
