import { preparePrivateFile } from './private-file.js';
import Database from 'better-sqlite3';
import { feedbackReplaces, storedFeedbackSource } from './feedback-source.js';
import { TRACE_DEFAULTS } from './trace-columns.js';
import type { FeedbackResult, FeedbackUpdate, TraceRecord } from './types.js';

/** A spooled trace; a column it was spooled without (by a version before the column) has its default. */
function parseTrace(text: string): TraceRecord {
  return { ...TRACE_DEFAULTS, ...(JSON.parse(text) as Partial<TraceRecord>) } as TraceRecord;
}

export interface SpooledTrace {
  /** Position in the spool: traces leave it in this order. */
  n: number;
  trace: TraceRecord;
}

/**
 * The local spool of a store whose database is on the network: a SQLite file beside the process
 * where traces wait, in order, while the database cannot be reached. A trace written here is as
 * durable as in the embedded store (WAL, synchronous=NORMAL: it survives a crash of the process).
 *
 * One process owns a spool file: it is opened in SQLite's exclusive locking mode and locked at once,
 * so a second process given the same file fails at start instead of draining it twice. The lock goes
 * with the process (even on SIGKILL), and whatever it left is drained by the next one to open it.
 */
export class Spool {
  private readonly db: Database.Database;
  private count: number;
  private readonly addStmt: Database.Statement;
  private readonly peekStmt: Database.Statement;
  private readonly removeStmt: Database.Statement;
  private readonly getStmt: Database.Statement;
  private readonly updateStmt: Database.Statement;
  private readonly addMany: (batch: TraceRecord[]) => number;
  private closed = false;

  constructor(readonly path: string) {
    preparePrivateFile(path);
    this.db = new Database(path, { timeout: 0 });
    try {
      this.db.pragma('locking_mode = EXCLUSIVE');
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      // Takes the exclusive lock now, and keeps it until close.
      this.db.exec('BEGIN EXCLUSIVE; COMMIT');
    } catch (err) {
      this.db.close();
      if ((err as { code?: string }).code === 'SQLITE_BUSY') {
        throw new Error(
          `the trace spool ${path} is in use by another tracegate process: give each instance its own database.spoolPath`,
        );
      }
      throw err;
    }
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS spool (n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, trace TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS rejected (n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, trace TEXT NOT NULL,
                                           error TEXT NOT NULL, time INTEGER NOT NULL);`);
    this.count = (this.db.prepare('SELECT COUNT(*) AS n FROM spool').get() as { n: number }).n;
    this.addStmt = this.db.prepare('INSERT OR IGNORE INTO spool (id, trace) VALUES (?, ?)');
    this.peekStmt = this.db.prepare('SELECT n, trace FROM spool ORDER BY n LIMIT ?');
    this.removeStmt = this.db.prepare('DELETE FROM spool WHERE n <= ?');
    this.getStmt = this.db.prepare('SELECT n, trace FROM spool WHERE id = ?');
    this.updateStmt = this.db.prepare('UPDATE spool SET trace = ? WHERE n = ?');
    this.addMany = this.db.transaction((batch: TraceRecord[]) => {
      let added = 0;
      for (const t of batch) added += this.addStmt.run(t.id, JSON.stringify(t)).changes;
      return added;
    });
  }

  /** Traces waiting. */
  get depth(): number {
    return this.count;
  }

  /** Appends traces (committed when this returns). */
  add(batch: TraceRecord[]): void {
    if (this.closed) throw new Error('trace spool is closed');
    this.count += this.addMany(batch);
  }

  /** The oldest `limit` traces, oldest first. */
  peek(limit: number): SpooledTrace[] {
    return (this.peekStmt.all(limit) as { n: number; trace: string }[]).map((r) => ({ n: r.n, trace: parseTrace(r.trace) }));
  }

  /** Forgets the traces up to position `n` (they reached the database). */
  remove(upTo: number): void {
    this.count -= this.removeStmt.run(upTo).changes;
  }

  /** Moves one trace that the database refused (not for being unreachable) aside, with the reason. */
  reject(entry: SpooledTrace, error: string): void {
    this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO rejected (id, trace, error, time) VALUES (?, ?, ?, ?)')
        .run(entry.trace.id, JSON.stringify(entry.trace), error, Date.now());
      this.count -= this.db.prepare('DELETE FROM spool WHERE n = ?').run(entry.n).changes;
    })();
  }

  get(id: string): TraceRecord | undefined {
    const row = this.getStmt.get(id) as { n: number; trace: string } | undefined;
    return row ? parseTrace(row.trace) : undefined;
  }

  /** The model of the newest spooled trace with this `response_id` (a scan: the spool is small, and read only while it holds traces). */
  modelOfResponse(responseId: string): string | undefined {
    const row = this.db
      .prepare("SELECT json_extract(trace, '$.modelKey') AS model FROM spool WHERE json_extract(trace, '$.responseId') = ? ORDER BY n DESC LIMIT 1")
      .get(responseId) as { model: string } | undefined;
    return row?.model;
  }

  /** Feedback on a trace still in the spool: it reaches the database with the trace. */
  setFeedback(id: string, update: FeedbackUpdate, owner?: string | null): FeedbackResult | undefined {
    const row = this.getStmt.get(id) as { n: number; trace: string } | undefined;
    if (!row) return undefined;
    const trace = parseTrace(row.trace);
    if (owner !== undefined && trace.keyName !== owner) return undefined;
    const previous = trace.feedback;
    if (trace.outcome === 'refused' || !feedbackReplaces(update.source, storedFeedbackSource(previous, trace.feedbackSource))) {
      return { applied: false, trace, previous };
    }
    const updated: TraceRecord = {
      ...trace,
      feedback: update.score,
      feedbackTime: update.time,
      feedbackComment: update.comment,
      feedbackSource: update.source,
    };
    this.updateStmt.run(JSON.stringify(updated), row.n);
    return { applied: true, trace: updated, previous };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}
