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

