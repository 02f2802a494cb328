import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { BatchWriter } from './batch-writer.js';
import type {
  ArmEvidence,
  ClassModelStats,
  EvidenceQuery,
  FeedbackResult,
  FeedbackUpdate,
  ImportResult,
  RecentArmTrace,
  StatsSummary,
  TimeRange,
  TraceRecord,
  TraceStore,
  TrafficBucket,
  TrafficQuery,
} from './types.js';

const MIGRATIONS = resolve(dirname(fileURLToPath(import.meta.url)), '../../drizzle');

const COLUMNS = [
  'id', 'time', 'request_id', 'query', 'query_length', 'query_class', 'model_key', 'upstream_model',
  'routed', 'reason', 'attempt', 'outcome', 'status', 'error', 'latency_ms', 'ttfb_ms',
  'prompt_tokens', 'completion_tokens', 'cost_usd', 'feedback', 'feedback_time', 'feedback_comment', 'key_name',
  'source', 'instance_id',
] as const;

const SELECT_TRACE = `SELECT ${COLUMNS.join(', ')} FROM traces`;

/** Rows per page of `exportTraces`, and per staging transaction of `importTraces`. */
const PAGE = 500;
let importTables = 0;

/** q of the evidence: a failure is worth 0, a success its feedback when given, else 1. */
const QUALITY = `CASE WHEN outcome = 'success' THEN COALESCE(feedback, 1.0) ELSE 0.0 END`;

interface RawTrace {
  id: string; time: number; request_id: string; query: string | null; query_length: number;
  query_class: string; model_key: string; upstream_model: string; routed: number; reason: string;
  attempt: number; outcome: TraceRecord['outcome']; status: number | null; error: string | null;
  latency_ms: number; ttfb_ms: number | null; prompt_tokens: number | null;
  completion_tokens: number | null; cost_usd: number | null; feedback: number | null;
  feedback_time: number | null; feedback_comment: string | null; key_name: string | null;
  source: TraceRecord['source']; instance_id: string | null;
}

function fromRow(r: RawTrace): TraceRecord {
  return {
    id: r.id, time: r.time, requestId: r.request_id, query: r.query, queryLength: r.query_length,
    queryClass: r.query_class, modelKey: r.model_key, upstreamModel: r.upstream_model,
    routed: r.routed === 1, reason: r.reason, attempt: r.attempt, outcome: r.outcome,
    status: r.status, error: r.error, latencyMs: r.latency_ms, ttfbMs: r.ttfb_ms,
    promptTokens: r.prompt_tokens, completionTokens: r.completion_tokens, costUsd: r.cost_usd,
    feedback: r.feedback, feedbackTime: r.feedback_time, feedbackComment: r.feedback_comment,
    keyName: r.key_name, source: r.source, instanceId: r.instance_id,
  };
}

function toParams(t: TraceRecord): unknown[] {
  return [
    t.id, t.time, t.requestId, t.query, t.queryLength, t.queryClass, t.modelKey, t.upstreamModel,
    t.routed ? 1 : 0, t.reason, t.attempt, t.outcome, t.status, t.error, t.latencyMs, t.ttfbMs,
    t.promptTokens, t.completionTokens, t.costUsd, t.feedback, t.feedbackTime, t.feedbackComment,
    t.keyName, t.source, t.instanceId,
  ];
}

function rangeWhere(range: TimeRange, params: unknown[]): string {
  const clauses: string[] = [];
  if (range.since !== undefined) {
    clauses.push('time >= ?');
    params.push(range.since);
  }
  if (range.until !== undefined) {
    clauses.push('time < ?');
    params.push(range.until);
  }
  return clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '';
}

interface PurgedRow {
  query_class: string; model_key: string; count: number; successes: number; quality: number;
  feedback_count: number; feedback_sum: number; cost_sum: number; cost_count: number;
  latency_sum_ms: number; last_time: number;
}

/**
 * Adds what `purge` folded away. Purged traces are older than every stored one, so with forgetting
 * they weigh γ^(stored traces of the arm) and down from there; their outcomes are taken as evenly
 * spread (the sums are kept without order), which makes their weight (1 − γ^n)/(1 − γ) in all.
 */
