import { randomUUID } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { traceFromRow, type TraceRow } from './row.js';
import { TRACE_COLUMNS, type TraceColumnSpec } from './trace-columns.js';
import { AsyncBatchWriter } from './group-commit.js';
import { Spool, type SpooledTrace } from './spool.js';
import { QUALITY_EVIDENCE_ROW, type QualityEvidence, type QualityEvidenceQuery } from './quality-evidence.js';
import { discount, pgQualityEvidence } from './pg-quality.js';
import { withPurged, type PurgedRow } from './purged-evidence.js';
import { FEEDBACK_CHANNEL, FeedbackChannel, feedbackPayloadSql } from './pg-feedback-channel.js';
import { PURGED_PER_SOURCE, replaceableBy, WEIGHTED_PER_SOURCE } from './feedback-source.js';
import type {
  ArmEvidence,
  ClassModelStats,
  EvidenceQuery,
  ExportQuery,
  FeedbackEvent,
  FeedbackResult,
  FeedbackSourceCount,
  FeedbackUpdate,
  ImportResult,
  InstanceStats,
  RecentArmTrace,
  StatsSummary,
  StoreHealth,
  TimeRange,
  TraceRecord,
  TraceStore,
  TrafficBucket,
  TrafficQuery,
} from './types.js';
import { StoreOpenError, StoreUnavailableError } from './types.js';
import { redactUrl } from './url.js';

const MIGRATIONS = resolve(dirname(fileURLToPath(import.meta.url)), '../../drizzle/pg');

/** pg_advisory_lock key held while migrating, so instances starting together do not race. */
const MIGRATION_LOCK = 7_346_290_113_372_001n;

/** The trace's columns (src/traces/trace-columns.ts), in order: the order of `toArrays`. */
const COLUMNS: readonly TraceColumnSpec[] = TRACE_COLUMNS;
const NAMES = COLUMNS.map((c) => c.column);
const COLUMN_LIST = NAMES.join(', ');
const SELECT_TRACE = `SELECT ${COLUMN_LIST} FROM traces`;

/** One statement for any number of rows: each column is one array parameter, so the text never changes (prepared once per connection). */
const UNNEST = `SELECT ${NAMES.map((n) => `u.${n}`).join(', ')}
  FROM unnest(${COLUMNS.map((c, i) => `$${i + 1}::${c.pg}[]`).join(', ')}) WITH ORDINALITY AS u(${COLUMN_LIST}, ord)
  ORDER BY u.ord`;
const INSERT = {
  name: 'tracegate_insert_traces_v2',
  text: `INSERT INTO traces (${COLUMN_LIST}) ${UNNEST} ON CONFLICT (id) DO NOTHING`,
};

/** q of the evidence: a failure is worth 0, a success its feedback when given, else 1. */
const QUALITY = `CASE WHEN outcome = 'success' THEN COALESCE(feedback, 1.0) ELSE 0.0 END`;

/** Rows per page of `exportTraces` and of import staging, and per drain step of the spool. */
const PAGE = 500;
/** With forgetting, the traces of an arm older than this many half-lives weigh under 2^-40 each (see `recentEvidence`). */
const NEGLIGIBLE_HALF_LIVES = 40;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;

/** Sorts as SQLite does (bytewise), whatever the database's collation. */
const C = 'COLLATE "C"';

/** int8 (counts, times, sums of integers) and numeric as JS numbers: every value here fits in 2^53. */
const TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20 || oid === 1700) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format as 'text');
  },
} as pg.CustomTypesConfig;

export interface StoreLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const silent: StoreLogger = { info() {}, warn() {}, error() {} };

export interface PgStoreOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  /** Most connections of this process for reads (default 10); commits have 2 of their own. */
  poolSize?: number;
  /** The local spool file, where traces wait while the database cannot be reached. */
  spoolPath: string;
  /** Connecting longer than this counts as unreachable (default 2000 ms). */
  connectTimeoutMs?: number;
  /** A commit of traces not acknowledged within this goes to the spool instead (default 5000 ms). */
  writeTimeoutMs?: number;
  /** Reads (evidence, stats…) fail after this (default 30000 ms). */
  readTimeoutMs?: number;
  /**
   * `synchronous_commit` of this instance's sessions (default true: a commit is flushed to the WAL on
   * disk before it is acknowledged). False: acknowledged before the flush, which PostgreSQL does within
   * about 200 ms — a crash of PostgreSQL or of its machine can then lose the last commits, as an OS crash
   * can with SQLite's synchronous=NORMAL; a crash of the gateway loses nothing either way.
   */
  synchronousCommit?: boolean;
  /** Group commit: how long a batch gathers (default 1 ms), and its most rows (default 500). */
  groupCommitMs?: number;
  groupCommitMaxRows?: number;
  logger?: StoreLogger;
}


