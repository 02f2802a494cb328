import type Database from 'better-sqlite3';
import { WEIGHTED_PER_SOURCE } from './feedback-source.js';
import { QUALITY_EVIDENCE_ROW, type QualityEvidence, type QualityEvidenceQuery } from './quality-evidence.js';
import { withPurged, type PurgedRow } from './purged-evidence.js';
import type { TraceRow } from './row.js';
import { prepareQualityReads } from './sqlite-quality.js';
import { QUALITY, rangeWhere, SELECT_TRACE, STATS_SUMS } from './sqlite-statements.js';
import type {
  ArmEvidence,
  ClassModelStats,
  EvidenceQuery,
  FeedbackSourceCount,
  RecentArmTrace,
  StatsSummary,
  TimeRange,
  TrafficBucket,
  TrafficQuery,
} from './types.js';

/**
 * The reads that may go over many traces: the store runs them in its background thread when it has
 * one (`list` too: the first trace of a dashboard's window sorts the window's traces).
 */
export interface TraceReads {
  stats(range: TimeRange): StatsSummary;
  traffic(query: TrafficQuery): TrafficBucket[];
  /** The traces of a range in the order they were recorded (the first `limit`). */
  list(range: TimeRange & { limit?: number }): TraceRow[];
  /** Evidence per arm, with what `purge` folded away (unless `since` or `maxTraces` narrows it). */
  evidence(query: EvidenceQuery): ArmEvidence[];
  /** Each arm's newest live traces, oldest first. */
  recentByArm(perArm: number): RecentArmTrace[];
  /**
   * Quality evidence per arm, with what `purge` folded away (unless a range or `source: 'offline'`
   * narrows it): src/traces/sqlite-quality.ts.
   */
  qualityEvidence(query: QualityEvidenceQuery): QualityEvidence[];
}

/** Runs one read on this thread's connection (`reads()` may throw too): its result or its error as a promise. */
export function readNow<K extends keyof TraceReads>(reads: () => TraceReads, op: K, args: unknown[]): Promise<ReturnType<TraceReads[K]>> {
  try {
    return Promise.resolve((reads()[op] as (...a: unknown[]) => ReturnType<TraceReads[K]>)(...args));
  } catch (err) {
    return Promise.reject(err);
  }
}


/**
 * The big reads of the SQLite store on one connection. The store's background thread runs them on
 * a connection of its own (src/traces/sqlite-read-worker.ts), so a dashboard's reads over a million
 * traces never hold the gateway's event loop; the store runs them on its own connection when it has
 * no thread.
 */
