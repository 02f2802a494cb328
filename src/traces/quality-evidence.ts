import type { TimeRange, TraceSource } from './types.js';

/**
 * The quality evidence of one query class × model ("arm"): its failures (each worth 0) and the
 * ratings of its successful answers, by who gave them. An answer that succeeded and was never rated
 * is no evidence of quality (it is evidence of availability, cost and latency: see ArmEvidence).
 *
 * With `decay` γ every sum weighs an observation by γ^k, k = the number of the arm's quality
 * observations that arrived after it, in the order the evidence arrived: a failure when its trace
 * was recorded, a rating when it was given (`feedback_time`). So memory is counted in pieces of
 * evidence, not in requests: with few ratings, a rating is remembered over more traffic.
 */
export interface QualityEvidence {
  queryClass: string;
  model: string;
  /** Quality observations (failures and rated successes), raw count. */
  observations: number;
  /** Σw over failed traces. */
  failures: number;
  /** Σw and Σw·score over successful traces rated by a human (or imported as offline evidence). */
  ratedCount: number;
  ratedSum: number;
  /** The same for scores from the judge. */
  judgeCount: number;
  judgeSum: number;
  /** The same for implicit signals (a regenerated answer). */
  implicitCount: number;
  implicitSum: number;
}

export interface QualityEvidenceQuery extends TimeRange {
  /** Per-arm discount γ in (0, 1]; 1 or undefined = plain sums. */
  decay?: number;
  /** Only traces of this source. */
  source?: TraceSource;
}

/**
 * Whether a `traces` row is a piece of quality evidence (either engine's SQL): a failure (an error, a
 * timeout, a cancelled attempt), or a success with feedback. A `refused` attempt (a refused provider
 * key, a rate limit, a request too big for the model) says nothing of the model's answers, whatever
 * feedback it got: it counts against availability only. Both stores have a partial index on exactly
 * this condition.
 */
export const QUALITY_EVIDENCE_ROW = "(outcome <> 'refused' AND (outcome <> 'success' OR feedback IS NOT NULL))";
/** Of the QUALITY_EVIDENCE_ROW rows, whether one is a failure (either engine's SQL). */
export const QUALITY_FAILURE = "outcome <> 'success'";
/** When a piece of quality evidence arrived (either engine): a rating when it was given, a failure when it happened. */
export const EVIDENCE_TIME = "CASE WHEN outcome = 'success' THEN COALESCE(feedback_time, time) ELSE time END";

const PERSON = `outcome = 'success' AND COALESCE(feedback_source, 'human') IN ('human', 'offline')`;
const FROM_SOURCE = (source: string) => `outcome = 'success' AND feedback_source = '${source}'`;
/**
 * The sums `quality_record` keeps, over a group of `traces` rows that are all quality evidence (either
 * engine's SQL), named and ordered as its columns from `observations` on.
 */
export const QUALITY_RECORD_SUMS = `COUNT(*) AS observations, SUM(CASE WHEN ${QUALITY_FAILURE} THEN 1 ELSE 0 END) AS failures,
  SUM(CASE WHEN ${PERSON} THEN 1 ELSE 0 END) AS rated_count, SUM(CASE WHEN ${PERSON} THEN feedback ELSE 0 END) AS rated_sum,
  SUM(CASE WHEN ${FROM_SOURCE('judge')} THEN 1 ELSE 0 END) AS judge_count, SUM(CASE WHEN ${FROM_SOURCE('judge')} THEN feedback ELSE 0 END) AS judge_sum,
  SUM(CASE WHEN ${FROM_SOURCE('implicit')} THEN 1 ELSE 0 END) AS implicit_count,
  SUM(CASE WHEN ${FROM_SOURCE('implicit')} THEN feedback ELSE 0 END) AS implicit_sum`;
