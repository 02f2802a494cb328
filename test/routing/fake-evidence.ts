import type { AdaptivePolicy } from '../../src/routing/adaptive.js';
import { reliability, type Arm } from '../../src/routing/adaptive-state.js';
import type { QualityEvidence, QualityEvidenceQuery } from '../../src/traces/quality-evidence.js';
import type { EvidenceSource } from '../../src/routing/types.js';
import type { ArmEvidence, EvidenceQuery, FeedbackSource, Outcome, RecentArmTrace } from '../../src/traces/types.js';

/** The few fields of a trace that the evidence sums read. */
export interface FakeTrace {
  id: string;
  /** Epoch ms. */
  time: number;
  queryClass: string;
  model: string;
  outcome: Outcome;
  feedback: number | null;
  /** Who gave the feedback; absent or null with feedback counts as `human`. */
  feedbackSource?: FeedbackSource | null;
  costUsd: number | null;
  latencyMs: number;
  /** Default `live`. */
  source?: 'live' | 'offline';
  /** When the feedback was given (default: the trace's time). */
  feedbackTime?: number;
}

/** q as ArmEvidence defines it: 0 for a failure, else the feedback if any, else 1. */
export function fakeQuality(trace: FakeTrace): number {
  if (trace.outcome !== 'success') return 0;
  return trace.feedback ?? 1;
}

/**
 * An in-memory EvidenceSource with exactly the documented semantics of ArmEvidence and RecentArmTrace,
 * computed by brute force from a list of traces (in arrival order).
 */
export class FakeEvidenceSource implements EvidenceSource {
  readonly traces: FakeTrace[] = [];
  readonly evidenceCalls: EvidenceQuery[] = [];
  readonly recentCalls: number[] = [];

  add(...traces: FakeTrace[]): this {
    this.traces.push(...traces);
    return this;
  }

  setFeedback(id: string, score: number, source: FeedbackSource = 'human', time?: number): void {
    const trace = this.traces.find((t) => t.id === id);
    if (trace === undefined) throw new Error(`no trace ${id}`);
    trace.feedback = score;
    trace.feedbackSource = source;
    trace.feedbackTime = time ?? Math.max(...this.traces.map((t) => Math.max(t.time, t.feedbackTime ?? 0))) + 1;
  }

  /**
   * QualityEvidence by brute force: failures and successes with feedback (never a `refused` trace),
   * newest evidence first per arm.
   */
  async qualityEvidence(query: QualityEvidenceQuery = {}): Promise<QualityEvidence[]> {
    const decay = query.decay ?? 1;
    const evidenceTime = (t: FakeTrace) => (t.outcome === 'success' ? (t.feedbackTime ?? t.time) : t.time);
    const arms = new Map<string, { trace: FakeTrace; order: number }[]>();
    this.traces.forEach((trace, order) => {
      if (trace.outcome === 'refused' || (trace.outcome === 'success' && trace.feedback === null)) return;
      if (query.since !== undefined && trace.time < query.since) return;
      if (query.until !== undefined && trace.time >= query.until) return;
      if (query.source !== undefined && (trace.source ?? 'live') !== query.source) return;
      const key = `${trace.queryClass}\u0000${trace.model}`;
      const list = arms.get(key) ?? [];
      list.push({ trace, order });
      arms.set(key, list);
    });
    const rows: QualityEvidence[] = [];
    for (const list of arms.values()) {
      list.sort((a, b) => evidenceTime(b.trace) - evidenceTime(a.trace) || b.order - a.order);
      const first = list[0]!.trace;
      const row: QualityEvidence = {
        queryClass: first.queryClass, model: first.model, observations: list.length, failures: 0,
        ratedCount: 0, ratedSum: 0, judgeCount: 0, judgeSum: 0, implicitCount: 0, implicitSum: 0,
      };
      list.forEach(({ trace }, k) => {
        const w = Math.pow(decay, k);
        if (trace.outcome !== 'success') {
          row.failures += w;
          return;
        }
        const source = trace.feedbackSource ?? 'human';
        const sums = source === 'judge' ? 'judge' : source === 'implicit' ? 'implicit' : 'rated';
        row[`${sums}Count`] += w;
        row[`${sums}Sum`] += w * (trace.feedback as number);
      });
      rows.push(row);
    }
    return rows;
  }

