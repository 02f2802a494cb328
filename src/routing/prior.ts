import type { ModelInfo } from './types.js';

/*
 * What the learning policies (adaptive, contextual) assume before and beside the evidence: the
 * quality of a trace, forgetting, the price-based cost prior and the weight of offline evidence.
 * One definition, so the policies cannot drift apart.
 */

/** Token counts assumed for a request when only the configured prices are known. */
export const PRIOR_PROMPT_TOKENS = 500;
export const PRIOR_COMPLETION_TOKENS = 200;
/** router.priorWeight's default (src/config.ts): offline evidence counts as at most this many observations per class × model. */
export const DEFAULT_PRIOR_WEIGHT = 50;

/** Per-observation discount γ = 2^(-1/halfLife); halfLife 0 = no forgetting. */
export function discountFactor(halfLife: number): number {
  return halfLife > 0 ? Math.pow(2, -1 / halfLife) : 1;
}

/** A config price turned into dollars for an assumed 500-token prompt and 200-token answer. */
export function priorCostUsd(model: Pick<ModelInfo, 'inputCostPerMTok' | 'outputCostPerMTok'>): number {
  return (model.inputCostPerMTok * PRIOR_PROMPT_TOKENS + model.outputCostPerMTok * PRIOR_COMPLETION_TOKENS) / 1e6;
}

/** Quality of one trace: 0 for a failure, else the feedback if any, else 1. */
export function traceQuality(failed: boolean, feedback: number | null): number {
  if (failed) return 0;
  if (feedback === null || !Number.isFinite(feedback)) return 1;
  return Math.min(1, Math.max(0, feedback));
}

/**
 * The weight of each of a class × model's `count` offline traces, so that together they count at
 * most `priorWeight` observations.
 */
export function offlineTraceWeight(priorWeight: number, count: number): number {
  return Math.min(1, priorWeight / Math.max(1, count));
}
