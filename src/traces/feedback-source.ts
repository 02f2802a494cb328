import type { FeedbackSource } from './types.js';

/** Every feedback source, from the one whose word counts most to the one that counts least. */
export const FEEDBACK_SOURCES: readonly FeedbackSource[] = ['human', 'offline', 'implicit', 'judge'];

export function isFeedbackSource(value: unknown): value is FeedbackSource {
  return typeof value === 'string' && (FEEDBACK_SOURCES as readonly string[]).includes(value);
}

/**
 * Whether feedback from `incoming` may replace the feedback a trace has from `existing` (null: it
 * has none). A person's word (`human`, or `offline` evaluation results) replaces anything; an
 * `implicit` signal replaces only another implicit one or a judge's; a `judge` replaces only a
 * judge's. Feedback stored without a source (before sources were recorded) counts as `human`.
 */
export function feedbackReplaces(incoming: FeedbackSource, existing: FeedbackSource | null): boolean {
  if (existing === null) return true;
  switch (incoming) {
    case 'human':
    case 'offline':
      return true;
    case 'implicit':
      return existing === 'implicit' || existing === 'judge';
    case 'judge':
      return existing === 'judge';
  }
}

/** The source a stored trace's feedback counts as: null without feedback, `human` for feedback stored without one. */
export function storedFeedbackSource(feedback: number | null, source: FeedbackSource | null): FeedbackSource | null {
  if (feedback === null) return null;
  return source ?? 'human';
}

/** The sources whose feedback `incoming` may replace (for a store that checks it in SQL). */
export function replaceableBy(incoming: FeedbackSource): FeedbackSource[] {
  return FEEDBACK_SOURCES.filter((existing) => feedbackReplaces(incoming, existing));
}

/** The sources whose feedback is a person's word: the evidence's `rated` sums (with feedback stored without a source). */
export const PERSON_SOURCES: readonly FeedbackSource[] = ['human', 'offline'];

/**
 * SQL, for either engine, of whether a `traces` row is a successful trace whose feedback came from
 * one of `sources` (feedback stored without a source counts as `human`): what the evidence's
 * per-source sums (`ratedCount`, `judgeCount`, `implicitCount` and their sums) count.
 */
export function successWithFeedbackFrom(sources: readonly FeedbackSource[]): string {
  return `(outcome = 'success' AND feedback IS NOT NULL AND COALESCE(feedback_source, 'human') IN (${sources.map((s) => `'${s}'`).join(', ')}))`;
}

const PER_SOURCE = [
  ['rated', successWithFeedbackFrom(PERSON_SOURCES)],
  ['judge', successWithFeedbackFrom(['judge'])],
  ['implicit', successWithFeedbackFrom(['implicit'])],
] as const;

/**
 * SQL (either engine) of ArmEvidence's per-source sums over rows weighed by `w`: Σw and Σw·feedback
 * per source, named as its fields.
 */
export const WEIGHTED_PER_SOURCE = PER_SOURCE.map(
  ([name, from]) => `SUM(CASE WHEN ${from} THEN w ELSE 0 END) AS "${name}Count", SUM(CASE WHEN ${from} THEN w * feedback ELSE 0 END) AS "${name}Sum"`,
).join(',\n  ');

/**
 * SQL for `purge` (either engine): `purged_evidence`'s per-source sums and its count of `refused`
 * traces (failures that are no quality evidence), what they are over a group of traces, and how a new
 * group adds to them.
 */
export const PURGED_PER_SOURCE = {
  /** The column list. */
  columns: `${PER_SOURCE.map(([name]) => `${name}_count, ${name}_sum`).join(', ')}, refused`,
  /** The sums over a `GROUP BY` of traces, in column order. */
  sums: `${PER_SOURCE.map(([, from]) => `SUM(CASE WHEN ${from} THEN 1 ELSE 0 END), SUM(CASE WHEN ${from} THEN feedback ELSE 0 END)`).join(', ')}, SUM(CASE WHEN outcome = 'refused' THEN 1 ELSE 0 END)`,
  /** `SET` assignments of an `ON CONFLICT … DO UPDATE` adding `excluded`'s sums to the row's in `table`. */
  added: (table: string) =>
    `${PER_SOURCE.map(([n]) => `${n}_count = ${table}.${n}_count + excluded.${n}_count, ${n}_sum = ${table}.${n}_sum + excluded.${n}_sum`).join(', ')}, refused = ${table}.refused + excluded.refused`,
};
