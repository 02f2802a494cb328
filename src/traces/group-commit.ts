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
}

/**
 * Group commit for a store whose commit is asynchronous (a database over the network): writes are
 * gathered for `delayMs` or until `maxBatch`, committed together by one call of `commit`, and each
 * caller's promise settles once its batch is committed. One commit runs at a time, so batches are
 * committed in the order they were handed over; what arrives while a commit runs forms the next
 * batch, which is committed as soon as the running one ends (it has waited a commit already). Under
 * load a batch is then as large as the writes that arrive during one commit, so the database's
 * commit latency is paid once per batch, not once per write.
 *
 * `BatchWriter` is the same idea for a synchronous commit (SQLite).
 */
export class AsyncBatchWriter<T> {
  private queue: Pending<T>[] = [];
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private committing = false;
  /** Writes handed over, and writes settled (committed or failed), since the start. */
  private handedOver = 0;
  private settled = 0;
  private waiters: { upTo: number; resolve: () => void }[] = [];
  private readonly delayMs: number;
  private readonly maxBatch: number;

  constructor(
    private readonly commit: (batch: T[]) => Promise<void>,
    options: GroupCommitOptions = {},
  ) {
    this.delayMs = Math.max(0, options.delayMs ?? 1);
    this.maxBatch = Math.max(1, options.maxBatch ?? 500);
  }

  /** Writes waiting for a commit, and being committed. */
  get pending(): number {
    return this.handedOver - this.settled;
  }

  write(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.handedOver++;
      if (this.committing) return; // the running commit starts the next batch when it ends
      if (this.queue.length >= this.maxBatch) this.start();
      else this.schedule();
    });
  }

  /** Resolves when everything handed over so far is committed (or failed); later writes are not waited for. */
  flushed(): Promise<void> {
    if (this.settled >= this.handedOver) return Promise.resolve();
    const upTo = this.handedOver;
    const done = new Promise<void>((resolve) => this.waiters.push({ upTo, resolve }));
    if (!this.committing) this.start(); // no need to wait for company
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
    if (this.committing || this.queue.length === 0) return;
    const batch = this.queue.length <= this.maxBatch ? this.queue : this.queue.slice(0, this.maxBatch);
    this.queue = this.queue.length <= this.maxBatch ? [] : this.queue.slice(this.maxBatch);
    this.committing = true;
    let result: Promise<void>;
    try {
      result = this.commit(batch.map((p) => p.item));
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      () => this.finish(batch, null),
      (err: unknown) => this.finish(batch, err instanceof Error ? err : new Error(String(err))),
    );
  }

  private finish(batch: Pending<T>[], err: Error | null): void {
    this.committing = false;
    for (const p of batch) {
      if (err) p.reject(err);
      else p.resolve();
    }
    this.settled += batch.length;
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
