import type { FeedbackObservation, Observation } from './types.js';

/*
 * What the learning policies share about traces whose feedback may come later, and about what
 * arrives while a rebuild reads the store.
 */

/** Most observations buffered while an update reads the store. */
export const MAX_REPLAY = 100_000;

/** Whether a finished attempt counts as a failure (a failed-over attempt is recorded as one). */
export function attemptFailed(observation: Pick<Observation, 'outcome'>): boolean {
  return observation.outcome !== 'success';
}

/**
 * Whether a failed attempt is evidence against the model's quality: an error, a timeout, a cancelled
 * attempt. A `refused` one (its provider key refused, a rate limit, a request too big for it) is not;
 * it counts against availability only. The stores' QUALITY_FAILURE says the same in SQL.
 */
export function qualityFailure(observation: Pick<Observation, 'outcome'>): boolean {
  return observation.outcome !== 'success' && observation.outcome !== 'refused';
}

type Replayed = { kind: 'observe'; observation: Observation } | { kind: 'feedback'; feedback: FeedbackObservation };

/**
 * What arrives while a rebuild reads the store (bounded), to be replayed on the rebuilt state:
 * observations the store did not have yet are added (a policy skips trace ids it knows), and
 * feedback is re-applied (it replaces, so it cannot double count).
 */
export class ReplayBuffer {
  private items: Replayed[] | null = null;

  /** Whether a rebuild is reading (what arrives is buffered). */
  get active(): boolean {
    return this.items !== null;
  }

  start(): void {
    this.items = [];
  }

  stop(): void {
    this.items = null;
  }

  observe(observation: Observation): void {
    if (this.items !== null && this.items.length < MAX_REPLAY) this.items.push({ kind: 'observe', observation });
  }

  feedback(feedback: FeedbackObservation): void {
    if (this.items !== null && this.items.length < MAX_REPLAY) this.items.push({ kind: 'feedback', feedback });
  }

  /** Stops buffering and hands what arrived, in order, to the policy. */
  replayInto(policy: { observe(o: Observation): void; observeFeedback(f: FeedbackObservation): void }): void {
    const items = this.items ?? [];
    this.items = null;
    for (const item of items) {
      if (item.kind === 'observe') policy.observe(item.observation);
      else policy.observeFeedback(item.feedback);
    }
  }
}
