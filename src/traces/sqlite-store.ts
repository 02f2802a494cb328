import { preparePrivateFile } from './private-file.js';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { traceFromRow, type TraceRow } from './row.js';
import {
  COLUMN_LIST,
  COLUMNS,
  INSERT,
  INSERT_LIVE,
  isFreshLive,
  QUALITY,
  SELECT_TRACE,
  STATS_SUMS,
  runInsert,
  runInsertLive,
} from './sqlite-statements.js';
import { QUALITY_EVIDENCE_ROW, QUALITY_RECORD_SUMS, type QualityEvidence, type QualityEvidenceQuery } from './quality-evidence.js';
import { feedbackReplaces, PURGED_PER_SOURCE, storedFeedbackSource } from './feedback-source.js';
import { StoreThread } from './store-thread.js';
import { BatchWriter } from './batch-writer.js';
import { prepareReads, readNow, type TraceReads } from './sqlite-reads.js';
import type {
  ArmEvidence,
  EvidenceQuery,
  ExportQuery,
  FeedbackResult,
  FeedbackUpdate,
  ImportResult,
  RecentArmTrace,
  StatsSummary,
  StickySession,
  StoreHealth,
  TimeRange,
  TraceRecord,
  TraceStore,
  TrafficBucket,
  TrafficQuery,
} from './types.js';

const MIGRATIONS = resolve(dirname(fileURLToPath(import.meta.url)), '../../drizzle/sqlite');

/** Rows per page of `exportTraces`, and per staging transaction of `importTraces`. */
const PAGE = 500;
let importTables = 0;

/**
 * Traces `purge` deletes per transaction (about 16 ms of work for 2,000 over a 1 M-trace file here),
 * and the pause after each. A connection waiting for the lock retries after 1, 3, 8, 18, 33… ms
 * (SQLite's busy handler), so a pause longer than a chunk lets it in within about one chunk.
 */
const PURGE_CHUNK = 2_000;
const PURGE_PAUSE_MS = 25;

/** `trace_arms` is filled once this many traces have been recorded since the last fill. */
const ARMS_FILL_EVERY = 2000;

/** The write-ahead log file is cut back to this many bytes when it starts over. */
const JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024;

/** A conversation's model to set, committed with the traces of the same batch (see setStickySession). */
class StickyWrite {
  constructor(
    readonly session: string,
    readonly modelKey: string,
    readonly expiresAt: number,
  ) {}
}

export interface SqliteStoreOptions {
  /** A file path, or ':memory:'. */
  path: string;
}

/** The embedded trace store: one SQLite file in WAL mode, written through a group-commit writer. */
export class SqliteTraceStore implements TraceStore {
  /** One process's file (WAL lets tools read it beside the gateway, not several gateways share it). */
  readonly shared = false;
  readonly db: Database.Database;
  private readonly writer: BatchWriter<TraceRecord | StickyWrite>;
  private readonly insertStmt: Database.Statement;
  private closed = false;
  /** Checkpoints the log and runs the big reads (a file's store; an in-memory one reads here). */
  private readonly thread: StoreThread | null = null;
  private inlineReads: TraceReads | null = null;
  private catchUpScheduled = false;
  /** The fill mark as last seen here (the table holds the truth; see fillArmsNow). */
  private armsFilledUpTo = 0;

