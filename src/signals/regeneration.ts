import { createHash } from 'node:crypto';
import { BoundedMap } from '../routing/bounded-map.js';

/**
 * The implicit signal "regenerate": the same caller sending the same conversation again (the same
 * messages up to and including the last user turn) within a short window is asking for another
 * answer because the first did not do. The earlier answer's trace then gets implicit feedback 0.
 *
 * Only answers that succeeded are remembered, and each is marked at most once (a third try marks the
 * second answer, not the first again). What is remembered is a hash, never the text.
 */

/** Conversations remembered at most (the oldest go first). */
const MAX_REMEMBERED = 50_000;

/** The answer a conversation got, by the conversation's fingerprint. */
export interface AnsweredTurn {
  traceId: string;
  queryClass: string;
  model: string;
  /** Epoch ms when it was answered. */
  time: number;
}

/**
 * A conversation's fingerprint: the caller (client key name, '' without keys) and its messages up to
 * and including the last user message; undefined when there is no user message.
 */
export function conversationFingerprint(keyName: string | null, messages: readonly unknown[]): string | undefined {
  let last = -1;
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (typeof m === 'object' && m !== null && (m as { role?: unknown }).role === 'user') {
      last = i;
      break;
    }
  }
  if (last === -1) return undefined;
  const hash = createHash('sha256');
  hash.update(keyName ?? '');
  hash.update('\u0000');
  hash.update(JSON.stringify(messages.slice(0, last + 1)));
  return hash.digest('base64url');
}

export class RegenerationDetector {
  private readonly answered = new BoundedMap<string, AnsweredTurn>(MAX_REMEMBERED);

  /** @param windowMs how long after an answer a resend counts as a regeneration. */
  constructor(private readonly windowMs: number) {}

  /**
   * A request arrived with this fingerprint at `now`: the earlier answer it regenerates (which is then
   * forgotten, so it is marked once), or undefined.
   */
  regenerated(fingerprint: string, now: number): AnsweredTurn | undefined {
    const earlier = this.answered.get(fingerprint);
    if (earlier === undefined) return undefined;
    this.answered.delete(fingerprint);
    return now - earlier.time <= this.windowMs ? earlier : undefined;
  }

  /** The conversation was answered successfully: a resend within the window regenerates this answer. */
  answer(fingerprint: string, turn: AnsweredTurn): void {
    this.answered.set(fingerprint, turn);
  }
}
