import { createHash } from 'node:crypto';
import { BoundedMap } from '../routing/bounded-map.js';

/**
 * The implicit signal "regenerate": the same caller sending the same conversation again (the same
 * messages, ending with the same user turn) within a short window is asking for another answer
 * because the first did not do. The earlier answer's trace then gets implicit feedback 0.
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
 * A conversation's fingerprint: the caller (client key name, '' without keys) and its messages, when
 * the last one is the user's (what a client sends to get an answer to that turn, again on a
 * regenerate); undefined otherwise. A request that goes on past the user turn (a tool result, an
 * assistant message to continue) is the next step of the same turn, not a regenerate.
 */
export function conversationFingerprint(keyName: string | null, messages: readonly unknown[]): string | undefined {
  const last = messages[messages.length - 1];
  if (typeof last !== 'object' || last === null || (last as { role?: unknown }).role !== 'user') return undefined;
  const hash = createHash('sha256');
  hash.update(keyName ?? '');
  hash.update('\u0000');
  hash.update(JSON.stringify(messages));
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