/** PostgreSQL text cannot hold U+0000; SQLite can. It becomes U+FFFD here. */
function text(value: string | null): string | null {
  return value !== null && value.includes('\u0000') ? value.replaceAll('\u0000', '\uFFFD') : value;
}

/** Where each column's array takes its values from: a field of the trace, and whether it is text. */
const ARRAYS = COLUMNS.map((c) => ({ field: c.field, text: c.pg === 'text' }));

/** The traces as one array per column, for the unnest statements. */
function toArrays(batch: readonly TraceRecord[]): unknown[][] {
  const cols: unknown[][] = ARRAYS.map(() => new Array<unknown>(batch.length));
  for (let i = 0; i < batch.length; i++) {
    const t = batch[i]! as unknown as Record<string, unknown>;
    for (let c = 0; c < ARRAYS.length; c++) {
      const { field, text: isText } = ARRAYS[c]!;
      const value = t[field];
      cols[c]![i] = isText ? text(value as string | null) : value;
    }
  }
  return cols;
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  'ECONNABORTED', 'EADDRNOTAVAIL',
]);

/** Whether an error means the database could not be reached (rather than that it refused the statement). */
export function isUnreachable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  // SQLSTATE 08: connection exception; 57P01-03: shutdown, crash, starting up; 53: out of resources.
  if (/^(08|57P0|53)/.test(code) || UNREACHABLE_CODES.has(code)) return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection error|Connection ended|not queryable|Client was closed/i.test(
    message,
  );
}

class Range {
  readonly params: unknown[] = [];
  readonly clauses: string[] = [];
  constructor(range: TimeRange & { source?: string }) {
    if (range.since !== undefined) this.clauses.push(`time >= ${this.param(range.since)}`);
    if (range.until !== undefined) this.clauses.push(`time < ${this.param(range.until)}`);
    if (range.source !== undefined) this.clauses.push(`source = ${this.param(range.source)}`);
  }
  param(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }
  where(...more: string[]): string {
    const all = [...this.clauses, ...more];
    return all.length > 0 ? `WHERE ${all.join(' AND ')}` : '';
  }
}

/**
 * The trace store on PostgreSQL, shared by every gateway instance of a fleet. Writes go through an
 * asynchronous group commit (one multi-row INSERT per batch); while the database cannot be reached
 * they go to a local SQLite spool and are written, in order and exactly once (the trace id is
 * unique), when it is back. Open with `PgTraceStore.open`.
 */
export class PgTraceStore implements TraceStore {
  readonly shared = true;
  private readonly writer: AsyncBatchWriter<TraceRecord>;
  private readonly logger: StoreLogger;
  private readonly writeTimeoutMs: number;
  private readonly readTimeoutMs: number;
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
  private progress: { promise: Promise<void>; resolve: () => void };
  private wake: (() => void) | null = null;
  private closing = false;
  private closed = false;
  /** This process's mark on the feedback it notifies, and the channel it hears the others' on. */
  private readonly origin = randomUUID();
  private channel: FeedbackChannel | null = null;

  private constructor(
    readonly pool: pg.Pool,
    private readonly writePool: pg.Pool,
    private readonly spool: Spool,
    private readonly options: PgStoreOptions,
  ) {
    this.logger = options.logger ?? silent;
    this.writeTimeoutMs = options.writeTimeoutMs ?? 5000;
    this.readTimeoutMs = options.readTimeoutMs ?? 30_000;
    this.progress = newSignal();
    this.writer = new AsyncBatchWriter((batch) => this.commit(batch), {
      delayMs: options.groupCommitMs ?? 1,
      maxBatch: options.groupCommitMaxRows ?? 500,
      // One batch at a time: traces get their `seq` in the order they were handed over (overlapping
      // INSERTs would interleave it), which is the order forgetting counts in.
      maxInFlight: 1,
    });
  }

