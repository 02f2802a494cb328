import { describe, expect, it } from 'vitest';
import { AdaptivePolicy } from '../../src/routing/adaptive.js';
import { ContextualPolicy } from '../../src/routing/contextual.js';
import { TraceDrivenPolicy } from '../../src/routing/learned.js';
import type { Observation, RouterPolicy } from '../../src/routing/types.js';
import { free, observation, options } from './adaptive-fixtures.js';

/*
 * A failed attempt that is not about the model's answers (a 429, a refused provider key, a request
 * too big for the model: Observation.notQuality) lowers neither quality nor reliability in the
 * adaptive and contextual policies; learned counts every outcome, as it always has.
 */

const QUERY = 'Write a short poem about the sea and the wind.';

/** Twenty rated answers of model a; with `rateLimited`, a 429 after every one of them. */
function feed(policy: RouterPolicy, rateLimited: boolean): void {
  for (let i = 0; i < 20; i++) {
    policy.observe(observation('creative', 'a', 'success', { query: QUERY, feedback: 0.9 }));
    if (rateLimited) policy.observe(observation('creative', 'a', 'error', { query: QUERY, notQuality: true } satisfies Partial<Observation>));
  }
}

describe('failures that are not the answers’ quality', () => {
  for (const [name, make] of [
    ['adaptive', () => new AdaptivePolicy(options([free('a'), free('b')]))],
    ['contextual', () => new ContextualPolicy(options([free('a'), free('b')]))],
  ] as const) {
    it(`${name}: a model that answers 429 half the time keeps its estimate`, () => {
      const clean = make();
      const limited = make();
      feed(clean, false);
      feed(limited, true);
      expect(limited.snapshot()).toEqual(clean.snapshot());
    });
  }

  it('learned: still counts them as failures', () => {
    const clean = new TraceDrivenPolicy(options([free('a'), free('b')]));
    const limited = new TraceDrivenPolicy(options([free('a'), free('b')]));
    feed(clean, false);
    feed(limited, true);
    expect(limited.snapshot()).not.toEqual(clean.snapshot());
  });
});