function withPurged(live: ArmEvidence[], purged: PurgedRow[], decay: number): ArmEvidence[] {
  const byArm = new Map(live.map((e) => [`${e.queryClass}\u0000${e.model}`, e]));
  const out = [...live];
  for (const p of purged) {
    const key = `${p.query_class}\u0000${p.model_key}`;
    let arm = byArm.get(key);
    if (!arm) {
      arm = { queryClass: p.query_class, model: p.model_key, count: 0, weight: 0, successes: 0, quality: 0, feedbackCount: 0,
        feedbackSum: 0, costSum: 0, costCount: 0, latencySumMs: 0, lastTime: p.last_time };
      byArm.set(key, arm);
      out.push(arm);
    }
    const total = decay === 1 ? p.count : (Math.pow(decay, arm.count) * (1 - Math.pow(decay, p.count))) / (1 - decay);
    const scale = p.count > 0 ? total / p.count : 0;
    arm.count += p.count;
    arm.weight += total;
    arm.successes += p.successes * scale;
    arm.quality += p.quality * scale;
    arm.feedbackCount += p.feedback_count * scale;
    arm.feedbackSum += p.feedback_sum * scale;
    arm.costSum += p.cost_sum * scale;
    arm.costCount += p.cost_count * scale;
    arm.latencySumMs += p.latency_sum_ms * scale;
    arm.lastTime = Math.max(arm.lastTime, p.last_time);
  }
  return out;
}

export interface SqliteStoreOptions {
  /** A file path, or ':memory:'. */
  path: string;
}

/** The embedded trace store: one SQLite file in WAL mode, written through a group-commit writer. */
export class SqliteTraceStore implements TraceStore {
  readonly db: Database.Database;
  private readonly writer: BatchWriter<TraceRecord>;
  private readonly insertStmt: Database.Statement;
  private closed = false;

  constructor(options: SqliteStoreOptions) {
    if (options.path !== ':memory:') mkdirSync(dirname(resolve(options.path)), { recursive: true });
    this.db = new Database(options.path);
    this.db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode: a commit survives a process crash (SIGKILL); only an OS crash can lose the last ones.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    migrate(drizzle(this.db), { migrationsFolder: MIGRATIONS });
    this.insertStmt = this.db.prepare(
      `INSERT INTO traces (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`,
    );
    const insertMany = this.db.transaction((batch: TraceRecord[]) => {
      for (const t of batch) this.insertStmt.run(toParams(t));
    });
    this.writer = new BatchWriter<TraceRecord>((batch) => insertMany(batch));
  }

  insert(trace: TraceRecord): Promise<void> {
    if (this.closed) return Promise.reject(new Error('trace store is closed'));
    return this.writer.write(trace);
  }

  async get(id: string): Promise<TraceRecord | undefined> {
    const row = this.stmt(`${SELECT_TRACE} WHERE id = ?`).get(id) as RawTrace | undefined;
    return row ? fromRow(row) : undefined;
  }

  async setFeedback(id: string, update: FeedbackUpdate, owner?: string | null): Promise<FeedbackResult | undefined> {
    // A trace may still be waiting in the writer's batch; feedback must find it.
    await this.writer.flushed();
    const apply = this.db.transaction((): FeedbackResult | undefined => {
      const row = this.stmt(`${SELECT_TRACE} WHERE id = ?`).get(id) as RawTrace | undefined;
      if (!row) return undefined;
      if (owner !== undefined && row.key_name !== owner) return undefined;
      this.stmt('UPDATE traces SET feedback = ?, feedback_time = ?, feedback_comment = ? WHERE id = ?').run(
        update.score,
        update.time,
        update.comment,
        id,
      );
      const previous = row.feedback;
      return {
        previous,
        trace: { ...fromRow(row), feedback: update.score, feedbackTime: update.time, feedbackComment: update.comment },
      };
    });
    return apply();
  }

