import { EVIDENCE_TIME, QUALITY_EVIDENCE_ROW, QUALITY_FAILURE, type QualityEvidence, type QualityEvidenceQuery } from './quality-evidence.js';
import { withPurgedQuality, type PurgedRow } from './purged-evidence.js';

/** A query on the store's pool: its rows. */
export type PgQuery = <R extends object>(text: string, params?: unknown[]) => Promise<R[]>;

/** Sorts as SQLite does (bytewise), whatever the database's collation. */
const C = 'COLLATE "C"';

/**
 * γ^k in SQL. PostgreSQL raises an error where a power underflows (SQLite gives 0): a weight under
 * e^-700 (far below anything that counts) is 0 here.
 */
export function discount(gamma: string, k: string): string {
  return `CASE WHEN (${k})::float8 * ln(${gamma}) < -700 THEN 0::float8 ELSE power(${gamma}, (${k})::float8) END`;
}

const PERSON = `outcome = 'success' AND COALESCE(feedback_source, 'human') IN ('human', 'offline')`;
const FROM = (source: string) => `outcome = 'success' AND feedback_source = '${source}'`;
const sums = (name: string, when: string) =>
  `COALESCE(SUM(w) FILTER (WHERE ${when}), 0) AS "${name}Count", COALESCE(SUM(w * feedback) FILTER (WHERE ${when}), 0) AS "${name}Sum"`;
/** QualityEvidence's sums over rows (all of them quality evidence) with a weight `w`. */
const WEIGHTED = `COALESCE(SUM(w) FILTER (WHERE ${QUALITY_FAILURE}), 0) AS failures,
  ${sums('rated', PERSON)}, ${sums('judge', FROM('judge'))}, ${sums('implicit', FROM('implicit'))}`;

type Source = 'live' | 'offline';

/**
 * `qualityEvidence` of the PostgreSQL store (QualityEvidence), by what is asked:
 * - the whole record (no decay, no range): the sums `quality_record` keeps (triggers on `traces`);
 * - with forgetting (0 < decay < 1, no range): per arm (LATERAL), its count from `quality_record` and
 *   the discounted sums over its newest K = ⌈64 / log2(1/decay)⌉ pieces of evidence, an index-only
 *   scan backwards of `traces_quality_idx` (each arm's evidence in order of EVIDENCE_TIME, then `seq`).
 *   A piece k places back weighs decay^k, so the older ones weigh under 2^-64 of the newest and
 *   cannot change a sum in double precision; the rows read do not grow with the table;
 * - a time range (or another decay): one pass over the range's quality evidence.
 * What `purge` set aside is added unless a range or `source: 'offline'` narrows the read.
 */
export async function pgQualityEvidence(query: PgQuery, q: QualityEvidenceQuery): Promise<QualityEvidence[]> {
  if (q.source !== undefined && q.source !== 'live' && q.source !== 'offline') throw new Error(`unknown trace source ${String(q.source)}`);
  const decay = q.decay ?? 1;
  if (q.since !== undefined || q.until !== undefined) return scanned(query, q, decay);
  const sources: Source[] = q.source === undefined ? ['live', 'offline'] : [q.source];
  const [rows, purged] = await Promise.all([
    decay === 1 ? recorded(query, sources) : decay > 0 && decay < 1 ? newest(query, sources, decay) : scanned(query, q, decay),
    q.source === 'offline' ? [] : query<PurgedRow>('SELECT * FROM purged_evidence'),
  ]);
  return q.source === 'offline' ? rows : withPurgedQuality(rows, purged, decay);
}

function recorded(query: PgQuery, sources: Source[]): Promise<QualityEvidence[]> {
  return query<QualityEvidence>(
    `SELECT query_class AS "queryClass", model_key AS model, SUM(observations) AS observations, SUM(failures) AS failures,
       SUM(rated_count) AS "ratedCount", SUM(rated_sum) AS "ratedSum", SUM(judge_count) AS "judgeCount", SUM(judge_sum) AS "judgeSum",
       SUM(implicit_count) AS "implicitCount", SUM(implicit_sum) AS "implicitSum"
     FROM quality_record WHERE source = ANY($1::text[]) AND model_key <> ''
     GROUP BY query_class, model_key HAVING SUM(observations) > 0
     ORDER BY query_class ${C}, model_key ${C}`,
    [sources],
  );
}

function newest(query: PgQuery, sources: Source[], decay: number): Promise<QualityEvidence[]> {
  const keep = Math.ceil(64 / -Math.log2(decay));
  // Per source one index range read backwards; two are merged.
  const newestOf = (source: Source) => `(
    SELECT outcome, feedback, feedback_source, ${EVIDENCE_TIME} AS at, seq FROM traces t
    WHERE t.query_class = a.query_class AND t.model_key = a.model_key AND t.source = '${source}' AND ${QUALITY_EVIDENCE_ROW}
    ORDER BY ${EVIDENCE_TIME} DESC, seq DESC LIMIT $2)`;
  return query<QualityEvidence>(
    `WITH arms AS (
       SELECT query_class, model_key, SUM(observations) AS observations FROM quality_record
       WHERE source = ANY($3::text[]) AND model_key <> '' GROUP BY query_class, model_key HAVING SUM(observations) > 0)
     SELECT a.query_class AS "queryClass", a.model_key AS model, a.observations, s.*
     FROM arms a CROSS JOIN LATERAL (
       SELECT ${WEIGHTED}
       FROM (SELECT outcome, feedback, feedback_source, ${discount('$1::float8', 'ROW_NUMBER() OVER (ORDER BY at DESC, seq DESC) - 1')} AS w
             FROM (${sources.map(newestOf).join(' UNION ALL ')}) n
             ORDER BY at DESC, seq DESC LIMIT $2) x) s
     ORDER BY a.query_class ${C}, a.model_key ${C}`,
    [decay, keep, sources],
  );
}

function scanned(query: PgQuery, q: QualityEvidenceQuery, decay: number): Promise<QualityEvidence[]> {
  const params: unknown[] = [];
  const where = [QUALITY_EVIDENCE_ROW, "model_key <> ''"];
  if (q.since !== undefined) where.push(`time >= $${params.push(q.since)}`);
  if (q.until !== undefined) where.push(`time < $${params.push(q.until)}`);
  if (q.source !== undefined) where.push(`source = '${q.source}'`);
  const weight =
    decay === 1
      ? '1.0::float8'
      : discount(
          `$${params.push(decay)}::float8`,
          `ROW_NUMBER() OVER (PARTITION BY query_class, model_key ORDER BY ${EVIDENCE_TIME} DESC, seq DESC) - 1`,
        );
  return query<QualityEvidence>(
    `SELECT query_class AS "queryClass", model_key AS model, COUNT(*) AS observations, ${WEIGHTED}
     FROM (SELECT query_class, model_key, outcome, feedback, feedback_source, ${weight} AS w
           FROM traces WHERE ${where.join(' AND ')}) q
     GROUP BY query_class, model_key ORDER BY query_class ${C}, model_key ${C}`,
    params,
  );
}
