import type { QualityEvidence } from './quality-evidence.js';
import type { ArmEvidence } from './types.js';

/**
 * What `purge` folded away (`purged_evidence`: plain sums per class × model) added to the evidence
 * read from the stored traces, the same for both stores.
 */

/** A row of `purged_evidence`. */
export interface PurgedRow {
  query_class: string; model_key: string; count: number; successes: number; quality: number;
  feedback_count: number; feedback_sum: number; cost_sum: number; cost_count: number;
  latency_sum_ms: number; last_time: number; rated_count: number; rated_sum: number;
  judge_count: number; judge_sum: number; implicit_count: number; implicit_sum: number;
  /** Of the failures, those `refused`: no quality evidence. */
  refused: number;
}

/**
 * Adds what `purge` folded away to the evidence of the stored traces. Purged traces are older than
 * every stored one, so with forgetting they weigh γ^(stored traces of the arm) and down from there;
 * their outcomes are taken as evenly spread (the sums are kept without order), which makes their
 * weight (1 − γ^n)/(1 − γ) in all.
 */
export function withPurged(live: ArmEvidence[], purged: PurgedRow[], decay: number): ArmEvidence[] {
  const byArm = new Map(live.map((e) => [`${e.queryClass}\u0000${e.model}`, e]));
  const out = [...live];
  for (const p of purged) {
    const key = `${p.query_class}\u0000${p.model_key}`;
    let arm = byArm.get(key);
    if (!arm) {
      arm = { queryClass: p.query_class, model: p.model_key, count: 0, weight: 0, successes: 0, quality: 0, feedbackCount: 0,
        feedbackSum: 0, ratedCount: 0, ratedSum: 0, judgeCount: 0, judgeSum: 0, implicitCount: 0, implicitSum: 0,
        costSum: 0, costCount: 0, latencySumMs: 0, lastTime: p.last_time };
      byArm.set(key, arm);
      out.push(arm);
    }
    const total = decay === 1 ? p.count : (Math.pow(decay, arm.count) * (1 - Math.pow(decay, p.count))) / (1 - decay);
    const scale = p.count > 0 ? total / p.count : 0;
    arm.count += p.count;
    arm.weight += total;
    arm.successes += p.successes * scale;
    arm.quality += p.quality * scale;
    arm.feedbackCount += p.feedback_count * scale;
    arm.feedbackSum += p.feedback_sum * scale;
    arm.ratedCount += p.rated_count * scale;
    arm.ratedSum += p.rated_sum * scale;
    arm.judgeCount += p.judge_count * scale;
    arm.judgeSum += p.judge_sum * scale;
    arm.implicitCount += p.implicit_count * scale;
    arm.implicitSum += p.implicit_sum * scale;
    arm.costSum += p.cost_sum * scale;
    arm.costCount += p.cost_count * scale;
    arm.latencySumMs += p.latency_sum_ms * scale;
    arm.lastTime = Math.max(arm.lastTime, p.last_time);
  }
  return out;
}

/**
 * Adds the quality evidence `purge` folded away to that of the stored traces. Purged evidence is
 * older than every stored piece, so with forgetting it weighs γ^(the arm's stored observations) and
 * down from there, taken as evenly spread, as in withPurged.
 */
export function withPurgedQuality(live: QualityEvidence[], purged: PurgedRow[], decay: number): QualityEvidence[] {
  const byArm = new Map(live.map((e) => [`${e.queryClass}\u0000${e.model}`, e]));
  const out = [...live];
  for (const p of purged) {
    const failures = p.count - p.successes - (p.refused ?? 0);
    const n = failures + p.rated_count + p.judge_count + p.implicit_count;
    if (!(n > 0)) continue;
    const key = `${p.query_class}\u0000${p.model_key}`;
    let arm = byArm.get(key);
    if (!arm) {
      arm = { queryClass: p.query_class, model: p.model_key, observations: 0, failures: 0, ratedCount: 0, ratedSum: 0,
        judgeCount: 0, judgeSum: 0, implicitCount: 0, implicitSum: 0 };
      byArm.set(key, arm);
      out.push(arm);
    }
    const total = decay === 1 ? n : (Math.pow(decay, arm.observations) * (1 - Math.pow(decay, n))) / (1 - decay);
    const scale = total / n;
    arm.observations += n;
    arm.failures += failures * scale;
    arm.ratedCount += p.rated_count * scale;
    arm.ratedSum += p.rated_sum * scale;
    arm.judgeCount += p.judge_count * scale;
    arm.judgeSum += p.judge_sum * scale;
    arm.implicitCount += p.implicit_count * scale;
    arm.implicitSum += p.implicit_sum * scale;
  }
  return out;
}