  /** Connects, applies the migrations (under an advisory lock), opens the spool and drains what a previous run left in it. */
  static async open(options: PgStoreOptions): Promise<PgTraceStore> {
    const pool = newPool(options, options.poolSize ?? 10);
    // Writes have connections of their own: reads (a dashboard's stats, a sync) never make a commit
    // wait for a connection, which would look like an outage.
    const writePool = newPool(options, 2);
    let spool: Spool | undefined;
    try {
      await migrateLocked(pool);
      spool = new Spool(options.spoolPath);
    } catch (err) {
      await Promise.all([pool.end().catch(() => {}), writePool.end().catch(() => {})]);
      throw new StoreOpenError(`cannot open the PostgreSQL trace store at ${redactUrl(options.url)}: ${(err as Error).message}`, { cause: err });
    }
    const store = new PgTraceStore(pool, writePool, spool, options);
    if (spool.depth > 0) {
      store.logger.warn({ spoolDepth: spool.depth, spool: spool.path }, 'traces left in the spool by an earlier run: writing them to PostgreSQL');
      store.drain();
    }
    return store;
  }

  insert(trace: TraceRecord): Promise<void> {
    if (this.closing) return Promise.reject(new Error('trace store is closed'));
    return this.writer.write(trace);
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
          await this.insertRows(batch, this.writeTimeoutMs);
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

  private async insertRows(batch: readonly TraceRecord[], timeoutMs: number): Promise<number> {
    return this.withClient(this.writePool, async (client) => {
      const res = await client.query({ ...INSERT, values: toArrays(batch), query_timeout: timeoutMs } as pg.QueryConfig);
      return res.rowCount ?? 0;
    });
  }

  /** A pooled connection for `work`; a connection that failed is closed rather than reused. */
  private async withClient<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    // A connection that breaks between two statements emits 'error': that must not end the process.
    const onError = () => {};
    client.on('error', onError);
    let failure: Error | undefined;
    try {
      return await work(client);
    } catch (err) {
      failure = err as Error;
      throw err;
    } finally {
      client.off('error', onError);
      client.release(failure !== undefined && isUnreachable(failure) ? failure : undefined);
    }
  }

  private async query<R extends object>(text: string, params: unknown[] = []): Promise<R[]> {
    let res: pg.QueryResult<R>;
    try {
      res = await this.pool.query<R>(text, params);
    } catch (err) {
      if (!isUnreachable(err)) throw err;
      this.markDown(err);
      throw new StoreUnavailableError(`PostgreSQL is unreachable (${(err as Error).message})`, { cause: err });
    }
    this.markUp();
    return res.rows;
  }

  private markDown(err: unknown): void {
    const message = (err as Error)?.message ?? String(err);
    if (this.downError === null) {
      this.logger.warn({ error: message, spoolDepth: this.spool.depth }, 'PostgreSQL unreachable: traces go to the local spool');
    }
    this.downError = message;
  }

  private markUp(): void {
    if (this.downError !== null) {
      this.logger.info({ spoolDepth: this.spool.depth }, 'PostgreSQL reachable again');
      this.downError = null;
      // A drain waiting to retry goes now.
      this.wake?.();
    }
  }

  /** Writes the spool to PostgreSQL, oldest first, until it is empty (new traces join its end meanwhile). */
  private drain(): void {
    if (this.draining !== null || this.closed) return;
    this.draining = (async () => {
      let backoff = RETRY_MIN_MS;
      while (!this.closed) {
        const entries = this.spool.peek(PAGE);
        if (entries.length === 0) break;
        let failure: unknown = null;
        this.drainIds = new Set(entries.map((e) => e.trace.id));
        this.drainStep = this.insertRows(
          entries.map((e) => e.trace),
          this.writeTimeoutMs,
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
          if (this.closing) break;
          await this.sleep(backoff);
          backoff = Math.min(RETRY_MAX_MS, backoff * 2);
        } else {
          await this.isolate(entries);
        }
        this.signal();
      }
      if (this.spool.depth === 0 && !this.closed) this.logger.info({}, 'trace spool written to PostgreSQL');
    })().finally(() => {
      this.draining = null;
      this.signal();
    });
  }

