import type Database from 'better-sqlite3';
import {
  EVIDENCE_TIME,
  QUALITY_EVIDENCE_ROW,
  QUALITY_FAILURE,
  QUALITY_RECORD_SUMS,
  type QualityEvidence,
  type QualityEvidenceQuery,
} from './quality-evidence.js';
import { withPurgedQuality, type PurgedRow } from './purged-evidence.js';
import { rangeWhere } from './sqlite-statements.js';

/**
 * `qualityEvidence` of the SQLite store on one connection (one of its big reads: src/traces/sqlite-reads.ts).
 *
 * Three reads, by what is asked:
 * - the whole record (no decay, no range): the sums `quality_record` keeps for the traces up to the
 *   fill mark of `trace_arms` (added at each fill, kept by triggers on `traces` since), and those of the
 *   traces past it (the store fills before this read, so they are few), whatever the number of traces;
 * - with forgetting (0 < decay < 1, no range): per arm, its count from the whole record and the
 *   discounted sums over its newest K = ⌈64 / log2(1/decay)⌉ pieces of evidence (3,200 for a
 *   half-life of 50), read backwards off `traces_quality_idx`, which orders each arm's evidence by
 *   EVIDENCE_TIME then `seq` and covers the columns read. A piece k places back weighs decay^k, so the
 *   older ones weigh under 2^-64 of the newest and cannot change a sum in double precision;
 * - a time range (or another decay): one pass over the range's quality evidence.
 * The record and the newest evidence are read in one transaction, so they agree.
 */
