import type { Services } from '../pipeline/services.js';
import { conversationFingerprint, RegenerationDetector, type AnsweredTurn } from './regeneration.js';

/** Requests larger than this (images, long documents) are not checked for a regenerate. */
export const MAX_FINGERPRINT_BYTES = 256 * 1024;

/**
 * The regenerate signal on the request path: `seen` as a chat request starts (a resend within the
 * window marks the earlier answer with implicit feedback 0, in the background), `answered` once it
 * was answered successfully. Off with `router.implicit: false`.
 */
export class ImplicitFeedback {
  private readonly detector: RegenerationDetector;

  constructor(
    private readonly gw: Pick<Services, 'logger' | 'metrics' | 'policy' | 'store'>,
    windowSeconds: number,
  ) {
    this.detector = new RegenerationDetector(windowSeconds * 1000);
  }

  /**
   * The request's conversation fingerprint (to hand to `answered`); marks the answer it regenerates.
   * A body over MAX_FINGERPRINT_BYTES is not fingerprinted (hashing it would hold the event loop).
   */
  seen(keyName: string | null, messages: readonly unknown[], bodyBytes: number): string | undefined {
    if (bodyBytes > MAX_FINGERPRINT_BYTES) return undefined;
    const fingerprint = conversationFingerprint(keyName, messages);
    if (fingerprint === undefined) return undefined;
    const earlier = this.detector.regenerated(fingerprint, Date.now());
    if (earlier !== undefined) {
      this.mark(earlier).catch((err: unknown) => this.gw.logger.warn({ err, traceId: earlier.traceId }, 'implicit feedback could not be recorded'));
    }
    return fingerprint;
  }

  /** The conversation got a successful answer (trace `traceId`). */
  answered(fingerprint: string | undefined, turn: Omit<AnsweredTurn, 'time'>): void {
    if (fingerprint !== undefined) this.detector.answer(fingerprint, { ...turn, time: Date.now() });
  }

  private async mark(turn: AnsweredTurn): Promise<void> {
    const result = await this.gw.store.setFeedback(turn.traceId, { score: 0, comment: 'regenerated', time: Date.now(), source: 'implicit' });
    if (result === undefined || !result.applied) return;
    this.gw.metrics.feedback(turn.model, 'implicit');
    this.gw.policy.observeFeedback({
      traceId: turn.traceId,
      queryClass: result.trace.queryClass,
      model: result.trace.modelKey,
      outcome: result.trace.outcome,
      score: 0,
      previous: result.previous,
      source: 'implicit',
    });
  }
}