  async evidence(query: EvidenceQuery = {}): Promise<ArmEvidence[]> {
    await this.writer.flushed();
    const params: unknown[] = [];
    const decay = query.decay ?? 1;
    let source = 'traces';
    const where = rangeWhere(query, params);
    if (query.maxTraces !== undefined) {
      source = `(SELECT * FROM traces ${where} ORDER BY seq DESC LIMIT ${Math.floor(query.maxTraces)})`;
    } else if (where) {
      source = `(SELECT * FROM traces ${where})`;
    }
    const weight =
      decay === 1
        ? '1.0'
        : `power(${Number(decay)}, ROW_NUMBER() OVER (PARTITION BY query_class, model_key ORDER BY seq DESC) - 1)`;
    // Arms come in order of first appearance.
    const live = this.db
      .prepare(`
      SELECT query_class AS queryClass, model_key AS model, COUNT(*) AS count,
        SUM(w) AS weight,
        SUM(CASE WHEN outcome = 'success' THEN w ELSE 0 END) AS successes,
        SUM(w * q) AS quality,
        SUM(CASE WHEN feedback IS NOT NULL THEN w ELSE 0 END) AS feedbackCount,
        SUM(CASE WHEN feedback IS NOT NULL THEN w * feedback ELSE 0 END) AS feedbackSum,
        SUM(CASE WHEN cost_usd IS NOT NULL THEN w * cost_usd ELSE 0 END) AS costSum,
        SUM(CASE WHEN cost_usd IS NOT NULL THEN w ELSE 0 END) AS costCount,
        SUM(w * latency_ms) AS latencySumMs,
        MAX(time) AS lastTime
      FROM (SELECT seq, query_class, model_key, outcome, feedback, cost_usd, latency_ms, time,
                   ${QUALITY} AS q, ${weight} AS w
            FROM ${source} WHERE model_key <> '')
      GROUP BY query_class, model_key
      ORDER BY MIN(seq)`)
      .all(...params) as ArmEvidence[];
    if (query.since !== undefined || query.maxTraces !== undefined) return live;
    return withPurged(live, this.stmt('SELECT * FROM purged_evidence').all() as PurgedRow[], decay);
  }

  async purge(before: number): Promise<{ deleted: number }> {
    await this.writer.flushed();
    const run = this.db.transaction((cutoff: number) => {
      this.stmt(`
        INSERT INTO purged_evidence (query_class, model_key, count, successes, quality, feedback_count, feedback_sum,
                                     cost_sum, cost_count, latency_sum_ms, last_time)
        SELECT query_class, model_key, COUNT(*), SUM(outcome = 'success'), SUM(${QUALITY}), SUM(feedback IS NOT NULL),
               COALESCE(SUM(feedback), 0), COALESCE(SUM(cost_usd), 0), SUM(cost_usd IS NOT NULL), SUM(latency_ms), MAX(time)
        FROM traces WHERE time < ? AND model_key <> '' GROUP BY query_class, model_key
        ON CONFLICT (query_class, model_key) DO UPDATE SET
          count = count + excluded.count, successes = successes + excluded.successes, quality = quality + excluded.quality,
          feedback_count = feedback_count + excluded.feedback_count, feedback_sum = feedback_sum + excluded.feedback_sum,
          cost_sum = cost_sum + excluded.cost_sum, cost_count = cost_count + excluded.cost_count,
          latency_sum_ms = latency_sum_ms + excluded.latency_sum_ms, last_time = MAX(last_time, excluded.last_time)`).run(cutoff);
      return this.stmt('DELETE FROM traces WHERE time < ?').run(cutoff).changes;
    });
    return { deleted: run(before) };
  }

  async recentByArm(perArm: number): Promise<RecentArmTrace[]> {
    await this.writer.flushed();
    return this.stmt(`
      SELECT id, queryClass, model, age, quality FROM (
        SELECT id, query_class AS queryClass, model_key AS model, ${QUALITY} AS quality,
               ROW_NUMBER() OVER (PARTITION BY query_class, model_key ORDER BY seq DESC) - 1 AS age
        FROM traces)
      WHERE age < ? ORDER BY age DESC`).all(perArm) as RecentArmTrace[];
  }