  constructor(options: SqliteStoreOptions) {
    preparePrivateFile(options.path);
    this.db = new Database(options.path);
    this.db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode: a commit survives a process crash (SIGKILL); only an OS crash can lose the last ones.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    // SQLite's own default page cache (2 MB; better-sqlite3 builds with 16 MB). Writes touch only the
    // ends of the b-trees and the big reads scan, so a larger cache buys no speed here, only memory
    // (BENCHMARKS.md, Memory).
    this.db.pragma('cache_size = -2000');
    // Big sorts (stats over a long time range, a fill of `trace_arms` far behind) may use two helper
    // threads: 0.9 s → 0.55 s for a GROUP BY over 1 M traces. Writes never sort much.
    this.db.pragma('threads = 2');
    migrate(drizzle(this.db), { migrationsFolder: MIGRATIONS });
    if (options.path !== ':memory:') {
      // Checkpoints run in a worker thread, off the event loop (see StoreThread).
      this.db.pragma('wal_autocheckpoint = 0');
      // A log that was started over is cut back to this size (else the file keeps its largest size).
      this.db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT}`);
      // A worker that cannot checkpoint (its thread failed, the file refuses it) must not leave the
      // log growing without end: SQLite's own checkpoint takes over, stalls and all.
      this.thread = new StoreThread({
        path: options.path,
        fallback: () => this.reads(),
        onError: () => {
          if (!this.closed) this.db.pragma('wal_autocheckpoint = 1000');
        },
        onLongLog: () => this.catchUpCheckpoint(),
      });
    }
    // For the query planner, not the data model: the policy's rebuild counts each arm's live traces
    // as all minus offline ones, and reads the offline evidence, without visiting the live rows. A
    // partial index holds only offline traces, so live writes never touch it.
    this.db.exec(
      `CREATE INDEX IF NOT EXISTS traces_offline_arm_idx ON traces (query_class, model_key) WHERE source = 'offline'`,
    );
    this.insertStmt = this.db.prepare(INSERT);
    const insertLiveStmt = this.db.prepare(INSERT_LIVE);
    const setStickyStmt = this.db.prepare(
      `INSERT INTO sticky_sessions (session, model_key, expires_at) VALUES (?, ?, ?)
       ON CONFLICT (session) DO UPDATE SET model_key = excluded.model_key, expires_at = excluded.expires_at`,
    );
    const insertMany = this.db.transaction((batch: (TraceRecord | StickyWrite)[]) => {
      let last = 0;
      for (const t of batch) {
        if (t instanceof StickyWrite) {
          setStickyStmt.run(t.session, t.modelKey, t.expiresAt);
          continue;
        }
        const result = isFreshLive(t) ? runInsertLive(insertLiveStmt, t) : runInsert(this.insertStmt, t);
        last = Number(result.lastInsertRowid);
      }
      if (last - this.armsFilledUpTo >= ARMS_FILL_EVERY) this.fillArmsNow();
    });
    this.writer = new BatchWriter<TraceRecord | StickyWrite>((batch) => insertMany(batch));
    this.armsFilledUpTo = this.armsMark();
  }

  /** The highest `seq` whose arm is in `trace_arms`, as this or another process left it. */
  private armsMark(): number {
    return (this.stmt('SELECT seq FROM trace_arms_filled WHERE id = 1').pluck().get() as number | undefined) ?? 0;
  }

  /**
   * Adds the arms of the traces recorded since the last fill to `trace_arms`, sorted by arm, so a
   * fill dirties each arm's last page once however many traces it adds. Inside a transaction (on
   * the write path, a batch's): OR IGNORE, so a row already there can never fail the traces' commit.
   */
  private fillArmsNow(): void {
    const from = this.armsMark();
    const to = this.newestSeq();
    if (to > from) {
      this.stmt(`
        INSERT OR IGNORE INTO trace_arms (query_class, model_key, seq, live, latency_ms)
        SELECT query_class, model_key, seq, source = 'live', latency_ms FROM traces WHERE seq > ? AND seq <= ?
        ORDER BY query_class, model_key, seq`).run(from, to);
      this.addStats(from, to);
      this.addQuality(from, to);
      this.stmt('INSERT INTO trace_arms_filled (id, seq) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq').run(to);
    }
    this.armsFilledUpTo = Math.max(from, to);
  }

  /** Adds the traces in (from, to] to `trace_stats`, group by group (a few dozen rows in all). */
  private addStats(from: number, to: number): void {
    const groups = this.stmt(`SELECT ${STATS_SUMS} FROM traces WHERE seq > ? AND seq <= ? GROUP BY query_class, model_key, instance_id`)
      .raw()
      .all(from, to) as unknown[][];
    const add = this.stmt(`
      UPDATE trace_stats SET count = count + ?, successes = successes + ?, feedback_count = feedback_count + ?,
        feedback_sum = feedback_sum + ?, prompt_tokens = prompt_tokens + ?, completion_tokens = completion_tokens + ?,
        cost_usd = cost_usd + ?, last_time = MAX(last_time, ?)
      WHERE query_class = ? AND model_key = ? AND instance_id IS ?`);
    const insert = this.stmt('INSERT INTO trace_stats VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    for (const group of groups) {
      if (add.run(...group.slice(3), ...group.slice(0, 3)).changes === 0) insert.run(...group);
    }
  }

  /**
   * Adds the quality evidence among the traces in (from, to] to `quality_record` (a few rows), read
   * by rowid (NOT INDEXED: never the whole quality index). Its triggers then follow a counted trace's
   * feedback, outcome and deletion; a trace past the mark is read from `traces` (sqlite-quality.ts).
   */
  private addQuality(from: number, to: number): void {
    this.stmt(`
      INSERT INTO quality_record (query_class, model_key, source, observations, failures, rated_count, rated_sum,
                                  judge_count, judge_sum, implicit_count, implicit_sum)
      SELECT query_class, model_key, source, ${QUALITY_RECORD_SUMS}
      FROM traces NOT INDEXED WHERE seq > ? AND seq <= ? AND ${QUALITY_EVIDENCE_ROW} GROUP BY query_class, model_key, source
      ON CONFLICT (query_class, model_key, source) DO UPDATE SET
        observations = observations + excluded.observations, failures = failures + excluded.failures,
        rated_count = rated_count + excluded.rated_count, rated_sum = rated_sum + excluded.rated_sum,
        judge_count = judge_count + excluded.judge_count, judge_sum = judge_sum + excluded.judge_sum,
        implicit_count = implicit_count + excluded.implicit_count, implicit_sum = implicit_sum + excluded.implicit_sum`).run(from, to);
  }

  /** Counts `trace_stats` again from the traces up to the fill mark (after `purgeOffline`). */
  private recountStats(): void {
    this.stmt('DELETE FROM trace_stats').run();
    this.stmt(`INSERT INTO trace_stats SELECT ${STATS_SUMS} FROM traces WHERE seq <= ? GROUP BY query_class, model_key, instance_id`)
      .run(this.armsMark());
  }

  /** The `seq` of the newest trace (0 in an empty store); MAX of the rowid is one seek. */
  private newestSeq(): number {
    return (this.stmt('SELECT MAX(seq) FROM traces').pluck().get() as number | null) ?? 0;
  }

  /** Brings `trace_arms` up to date before a per-arm read (no write transaction when it is). */
  private fillArms(): void {
    if (this.newestSeq() <= this.armsFilledUpTo) return;
    this.db.transaction(() => this.fillArmsNow()).immediate();
  }

  /**
   * Copies back, on this connection, the frames the worker's checkpoint left (those committed while
   * it ran), so that the next commit starts the log over. Runs between two event-loop turns, never
   * inside a transaction; a reader or the worker busy on the file makes it a no-op until next time.
   */
  private catchUpCheckpoint(): void {
    if (this.catchUpScheduled) return;
    this.catchUpScheduled = true;
    setImmediate(() => {
      this.catchUpScheduled = false;
      if (this.closed || this.db.inTransaction) return;
      try {
        this.db.pragma('wal_checkpoint(PASSIVE)');
      } catch {
        // SQLITE_BUSY and the like: the worker reports the long log again after its next checkpoint.
      }
    });
  }

  insert(trace: TraceRecord): Promise<void> {
    if (this.closed) return Promise.reject(new Error('trace store is closed'));
    return this.writer.write(trace);
  }

  async get(id: string): Promise<TraceRecord | undefined> {
    const row = this.stmt(`${SELECT_TRACE} WHERE id = ?`).get(id) as TraceRow | undefined;
    return row ? traceFromRow(row) : undefined;
  }

  async modelOfResponse(responseId: string): Promise<string | undefined> {
    await this.writer.flushed();
    return this.stmt('SELECT model_key FROM traces WHERE response_id = ? ORDER BY time DESC LIMIT 1').pluck().get(responseId) as string | undefined;
  }

  async setFeedback(id: string, update: FeedbackUpdate, owner?: string | null): Promise<FeedbackResult | undefined> {
    // A trace may still be waiting in the writer's batch; feedback must find it.
    await this.writer.flushed();
    const apply = this.db.transaction((): FeedbackResult | undefined => {
      const row = this.stmt(`${SELECT_TRACE} WHERE id = ?`).get(id) as TraceRow | undefined;
      if (!row) return undefined;
      if (owner !== undefined && row.key_name !== owner) return undefined;
      const previous = row.feedback;
      const trace = traceFromRow(row);
      // A refused attempt got no answer: nothing to rate.
      if (row.outcome === 'refused' || !feedbackReplaces(update.source, storedFeedbackSource(row.feedback, row.feedback_source))) {
        return { applied: false, previous, trace };
      }
      this.stmt('UPDATE traces SET feedback = ?, feedback_time = ?, feedback_comment = ?, feedback_source = ? WHERE id = ?').run(
        update.score,
        update.time,
        update.comment,
        update.source,
        id,
      );
      return {
        applied: true,
        previous,
        trace: { ...trace, feedback: update.score, feedbackTime: update.time, feedbackComment: update.comment, feedbackSource: update.source },
      };
    });
    // IMMEDIATE: the write lock comes before the read that decides, so another connection's feedback
    // cannot commit in between (in a deferred transaction the write would then fail as busy).
    return apply.immediate();
  }

  /**
   * One primary-key read on this connection. A write still waiting for its batch's commit is not
   * seen (the batch is not flushed early for it): the gateway's own memory has it.
   */
  async stickySession(session: string, now: number): Promise<StickySession | undefined> {
    if (this.closed) throw new Error('trace store is closed');
    const row = this.stmt('SELECT model_key AS modelKey, expires_at AS expiresAt FROM sticky_sessions WHERE session = ? AND expires_at > ?').get(
      session,
      now,
    ) as StickySession | undefined;
    return row;
  }

  /** Committed with the traces of the same batch (the group commit's writer), not in a commit of its own. */
  setStickySession(session: string, modelKey: string, expiresAt: number): Promise<void> {
    if (this.closed) return Promise.reject(new Error('trace store is closed'));
    return this.writer.write(new StickyWrite(session, modelKey, expiresAt));
  }

  async purgeStickySessions(now: number): Promise<{ deleted: number }> {
    await this.writer.flushed();
    if (this.closed) return { deleted: 0 };
    return { deleted: this.stmt('DELETE FROM sticky_sessions WHERE expires_at <= ?').run(now).changes };
  }

  async evidence(query: EvidenceQuery = {}): Promise<ArmEvidence[]> {
    await this.writer.flushed();
    // The rebuild's reads (all traces, with forgetting) go arm by arm off `trace_arms`.
    this.fillArms();
    return this.bigRead('evidence', query);
  }

  /**
   * Deletes the live traces older than `before`, a chunk of PURGE_CHUNK per transaction: a gateway
   * writing to the same file waits for one chunk at a time, not for the whole purge (one
   * transaction over 490,727 of 1 M traces held its commits up to 3.3 s under load, and past
   * `busy_timeout`'s 5 s they fail). Each chunk moves its traces' sums to `purged_evidence` and out
   * of `trace_stats` together with the rows, so every state between two chunks is consistent.
   */
  async purge(before: number, chunk = PURGE_CHUNK): Promise<{ deleted: number }> {
    await this.writer.flushed();
    this.db.exec('CREATE TEMP TABLE IF NOT EXISTS purge_chunk (seq INTEGER PRIMARY KEY)');
    const take = this.stmt(`INSERT INTO purge_chunk SELECT seq FROM traces WHERE time < ? AND source = 'live' LIMIT ?`);
    const inChunk = 'seq IN (SELECT seq FROM purge_chunk)';
    const one = this.db.transaction((cutoff: number): number => {
      this.stmt('DELETE FROM purge_chunk').run();
      if (take.run(cutoff, Math.max(1, Math.floor(chunk))).changes === 0) return 0;
      this.stmt(`
        INSERT INTO purged_evidence (query_class, model_key, count, successes, quality, feedback_count, feedback_sum,
                                     cost_sum, cost_count, latency_sum_ms, last_time, ${PURGED_PER_SOURCE.columns})
        SELECT query_class, model_key, COUNT(*), SUM(outcome = 'success'), SUM(${QUALITY}), SUM(feedback IS NOT NULL),
               COALESCE(SUM(feedback), 0), COALESCE(SUM(cost_usd), 0), SUM(cost_usd IS NOT NULL), SUM(latency_ms), MAX(time),
               ${PURGED_PER_SOURCE.sums}
        FROM traces WHERE ${inChunk} AND model_key <> '' GROUP BY query_class, model_key
        ON CONFLICT (query_class, model_key) DO UPDATE SET
          count = count + excluded.count, successes = successes + excluded.successes, quality = quality + excluded.quality,
          feedback_count = feedback_count + excluded.feedback_count, feedback_sum = feedback_sum + excluded.feedback_sum,
          cost_sum = cost_sum + excluded.cost_sum, cost_count = cost_count + excluded.cost_count,
          latency_sum_ms = latency_sum_ms + excluded.latency_sum_ms, last_time = MAX(last_time, excluded.last_time),
          ${PURGED_PER_SOURCE.added('purged_evidence')}`).run();
      this.stmt(`
        DELETE FROM trace_arms WHERE (query_class, model_key, seq) IN
          (SELECT query_class, model_key, seq FROM traces WHERE ${inChunk})`).run();
      // Out of `trace_stats`: the sums of the chunk's traces up to the fill mark (those past it are not
      // counted there yet). A group's last time stays: a purge deletes the oldest live traces.
      this.stmt(`
        UPDATE trace_stats SET count = trace_stats.count - g.count, successes = trace_stats.successes - g.successes,
          feedback_count = trace_stats.feedback_count - g.feedbackCount, feedback_sum = trace_stats.feedback_sum - g.feedbackSum,
          prompt_tokens = trace_stats.prompt_tokens - g.promptTokens, completion_tokens = trace_stats.completion_tokens - g.completionTokens,
          cost_usd = trace_stats.cost_usd - g.costUsd
        FROM (SELECT ${STATS_SUMS} FROM traces WHERE ${inChunk} AND seq <= ? GROUP BY query_class, model_key, instance_id) AS g
        WHERE trace_stats.query_class = g.queryClass AND trace_stats.model_key = g.model AND trace_stats.instance_id IS g.instanceId`)
        .run(this.armsMark());
      this.stmt('DELETE FROM trace_stats WHERE count = 0').run();
      return this.stmt(`DELETE FROM traces WHERE ${inChunk}`).run().changes;
    });
    let deleted = 0;
    // IMMEDIATE: each chunk takes the write lock first (waiting its turn), as a read that turned into
    // a write would fail at once if another connection committed in between.
    for (let n = one.immediate(before); n > 0; n = one.immediate(before)) {
      deleted += n;
      // Room for another connection's commit before the next chunk.
      await new Promise((resolve) => setTimeout(resolve, PURGE_PAUSE_MS));
    }
    // A group whose newest counted trace was purged now holds only older offline traces, or none.
    if (deleted > 0) {
      this.stmt(`
        UPDATE trace_stats SET last_time = COALESCE((SELECT MAX(t.time) FROM traces t WHERE t.query_class = trace_stats.query_class
          AND t.model_key = trace_stats.model_key AND t.instance_id IS trace_stats.instance_id AND t.seq <= ?), last_time)
        WHERE last_time < ?`).run(this.armsMark(), before);
    }
    return { deleted };
  }

  async purgeOffline(): Promise<{ deleted: number }> {
    await this.writer.flushed();
    const run = this.db.transaction(() => {
      this.stmt('DELETE FROM trace_arms WHERE live = 0').run();
      const deleted = this.stmt(`DELETE FROM traces WHERE source = 'offline'`).run().changes;
      if (deleted > 0) this.recountStats();
      return deleted;
    });
    return { deleted: run() };
  }

  async qualityEvidence(query: QualityEvidenceQuery = {}): Promise<QualityEvidence[]> {
    await this.writer.flushed();
    // `quality_record` holds the traces up to the fill mark; the read does those past it itself.
    this.fillArms();
    return this.bigRead('qualityEvidence', query);
  }

  async recentByArm(perArm: number): Promise<RecentArmTrace[]> {
    await this.writer.flushed();
    this.fillArms();
    return this.bigRead('recentByArm', perArm);
  }

  async stats(range: TimeRange = {}): Promise<StatsSummary> {
    await this.writer.flushed();
    // Every trace's figures come from `trace_arms` and `trace_stats`: a fill (a write, so here)
    // when they are far behind; the read does the few traces past their mark itself.
    if (this.newestSeq() - this.armsMark() >= ARMS_FILL_EVERY) this.fillArms();
    return this.bigRead('stats', range);
  }

  async recent(limit: number): Promise<TraceRecord[]> {
    await this.writer.flushed();
    return (this.stmt(`${SELECT_TRACE} ORDER BY seq DESC LIMIT ?`).all(limit) as TraceRow[]).map(traceFromRow);
  }

  async traffic(query: TrafficQuery): Promise<TrafficBucket[]> {
    await this.writer.flushed();
    return this.bigRead('traffic', query);
  }

  /** The reads on this connection (an in-memory store's, or after the thread failed). */
  private reads(): TraceReads {
    return (this.inlineReads ??= prepareReads(this.db));
  }

  /** A read over many traces: in the background thread when there is one, so the event loop goes on. */
  private bigRead<K extends keyof TraceReads>(op: K, ...args: Parameters<TraceReads[K]>): Promise<ReturnType<TraceReads[K]>> {
    if (this.thread !== null) return this.thread.read(op, ...args);
    return readNow(() => this.reads(), op, args);
  }

  async list(range: TimeRange & { limit?: number }): Promise<TraceRecord[]> {
    await this.writer.flushed();
    return (await this.bigRead('list', range)).map(traceFromRow);
  }

  async count(): Promise<number> {
    await this.writer.flushed();
    return (this.stmt('SELECT COUNT(*) AS n FROM traces').get() as { n: number }).n;
  }

  async *exportTraces(range: ExportQuery = {}): AsyncGenerator<TraceRecord> {
    if (this.closed) throw new Error('trace store is closed');
    await this.writer.flushed();
    const clauses = ['seq > ?'];
    if (range.since !== undefined) clauses.push('time >= ?');
    if (range.until !== undefined) clauses.push('time < ?');
    if (range.source !== undefined) clauses.push('source = ?');
    const page = this.stmt(`SELECT seq, ${COLUMN_LIST} FROM traces WHERE ${clauses.join(' AND ')} ORDER BY seq LIMIT ${PAGE}`);
    const bounds = [range.since, range.until, range.source].filter((v) => v !== undefined);
    // Keyset pages by seq: the connection is free between pages, so writes go on meanwhile.
    let after = 0;
    if (range.newest !== undefined) {
      // Start after the (newest + 1)-th newest trace of the range, if there is one.
      const skip = Math.max(0, Math.floor(range.newest));
      if (skip === 0) return;
      const first = this.stmt(
        `SELECT seq FROM traces WHERE ${clauses.join(' AND ')} ORDER BY seq DESC LIMIT 1 OFFSET ${skip}`,
      ).get(0, ...bounds) as { seq: number } | undefined;
      after = first?.seq ?? 0;
    }
    for (;;) {
      const rows = page.all(after, ...bounds) as (TraceRow & { seq: number })[];
      for (const row of rows) yield traceFromRow(row);
      if (rows.length < PAGE) return;
      after = rows[rows.length - 1]!.seq;
    }
  }

  async importTraces(traces: AsyncIterable<TraceRecord> | Iterable<TraceRecord>): Promise<ImportResult> {
    if (this.closed) throw new Error('trace store is closed');
    // The input is staged in a temporary table (this connection's own), so reading it may take
    // its time without holding a transaction open; one INSERT … SELECT then adds it all or nothing.
    const staging = `temp.tracegate_import_${++importTables}`;
    this.db.exec(`CREATE TABLE ${staging} (n INTEGER PRIMARY KEY, ${COLUMNS.map((c) => (c === 'id' ? 'id UNIQUE' : c)).join(', ')})`);
    try {
      const stage = this.db.prepare(
        `INSERT OR IGNORE INTO ${staging} (${COLUMN_LIST}) VALUES (${COLUMNS.map(() => '?').join(', ')})`,
      );
      const stageMany = this.db.transaction((batch: TraceRecord[]) => {
        for (const t of batch) runInsert(stage, t);
      });
      let read = 0;
      let batch: TraceRecord[] = [];
      for await (const trace of traces) {
        read++;
        batch.push(trace);
        if (batch.length >= PAGE) {
          stageMany(batch);
          batch = [];
        }
      }
      stageMany(batch);
      await this.writer.flushed();
      const { changes } = this.db
        .prepare(
          `INSERT INTO traces (${COLUMN_LIST}) SELECT ${COLUMN_LIST} FROM ${staging}
           WHERE id NOT IN (SELECT id FROM main.traces) ORDER BY n`,
        )
        .run();
      // The imported traces' arms now, not at the gateway's next read.
      this.fillArms();
      return { inserted: changes, skipped: read - changes };
    } finally {
      this.db.exec(`DROP TABLE IF EXISTS ${staging}`);
    }
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('trace store is closed');
    this.stmt('SELECT 1').get();
  }

  async health(): Promise<StoreHealth> {
    await this.ping();
    return { status: 'ok', spoolDepth: 0 };
  }

  /** The file is the database: nothing is ever spooled. */
  spoolDepth(): number {
    return 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.writer.flushed();
    this.closed = true;
    await this.thread?.close();
    // The last connection to close checkpoints the log and removes it.
    this.db.close();
  }

  private readonly statements = new Map<string, Database.Statement>();
  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }
}
