import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { isUnreachable, newPool, silentLogger, withClient, withPgDefaults, type PgStoreOptions, type ResolvedPgOptions, type StoreLogger } from './pg-connection.js';
import { FeedbackChannel } from './pg-feedback-channel.js';
import { migrateLocked } from './pg-migrations.js';
import * as queries from './pg-queries.js';
import { pgQualityEvidence, type PgQuery } from './pg-quality.js';
import { SpooledWriter } from './pg-spooled-writer.js';
import type { QualityEvidence, QualityEvidenceQuery } from './quality-evidence.js';
import { Spool } from './spool.js';
import type {
  ArmEvidence,
  EvidenceQuery,
  ExportQuery,
  FeedbackEvent,
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
import { redactUrl } from './url.js';
import { StoreOpenError, StoreUnavailableError } from '../core/errors.js';


/**
 * The trace store on PostgreSQL, shared by every gateway instance of a fleet. Writes go through an
 * asynchronous group commit (one multi-row INSERT per batch); while the database cannot be reached
 * they go to a local SQLite spool and are written, in order and exactly once (the trace id is
 * unique), when it is back (src/traces/pg-spooled-writer.ts). Its parts: the connections
 * (pg-connection.ts), the migrations (pg-migrations.ts), the queries (pg-queries.ts, pg-quality.ts).
 * Open with `PgTraceStore.open`.
 */
export class PgTraceStore implements TraceStore {
  readonly shared = true;
  private readonly writes: SpooledWriter;
  private readonly logger: StoreLogger;
  /** This process's mark on the feedback it notifies, and the channel it hears the others' on. */
  private readonly origin = randomUUID();
  private channel: FeedbackChannel | null = null;

  private constructor(
    readonly pool: pg.Pool,
    private readonly writePool: pg.Pool,
    spool: Spool,
    private readonly options: ResolvedPgOptions,
  ) {
    this.logger = options.logger ?? silentLogger;
    this.writes = new SpooledWriter({
      spool,
      insert: (batch, timeoutMs) => withClient(this.writePool, (client) => queries.insertTraces(client, batch, timeoutMs)),
      logger: this.logger,
      writeTimeoutMs: options.writeTimeoutMs,
      readTimeoutMs: options.readTimeoutMs,
      groupCommitMs: options.groupCommitMs,
      groupCommitMaxRows: options.groupCommitMaxRows,
    });
  }

  /** Connects, applies the migrations (under an advisory lock), opens the spool and drains what a previous run left in it. */
  static async open(given: PgStoreOptions): Promise<PgTraceStore> {
    const options = withPgDefaults(given);
    const pool = newPool(options, options.poolSize);
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
      store.writes.drain();
    }
    return store;
  }

  /** A read on the pool; a database that cannot be reached is a StoreUnavailableError, and the writes hear of it. */
  private readonly query: PgQuery = async <R extends object>(text: string, params: unknown[] = []): Promise<R[]> => {
    let res: pg.QueryResult<R>;
    try {
      res = await this.pool.query<R>(text, params);
    } catch (err) {
      if (!isUnreachable(err)) throw err;
      this.writes.markDown(err);
      throw new StoreUnavailableError(`PostgreSQL is unreachable (${(err as Error).message})`, { cause: err });
    }
    this.writes.markUp();
    return res.rows;
  };

  insert(trace: TraceRecord): Promise<void> {
    if (this.writes.closing) return Promise.reject(new Error('trace store is closed'));
    return this.writes.write(trace);
  }

  async get(id: string): Promise<TraceRecord | undefined> {
    return (await this.writes.spooled(id)) ?? queries.getTrace(this.query, id);
  }

  async modelOfResponse(responseId: string): Promise<string | undefined> {
    return (await this.writes.spooledModelOfResponse(responseId)) ?? queries.modelOfResponse(this.query, responseId);
  }

  async setFeedback(id: string, update: FeedbackUpdate, owner?: string | null): Promise<FeedbackResult | undefined> {
    const spooled = await this.writes.setSpooledFeedback(id, update, owner);
    if (spooled) return spooled;
    return queries.setFeedback(this.query, id, update, owner, this.origin);
  }

  onFeedback(listener: (event: FeedbackEvent) => void): () => void {
    if (this.writes.closing) return () => {};
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
    await this.writes.caughtUp();
    return queries.evidence(this.query, query);
  }

  /** The quality evidence per arm (QualityEvidence): src/traces/pg-quality.ts. */
  async qualityEvidence(query: QualityEvidenceQuery = {}): Promise<QualityEvidence[]> {
    await this.writes.caughtUp();
    return pgQualityEvidence(this.query, query);
  }

  async purge(before: number): Promise<{ deleted: number }> {
    await this.writes.caughtUp();
    return queries.purge(this.pool, before);
  }

  async purgeOffline(): Promise<{ deleted: number }> {
    await this.writes.caughtUp();
    return queries.purgeOffline(this.pool);
  }

  async recentByArm(perArm: number): Promise<RecentArmTrace[]> {
    await this.writes.caughtUp();
    return queries.recentByArm(this.query, perArm);
  }

  async stats(range: TimeRange = {}): Promise<StatsSummary> {
    await this.writes.caughtUp();
    return queries.stats(this.query, range);
  }

  async recent(limit: number): Promise<TraceRecord[]> {
    await this.writes.caughtUp();
    return queries.recent(this.query, limit);
  }

  async traffic(query: TrafficQuery): Promise<TrafficBucket[]> {
    await this.writes.caughtUp();
    return queries.traffic(this.query, query);
  }

  async list(range: TimeRange & { limit?: number }): Promise<TraceRecord[]> {
    await this.writes.caughtUp();
    return queries.list(this.query, range);
  }

  async count(): Promise<number> {
    await this.writes.caughtUp();
    return queries.count(this.query);
  }

  async *exportTraces(range: ExportQuery = {}): AsyncGenerator<TraceRecord> {
    await this.writes.caughtUp();
    yield* queries.exportTraces(this.query, range);
  }

  async importTraces(traces: AsyncIterable<TraceRecord> | Iterable<TraceRecord>): Promise<ImportResult> {
    if (this.writes.closing) throw new Error('trace store is closed');
    await this.writes.caughtUp();
    return queries.importTraces(this.pool, traces);
  }

  /** One primary-key read on the read pool; undefined at once while PostgreSQL is known to be unreachable. */
  async stickySession(session: string, now: number): Promise<StickySession | undefined> {
    if (this.writes.closing) throw new Error('trace store is closed');
    if (this.writes.unreachable !== null) return undefined;
    const rows = await this.query<StickySession>(
      'SELECT model_key AS "modelKey", expires_at AS "expiresAt" FROM sticky_sessions WHERE session = $1 AND expires_at > $2',
      [session, now],
    );
    return rows[0];
  }

  /**
   * One upsert on the read pool (the trace commits keep their own connections); the last write wins.
   * Dropped while PostgreSQL is known to be unreachable: a session is no trace, it is not spooled.
   */
  async setStickySession(session: string, modelKey: string, expiresAt: number): Promise<void> {
    if (this.writes.closing) throw new Error('trace store is closed');
    if (this.writes.unreachable !== null) return;
    await this.query(
      `INSERT INTO sticky_sessions (session, model_key, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (session) DO UPDATE SET model_key = excluded.model_key, expires_at = excluded.expires_at`,
      [session, modelKey, expiresAt],
    );
  }

  async purgeStickySessions(now: number): Promise<{ deleted: number }> {
    if (this.writes.closing) throw new Error('trace store is closed');
    const res = await this.pool.query('DELETE FROM sticky_sessions WHERE expires_at <= $1', [now]);
    return { deleted: res.rowCount ?? 0 };
  }

  async ping(): Promise<void> {
    if (this.writes.closed) throw new Error('trace store is closed');
    await this.query('SELECT 1');
  }

  async health(): Promise<StoreHealth> {
    if (this.writes.closed) throw new Error('trace store is closed');
    const spoolDepth = this.writes.depth;
    const down = this.writes.unreachable;
    if (down !== null) return { status: 'degraded', spoolDepth, error: `PostgreSQL unreachable: ${down}` };
    if (spoolDepth > 0) return { status: 'degraded', spoolDepth, error: 'writing the local spool to PostgreSQL' };
    try {
      await this.ping();
      return { status: 'ok', spoolDepth: 0 };
    } catch (err) {
      if (isUnreachable(err)) this.writes.markDown(err);
      return { status: 'degraded', spoolDepth: this.writes.depth, error: `PostgreSQL unreachable: ${(err as Error).message}` };
    }
  }

  spoolDepth(): number {
    return this.writes.closed ? 0 : this.writes.depth;
  }

  /**
   * Commits what was handed over (to the spool if need be), gives the drain a moment to empty the
   * spool if PostgreSQL answers, then closes. What is left in the spool is written by the next start.
   */
  async close(): Promise<void> {
    if (this.writes.closing) return;
    await this.writes.close();
    await Promise.all([this.pool.end(), this.writePool.end(), this.channel?.close()]);
  }
}
