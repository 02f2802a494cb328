import type Database from 'better-sqlite3';
import type { TraceRow } from './row.js';
import type { ClassModelStats, StatsSummary, TimeRange, TrafficBucket, TrafficQuery } from './types.js';

/** The SQL of the reads, built by the store from its column lists. */
export interface ReadStatements {
  /** The sums of a `stats` group, named as StatsGroup's fields (the store's STATS_SUMS). */
  statsSums: string;
  /** `SELECT` of a trace's columns `FROM traces`. */
  selectTrace: string;
}

/**
 * The reads that may go over many traces: the store runs them in its background thread when it has
 * one (`list` too: the first trace of a dashboard's window sorts the window's traces).
 */
export interface TraceReads {
  stats(range: TimeRange): StatsSummary;
  traffic(query: TrafficQuery): TrafficBucket[];
  /** The traces of a range in the order they were recorded (the first `limit`). */
  list(range: TimeRange & { limit?: number }): TraceRow[];
}

/**
 * `WHERE` for a time range (or '' for none); pushes its values onto `params`. Stands alone, like
 * prepareReads, which the background thread takes from source text with it.
 */
export function rangeWhere(range: TimeRange, params: unknown[]): string {
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

/**
 * The big reads of the SQLite store on one connection. The store's background thread runs this
 * very function from its source text (src/traces/store-thread.ts), so a dashboard's reads over a
 * million traces never hold the gateway's event loop; it must stand alone: no imports, no names
 * from outside but `rangeWhere` (sent with it), only its arguments and JavaScript's globals.
 */
export function prepareReads(db: Database.Database, sql: ReadStatements): TraceReads {
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
  const statsGroups = `SELECT ${sql.statsSums}, group_concat(latency_ms) AS latencies FROM traces`;
  const armsMark = (): number => (stmt('SELECT seq FROM trace_arms_filled WHERE id = 1').pluck().get() as number | undefined) ?? 0;

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
    if (where) {
      // A time range: one pass over its traces through the time index, grouped by class × model ×
      // instance, each group's latencies with its sums.
      groups = db.prepare(`${statsGroups} ${where} GROUP BY query_class, model_key, instance_id`).all(...params) as StatsGroup[];
    } else {
      // Every trace: the sums up to the fill mark from `trace_stats`, the latencies up to it from
      // `trace_arms` in its order (no sort), and the few traces past it grouped here; in one read
      // transaction, so a fill cannot land between them. Grouping all the traces instead sorted
      // them (0.7–1.5 s over 1 M traces).
      [groups, armLatencies] = db.transaction((): [StatsGroup[], ArmLatencies[]] => {
        const summed = stmt(`
          SELECT query_class AS queryClass, model_key AS model, instance_id AS instanceId, count, successes,
            feedback_count AS feedbackCount, feedback_sum AS feedbackSum, NULL AS latencies,
            prompt_tokens AS promptTokens, completion_tokens AS completionTokens, cost_usd AS costUsd, last_time AS lastTime
          FROM trace_stats`).all() as StatsGroup[];
        const recent = stmt(`${statsGroups} WHERE seq > ? GROUP BY query_class, model_key, instance_id`).all(armsMark()) as StatsGroup[];
        const filed = stmt(`
          SELECT query_class AS queryClass, model_key AS model, group_concat(latency_ms) AS latencies
          FROM trace_arms GROUP BY query_class, model_key`).all() as ArmLatencies[];
        return [[...summed, ...recent], filed];
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
    return { totalTraces: total, byClassModel: rows, byInstance };
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
    return db.prepare(`${sql.selectTrace} ${where} ORDER BY seq ${limit}`).all(...params) as TraceRow[];
  }

  return { stats, traffic, list };
}
