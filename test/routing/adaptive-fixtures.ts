import type { ModelInfo, Observation, PolicyOptions } from '../../src/routing/types.js';
import type { Outcome } from '../../src/traces/types.js';

/** The adaptive policy's tests' models, options and observations. */

export const free = (key: string): ModelInfo => ({ key, inputCostPerMTok: 0, outputCostPerMTok: 0 });

export function options(models: ModelInfo[], over: Partial<PolicyOptions> = {}): PolicyOptions {
  return { models, minSamples: 5, costWeight: 0, latencyWeight: 0, halfLife: 50, seed: 1, ...over };
}

let seq = 0;
/** A finished attempt with a trace id of its own (unrated unless `extra` says otherwise). */
export function observation(queryClass: string, model: string, outcome: Outcome = 'success', extra: Partial<Observation> = {}): Observation {
  seq += 1;
  return { traceId: `o${seq}`, query: '', queryClass, model, outcome, latencyMs: 100, costUsd: null, feedback: null, ...extra };
}
