import type pg from 'pg';
import { compileTuple } from './compiled.js';
import { withClient } from './pg-connection.js';
import { FEEDBACK_CHANNEL, feedbackPayloadSql } from './pg-feedback-channel.js';
import { discount, type PgQuery } from './pg-quality.js';
import { withPurged, type PurgedRow } from './purged-evidence.js';
import { QUALITY_EVIDENCE_ROW } from './quality-evidence.js';
import { PURGED_PER_SOURCE, replaceableBy, WEIGHTED_PER_SOURCE } from './feedback-source.js';
import { traceFromRow, type TraceRow } from './row.js';
import { TRACE_COLUMNS, type TraceColumnSpec } from './trace-columns.js';
import type {
  ArmEvidence,
  ClassModelStats,
  EvidenceQuery,
  ExportQuery,
  FeedbackResult,
  FeedbackSourceCount,
  FeedbackUpdate,
  ImportResult,
  InstanceStats,
  RecentArmTrace,
  StatsSummary,
  TimeRange,
  TraceRecord,
  TrafficBucket,
  TrafficQuery,
} from './types.js';

/**
 * The PostgreSQL store's queries, one function each: reads through the store's `query` (which tells
 * the store whether PostgreSQL answered), the transactions on a connection of a pool. The statements
 * on whole traces take their columns from the description of a trace (src/traces/trace-columns.ts),
 * built once when this module loads.
 */

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

/** Rows per page of `exportTraces` and of import staging. */
const PAGE = 500;
/** With forgetting, the traces of an arm older than this many half-lives weigh under 2^-40 each (see `recentEvidence`). */
const NEGLIGIBLE_HALF_LIVES = 40;

/** Sorts as SQLite does (bytewise), whatever the database's collation. */
const C = 'COLLATE "C"';

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

/** PostgreSQL text cannot hold U+0000; SQLite can. It becomes U+FFFD here. */
function text(value: string | null): string | null {
  return value !== null && value.includes('\u0000') ? value.replaceAll('\u0000', '\uFFFD') : value;
}

/** A trace's values in column order, its text through `text`. */
const rowOf = compileTuple<TraceRecord>(COLUMNS.map((c) => ({ from: c.field, convert: c.pg === 'text' })));

