import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * Checkpoints a SQLite file's write-ahead log from a worker thread, on a connection of its own.
 *
 * SQLite's automatic checkpoint runs inside the commit that crosses 1000 WAL pages, on the
 * committing thread, and it syncs the database file: on the gateway's event loop that is a pause of
 * 10–30 ms every few thousand traces, for every request in flight. The store turns it off on its
 * own connection and this worker copies the log back every `intervalMs` (PASSIVE: it never blocks
 * a writer or a reader).
 *
 * A log is started over from its beginning only by a write that finds every frame copied back, and
 * under steady writes the worker never catches up with the last few frames: the log grew without
 * end (2.8 GB after 8 s of trace writes, each write slower as it grew). So once the log passes
 * `restartFrames` the worker says so, and the store copies back the few frames left on its own
 * connection (`onLongLog`), between two commits; the next commit then starts the log over.
 */

// A script, not a module file: it runs the same from the TypeScript sources (tests) and from dist/.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
db.pragma('synchronous = NORMAL');
let failed = false;
const checkpoint = () => {
  try {
    const [result] = db.pragma('wal_checkpoint(PASSIVE)');
    failed = false;
    if (result && result.log >= workerData.restartFrames) parentPort.postMessage({ log: result.log });
  } catch (err) {
    // Once per failing spell: a busy file is retried at the next tick.
    if (!failed) parentPort.postMessage({ error: String(err && err.message) });
    failed = true;
  }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message !== 'close') return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export interface WalCheckpointerOptions {
  path: string;
  intervalMs?: number;
  /** A log of at least this many frames after a checkpoint is reported to `onLongLog`. */
  restartFrames?: number;
  onError?: (message: string) => void;
  onLongLog?: (frames: number) => void;
}

/** 8192 frames: 32 MB of log with SQLite's 4 KB pages. */
export const RESTART_FRAMES = 8192;

export class WalCheckpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;

  constructor(options: WalCheckpointerOptions) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER, {
      eval: true,
      workerData: { path: options.path, intervalMs: options.intervalMs ?? 500, restartFrames: options.restartFrames ?? RESTART_FRAMES, driver },
      // It holds one connection and a timer: a small heap is plenty.
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
    });
    this.worker.on('message', (m: { error?: string; log?: number }) => {
      if (m.error !== undefined) options.onError?.(m.error);
      if (m.log !== undefined) options.onLongLog?.(m.log);
    });
    this.worker.on('error', (err) => options.onError?.(err.message));
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    // It never keeps the process alive on its own.
    this.worker.unref();
  }

  /** Stops checkpointing and closes the worker's connection (the store's own close checkpoints last). */
  async close(): Promise<void> {
    // Held open until the worker is gone: an unreferenced worker would let a process whose only
    // work left is this close end before the store's own close runs.
    this.worker.ref();
    this.worker.postMessage('close');
    await this.exited;
  }
}