export function prepareQualityReads(db: Database.Database): (query: QualityEvidenceQuery) => QualityEvidence[] {
  const statements = new Map<string, Database.Statement>();
  function stmt(text: string): Database.Statement {
    let s = statements.get(text);
    if (!s) {
      s = db.prepare(text);
      statements.set(text, s);
    }
    return s;
  }
  type Source = 'live' | 'offline';
  type Sums = Omit<QualityEvidence, 'queryClass' | 'model' | 'observations'>;

  const person = `outcome = 'success' AND COALESCE(feedback_source, 'human') IN ('human', 'offline')`;
  const from = (source: string) => `outcome = 'success' AND feedback_source = '${source}'`;
  /** Σw and Σw·feedback per kind of evidence over rows with a weight `w` (all of them quality evidence). */
  const weightedSums = `COALESCE(SUM(CASE WHEN ${QUALITY_FAILURE} THEN w END), 0) AS failures,
    COALESCE(SUM(CASE WHEN ${person} THEN w END), 0) AS ratedCount, COALESCE(SUM(CASE WHEN ${person} THEN w * feedback END), 0) AS ratedSum,
    COALESCE(SUM(CASE WHEN ${from('judge')} THEN w END), 0) AS judgeCount, COALESCE(SUM(CASE WHEN ${from('judge')} THEN w * feedback END), 0) AS judgeSum,
    COALESCE(SUM(CASE WHEN ${from('implicit')} THEN w END), 0) AS implicitCount,
    COALESCE(SUM(CASE WHEN ${from('implicit')} THEN w * feedback END), 0) AS implicitSum`;

  /**
   * The whole record of each arm with evidence of these sources, in order of class and model: the sums
   * `quality_record` keeps for the traces up to the fill mark, and those of the few past it (a rowid
   * range: NOT INDEXED, as the planner would otherwise read all of the covering quality index).
   */
  function recorded(sources: Source[]): QualityEvidence[] {
    const of = `source IN (${sources.map((s) => `'${s}'`).join(', ')})`;
    return stmt(`
      SELECT query_class AS queryClass, model_key AS model, SUM(observations) AS observations, SUM(failures) AS failures,
        SUM(rated_count) AS ratedCount, SUM(rated_sum) AS ratedSum, SUM(judge_count) AS judgeCount, SUM(judge_sum) AS judgeSum,
        SUM(implicit_count) AS implicitCount, SUM(implicit_sum) AS implicitSum
      FROM (SELECT query_class, model_key, observations, failures, rated_count, rated_sum, judge_count, judge_sum,
                   implicit_count, implicit_sum FROM quality_record WHERE ${of}
            UNION ALL
            SELECT query_class, model_key, ${QUALITY_RECORD_SUMS} FROM traces NOT INDEXED
            WHERE seq > COALESCE((SELECT seq FROM trace_arms_filled WHERE id = 1), 0) AND ${of} AND ${QUALITY_EVIDENCE_ROW}
            GROUP BY query_class, model_key)
      WHERE model_key <> '' GROUP BY query_class, model_key HAVING SUM(observations) > 0 ORDER BY query_class, model_key`).all() as QualityEvidence[];
  }

  /**
   * One arm's discounted sums over its newest `keep` pieces of evidence of these sources: per source an
   * index range read backwards, merged when there are two.
   */
  function newestSums(sources: Source[]): Database.Statement {
    const newestOf = (source: Source) => `
      SELECT * FROM (SELECT outcome, feedback, feedback_source, ${EVIDENCE_TIME} AS at, seq FROM traces
        WHERE query_class = @queryClass AND model_key = @model AND source = '${source}' AND ${QUALITY_EVIDENCE_ROW}
        ORDER BY ${EVIDENCE_TIME} DESC, seq DESC LIMIT @keep)`;
    return stmt(`
      SELECT ${weightedSums}
      FROM (SELECT outcome, feedback, feedback_source, power(@decay, ROW_NUMBER() OVER (ORDER BY at DESC, seq DESC) - 1) AS w
            FROM (${sources.map(newestOf).join(' UNION ALL ')}) ORDER BY at DESC, seq DESC LIMIT @keep)`);
  }

  function discounted(sources: Source[], decay: number): QualityEvidence[] {
    const keep = Math.ceil(64 / -Math.log2(decay));
    const sums = newestSums(sources);
    return recorded(sources).map(({ queryClass, model, observations }) => ({
      queryClass,
      model,
      observations,
      ...(sums.get({ queryClass, model, keep, decay }) as Sums),
    }));
  }

  /** One pass over the quality evidence of a range (or every trace), each arm's pieces numbered newest first. */
  function scanned(query: QualityEvidenceQuery, decay: number): QualityEvidence[] {
    const params: unknown[] = [];
    const weight =
      decay === 1
        ? '1.0'
        : `power(${Number(decay)}, ROW_NUMBER() OVER (PARTITION BY query_class, model_key ORDER BY ${EVIDENCE_TIME} DESC, seq DESC) - 1)`;
    const range = rangeWhere(query, params);
    let where = `WHERE ${QUALITY_EVIDENCE_ROW} AND model_key <> ''${range ? ` AND ${range.slice('WHERE '.length)}` : ''}`;
    if (query.source !== undefined) where += ` AND source = '${query.source}'`;
    return db
      .prepare(`
      SELECT query_class AS queryClass, model_key AS model, COUNT(*) AS observations, ${weightedSums}
      FROM (SELECT query_class, model_key, outcome, feedback, feedback_source, ${weight} AS w FROM traces ${where})
      GROUP BY query_class, model_key ORDER BY query_class, model_key`)
      .all(...params) as QualityEvidence[];
  }

  function qualityEvidence(query: QualityEvidenceQuery): QualityEvidence[] {
    if (query.source !== undefined && query.source !== 'live' && query.source !== 'offline') {
      throw new Error(`unknown trace source ${String(query.source)}`);
    }
    const decay = query.decay ?? 1;
    if (query.since !== undefined || query.until !== undefined) return scanned(query, decay);
    const sources: Source[] = query.source === undefined ? ['live', 'offline'] : [query.source];
    return db.transaction(() => {
      const rows = decay === 1 ? recorded(sources) : decay > 0 && decay < 1 ? discounted(sources, decay) : scanned(query, decay);
      // `purge` deletes live traces only: what it set aside belongs to the live record.
      if (query.source === 'offline') return rows;
      return withPurgedQuality(rows, stmt('SELECT * FROM purged_evidence').all() as PurgedRow[], decay);
    })();
  }

  return qualityEvidence;
}
