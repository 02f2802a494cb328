interface Pending<T> {
  item: T;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Group commit: writes handed over during one event-loop turn are committed together by one call
 * of `commit`, and each caller's promise settles once its batch is committed. A commit costs far
 * more than an insert, so this keeps durability without paying a commit per request.
 */
export class BatchWriter<T> {
  private queue: Pending<T>[] = [];
  private scheduled = false;
  private idle: Promise<void> = Promise.resolve();
  private settleIdle: (() => void) | null = null;

  constructor(
    private readonly commit: (batch: T[]) => void,
    private readonly maxBatch = 1000,
  ) {}

  write(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.queue.length >= this.maxBatch) this.flush();
      else this.schedule();
    });
  }

  /** Resolves when everything handed over so far is committed (or failed). */
  flushed(): Promise<void> {
    if (this.queue.length > 0) this.flush();
    return this.idle;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    if (!this.settleIdle) this.idle = new Promise<void>((resolve) => (this.settleIdle = resolve));
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length > 0) {
      try {
        this.commit(batch.map((p) => p.item));
        for (const p of batch) p.resolve();
      } catch (err) {
        for (const p of batch) p.reject(err as Error);
      }
    }
    if (this.queue.length === 0 && this.settleIdle) {
      const settle = this.settleIdle;
      this.settleIdle = null;
      settle();
    }
  }
}
