import { AsyncBatchWriter } from './group-commit.js';
import { isUnreachable, type StoreLogger } from './pg-connection.js';
import type { Spool, SpooledTrace } from './spool.js';
import { type FeedbackResult, type FeedbackUpdate, type TraceRecord } from './types.js';
import { StoreUnavailableError } from '../core/errors.js';

/** Traces per drain step of the spool. */
const DRAIN_STEP = 500;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;

export interface SpooledWriterOptions {
  /** The local spool file, where traces wait while PostgreSQL cannot be reached. */
  spool: Spool;
  /** Writes traces to PostgreSQL (an id already there is skipped), failing as the database does. */
  insert: (batch: readonly TraceRecord[], timeoutMs: number) => Promise<number>;
  logger: StoreLogger;
  /** A commit not acknowledged within this goes to the spool instead. */
  writeTimeoutMs: number;
  /** How long a read waits for the spool to reach PostgreSQL. */
  readTimeoutMs: number;
  /** Group commit: how long a batch gathers (default 1 ms), and its most rows (default 500). */
  groupCommitMs: number;
  groupCommitMaxRows: number;
}

/**
 * The PostgreSQL store's writes: an asynchronous group commit (one INSERT per batch) while
 * PostgreSQL answers; while it cannot be reached, the local spool, which is written to PostgreSQL
 * (in order, and exactly once: the trace id is unique) when it is back. It also keeps whether
 * PostgreSQL was last found reachable, which the store's reads report to it.
 */
export class SpooledWriter {
  private readonly writer: AsyncBatchWriter<TraceRecord>;
  private readonly spool: Spool;
  private readonly logger: StoreLogger;
  /** Why the database was last found unreachable (null while it answers). */
  private downError: string | null = null;
  private draining: Promise<void> | null = null;
  /** Settles when the last batch handed to `commit` is settled (in PostgreSQL or in the spool). */
  private tail: Promise<void> = Promise.resolve();
  /** Batches that failed and wait for the ones before them to settle before they join the spool. */
  private toSpool = 0;
  /** The drain's insert in flight, if any, and the ids it carries. */
  private drainStep: Promise<unknown> | null = null;
  private drainIds: ReadonlySet<string> = new Set();
  /** Settles at each step of the drain (for reads waiting for it to catch up). */
  private progress = newSignal();
  private wake: (() => void) | null = null;
  private closingNow = false;
  private closedNow = false;

  constructor(private readonly options: SpooledWriterOptions) {
    this.spool = options.spool;
    this.logger = options.logger;
    this.writer = new AsyncBatchWriter((batch) => this.commit(batch), {
      delayMs: options.groupCommitMs,
      maxBatch: options.groupCommitMaxRows,
      // One batch at a time: traces get their `seq` in the order they were handed over (overlapping
      // INSERTs would interleave it), which is the order forgetting counts in.
      maxInFlight: 1,
    });
  }

  /** Closing: no more writes are taken. */
  get closing(): boolean {
    return this.closingNow;
  }

  /** Closed: the spool is closed, and nothing is written any more. */
  get closed(): boolean {
    return this.closedNow;
  }

  /** Traces waiting in the spool. */
  get depth(): number {
    return this.spool.depth;
  }

  /** Why PostgreSQL was last found unreachable; null while it answers. */
  get unreachable(): string | null {
    return this.downError;
  }

  /** Resolves once the trace is committed, to PostgreSQL or to the spool. */
  write(trace: TraceRecord): Promise<void> {
    return this.writer.write(trace);
  }

  /** Resolves once every trace handed over so far is committed (to PostgreSQL or to the spool). */
  flushed(): Promise<void> {
    return this.writer.flushed();
  }

  /**
   * One batch of the group commit: to PostgreSQL; to the spool when PostgreSQL fails, and while the
   * spool holds traces (or batches are on their way to it), so that traces reach PostgreSQL in the
   * order they were handed over. A batch headed for the spool waits for the batches before it to
   * settle first (so the order holds even if commits overlapped).
   */
  private async commit(batch: TraceRecord[]): Promise<void> {
    const previous = this.tail;
    let settle!: () => void;
    this.tail = new Promise<void>((resolve) => (settle = resolve));
    try {
      if (this.spool.depth === 0 && this.toSpool === 0) {
        try {
          await this.options.insert(batch, this.options.writeTimeoutMs);
          this.markUp();
          return;
        } catch (err) {
          // Unreachable, too slow, or refused: kept locally, written later (a refused row is set aside then).
          if (isUnreachable(err)) this.markDown(err);
          else this.logger.error({ err }, 'PostgreSQL refused a batch of traces: spooled, to be retried one by one');
        }
      }
      this.toSpool++;
      try {
        await previous;
        this.spool.add(batch);
      } finally {
        this.toSpool--;
      }
      this.drain();
    } finally {
      settle();
    }
  }

  /** PostgreSQL could not be reached: traces go to the spool until it answers again. */
  markDown(err: unknown): void {
    const message = (err as Error)?.message ?? String(err);
    if (this.downError === null) {
      this.logger.warn({ error: message, spoolDepth: this.spool.depth }, 'PostgreSQL unreachable: traces go to the local spool');
    }
    this.downError = message;
  }

  /** PostgreSQL answered. */
  markUp(): void {
    if (this.downError !== null) {
      this.logger.info({ spoolDepth: this.spool.depth }, 'PostgreSQL reachable again');
      this.downError = null;
      // A drain waiting to retry goes now.
      this.wake?.();
    }
  }