export function prepareReads(db: Database.Database): TraceReads {
  const statements = new Map<string, Database.Statement>();
  function stmt(text: string): Database.Statement {
    let s = statements.get(text);
    if (!s) {
      s = db.prepare(text);
      statements.set(text, s);
    }
    return s;
  }

  /** One class × model × instance group of `stats`: its sums, and its latencies when read with them. */
  interface StatsGroup {
    queryClass: string;
    model: string;
    instanceId: string | null;
    count: number;
    successes: number;
    feedbackCount: number;
    feedbackSum: number;
    /** Comma-separated (SQLite writes a double as text so that it reads back exactly). */
    latencies: string | null;
    promptTokens: number;
    completionTokens: number;
    costUsd: number;
    lastTime: number;
  }
  type ArmLatencies = { queryClass: string; model: string; latencies: string };

  /** A `stats` group read from the traces themselves (a time range, or those past the fill mark). */
  const statsGroups = `SELECT ${STATS_SUMS}, group_concat(latency_ms) AS latencies FROM traces`;
  /**
   * An arm's evidence sums over rows with a weight `w` and a quality `q` (ArmEvidence's fields);
   * the rows need `outcome`, `feedback`, `feedback_source`, `cost_usd`, `latency_ms` and `time`.
   */
  const weightedSums = `SUM(w) AS weight, SUM(CASE WHEN outcome = 'success' THEN w ELSE 0 END) AS successes,
    SUM(w * q) AS quality, SUM(CASE WHEN feedback IS NOT NULL THEN w ELSE 0 END) AS feedbackCount,
    SUM(CASE WHEN feedback IS NOT NULL THEN w * feedback ELSE 0 END) AS feedbackSum,
    ${WEIGHTED_PER_SOURCE},
    SUM(CASE WHEN cost_usd IS NOT NULL THEN w * cost_usd ELSE 0 END) AS costSum,
    SUM(CASE WHEN cost_usd IS NOT NULL THEN w ELSE 0 END) AS costCount, SUM(w * latency_ms) AS latencySumMs,
    MAX(time) AS lastTime`;
  const armsMark = (): number => (stmt('SELECT seq FROM trace_arms_filled WHERE id = 1').pluck().get() as number | undefined) ?? 0;

  /**
   * Traces with feedback per class × model × source, feedback without a source counted as 'human'
   * (`storedFeedbackSource`); through the partial index of quality evidence, which holds every rated
   * trace (a refused attempt takes no feedback: there was no answer to rate).
   */
  function feedbackBySource(where: string, params: unknown[]): FeedbackSourceCount[] {
    return stmt(`
      SELECT query_class AS queryClass, model_key AS model, COALESCE(feedback_source, 'human') AS source, COUNT(*) AS count
      FROM traces ${where ? `${where} AND` : 'WHERE'} ${QUALITY_EVIDENCE_ROW} AND feedback IS NOT NULL
      GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`).all(...params) as FeedbackSourceCount[];
  }

  /** Whether no trace lies outside the range (two seeks of the time index). */
  function holdsEveryTrace(range: TimeRange): boolean {
    if (range.since === undefined && range.until === undefined) return true;
    const { first, last } = stmt('SELECT MIN(time) AS first, MAX(time) AS last FROM traces').get() as {
      first: number | null;
      last: number | null;
    };
    if (first === null || last === null) return false;
    return (range.since === undefined || range.since <= first) && (range.until === undefined || range.until > last);
  }

  function stats(range: TimeRange): StatsSummary {
    const params: unknown[] = [];
    // A range that holds every trace (a dashboard's "last 30 days" over a younger store) is every trace.
    const where = holdsEveryTrace(range) ? '' : rangeWhere(range, params);
    let groups: StatsGroup[];
    let armLatencies: ArmLatencies[] = [];
    let bySource: FeedbackSourceCount[];
    if (where) {
      // A time range: one pass over its traces through the time index, grouped by class × model ×
      // instance, each group's latencies with its sums.
      groups = db.prepare(`${statsGroups} ${where} GROUP BY query_class, model_key, instance_id`).all(...params) as StatsGroup[];
      bySource = feedbackBySource(where, params);
    } else {
      // Every trace: the sums up to the fill mark from `trace_stats`, the latencies up to it from
      // `trace_arms` in its order (no sort), and the few traces past it grouped here; in one read
      // transaction, so a fill cannot land between them. Grouping all the traces instead sorted
      // them (0.7–1.5 s over 1 M traces).
      [groups, armLatencies, bySource] = db.transaction((): [StatsGroup[], ArmLatencies[], FeedbackSourceCount[]] => {
        const summed = stmt(`
          SELECT query_class AS queryClass, model_key AS model, instance_id AS instanceId, count, successes,
            feedback_count AS feedbackCount, feedback_sum AS feedbackSum, NULL AS latencies,
            prompt_tokens AS promptTokens, completion_tokens AS completionTokens, cost_usd AS costUsd, last_time AS lastTime
          FROM trace_stats`).all() as StatsGroup[];
        const recent = stmt(`${statsGroups} WHERE seq > ? GROUP BY query_class, model_key, instance_id`).all(armsMark()) as StatsGroup[];
        const filed = stmt(`
          SELECT query_class AS queryClass, model_key AS model, group_concat(latency_ms) AS latencies
          FROM trace_arms GROUP BY query_class, model_key`).all() as ArmLatencies[];
        return [[...summed, ...recent], filed, feedbackBySource('', [])];
      })();
    }
    const filedLatencies = new Map(armLatencies.map((a) => [`${a.queryClass}\u0000${a.model}`, a.latencies]));
    let total = 0;
    const arms = new Map<string, StatsGroup[]>();
    const instances = new Map<string | null, StatsSummary['byInstance'][number]>();
    for (const g of groups) {
      total += g.count;
      const key = `${g.queryClass}\u0000${g.model}`;
      const arm = arms.get(key);
      if (arm) arm.push(g);
      else arms.set(key, [g]);
      const inst = instances.get(g.instanceId);
      if (inst) {
        inst.count += g.count;
        inst.successes += g.successes;
        inst.feedbackCount += g.feedbackCount;
        inst.costUsd += g.costUsd;
        inst.lastTime = Math.max(inst.lastTime, g.lastTime);
      } else {
        instances.set(g.instanceId, {
          instanceId: g.instanceId,
          count: g.count,
          successes: g.successes,
          feedbackCount: g.feedbackCount,
          costUsd: g.costUsd,
          lastTime: g.lastTime,
        });
      }
    }
    const byText = (a: string | null, b: string | null) => (a === b ? 0 : a === null ? -1 : b === null ? 1 : a < b ? -1 : 1);
    const rows = [...arms.values()]
      .sort((a, b) => byText(a[0]!.queryClass, b[0]!.queryClass) || byText(a[0]!.model, b[0]!.model))
      .map((parts): ClassModelStats => {
        let count = 0, successes = 0, feedbackCount = 0, feedbackSum = 0, promptTokens = 0, completionTokens = 0, costUsd = 0;
        for (const g of parts) {
          count += g.count;
          successes += g.successes;
          feedbackCount += g.feedbackCount;
          feedbackSum += g.feedbackSum;
          promptTokens += g.promptTokens;
          completionTokens += g.completionTokens;
          costUsd += g.costUsd;
        }
        const texts = parts.map((g) => g.latencies);
        texts.push(filedLatencies.get(`${parts[0]!.queryClass}\u0000${parts[0]!.model}`) ?? null);
        const text = texts.filter((t) => t !== null && t !== '').join(',');
        const sorted = Float64Array.from(JSON.parse(`[${text}]`) as number[]).sort();
        // The nearest-rank percentile: the value at rank max(1, ⌈n·p/100⌉).
        const at = (p: number) => sorted[Math.max(1, Math.floor((sorted.length * p + 99) / 100)) - 1] ?? null;
        return {
          queryClass: parts[0]!.queryClass,
          model: parts[0]!.model,
          count,
          successes,
          feedbackCount,
          meanFeedback: feedbackCount > 0 ? feedbackSum / feedbackCount : null,
          latencyP50Ms: at(50),
          latencyP95Ms: at(95),
          promptTokens,
          completionTokens,
          costUsd,
          successRate: count > 0 ? successes / count : 0,
        };
      });
    const byInstance = [...instances.values()].sort((a, b) => byText(a.instanceId, b.instanceId));
    return { totalTraces: total, byClassModel: rows, byInstance, feedbackBySource: bySource };
  }

  function traffic(query: TrafficQuery): TrafficBucket[] {
    const bucket = Math.max(1, Math.floor(query.bucketMs));
    const params: unknown[] = [bucket, bucket];
    const where = rangeWhere(query, params);
    return db
      .prepare(`
      SELECT CAST(time / ? AS INTEGER) * ? AS start, query_class AS queryClass, model_key AS model,
        COUNT(*) AS count, SUM(outcome = 'success') AS successes
      FROM traces ${where}
      GROUP BY start, query_class, model_key ORDER BY start, query_class, model_key`)
      .all(...params) as TrafficBucket[];
  }

  function list(range: TimeRange & { limit?: number }): TraceRow[] {
    const params: unknown[] = [];
    const where = rangeWhere(range, params);
    const limit = range.limit !== undefined ? `LIMIT ${Math.floor(range.limit)}` : '';
    return db.prepare(`${SELECT_TRACE} ${where} ORDER BY seq ${limit}`).all(...params) as TraceRow[];
  }

  function evidence(query: EvidenceQuery): ArmEvidence[] {
    const params: unknown[] = [];
    const decay = query.decay ?? 1;
    if (
      decay > 0 &&
      decay < 1 &&
      query.since === undefined &&
      query.until === undefined &&
      query.maxTraces === undefined &&
      query.source !== 'offline'
    ) {
      // The policy's rebuild (all traces, with forgetting): read off the index, arm by arm.
      const arms = discountedEvidence(decay, query.source === 'live');
      return withPurged(arms, stmt('SELECT * FROM purged_evidence').all() as PurgedRow[], decay);
    }
    let source = 'traces';
    let where = rangeWhere(query, params);
    if (query.source !== undefined) {
      // Written out (it is one of two words), so the planner can use the partial index of offline traces.
      if (query.source !== 'live' && query.source !== 'offline') throw new Error(`unknown trace source ${String(query.source)}`);
      where = `${where ? `${where} AND` : 'WHERE'} source = '${query.source}'`;
    }
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
    const live = db
      .prepare(`
      SELECT query_class AS queryClass, model_key AS model, COUNT(*) AS count, ${weightedSums}
      FROM (SELECT seq, query_class, model_key, outcome, feedback, feedback_source, cost_usd, latency_ms, time,
                   ${QUALITY} AS q, ${weight} AS w
            FROM ${source} WHERE model_key <> '')
      GROUP BY query_class, model_key
      ORDER BY MIN(seq)`)
      .all(...params) as ArmEvidence[];
    if (query.since !== undefined || query.maxTraces !== undefined || query.source === 'offline') return live;
    return withPurged(live, stmt('SELECT * FROM purged_evidence').all() as PurgedRow[], decay);
  }

  function recentByArm(perArm: number): RecentArmTrace[] {
    // Per arm, its newest live traces straight off `trace_arms`: the rows read are the rows
    // returned, however many traces the store holds.
    const newest = stmt(`
      SELECT t.id, ${QUALITY} AS quality, t.outcome, t.feedback, t.feedback_source
      FROM trace_arms a JOIN traces t ON t.seq = a.seq
      WHERE a.query_class = ? AND a.model_key = ? AND a.live = 1 ORDER BY a.seq DESC LIMIT ?`);
    type Row = { id: string; quality: number; outcome: string; feedback: number | null; feedback_source: RecentArmTrace['feedbackSource'] };
    const out: RecentArmTrace[] = [];
    for (const arm of arms()) {
      const rows = newest.all(arm.queryClass, arm.model, Math.max(0, Math.floor(perArm))) as Row[];
      for (let age = 0; age < rows.length; age++) {
        const r = rows[age]!;
        out.push({
          id: r.id, queryClass: arm.queryClass, model: arm.model, age, quality: r.quality, failed: r.outcome !== 'success',
          feedback: r.feedback, feedbackSource: r.feedback === null ? null : (r.feedback_source ?? 'human'),
        });
      }
    }
    return out.sort((a, b) => b.age - a.age);
  }

  /**
   * The arms (query class × model key) that have traces, in index order: one index seek per arm
   * (a skip scan of `trace_arms`) instead of a pass over every trace.
   */
  function arms(): { queryClass: string; model: string }[] {
    const first = stmt(
      'SELECT query_class AS queryClass, model_key AS model FROM trace_arms ORDER BY query_class, model_key LIMIT 1',
    );
    const next = stmt(`
      SELECT query_class AS queryClass, model_key AS model FROM trace_arms
      WHERE (query_class, model_key) > (?, ?) ORDER BY query_class, model_key LIMIT 1`);
    const out: { queryClass: string; model: string }[] = [];
    for (
      let arm = first.get() as { queryClass: string; model: string } | undefined;
      arm !== undefined;
      arm = next.get(arm.queryClass, arm.model) as { queryClass: string; model: string } | undefined
    ) {
      out.push(arm);
    }
    return out;
  }

  /**
   * `evidence` over all traces (or all live ones) with forgetting (decay < 1), arm by arm off the
   * `trace_arms`: the count from its key alone (live = all − offline, the offline ones
   * from their partial index), the discounted sums from the arm's newest traces only. A trace k
   * places back weighs decay^k, so past the newest K = 64 / log2(1 / decay) traces (3,200 for a half-life of 50) the rest weighs under 2^-64 of
   * the newest and cannot change a sum in double precision; over 1 M traces this reads a few
   * thousand rows per arm instead of sorting them all. `lastTime` is the latest time among those
   * K, which is the arm's latest unless K requests of the arm were in flight at once.
   */
  function discountedEvidence(decay: number, liveOnly: boolean): ArmEvidence[] {
    const keep = Math.ceil(64 / -Math.log2(decay));
    const live = liveOnly ? 'AND a.live = 1' : '';
    const all = stmt('SELECT COUNT(*) AS count FROM trace_arms WHERE query_class = ? AND model_key = ?').pluck();
    const offline = stmt(
      `SELECT COUNT(*) AS count FROM traces WHERE query_class = ? AND model_key = ? AND source = 'offline'`,
    ).pluck();
    const first = stmt(
      `SELECT a.seq FROM trace_arms a WHERE a.query_class = ? AND a.model_key = ? ${live} ORDER BY a.seq LIMIT 1`,
    ).pluck();
    const sums = stmt(`
      SELECT ${weightedSums}
      FROM (SELECT outcome, feedback, feedback_source, cost_usd, latency_ms, time, ${QUALITY} AS q,
                   power(?, ROW_NUMBER() OVER (ORDER BY seq DESC) - 1) AS w
            FROM (SELECT t.seq, outcome, feedback, feedback_source, cost_usd, a.latency_ms, time
                  FROM trace_arms a JOIN traces t ON t.seq = a.seq
                  WHERE a.query_class = ? AND a.model_key = ? ${live} ORDER BY a.seq DESC LIMIT ?))`);
    const found: (ArmEvidence & { firstSeq: number })[] = [];
    for (const { queryClass, model } of arms()) {
      if (model === '') continue;
      // Both counts come from indexes alone: live = all − offline.
      const count = (all.get(queryClass, model) as number) - (liveOnly ? (offline.get(queryClass, model) as number) : 0);
      if (count === 0) continue;
      const firstSeq = first.get(queryClass, model) as number;
      const sum = sums.get(decay, queryClass, model, keep) as Omit<ArmEvidence, 'queryClass' | 'model' | 'count'>;
      found.push({ queryClass, model, count, ...sum, firstSeq });
    }
    // Arms come in order of first appearance, as the general query orders them.
    found.sort((a, b) => a.firstSeq - b.firstSeq);
    return found.map(({ firstSeq: _, ...arm }) => arm);
  }

  return { stats, traffic, list, evidence, recentByArm, qualityEvidence: prepareQualityReads(db) };
}