  async stats(range: TimeRange = {}): Promise<StatsSummary> {
    await this.writer.flushed();
    const params: unknown[] = [];
    const where = rangeWhere(range, params);
    const rows = this.db
      .prepare(`
      WITH ranked AS (
        SELECT query_class, model_key, outcome, feedback, latency_ms, prompt_tokens, completion_tokens, cost_usd,
          ROW_NUMBER() OVER (PARTITION BY query_class, model_key ORDER BY latency_ms) AS rn,
          COUNT(*) OVER (PARTITION BY query_class, model_key) AS n
        FROM traces ${where})
      SELECT query_class AS queryClass, model_key AS model, COUNT(*) AS count,
        SUM(outcome = 'success') AS successes,
        SUM(feedback IS NOT NULL) AS feedbackCount,
        AVG(feedback) AS meanFeedback,
        MAX(CASE WHEN rn = MAX(1, CAST((n * 50 + 99) / 100 AS INTEGER)) THEN latency_ms END) AS latencyP50Ms,
        MAX(CASE WHEN rn = MAX(1, CAST((n * 95 + 99) / 100 AS INTEGER)) THEN latency_ms END) AS latencyP95Ms,
        COALESCE(SUM(prompt_tokens), 0) AS promptTokens,
        COALESCE(SUM(completion_tokens), 0) AS completionTokens,
        COALESCE(SUM(cost_usd), 0) AS costUsd
      FROM ranked GROUP BY query_class, model_key ORDER BY query_class, model_key`)
      .all(...params) as Omit<ClassModelStats, 'successRate'>[];
    const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM traces ${where}`).get(...params) as { n: number }).n;
    return {
      totalTraces: total,
      byClassModel: rows.map((r) => ({ ...r, successRate: r.count > 0 ? r.successes / r.count : 0 })),
    };
  }

  async recent(limit: number): Promise<TraceRecord[]> {
    await this.writer.flushed();
    return (this.stmt(`${SELECT_TRACE} ORDER BY seq DESC LIMIT ?`).all(limit) as RawTrace[]).map(fromRow);
  }

  async traffic(query: TrafficQuery): Promise<TrafficBucket[]> {
    await this.writer.flushed();
    const bucket = Math.max(1, Math.floor(query.bucketMs));
    const params: unknown[] = [bucket, bucket];
    const where = rangeWhere(query, params);
    return this.db
      .prepare(`
      SELECT CAST(time / ? AS INTEGER) * ? AS start, query_class AS queryClass, model_key AS model,
        COUNT(*) AS count, SUM(outcome = 'success') AS successes
      FROM traces ${where}
      GROUP BY start, query_class, model_key ORDER BY start, query_class, model_key`)
      .all(...params) as TrafficBucket[];
  }

  async list(range: TimeRange & { limit?: number }): Promise<TraceRecord[]> {
    await this.writer.flushed();
    const params: unknown[] = [];
    const where = rangeWhere(range, params);
    const limit = range.limit !== undefined ? `LIMIT ${Math.floor(range.limit)}` : '';
    return (this.db.prepare(`${SELECT_TRACE} ${where} ORDER BY seq ${limit}`).all(...params) as RawTrace[]).map(
      fromRow,
    );
  }

  async count(): Promise<number> {
    await this.writer.flushed();
    return (this.stmt('SELECT COUNT(*) AS n FROM traces').get() as { n: number }).n;
  }

  async *exportTraces(range: TimeRange = {}): AsyncGenerator<TraceRecord> {
    if (this.closed) throw new Error('trace store is closed');
    await this.writer.flushed();
    const clauses = ['seq > ?'];
    if (range.since !== undefined) clauses.push('time >= ?');
    if (range.until !== undefined) clauses.push('time < ?');
    const page = this.stmt(`SELECT seq, ${COLUMNS.join(', ')} FROM traces WHERE ${clauses.join(' AND ')} ORDER BY seq LIMIT ${PAGE}`);
    const bounds = [range.since, range.until].filter((v) => v !== undefined);
    // Keyset pages by seq: the connection is free between pages, so writes go on meanwhile.
    let after = 0;
    for (;;) {
      const rows = page.all(after, ...bounds) as (RawTrace & { seq: number })[];
      for (const row of rows) yield fromRow(row);
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
        `INSERT OR IGNORE INTO ${staging} (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`,
      );
      const stageMany = this.db.transaction((batch: TraceRecord[]) => {
        for (const t of batch) stage.run(toParams(t));
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
          `INSERT INTO traces (${COLUMNS.join(', ')}) SELECT ${COLUMNS.join(', ')} FROM ${staging}
           WHERE id NOT IN (SELECT id FROM main.traces) ORDER BY n`,
        )
        .run();
      return { inserted: changes, skipped: read - changes };
    } finally {
      this.db.exec(`DROP TABLE IF EXISTS ${staging}`);
    }
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('trace store is closed');
    this.stmt('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.writer.flushed();
    this.closed = true;
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
