import { describe, expect, it } from 'vitest';
import { FEEDBACK_SOURCES, feedbackReplaces, isFeedbackSource, replaceableBy, storedFeedbackSource } from '../../src/traces/feedback-source.js';
import type { FeedbackSource } from '../../src/traces/types.js';

describe('feedbackReplaces', () => {
  it('lets any source give feedback to a trace that has none', () => {
    for (const incoming of FEEDBACK_SOURCES) expect(feedbackReplaces(incoming, null)).toBe(true);
  });

  it('a person (human, offline) replaces anything; implicit replaces implicit and judge; a judge only a judge', () => {
    const table: Record<FeedbackSource, FeedbackSource[]> = {
      human: ['human', 'offline', 'implicit', 'judge'],
      offline: ['human', 'offline', 'implicit', 'judge'],
      implicit: ['implicit', 'judge'],
      judge: ['judge'],
    };
    for (const incoming of FEEDBACK_SOURCES) {
      for (const existing of FEEDBACK_SOURCES) {
        expect(feedbackReplaces(incoming, existing), `${incoming} over ${existing}`).toBe(table[incoming].includes(existing));
      }
      expect(replaceableBy(incoming).sort()).toEqual([...table[incoming]].sort());
    }
  });

  it('counts feedback stored without a source as a human\'s, and no feedback as none', () => {
    expect(storedFeedbackSource(0.5, null)).toBe('human');
    expect(storedFeedbackSource(0.5, 'judge')).toBe('judge');
    expect(storedFeedbackSource(null, null)).toBeNull();
    expect(feedbackReplaces('judge', storedFeedbackSource(0, null))).toBe(false);
    expect(feedbackReplaces('implicit', storedFeedbackSource(0, null))).toBe(false);
  });

  it('knows the four sources and nothing else', () => {
    expect([...FEEDBACK_SOURCES].sort()).toEqual(['human', 'implicit', 'judge', 'offline']);
    expect(isFeedbackSource('judge')).toBe(true);
    expect(isFeedbackSource('crowd')).toBe(false);
    expect(isFeedbackSource(null)).toBe(false);
  });
});