  async evidence(query: EvidenceQuery = {}): Promise<ArmEvidence[]> {
    this.evidenceCalls.push({ ...query });
    const decay = query.decay ?? 1;
    let selected = this.traces.filter(
      (t) =>
        (query.since === undefined || t.time >= query.since) &&
        (query.until === undefined || t.time < query.until) &&
        (query.source === undefined || (t.source ?? 'live') === query.source),
    );
    if (query.maxTraces !== undefined) selected = selected.slice(Math.max(0, selected.length - query.maxTraces));

    // Arms in order of their first (oldest) trace; within an arm, k counts the newer traces.
    const arms = new Map<string, FakeTrace[]>();
    for (const trace of selected) {
      const key = `${trace.queryClass}\u0000${trace.model}`;
      const list = arms.get(key);
      if (list === undefined) arms.set(key, [trace]);
      else list.push(trace);
    }
    const rows: ArmEvidence[] = [];
    for (const list of arms.values()) {
      const first = list[0] as FakeTrace;
      const row: ArmEvidence = {
        queryClass: first.queryClass,
        model: first.model,
        count: list.length,
        weight: 0,
        successes: 0,
        quality: 0,
        feedbackCount: 0,
        feedbackSum: 0,
        ratedCount: 0,
        ratedSum: 0,
        judgeCount: 0,
        judgeSum: 0,
        implicitCount: 0,
        implicitSum: 0,
        costSum: 0,
        costCount: 0,
        latencySumMs: 0,
        lastTime: 0,
      };
      list.forEach((trace, index) => {
        const w = Math.pow(decay, list.length - 1 - index);
        row.weight += w;
        if (trace.outcome === 'success') row.successes += w;
        row.quality += w * fakeQuality(trace);
        if (trace.feedback !== null) {
          row.feedbackCount += w;
          row.feedbackSum += w * trace.feedback;
          if (trace.outcome === 'success') {
            const source = trace.feedbackSource ?? 'human';
            const sums = source === 'judge' ? 'judge' : source === 'implicit' ? 'implicit' : 'rated';
            row[`${sums}Count`] += w;
            row[`${sums}Sum`] += w * trace.feedback;
          }
        }
        if (trace.costUsd !== null) {
          row.costSum += w * trace.costUsd;
          row.costCount += w;
        }
        row.latencySumMs += w * trace.latencyMs;
        row.lastTime = Math.max(row.lastTime, trace.time);
      });
      rows.push(row);
    }
    return rows;
  }

  async recentByArm(perArm: number): Promise<RecentArmTrace[]> {
    this.recentCalls.push(perArm);
    const out: RecentArmTrace[] = [];
    const seen = new Map<string, number>();
    for (let i = this.traces.length - 1; i >= 0; i--) {
      const trace = this.traces[i] as FakeTrace;
      if ((trace.source ?? 'live') !== 'live') continue;
      const key = `${trace.queryClass}\u0000${trace.model}`;
      const age = seen.get(key) ?? 0;
      seen.set(key, age + 1);
      if (age < perArm) {
        out.push({
          id: trace.id,
          queryClass: trace.queryClass,
          model: trace.model,
          age,
          quality: fakeQuality(trace),
          failed: trace.outcome !== 'success',
          feedback: trace.feedback,
          feedbackSource: trace.feedback === null ? null : (trace.feedbackSource ?? 'human'),
        });
      }
    }
    return out;
  }
}

/**
 * An adaptive arm's reliability sums (its successes and attempts, discounted per trace of the arm, as
 * ArmEvidence's `successes` and `weight`) and the reliability the policy weighs it by. armState()
 * does not report successes, so they are read from the policy's state.
 */
export function reliabilityOf(policy: AdaptivePolicy, queryClass: string, model: string): { successes: number; weight: number; reliability: number } | undefined {
  const classes = (policy as unknown as { classes: Map<string, { arms: Map<string, Arm> }> }).classes;
  const arm = classes.get(queryClass)?.arms.get(model);
  if (arm === undefined) return undefined;
  return { successes: arm.successes, weight: arm.weight, reliability: reliability(arm) };
}
