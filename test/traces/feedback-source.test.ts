import { describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { FEEDBACK_SOURCES, feedbackReplaces, isFeedbackSource, replaceableBy, storedFeedbackSource } from '../../src/traces/feedback-source.js';
import { Spool } from '../../src/traces/spool.js';
import type { FeedbackSource, TraceRecord } from '../../src/traces/types.js';
import { tempDir } from '../helpers/gateway.js';
import { makeTrace } from '../helpers/trace.js';

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

describe('the spool (a network store\'s local queue)', () => {
  it('keeps feedback from a source the update may not replace, and takes traces spooled before sources as human-rated', () => {
    const dir = tempDir();
    const spool = new Spool(join(dir, 'spool.db'));
    try {
      const judged = makeTrace();
      spool.add([judged]);
      expect(spool.setFeedback(judged.id, { score: 0.5, comment: null, time: 1, source: 'judge' })).toMatchObject({
        applied: true,
        previous: null,
        trace: { feedback: 0.5, feedbackSource: 'judge' },
      });
      expect(spool.setFeedback(judged.id, { score: 0.25, comment: null, time: 2, source: 'implicit' })?.applied).toBe(true);
      expect(spool.setFeedback(judged.id, { score: 1, comment: null, time: 3, source: 'judge' })).toMatchObject({
        applied: false,
        previous: 0.25,
        trace: { feedback: 0.25, feedbackTime: 2, feedbackSource: 'implicit' },
      });
      expect(spool.get(judged.id)).toMatchObject({ feedback: 0.25, feedbackSource: 'implicit' });

      // As a version before feedback sources wrote it: no `feedbackSource` at all.
      const { feedbackSource: _, ...old } = makeTrace({ feedback: 0.75, feedbackTime: 1 });
      spool.add([old as TraceRecord]);
      expect(spool.get(old.id)?.feedbackSource).toBeNull();
      expect(spool.setFeedback(old.id, { score: 0, comment: null, time: 2, source: 'implicit' })).toMatchObject({ applied: false, previous: 0.75 });
      expect(spool.setFeedback(old.id, { score: 0, comment: null, time: 2, source: 'human' })).toMatchObject({ applied: true, previous: 0.75 });
      expect(spool.peek(10).map((e) => e.trace.feedbackSource)).toEqual(['implicit', 'human']);
    } finally {
      spool.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
