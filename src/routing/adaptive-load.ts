import type { QualityEvidence } from '../traces/quality-evidence.js';
import type { ArmEvidence } from '../traces/types.js';
import { armKey, refreshTotals, type Arm, type ClassState, type ModelState } from './adaptive-state.js';
import { offlineTraceWeight, qualitySums, type SourceWeights } from './prior.js';
import type { QueryClass } from './types.js';

/** What loading needs of the policy: its arms and the numbers that weigh the evidence. */
export interface LoadTarget {
  classes: ReadonlyMap<QueryClass, ClassState>;
  models: ReadonlyMap<string, ModelState>;
  /** The arm of a class × model, made when missing. */
  arm(queryClass: QueryClass, key: string): Arm;
  gamma: number;
  priorWeight: number;
  weights: SourceWeights;
}

/** The store's sums, as a rebuild reads them (TraceStore.evidence and .qualityEvidence). */
export interface StoreSums {
  /** Live traces per arm, forgetting per trace: reliability, cost, latency. */
  rows: readonly ArmEvidence[];
  /** Live quality evidence per arm, forgetting per piece of evidence: the recent window. */
  quality: readonly QualityEvidence[];
  /** Live quality evidence per arm, whole: the record. */
  record: readonly QualityEvidence[];
  /** Offline evidence (imported evaluation results): the prior. */
  offline: readonly ArmEvidence[];
  offlineQuality: readonly QualityEvidence[];
}

/**
 * Replaces every arm's learned numbers with the store's (selection shares are kept: the store has
 * none). Offline evidence is a prior: per arm, its sums are scaled to count at most `priorWeight`
 * observations, and it is older than every live piece of evidence, so it weighs γ^(live traces)
 * in the cost sums and γ^(live pieces of quality evidence) in the window's quality sums, and counts
 * whole in the record. Returns the live traces, and the ratings counted in how often to explore.
 */
export function loadEvidence(ctx: LoadTarget, sums: StoreSums): { traces: number; evidence: number } {
  for (const state of ctx.classes.values()) {
    for (const arm of state.arms.values()) {
      arm.count = arm.weight = arm.successes = arm.costSum = arm.costCount = arm.latencySumMs = arm.tick = 0;
      arm.qWeight = arm.qSum = arm.lWeight = arm.lSum = arm.qTick = arm.rated = 0;
      arm.recent = null;
      arm.recentNext = 0;
    }
  }
  let traces = 0;
  let evidence = 0;
  for (const row of sums.rows) {
    const arm = ctx.arm(row.queryClass, row.model);
    arm.count = row.count;
    arm.weight = row.weight;
    arm.successes = row.successes;
    arm.costSum = row.costSum;
    arm.costCount = row.costCount;
    arm.latencySumMs = row.latencySumMs;
    arm.tick = row.count;
    traces += row.count;
  }
  for (const row of sums.quality) {
    const arm = ctx.arm(row.queryClass, row.model);
    const sums = qualitySums(row, ctx.weights);
    arm.qWeight = sums.weight;
    arm.qSum = Math.min(sums.weight, Math.max(0, sums.sum));
    arm.qTick = row.observations;
  }
  for (const row of sums.record) {
    const arm = ctx.arm(row.queryClass, row.model);
    const sums = qualitySums(row, ctx.weights);
    arm.lWeight = sums.weight;
    arm.lSum = Math.min(sums.weight, Math.max(0, sums.sum));
    // Without decay, `failures` is their raw count: the rest are the rated answers.
    arm.rated = Math.max(0, Math.round(row.observations - row.failures));
    // How often to explore counts the ratings not from the judge (AdaptivePolicy.exploreShare).
    evidence += Math.max(0, Math.round(row.ratedCount + row.implicitCount));
  }
  const offlineCounts = new Map<string, number>();
  for (const row of sums.offline) {
    const arm = ctx.arm(row.queryClass, row.model);
    offlineCounts.set(armKey(row.queryClass, row.model), row.count);
    const f = (offlineTraceWeight(ctx.priorWeight, row.count) * Math.pow(ctx.gamma, arm.count)) || 0;
    if (f === 0) continue;
    // Offline latencies are not the upstream's: the prior keeps the arm's live mean latency.
    const latency = arm.weight > 0 ? arm.latencySumMs / arm.weight : 0;
    arm.weight += f * row.weight;
    arm.successes += f * row.successes;
    arm.costSum += f * row.costSum;
    arm.costCount += f * row.costCount;
    arm.latencySumMs += f * row.weight * latency;
  }
  for (const row of sums.offlineQuality) {
    const arm = ctx.arm(row.queryClass, row.model);
    const count = offlineCounts.get(armKey(row.queryClass, row.model)) ?? row.observations;
    const base = offlineTraceWeight(ctx.priorWeight, count) || 0;
    if (base === 0) continue;
    const sums = qualitySums(row, ctx.weights);
    // Older than every live piece of evidence: whole in the record, faded in the recent window.
    arm.lWeight += base * sums.weight;
    arm.lSum = Math.min(arm.lWeight, Math.max(0, arm.lSum + base * sums.sum));
    const f = base * Math.pow(ctx.gamma, arm.qTick);
    arm.qWeight += f * sums.weight;
    arm.qSum = Math.min(arm.qWeight, Math.max(0, arm.qSum + f * sums.sum));
  }
  for (const model of ctx.models.values()) refreshTotals(model);
  return { traces, evidence };
}
