import type { QualityEvidence } from '../traces/quality-evidence.js';
import type { FeedbackSource } from '../traces/types.js';
import type { ModelInfo } from './types.js';

/*
 * What the learning policies (adaptive, contextual) assume before and beside the evidence: the
 * quality of a trace, forgetting, the price-based cost prior and the weight of offline evidence.
 * One definition, so the policies cannot drift apart.
 */

/** Token counts assumed for a request when only the configured prices are known. */
export const PRIOR_PROMPT_TOKENS = 500;
export const PRIOR_COMPLETION_TOKENS = 200;

/** Per-observation discount γ = 2^(-1/halfLife); halfLife 0 = no forgetting. */
export function discountFactor(halfLife: number): number {
  return halfLife > 0 ? Math.pow(2, -1 / halfLife) : 1;
}

/** A config price turned into dollars for an assumed 500-token prompt and 200-token answer. */
export function priorCostUsd(model: Pick<ModelInfo, 'inputCostPerMTok' | 'outputCostPerMTok'>): number {
  return (model.inputCostPerMTok * PRIOR_PROMPT_TOKENS + model.outputCostPerMTok * PRIOR_COMPLETION_TOKENS) / 1e6;
}

/**
 * The weight of each of a class × model's `count` offline traces, so that together they count at
 * most `priorWeight` observations.
 */
export function offlineTraceWeight(priorWeight: number, count: number): number {
  return Math.min(1, priorWeight / Math.max(1, count));
}

/** How much one rating counts, by who gave it (a human's counts 1; defaults: DEFAULT_SOURCE_WEIGHTS in src/core/config.ts). */
export interface SourceWeights {
  /** router.judge.weight. */
  judge: number;
  /** router.implicit.weight. */
  implicit: number;
}

/** What one rating from `source` counts for: human and offline ratings 1, the others as configured. */
export function ratingWeight(source: FeedbackSource | null | undefined, weights: SourceWeights): number {
  if (source === 'judge') return weights.judge;
  if (source === 'implicit') return weights.implicit;
  return 1;
}

/**
 * An arm's ratings as Beta pseudo-counts: Σ weight and Σ weight × score (the quality of its successful
 * answers; how often it fails is its reliability, learned from every trace).
 */
export function qualitySums(e: QualityEvidence, weights: SourceWeights): { weight: number; sum: number } {
  return {
    weight: e.ratedCount + weights.judge * e.judgeCount + weights.implicit * e.implicitCount,
    sum: e.ratedSum + weights.judge * e.judgeSum + weights.implicit * e.implicitSum,
  };
}

/**
 * The price prior: before ratings say otherwise, a model k times cheaper than a rated model is
 * assumed PRICE_PRIOR_PER_DECADE × log10(k) worse than it (a pricier one, or one without a price, as
 * good), as PRICE_PRIOR_WEIGHT pseudo-observations; every rated model of the class and the anchor
 * (router.defaultModel, else the priciest routed model) are the references (PriceCurve). It is what
 * lets a router with almost no ratings stay on the anchor where quality is what counts, and move to
 * the cheap models most likely to be good enough where cost counts too; ratings override it as they
 * accumulate. docs/routing.md#evidence has the figures it gives (`tracegate eval --feedback-rate`).
 */
export const PRICE_PRIOR_WEIGHT = 15;
export const PRICE_PRIOR_PER_DECADE = 0.15;

/**
 * Exploration follows the evidence: a Thompson draw (which may try a model the estimates do not
 * favour) is made for a share of requests equal to the share of served answers that bring a rating
 * back, at least EXPLORE_FLOOR; the other requests get the best estimate. Exploring on a request whose
 * answer will never be rated costs its quality and teaches nothing.
 */
export const EXPLORE_FLOOR = 0.03;