  /** Writes the spool to PostgreSQL, oldest first, until it is empty (new traces join its end meanwhile). */
  drain(): void {
    if (this.draining !== null || this.closedNow) return;
    this.draining = (async () => {
      let backoff = RETRY_MIN_MS;
      while (!this.closedNow) {
        const entries = this.spool.peek(DRAIN_STEP);
        if (entries.length === 0) break;
        let failure: unknown = null;
        this.drainIds = new Set(entries.map((e) => e.trace.id));
        this.drainStep = this.options.insert(
          entries.map((e) => e.trace),
          this.options.writeTimeoutMs,
        );
        try {
          await this.drainStep;
        } catch (err) {
          failure = err ?? new Error('insert failed');
        } finally {
          this.drainStep = null;
          this.drainIds = new Set();
        }
        if (failure === null) {
          this.spool.remove(entries[entries.length - 1]!.n);
          this.markUp();
          backoff = RETRY_MIN_MS;
        } else if (isUnreachable(failure)) {
          this.markDown(failure);
          this.signal();
          if (this.closingNow) break;
          await this.sleep(backoff);
          backoff = Math.min(RETRY_MAX_MS, backoff * 2);
        } else {
          await this.isolate(entries);
        }
        this.signal();
      }
      if (this.spool.depth === 0 && !this.closedNow) this.logger.info({}, 'trace spool written to PostgreSQL');
    })().finally(() => {
      this.draining = null;
      this.signal();
    });
  }

  /** A batch PostgreSQL refused: row by row, setting aside (in the spool file) the rows it refuses. */
  private async isolate(entries: SpooledTrace[]): Promise<void> {
    for (const entry of entries) {
      try {
        await this.options.insert([entry.trace], this.options.writeTimeoutMs);
        this.spool.remove(entry.n);
      } catch (err) {
        if (isUnreachable(err)) {
          this.markDown(err);
          return;
        }
        this.logger.error({ err, traceId: entry.trace.id }, 'PostgreSQL refused a trace: kept in the spool file, table rejected');
        this.spool.reject(entry, (err as Error).message);
      }
    }
  }

  private signal(): void {
    const old = this.progress;
    this.progress = newSignal();
    old.resolve();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }

  /**
   * Before a read: what was handed over is committed, and the spool has reached PostgreSQL (so a
   * read sees every trace this instance recorded, as with the embedded store). Fails at once while
   * PostgreSQL is unreachable, and after the read timeout if the spool is still being written.
   */
  async caughtUp(): Promise<void> {
    if (this.closedNow) throw new Error('trace store is closed');
    await this.writer.flushed();
    const deadline = Date.now() + this.options.readTimeoutMs;
    while (this.spool.depth > 0) {
      if (this.downError !== null) {
        throw new StoreUnavailableError(`PostgreSQL is unreachable (${this.downError}); ${this.spool.depth} traces wait in the local spool`);
      }
      if (Date.now() > deadline) {
        throw new StoreUnavailableError(`the local spool (${this.spool.depth} traces) is still being written to PostgreSQL`);
      }
      this.drain();
      await Promise.race([this.progress.promise, new Promise((r) => setTimeout(r, 200))]);
    }
  }

  /** A trace still waiting in the spool (after what was handed over is committed). */
  async spooled(id: string): Promise<TraceRecord | undefined> {
    await this.writer.flushed();
    return this.spool.depth > 0 ? this.spool.get(id) : undefined;
  }

  /** The model of the newest trace with this `response_id` still waiting in the spool (after what was handed over is committed). */
  async spooledModelOfResponse(responseId: string): Promise<string | undefined> {
    await this.writer.flushed();
    return this.spool.depth > 0 ? this.spool.modelOfResponse(responseId) : undefined;
  }

  /**
   * Feedback on a trace still waiting in the spool, which then reaches PostgreSQL with it; undefined
   * when the trace is not there (it is in PostgreSQL, or nowhere).
   */
  async setSpooledFeedback(id: string, update: FeedbackUpdate, owner?: string | null): Promise<FeedbackResult | undefined> {
    // A trace may still be waiting in the writer's batch; feedback must find it.
    await this.writer.flushed();
    // Not while the drain is sending this very trace: it would reach the database without the feedback.
    while (this.drainStep !== null && this.drainIds.has(id)) await this.drainStep.catch(() => undefined);
    return this.spool.depth > 0 ? this.spool.setFeedback(id, update, owner) : undefined;
  }

  /**
   * Commits what was handed over (to the spool if need be), gives the drain a moment to empty the
   * spool if PostgreSQL answers, then closes the spool. What is left in it is written by the next start.
   */
  async close(): Promise<void> {
    if (this.closingNow) return;
    this.closingNow = true;
    await this.writer.flushed();
    if (this.spool.depth > 0 && this.downError === null) {
      this.drain();
      const deadline = Date.now() + this.options.writeTimeoutMs;
      while (this.spool.depth > 0 && this.downError === null && Date.now() < deadline && this.draining !== null) {
        await Promise.race([this.progress.promise, new Promise((r) => setTimeout(r, 100))]);
      }
    }
    this.closedNow = true;
    this.wake?.();
    if (this.draining) await this.draining;
    this.spool.close();
  }
}

function newSignal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