/** The traces as one array per column, for the unnest statements. */
function toArrays(batch: readonly TraceRecord[]): unknown[][] {
  const cols: unknown[][] = COLUMNS.map(() => new Array<unknown>(batch.length));
  for (let i = 0; i < batch.length; i++) {
    const row = rowOf(batch[i]!, text);
    for (let c = 0; c < row.length; c++) cols[c]![i] = row[c];
  }
  return cols;
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

/** Writes traces (an id already there is skipped); their number written. */
export async function insertTraces(client: pg.PoolClient, batch: readonly TraceRecord[], timeoutMs: number): Promise<number> {
  const res = await client.query({ ...INSERT, values: toArrays(batch), query_timeout: timeoutMs } as pg.QueryConfig);
  return res.rowCount ?? 0;
}

export async function getTrace(query: PgQuery, id: string): Promise<TraceRecord | undefined> {
  const rows = await query<TraceRow>(`${SELECT_TRACE} WHERE id = $1`, [id]);
  return rows[0] ? traceFromRow(rows[0]) : undefined;
}

/** The model key of the newest trace with this `response_id`, or undefined (the partial index on response_id finds it). */
export async function modelOfResponse(query: PgQuery, responseId: string): Promise<string | undefined> {
  const rows = await query<{ model_key: string }>('SELECT model_key FROM traces WHERE response_id = $1 ORDER BY time DESC LIMIT 1', [responseId]);
  return rows[0]?.model_key;
}

/**
 * Stores feedback on a trace in PostgreSQL and notifies the other instances (`origin`: this
 * process's mark on what it notifies); undefined if there is no such trace, or it is another
 * client key's when `owner` is given.
 */
export async function setFeedback(
  query: PgQuery,
  id: string,
  update: FeedbackUpdate,
  owner: string | null | undefined,
  origin: string,
): Promise<FeedbackResult | undefined> {
  // One statement, the row locked as it is read: whether this source may replace the trace's
  // feedback (the sources `replaceableBy` lists; feedback stored without one counts as `human`) is
  // decided on the feedback it has when the update is written. The other instances hear of it when
  // it commits (FeedbackChannel): the one that answered learns from it at once.
  const comment = text(update.comment);
  const rows = await query<TraceRow & { applied: boolean }>(
    `WITH old AS (
       SELECT ${COLUMN_LIST} FROM traces
       WHERE id = $1 AND ($5::boolean IS FALSE OR key_name IS NOT DISTINCT FROM $6::text) FOR UPDATE),
     updated AS (
       UPDATE traces t SET feedback = $2::float8, feedback_time = $3, feedback_comment = $4, feedback_source = $8::text
       FROM old WHERE t.id = old.id AND old.outcome <> 'refused' AND (old.feedback IS NULL OR COALESCE(old.feedback_source, 'human') = ANY($9::text[]))
       RETURNING t.id)
     SELECT old.*, updated.id IS NOT NULL AS applied,
       CASE WHEN updated.id IS NOT NULL
         THEN pg_notify('${FEEDBACK_CHANNEL}', ${feedbackPayloadSql('$7::text', 'old', 'old.feedback', '$2::float8', '$8::text')}) END
     FROM old LEFT JOIN updated ON true`,
    [id, update.score, update.time, comment, owner !== undefined, owner ?? null, origin, update.source, replaceableBy(update.source)],
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

/** Evidence per arm, with what `purge` folded away unless the query narrows it. */
export async function evidence(query: PgQuery, q: EvidenceQuery): Promise<ArmEvidence[]> {
  const decay = q.decay ?? 1;
  const whole = q.since === undefined && q.until === undefined && q.maxTraces === undefined;
  const live =
    whole && decay < 1 && decay > 0
      ? await recentEvidence(query, decay, q.source)
      : await scannedEvidence(query, q, decay);
  if (q.since !== undefined || q.maxTraces !== undefined || q.source === 'offline') return live;
  const purged = await query<PurgedRow>('SELECT * FROM purged_evidence');
  return withPurged(live, purged, decay);
}

/** Evidence over every trace in the range: one window over the table (what SQLite does). */
async function scannedEvidence(query: PgQuery, q: EvidenceQuery, decay: number): Promise<ArmEvidence[]> {
  const range = new Range(q);
  const where = range.where();
  let source = 'traces';
  if (q.maxTraces !== undefined) {
    source = `(SELECT * FROM traces ${where} ORDER BY seq DESC LIMIT ${Math.floor(q.maxTraces)}) src`;
  } else if (where) {
    source = `(SELECT * FROM traces ${where}) src`;
  }
  const weight =
    decay === 1 ? '1.0::float8' : discount(`${Number(decay)}::float8`, 'ROW_NUMBER() OVER (PARTITION BY query_class, model_key ORDER BY seq DESC) - 1');
  return query<ArmEvidence>(
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
async function recentEvidence(query: PgQuery, decay: number, source: string | undefined): Promise<ArmEvidence[]> {
  const newest = Math.ceil((NEGLIGIBLE_HALF_LIVES * Math.LN2) / -Math.log(decay));
  if (!Number.isFinite(newest) || newest > 1_000_000) return scannedEvidence(query, { source: source as ExportQuery['source'] }, decay);
  const ofSource = (alias: string) => (source === undefined ? '' : `AND ${alias}.source = $3`);
  const rows = await query<ArmEvidence & { first_seq: number | null }>(
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

/** Deletes the live traces from before `before`, their sums kept in `purged_evidence`, in one transaction. */
export async function purge(pool: pg.Pool, before: number): Promise<{ deleted: number }> {
  return withClient(pool, async (client) => {
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

export async function purgeOffline(pool: pg.Pool): Promise<{ deleted: number }> {
  const res = await pool.query(`DELETE FROM traces WHERE source = 'offline'`);
  return { deleted: res.rowCount ?? 0 };
}

export async function recentByArm(query: PgQuery, perArm: number): Promise<RecentArmTrace[]> {
  // Per arm along the index: only its newest `perArm` traces are read.
  return query<RecentArmTrace>(
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

export async function stats(query: PgQuery, range: TimeRange): Promise<StatsSummary> {
  const r = new Range(range);
  const where = r.where();
  // Two grouped passes, side by side: per class × model with the percentiles as ordered-set
  // aggregates (one sort per group; on 1 M traces about 0.3 s, where two window functions took 1.5 s),
  // per instance, and the rated traces per source (off the partial index of quality evidence). The
  // total is the sum of the groups.
  const [rows, byInstance, feedbackBySource] = await Promise.all([
    query<Omit<ClassModelStats, 'successRate'>>(
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
    query<InstanceStats>(
      `SELECT instance_id AS "instanceId", COUNT(*) AS count, COUNT(*) FILTER (WHERE outcome = 'success') AS successes,
         COUNT(feedback) AS "feedbackCount", COALESCE(SUM(cost_usd), 0) AS "costUsd", MAX(time) AS "lastTime"
       FROM traces ${where} GROUP BY instance_id ORDER BY instance_id ${C} NULLS FIRST`,
      r.params,
    ),
    query<FeedbackSourceCount>(
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

export async function recent(query: PgQuery, limit: number): Promise<TraceRecord[]> {
  return (await query<TraceRow>(`${SELECT_TRACE} ORDER BY seq DESC LIMIT $1`, [Math.max(0, Math.floor(limit))])).map(traceFromRow);
}

export async function traffic(query: PgQuery, q: TrafficQuery): Promise<TrafficBucket[]> {
  const bucket = Math.max(1, Math.floor(q.bucketMs));
  const r = new Range(q);
  const b = r.param(bucket);
  return query<TrafficBucket>(
    `SELECT (time / ${b}::int8) * ${b}::int8 AS start, query_class AS "queryClass", model_key AS model,
       COUNT(*) AS count, COUNT(*) FILTER (WHERE outcome = 'success') AS successes
     FROM traces ${r.where()}
     GROUP BY 1, query_class, model_key ORDER BY 1, query_class ${C}, model_key ${C}`,
    r.params,
  );
}

export async function list(query: PgQuery, range: TimeRange & { limit?: number }): Promise<TraceRecord[]> {
  const r = new Range(range);
  const limit = range.limit !== undefined ? `LIMIT ${Math.max(0, Math.floor(range.limit))}` : '';
  return (await query<TraceRow>(`${SELECT_TRACE} ${r.where()} ORDER BY seq ${limit}`, r.params)).map(traceFromRow);
}

export async function count(query: PgQuery): Promise<number> {
  return (await query<{ n: number }>('SELECT COUNT(*) AS n FROM traces'))[0]?.n ?? 0;
}

/** Every trace of the range in the order recorded, a page at a time. */
export async function* exportTraces(query: PgQuery, range: ExportQuery): AsyncGenerator<TraceRecord> {
  // Keyset pages by seq: no transaction or cursor is held between pages.
  let after = 0;
  if (range.newest !== undefined) {
    // Start after the (newest + 1)-th newest trace of the range, if there is one.
    const skip = Math.max(0, Math.floor(range.newest));
    if (skip === 0) return;
    const r = new Range(range);
    const first = await query<{ seq: number }>(
      `SELECT seq FROM traces ${r.where()} ORDER BY seq DESC LIMIT 1 OFFSET ${skip}`,
      r.params,
    );
    after = first[0]?.seq ?? 0;
  }
  for (;;) {
    const r = new Range(range);
    const from = r.param(after);
    const rows = await query<TraceRow & { seq: number }>(
      `SELECT seq, ${COLUMN_LIST} FROM traces ${r.where(`seq > ${from}`)} ORDER BY seq LIMIT ${PAGE}`,
      r.params,
    );
    for (const row of rows) yield traceFromRow(row);
    if (rows.length < PAGE) return;
    after = rows[rows.length - 1]!.seq;
  }
}

/** Adds traces all or nothing, in one transaction; ids already present are skipped. */
export async function importTraces(pool: pg.Pool, traces: AsyncIterable<TraceRecord> | Iterable<TraceRecord>): Promise<ImportResult> {
  // Staged in a temporary table inside one transaction: all or nothing, and in the order given.
  return withClient(pool, async (client) => {
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