  /** A batch PostgreSQL refused: row by row, setting aside (in the spool file) the rows it refuses. */
  private async isolate(entries: SpooledTrace[]): Promise<void> {
    for (const entry of entries) {
      try {
        await this.insertRows([entry.trace], this.writeTimeoutMs);
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
  private async caughtUp(): Promise<void> {
    if (this.closed) throw new Error('trace store is closed');
    await this.writer.flushed();
    const deadline = Date.now() + this.readTimeoutMs;
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

  async get(id: string): Promise<TraceRecord | undefined> {
    await this.writer.flushed();
    const spooled = this.spool.depth > 0 ? this.spool.get(id) : undefined;
    if (spooled) return spooled;
    const rows = await this.query<TraceRow>(`${SELECT_TRACE} WHERE id = $1`, [id]);
    return rows[0] ? traceFromRow(rows[0]) : undefined;
  }

  async setFeedback(id: string, update: FeedbackUpdate, owner?: string | null): Promise<FeedbackResult | undefined> {
    // A trace may still be waiting in the writer's batch; feedback must find it.
    await this.writer.flushed();
    // Not while the drain is sending this very trace: it would reach the database without the feedback.
    while (this.drainStep !== null && this.drainIds.has(id)) await this.drainStep.catch(() => undefined);
    if (this.spool.depth > 0) {
      const spooled = this.spool.setFeedback(id, update, owner);
      if (spooled) return spooled;
    }
    // One statement, the row locked as it is read: whether this source may replace the trace's
    // feedback (the sources `replaceableBy` lists; feedback stored without one counts as `human`) is
    // decided on the feedback it has when the update is written. The other instances hear of it when
    // it commits (FeedbackChannel): the one that answered learns from it at once.
    const comment = text(update.comment);
    const rows = await this.query<TraceRow & { applied: boolean }>(
      `WITH old AS (
         SELECT ${COLUMN_LIST} FROM traces
         WHERE id = $1 AND ($5::boolean IS FALSE OR key_name IS NOT DISTINCT FROM $6::text) FOR UPDATE),
       updated AS (
         UPDATE traces t SET feedback = $2::float8, feedback_time = $3, feedback_comment = $4, feedback_source = $8::text
         FROM old WHERE t.id = old.id AND (old.feedback IS NULL OR COALESCE(old.feedback_source, 'human') = ANY($9::text[]))
         RETURNING t.id)
       SELECT old.*, updated.id IS NOT NULL AS applied,
         CASE WHEN updated.id IS NOT NULL
           THEN pg_notify('${FEEDBACK_CHANNEL}', ${feedbackPayloadSql('$7::text', 'old', 'old.feedback', '$2::float8', '$8::text')}) END
       FROM old LEFT JOIN updated ON true`,
      [id, update.score, update.time, comment, owner !== undefined, owner ?? null, this.origin, update.source, replaceableBy(update.source)],
    );
    const row = rows[0];
    if (!row) return undefined;
    const trace = traceFromRow(row);
    if (!row.applied) return { applied: false, trace, previous: row.feedback };
    return {
      applied: true,
      trace: { ...trace, feedback: update.score, feedbackTime: update.time, feedbackComment: comment, feedbackSource: update.source },
      previous: row.feedback,
    };
  }

  onFeedback(listener: (event: FeedbackEvent) => void): () => void {
    if (this.closing) return () => {};
    this.channel ??= new FeedbackChannel({
      url: this.options.url,
      connectTimeoutMs: this.options.connectTimeoutMs,
      origin: this.origin,
      logger: this.logger,
    });
    return this.channel.subscribe(listener);
  }

  /** Resolves once feedback from other processes is being heard (for tests). */
  async feedbackListening(): Promise<void> {
    await this.channel?.listening();
  }

  async evidence(query: EvidenceQuery = {}): Promise<ArmEvidence[]> {
    await this.caughtUp();
    const decay = query.decay ?? 1;
    const whole = query.since === undefined && query.until === undefined && query.maxTraces === undefined;
    const live =
      whole && decay < 1 && decay > 0
        ? await this.recentEvidence(decay, query.source)
        : await this.scannedEvidence(query, decay);
    if (query.since !== undefined || query.maxTraces !== undefined || query.source === 'offline') return live;
    const purged = await this.query<PurgedRow>('SELECT * FROM purged_evidence');
    return withPurged(live, purged, decay);
  }

  /** The quality evidence per arm (QualityEvidence): src/traces/pg-quality.ts. */
  async qualityEvidence(query: QualityEvidenceQuery = {}): Promise<QualityEvidence[]> {
    await this.caughtUp();
    return pgQualityEvidence((text, params) => this.query(text, params), query);
  }

  /** Evidence over every trace in the range: one window over the table (what SQLite does). */
  private async scannedEvidence(query: EvidenceQuery, decay: number): Promise<ArmEvidence[]> {
    const range = new Range(query);
    const where = range.where();
    let source = 'traces';
    if (query.maxTraces !== undefined) {
      source = `(SELECT * FROM traces ${where} ORDER BY seq DESC LIMIT ${Math.floor(query.maxTraces)}) src`;
    } else if (where) {
      source = `(SELECT * FROM traces ${where}) src`;
    }
    const weight =
      decay === 1 ? '1.0::float8' : discount(`${Number(decay)}::float8`, 'ROW_NUMBER() OVER (PARTITION BY query_class, model_key ORDER BY seq DESC) - 1');
    return this.query<ArmEvidence>(
      `SELECT query_class AS "queryClass", model_key AS model, COUNT(*) AS count, ${SUMS}, MAX(time) AS "lastTime"
       FROM (SELECT seq, query_class, model_key, outcome, feedback, feedback_source, cost_usd, latency_ms, time,
                    ${QUALITY} AS q, ${weight} AS w
             FROM ${source} WHERE model_key <> '') x
       GROUP BY query_class, model_key
       ORDER BY MIN(seq)`,
      range.params,
    );
  }

  /**
   * Evidence with forgetting over the whole store, without scanning it: the arms and their counts
   * from `arm_counts` (kept by triggers), each arm's first trace from the index, and the discounted
   * sums over its newest traces down to a weight of 2^-40 (40 half-lives): what is older weighs, all
   * together, under 2^-40 / (1 − γ) (7e-11 with a half-life of 50), far below what can change a
   * decision (the policy itself forgets late feedback beyond 20 half-lives). This is what keeps a
   * sync every 2 s cheap on a large table.
   */
  private async recentEvidence(decay: number, source: string | undefined): Promise<ArmEvidence[]> {
    const newest = Math.ceil((NEGLIGIBLE_HALF_LIVES * Math.LN2) / -Math.log(decay));
    if (!Number.isFinite(newest) || newest > 1_000_000) return this.scannedEvidence({ source: source as ExportQuery['source'] }, decay);
    const ofSource = (alias: string) => (source === undefined ? '' : `AND ${alias}.source = $3`);
    const rows = await this.query<ArmEvidence & { first_seq: number | null }>(
      `WITH arms AS (
         SELECT query_class, model_key, SUM(count) AS count FROM arm_counts c
         WHERE model_key <> '' ${ofSource('c')} GROUP BY query_class, model_key HAVING SUM(count) > 0)
       SELECT a.query_class AS "queryClass", a.model_key AS model, a.count, s.*
       FROM arms a CROSS JOIN LATERAL (
         SELECT ${SUMS}, MAX(time) AS "lastTime",
           (SELECT MIN(seq) FROM traces f WHERE f.query_class = a.query_class AND f.model_key = a.model_key ${ofSource('f')}) AS first_seq
         FROM (SELECT outcome, feedback, feedback_source, cost_usd, latency_ms, time, ${QUALITY} AS q,
                      ${discount('$1::float8', 'ROW_NUMBER() OVER (ORDER BY seq DESC) - 1')} AS w
               FROM (SELECT seq, outcome, feedback, feedback_source, cost_usd, latency_ms, time FROM traces t
                     WHERE t.query_class = a.query_class AND t.model_key = a.model_key ${ofSource('t')}
                     ORDER BY t.seq DESC LIMIT $2) newest) x) s
       WHERE s.first_seq IS NOT NULL
       ORDER BY s.first_seq`,
      source === undefined ? [decay, newest] : [decay, newest, source],
    );
    return rows.map(({ first_seq: _first, ...row }) => row);
  }

  async purge(before: number): Promise<{ deleted: number }> {
    await this.caughtUp();
    return this.withClient(this.pool, async (client) => {
      await client.query('BEGIN');
      try {
        await client.query(
          `INSERT INTO purged_evidence (query_class, model_key, count, successes, quality, feedback_count, feedback_sum,
                                        cost_sum, cost_count, latency_sum_ms, last_time, ${PURGED_PER_SOURCE.columns})
           SELECT query_class, model_key, COUNT(*), COUNT(*) FILTER (WHERE outcome = 'success'), SUM(${QUALITY}),
                  COUNT(feedback), COALESCE(SUM(feedback), 0), COALESCE(SUM(cost_usd), 0), COUNT(cost_usd),
                  SUM(latency_ms), MAX(time), ${PURGED_PER_SOURCE.sums}
           FROM traces WHERE time < $1 AND model_key <> '' AND source = 'live' GROUP BY query_class, model_key
           ON CONFLICT (query_class, model_key) DO UPDATE SET
             count = purged_evidence.count + excluded.count, successes = purged_evidence.successes + excluded.successes,
             quality = purged_evidence.quality + excluded.quality,
             feedback_count = purged_evidence.feedback_count + excluded.feedback_count,
             feedback_sum = purged_evidence.feedback_sum + excluded.feedback_sum,
             cost_sum = purged_evidence.cost_sum + excluded.cost_sum, cost_count = purged_evidence.cost_count + excluded.cost_count,
             latency_sum_ms = purged_evidence.latency_sum_ms + excluded.latency_sum_ms,
             last_time = GREATEST(purged_evidence.last_time, excluded.last_time),
             ${PURGED_PER_SOURCE.added('purged_evidence')}`,
          [before],
        );
        const deleted = await client.query(`DELETE FROM traces WHERE time < $1 AND source = 'live'`, [before]);
        await client.query('COMMIT');
        return { deleted: deleted.rowCount ?? 0 };
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      }
    });
  }

  async purgeOffline(): Promise<{ deleted: number }> {
    await this.caughtUp();
    const res = await this.pool.query(`DELETE FROM traces WHERE source = 'offline'`);
    return { deleted: res.rowCount ?? 0 };
  }

  async recentByArm(perArm: number): Promise<RecentArmTrace[]> {
    await this.caughtUp();
    // Per arm along the index: only its newest `perArm` traces are read.
    return this.query<RecentArmTrace>(
      `WITH arms AS (SELECT query_class, model_key FROM arm_counts WHERE source = 'live' AND count > 0)
       SELECT r.id, a.query_class AS "queryClass", a.model_key AS model, r.age, r.quality,
              r.outcome <> 'success' AS failed, r.feedback,
              CASE WHEN r.feedback IS NULL THEN NULL ELSE COALESCE(r.feedback_source, 'human') END AS "feedbackSource"
       FROM arms a CROSS JOIN LATERAL (
         SELECT id, (ROW_NUMBER() OVER (ORDER BY seq DESC) - 1) AS age, q AS quality, outcome, feedback, feedback_source
         FROM (SELECT id, seq, ${QUALITY} AS q, outcome, feedback, feedback_source FROM traces t
               WHERE t.query_class = a.query_class AND t.model_key = a.model_key AND t.source = 'live'
               ORDER BY t.seq DESC LIMIT $1) newest) r
       ORDER BY r.age DESC`,
      [Math.max(0, Math.floor(perArm))],
    );
  }

  async stats(range: TimeRange = {}): Promise<StatsSummary> {
    await this.caughtUp();
    const r = new Range(range);
    const where = r.where();
    // Two grouped passes, side by side: per class × model with the percentiles as ordered-set
    // aggregates (one sort per group; on 1 M traces about 0.3 s, where two window functions took 1.5 s),
    // per instance, and the rated traces per source (off the partial index of quality evidence). The
    // total is the sum of the groups.
    const [rows, byInstance, feedbackBySource] = await Promise.all([
      this.query<Omit<ClassModelStats, 'successRate'>>(
        `SELECT query_class AS "queryClass", model_key AS model, COUNT(*) AS count,
           COUNT(*) FILTER (WHERE outcome = 'success') AS successes,
           COUNT(feedback) AS "feedbackCount",
           AVG(feedback) AS "meanFeedback",
           percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms) AS "latencyP50Ms",
           percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) AS "latencyP95Ms",
           COALESCE(SUM(prompt_tokens), 0) AS "promptTokens",
           COALESCE(SUM(completion_tokens), 0) AS "completionTokens",
           COALESCE(SUM(cost_usd), 0) AS "costUsd"
         FROM traces ${where} GROUP BY query_class, model_key ORDER BY query_class ${C}, model_key ${C}`,
        r.params,
      ),
      this.query<InstanceStats>(
        `SELECT instance_id AS "instanceId", COUNT(*) AS count, COUNT(*) FILTER (WHERE outcome = 'success') AS successes,
           COUNT(feedback) AS "feedbackCount", COALESCE(SUM(cost_usd), 0) AS "costUsd", MAX(time) AS "lastTime"
         FROM traces ${where} GROUP BY instance_id ORDER BY instance_id ${C} NULLS FIRST`,
        r.params,
      ),
      this.query<FeedbackSourceCount>(
        `SELECT query_class AS "queryClass", model_key AS model, COALESCE(feedback_source, 'human') AS source, COUNT(*) AS count
         FROM traces ${r.where(QUALITY_EVIDENCE_ROW, 'feedback IS NOT NULL')}
         GROUP BY 1, 2, 3 ORDER BY query_class ${C}, model_key ${C}, 3`,
        r.params,
      ),
    ]);
    return {
      totalTraces: rows.reduce((n, row) => n + row.count, 0),
      byClassModel: rows.map((row) => ({ ...row, successRate: row.count > 0 ? row.successes / row.count : 0 })),
      byInstance,
      feedbackBySource,
    };
  }

  async recent(limit: number): Promise<TraceRecord[]> {
    await this.caughtUp();
    return (await this.query<TraceRow>(`${SELECT_TRACE} ORDER BY seq DESC LIMIT $1`, [Math.max(0, Math.floor(limit))])).map(traceFromRow);
  }

  async traffic(query: TrafficQuery): Promise<TrafficBucket[]> {
    await this.caughtUp();
    const bucket = Math.max(1, Math.floor(query.bucketMs));
    const r = new Range(query);
    const b = r.param(bucket);
    return this.query<TrafficBucket>(
      `SELECT (time / ${b}::int8) * ${b}::int8 AS start, query_class AS "queryClass", model_key AS model,
         COUNT(*) AS count, COUNT(*) FILTER (WHERE outcome = 'success') AS successes
       FROM traces ${r.where()}
       GROUP BY 1, query_class, model_key ORDER BY 1, query_class ${C}, model_key ${C}`,
      r.params,
    );
  }

  async list(range: TimeRange & { limit?: number }): Promise<TraceRecord[]> {
    await this.caughtUp();
    const r = new Range(range);
    const limit = range.limit !== undefined ? `LIMIT ${Math.max(0, Math.floor(range.limit))}` : '';
    return (await this.query<TraceRow>(`${SELECT_TRACE} ${r.where()} ORDER BY seq ${limit}`, r.params)).map(traceFromRow);
  }

  async count(): Promise<number> {
    await this.caughtUp();
    return (await this.query<{ n: number }>('SELECT COUNT(*) AS n FROM traces'))[0]?.n ?? 0;
  }

  async *exportTraces(range: ExportQuery = {}): AsyncGenerator<TraceRecord> {
    await this.caughtUp();
    // Keyset pages by seq: no transaction or cursor is held between pages.
    let after = 0;
    if (range.newest !== undefined) {
      // Start after the (newest + 1)-th newest trace of the range, if there is one.
      const skip = Math.max(0, Math.floor(range.newest));
      if (skip === 0) return;
      const r = new Range(range);
      const first = await this.query<{ seq: number }>(
        `SELECT seq FROM traces ${r.where()} ORDER BY seq DESC LIMIT 1 OFFSET ${skip}`,
        r.params,
      );
      after = first[0]?.seq ?? 0;
    }
    for (;;) {
      const r = new Range(range);
      const from = r.param(after);
      const rows = await this.query<TraceRow & { seq: number }>(
        `SELECT seq, ${COLUMN_LIST} FROM traces ${r.where(`seq > ${from}`)} ORDER BY seq LIMIT ${PAGE}`,
        r.params,
      );
      for (const row of rows) yield traceFromRow(row);
      if (rows.length < PAGE) return;
      after = rows[rows.length - 1]!.seq;
    }
  }

  async importTraces(traces: AsyncIterable<TraceRecord> | Iterable<TraceRecord>): Promise<ImportResult> {
    if (this.closing) throw new Error('trace store is closed');
    await this.caughtUp();
    // Staged in a temporary table inside one transaction: all or nothing, and in the order given.
    return this.withClient(this.pool, async (client) => {
      await client.query('BEGIN');
      try {
        await client.query(
          `CREATE TEMP TABLE tracegate_import (n bigserial PRIMARY KEY, ${COLUMNS.map((c) => `${c.column} ${c.pg}${c.column === 'id' ? ' UNIQUE' : ''}`).join(', ')}) ON COMMIT DROP`,
        );
        const stage = `INSERT INTO tracegate_import (${COLUMN_LIST}) ${UNNEST} ON CONFLICT (id) DO NOTHING`;
        let read = 0;
        let batch: TraceRecord[] = [];
        for await (const trace of traces) {
          read++;
          batch.push(trace);
          if (batch.length >= PAGE) {
            await client.query(stage, toArrays(batch));
            batch = [];
          }
        }
        if (batch.length > 0) await client.query(stage, toArrays(batch));
        const added = await client.query({
          text: `INSERT INTO traces (${COLUMN_LIST})
                 SELECT ${COLUMN_LIST} FROM tracegate_import s WHERE NOT EXISTS (SELECT 1 FROM traces t WHERE t.id = s.id)
                 ORDER BY n ON CONFLICT (id) DO NOTHING`,
          query_timeout: 24 * 3600 * 1000,
        } as pg.QueryConfig);
        await client.query('COMMIT');
        const inserted = added.rowCount ?? 0;
        return { inserted, skipped: read - inserted };
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      }
    });
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('trace store is closed');
    await this.query('SELECT 1');
  }

  async health(): Promise<StoreHealth> {
    if (this.closed) throw new Error('trace store is closed');
    const spoolDepth = this.spool.depth;
    if (this.downError !== null) return { status: 'degraded', spoolDepth, error: `PostgreSQL unreachable: ${this.downError}` };
    if (spoolDepth > 0) return { status: 'degraded', spoolDepth, error: 'writing the local spool to PostgreSQL' };
    try {
      await this.ping();
      return { status: 'ok', spoolDepth: 0 };
    } catch (err) {
      if (isUnreachable(err)) this.markDown(err);
      return { status: 'degraded', spoolDepth: this.spool.depth, error: `PostgreSQL unreachable: ${(err as Error).message}` };
    }
  }

  spoolDepth(): number {
    return this.closed ? 0 : this.spool.depth;
  }

  /**
   * Commits what was handed over (to the spool if need be), gives the drain a moment to empty the
   * spool if PostgreSQL answers, then closes. What is left in the spool is written by the next start.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await this.writer.flushed();
    if (this.spool.depth > 0 && this.downError === null) {
      this.drain();
      const deadline = Date.now() + this.writeTimeoutMs;
      while (this.spool.depth > 0 && this.downError === null && Date.now() < deadline && this.draining !== null) {
        await Promise.race([this.progress.promise, new Promise((r) => setTimeout(r, 100))]);
      }
    }
    this.closed = true;
    this.wake?.();
    if (this.draining) await this.draining;
    this.spool.close();
    await Promise.all([this.pool.end(), this.writePool.end(), this.channel?.close()]);
  }
}

/** An arm's sums over rows with a weight `w` and a quality `q`; the rows need `outcome`, `feedback`, `feedback_source`, `cost_usd` and `latency_ms`. */
const SUMS = `SUM(w) AS weight,
  SUM(CASE WHEN outcome = 'success' THEN w ELSE 0 END) AS successes,
  SUM(w * q) AS quality,
  SUM(CASE WHEN feedback IS NOT NULL THEN w ELSE 0 END) AS "feedbackCount",
  SUM(CASE WHEN feedback IS NOT NULL THEN w * feedback ELSE 0 END) AS "feedbackSum",
  ${WEIGHTED_PER_SOURCE},
  SUM(CASE WHEN cost_usd IS NOT NULL THEN w * cost_usd ELSE 0 END) AS "costSum",
  SUM(CASE WHEN cost_usd IS NOT NULL THEN w ELSE 0 END) AS "costCount",
  SUM(w * latency_ms) AS "latencySumMs"`;

function newPool(options: PgStoreOptions, max: number): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.url,
    max,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 2000,
    idleTimeoutMillis: 30_000,
    query_timeout: options.readTimeoutMs ?? 30_000,
    keepAlive: true,
    application_name: 'tracegate',
    // The planner's cost estimates for the per-arm queries on a large table would start JIT
    // compilation, which costs far more (about 250 ms) than running them.
    options: options.synchronousCommit === false ? '-c jit=off -c synchronous_commit=off' : '-c jit=off',
    types: TYPES,
  });
  // An idle connection that breaks (the server restarts) is dropped by the pool; that is not an error here.
  pool.on('error', () => {});
  return pool;
}

function newSignal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Applies the migrations in drizzle/pg while holding an advisory lock, so instances starting together take turns. */
async function migrateLocked(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  const onError = () => {};
  client.on('error', onError);
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK.toString()]);
    try {
      await migrate(drizzle(client), { migrationsFolder: MIGRATIONS });
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK.toString()]).catch(() => {});
    }
  } finally {
    client.off('error', onError);
    client.release();
  }
}
