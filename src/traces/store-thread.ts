import { Worker } from 'node:worker_threads';
import { readNow, type TraceReads } from './sqlite-reads.js';
import type { ReadRequest, ReadWorkerData, WorkerReply } from './sqlite-read-worker.js';

/**
 * The SQLite store's background thread, on a connection of its own: it checkpoints the file's
 * write-ahead log, and it runs the reads that go over many traces (`stats`, `traffic`, `list`, and
 * the policy's rebuild: `evidence`, `recentByArm`, `qualityEvidence`), so that a dashboard polling a
 * store of a million traces, or a rebuild, does not hold the gateway's event loop for up to a second.
 *
 * SQLite's automatic checkpoint runs inside the commit that crosses 1000 WAL pages, on the
 * committing thread, and it syncs the database file: on the gateway's event loop that is a pause of
 * 10–30 ms every few thousand traces, for every request in flight. The store turns it off on its
 * own connection and this worker copies the log back every `intervalMs` (PASSIVE: it never blocks
 * a writer or a reader).
 *
 * A log is started over from its beginning only by a write that finds every frame copied back, and
 * under steady writes the worker never catches up with the last few frames: the log would grow
 * without end, each write slower as it grows (BENCHMARKS.md). So once the log passes
 * `restartFrames` the worker says so, and the store copies back the few frames left on its own
 * connection (`onLongLog`), between two commits; the next commit then starts the log over.
 */

/**
 * Starts the thread's module, sqlite-read-worker, beside this one: the built `.js` in dist/, or, when
 * this module runs from the TypeScript sources (the tests), the `.ts` with tsx's loader registered
 * in the thread first, as Node runs no TypeScript of itself.
 */
function startWorker(workerData: ReadWorkerData): Worker {
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = new URL(`./sqlite-read-worker.${fromSource ? 'ts' : 'js'}`, import.meta.url);
  if (!fromSource) return new Worker(entry, { workerData });
  const loader = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const boot = `import(${loader}).then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(boot, { eval: true, workerData });
}

export interface StoreThreadOptions {
  path: string;
  /** The same reads on the store's own connection: they take over if the thread fails. */
  fallback: () => TraceReads;
  intervalMs?: number;
  /** A log of at least this many frames after a checkpoint is reported to `onLongLog`. */
  restartFrames?: number;
  /** Told when a checkpoint fails (once per failing spell), or when the thread fails. */
  onError?: (message: string) => void;
  onLongLog?: (frames: number) => void;
}

type ReadOp = keyof TraceReads;

interface Read {
  op: ReadOp;
  args: unknown[];
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

/** 8192 frames: 32 MB of log with SQLite's 4 KB pages. */
export const RESTART_FRAMES = 8192;

export class StoreThread {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  private readonly reads = new Map<number, Read>();
  private nextId = 0;
  /** The reads on the store's own connection, once the thread has failed or is closing. */
  private inline: TraceReads | null = null;
  /** Why the thread failed, if it did. */
  private failure: string | null = null;
  private closing = false;

  constructor(private readonly options: StoreThreadOptions) {
    this.worker = startWorker({
      path: options.path,
      intervalMs: options.intervalMs ?? 500,
      restartFrames: options.restartFrames ?? RESTART_FRAMES,
    });
    this.worker.on('message', (m: WorkerReply) => {
      if (m.id !== undefined) this.settle(m);
      if (m.error !== undefined) options.onError?.(m.error);
      if (m.log !== undefined) options.onLongLog?.(m.log);
    });
    this.worker.on('error', (err) => this.fail(err.message));
    this.exited = new Promise((resolve) =>
      this.worker.once('exit', (code) => {
        if (!this.closing) this.fail(`the store's thread exited with code ${code}`);
        resolve();
      }),
    );
    // It keeps the process alive only while a read waits for it (see read).
    this.worker.unref();
  }

  /** The worker, for tests that make it fail. */
  get thread(): Worker {
    return this.worker;
  }

  /** Runs one of the big reads in the thread (on the store's connection if the thread failed). */
  read<K extends ReadOp>(op: K, ...args: Parameters<TraceReads[K]>): Promise<ReturnType<TraceReads[K]>> {
    if (this.failure !== null || this.closing) return this.readInline(op, args);
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      if (this.reads.size === 0) this.worker.ref();
      this.reads.set(id, { op, args, resolve: resolve as (value: unknown) => void, reject });
      this.worker.postMessage({ id, op, args } satisfies ReadRequest);
    });
  }

  private settle(reply: WorkerReply): void {
    const read = this.reads.get(reply.id!);
    if (read === undefined) return;
    this.reads.delete(reply.id!);
    if (this.reads.size === 0) this.worker.unref();
    if (reply.readError === undefined) read.resolve(reply.value);
    else read.reject(new Error(reply.readError));
  }

  private readInline<K extends ReadOp>(op: K, args: unknown[]): Promise<ReturnType<TraceReads[K]>> {
    return readNow(() => (this.inline ??= this.options.fallback()), op, args);
  }

  private fail(message: string): void {
    if (this.failure !== null) return;
    this.failure = message;
    this.options.onError?.(message);
    const unanswered = [...this.reads.values()];
    this.reads.clear();
    for (const read of unanswered) this.readInline(read.op, read.args).then(read.resolve, read.reject);
  }

  /**
   * Stops checkpointing and closes the thread's connection (the store's own close checkpoints
   * last). Reads already sent are answered first; later ones run on the store's connection.
   */
  async close(): Promise<void> {
    if (this.closing) return this.exited;
    this.closing = true;
    // Held open until the worker is gone: an unreferenced worker would let a process whose only
    // work left is this close end before the store's own close runs.
    this.worker.ref();
    this.worker.postMessage('close');
    await this.exited;
  }
}
