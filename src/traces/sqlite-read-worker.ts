import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { prepareReads, type TraceReads } from './sqlite-reads.js';

/**
 * The SQLite store's background thread (started by src/traces/store-thread.ts, which says what it is
 * for): on a connection of its own to the store's file, it checkpoints the write-ahead log every
 * `intervalMs` and runs the big reads it is sent, answering each with its value or its error.
 */

export interface ReadWorkerData {
  path: string;
  intervalMs: number;
  /** A log of at least this many frames after a checkpoint is reported. */
  restartFrames: number;
}

/** A read the store sends: its id, the read, and its arguments. */
export interface ReadRequest {
  id: number;
  op: keyof TraceReads;
  args: unknown[];
}

/** What the thread posts: a read's answer, a checkpoint's failure, or a long log. */
export interface WorkerReply {
  id?: number;
  value?: unknown;
  readError?: string;
  error?: string;
  log?: number;
}

const port = parentPort!;
const data = workerData as ReadWorkerData;
const db = new Database(data.path, { fileMustExist: true });
// Below the event loop's priority (Linux: a thread's own nice value), so a big read takes the CPU
// the gateway leaves, not the CPU it needs; elsewhere the thread keeps the process's priority.
try {
  setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()), 10);
} catch {
  // No /proc/thread-self: not Linux.
}
db.pragma('busy_timeout = 1000');
db.pragma('synchronous = NORMAL');
db.pragma('cache_size = -2000');
db.pragma('threads = 2');
const reads = prepareReads(db);

let failed = false;
function checkpoint(): void {
  try {
    const [result] = db.pragma('wal_checkpoint(PASSIVE)') as { log: number }[];
    failed = false;
    if (result && result.log >= data.restartFrames) port.postMessage({ log: result.log } satisfies WorkerReply);
  } catch (err) {
    // Once per failing spell: a busy file is retried at the next tick.
    if (!failed) port.postMessage({ error: String((err as Error | undefined)?.message) } satisfies WorkerReply);
    failed = true;
  }
}
const timer = setInterval(checkpoint, data.intervalMs);

port.on('message', (message: ReadRequest | 'close') => {
  if (message === 'close') {
    clearInterval(timer);
    db.close();
    port.close();
    return;
  }
  let reply: WorkerReply;
  try {
    const read = reads[message.op] as (...args: unknown[]) => unknown;
    reply = { id: message.id, value: read(...message.args) };
  } catch (err) {
    reply = { id: message.id, readError: String((err as Error | undefined)?.message) };
  }
  port.postMessage(reply);
});
