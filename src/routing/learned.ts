import { isRoutingEvidence } from '../core/reserved-classes.js';
import type { ArmEvidence } from '../traces/types.js';
import type {
  ArmSnapshot,
  ClassSnapshot,
  Decision,
  EvidenceSource,
  FeedbackObservation,
  Observation,
  PolicyOptions,
  PolicySnapshot,
  QueryClass,
  RouterPolicy,
  RoutingContext,
  UpdateSummary,
} from './types.js';

/** The original reads at most this many traces per update (`list_traces(limit=10_000)`). */
const MAX_TRACES = 10_000;

/** Per class × model numbers from the last batch update (plain, undiscounted sums). */
interface ArmScore {
  model: string;
  count: number;
  successes: number;
  feedbackCount: number;
  feedbackSum: number;
  costSum: number;
  costCount: number;
  lastTime: number;
}

/** The original's weighted score: 60% success rate, 40% mean feedback (0.5 when there is none). */
export function compositeScore(arm: {
  count: number;
  successes: number;
  feedbackCount: number;
  feedbackSum: number;
}): number {
  const sr = arm.count > 0 ? arm.successes / arm.count : 0;
  const fb = arm.feedbackCount > 0 ? arm.feedbackSum / arm.feedbackCount : 0.5;
  return 0.6 * sr + 0.4 * fb;
}

/**
 * The faithful port of OpenJarvis's TraceDrivenPolicy: a query class → model map, trusted once a class
 * has `minSamples` traces, recomputed in batch from the trace store, nudged online only while young.
 */
export class TraceDrivenPolicy implements RouterPolicy {
  readonly name = 'learned';
  readonly minSamples: number;

  private readonly defaultModel: string;
  private readonly fallbackModel: string;
  private readonly source: EvidenceSource | undefined;
  private readonly priorWeight: number;
  private readonly map = new Map<QueryClass, string>();
  private readonly confidenceByClass = new Map<QueryClass, number>();
  private readonly arms = new Map<QueryClass, ArmScore[]>();
  /** class → model → how many times select() chose it (for the snapshot's share). */
  private readonly decisions = new Map<QueryClass, Map<string, number>>();

  constructor(options: PolicyOptions) {
    this.minSamples = options.minSamples;
    this.defaultModel = options.defaultModel ?? '';
    this.fallbackModel = options.fallbackModel ?? '';
    this.source = options.source;
    this.priorWeight = options.priorWeight ?? 50;
  }

  /** The learned routing decisions (a copy). */
  get policyMap(): Record<string, string> {
    return Object.fromEntries(this.map);
  }

  /** Samples behind each class's mapping (a copy). */
  get confidence(): Record<string, number> {
    return Object.fromEntries(this.confidenceByClass);
  }

  /**
   * As the original: an empty `available` list means "no restriction" (the original's `not avail`),
   * so the learned, default or fallback model is returned as is.
   */
  select(ctx: RoutingContext): Decision {
    const decision = this.choose(ctx.queryClass, ctx.available);
    if (decision.model !== '') this.countDecision(ctx.queryClass, decision.model);
    return decision;
  }

  private choose(queryClass: QueryClass, available: readonly string[]): Decision {
    const allowed = (model: string): boolean => available.length === 0 || available.includes(model);
    const learned = this.map.get(queryClass);
    if (learned !== undefined && (this.confidenceByClass.get(queryClass) ?? 0) >= this.minSamples && allowed(learned)) {
      return { model: learned, reason: 'learned' };
    }
    if (this.defaultModel && allowed(this.defaultModel)) return { model: this.defaultModel, reason: 'default' };
    if (this.fallbackModel && allowed(this.fallbackModel)) return { model: this.fallbackModel, reason: 'fallback' };
    const first = available[0];
    if (first !== undefined) return { model: first, reason: 'fallback' };
    return { model: this.defaultModel, reason: 'default' };
  }

  private countDecision(queryClass: QueryClass, model: string): void {
    let byModel = this.decisions.get(queryClass);
    if (byModel === undefined) {
      byModel = new Map();
      this.decisions.set(queryClass, byModel);
    }
    byModel.set(model, (byModel.get(model) ?? 0) + 1);
  }

  /** The original's online rule: map a new class at once; later, switch only on clear success while young. */
  observe(obs: Observation): void {
    const queryClass = obs.queryClass;
    if (!isRoutingEvidence(queryClass)) return;
    if (!this.map.has(queryClass)) {
      this.map.set(queryClass, obs.model);
      this.confidenceByClass.set(queryClass, 1);
      return;
    }
    const before = this.confidenceByClass.get(queryClass) ?? 0;
    this.confidenceByClass.set(queryClass, before + 1);
    if (obs.outcome === 'success' && obs.feedback !== null && obs.feedback > 0.7 && before < this.minSamples) {
      this.map.set(queryClass, obs.model);
    }
  }

  /**
   * The original has no feedback hook: late feedback reaches this policy through the next batch
   * update, which reads it from the trace store. Kept a no-op on purpose (faithful port).
   */
  observeFeedback(_feedback: FeedbackObservation): void {}

  async updateFromTraces(range: { since?: number; until?: number } = {}): Promise<UpdateSummary> {
    if (this.source === undefined) return { error: 'no analyzer configured' };
    const [live, offline] = await Promise.all([
      this.source.evidence({ since: range.since, until: range.until, maxTraces: MAX_TRACES, source: 'live' }),
      this.source.evidence({ since: range.since, until: range.until, source: 'offline' }),
    ]);
    // The gateway's own classes (the judge's calls, embeddings) are no routing evidence.
    const rows = withPrior(live, offline, this.priorWeight).filter((row) => isRoutingEvidence(row.queryClass));
    let totalTraces = 0;
    for (const row of rows) totalTraces += row.count;
    if (totalTraces === 0) return { updated: false, reason: 'no traces' };

    const groups = new Map<QueryClass, ArmEvidence[]>();
    for (const row of rows) {
      if (row.count === 0) continue;
      const group = groups.get(row.queryClass);
      if (group === undefined) groups.set(row.queryClass, [row]);
      else group.push(row);
    }

    const changes: Record<string, { old: string; new: string }> = {};
    for (const [queryClass, group] of groups) {
      const scored = group.filter((row) => row.model !== '').map(toArmScore);
      const best = bestArm(scored);
      if (best === undefined) continue;
      const old = this.map.get(queryClass);
      this.map.set(queryClass, best.model);
      this.confidenceByClass.set(
        queryClass,
        scored.reduce((sum, arm) => sum + arm.count, 0),
      );
      this.arms.set(queryClass, scored);
      if (old !== best.model) changes[queryClass] = { old: old ?? '', new: best.model };
    }
    return { updated: true, query_classes: groups.size, total_traces: totalTraces, changes };
  }

  snapshot(): PolicySnapshot {
    const classes = new Set<QueryClass>([...this.map.keys(), ...this.arms.keys(), ...this.decisions.keys()]);
    const out: ClassSnapshot[] = [];
    for (const queryClass of classes) out.push(this.classSnapshot(queryClass));
    return { policy: this.name, classes: out };
  }

  private classSnapshot(queryClass: QueryClass): ClassSnapshot {
    const decided = this.decisions.get(queryClass);
    let totalDecisions = 0;
    if (decided !== undefined) for (const n of decided.values()) totalDecisions += n;
    const share = (model: string): number =>
      totalDecisions > 0 ? (decided?.get(model) ?? 0) / totalDecisions : 0;

    const arms: ArmSnapshot[] = [];
    const known = new Set<string>();
    for (const arm of this.arms.get(queryClass) ?? []) {
      const estimate = compositeScore(arm);
      known.add(arm.model);
      arms.push({
        model: arm.model,
        estimate,
        // Binomial standard error of the score, as if it were a rate over `count` trials.
        uncertainty: Math.sqrt((estimate * (1 - estimate)) / arm.count),
        costUsd: arm.costCount > 0 ? arm.costSum / arm.costCount : null,
        samples: arm.count,
        share: share(arm.model),
      });
    }
    // Models chosen without batch evidence (default/fallback, or mapped online): no estimate yet.
    for (const model of decided?.keys() ?? []) {
      if (known.has(model)) continue;
      arms.push({ model, estimate: 0, uncertainty: 0.5, costUsd: null, samples: 0, share: share(model) });
    }
    return {
      queryClass,
      choice: this.map.get(queryClass) ?? '',
      confidence: this.confidenceByClass.get(queryClass) ?? 0,
      arms,
    };
  }
}

/**
 * Live rows with the offline evidence (imported evaluation results) added as a prior: per class ×
 * model, its sums scaled to count at most `priorWeight` traces.
 */
function withPrior(live: readonly ArmEvidence[], offline: readonly ArmEvidence[], priorWeight: number): ArmEvidence[] {
  const out = live.map((row) => ({ ...row }));
  const byArm = new Map(out.map((row) => [`${row.queryClass}\u0000${row.model}`, row]));
  for (const row of offline) {
    if (row.count === 0) continue;
    const f = Math.min(1, priorWeight / row.count);
    if (!(f > 0)) continue;
    let arm = byArm.get(`${row.queryClass}\u0000${row.model}`);
    if (arm === undefined) {
      arm = {
        ...row, count: 0, weight: 0, successes: 0, quality: 0, feedbackCount: 0, feedbackSum: 0, ratedCount: 0, ratedSum: 0,
        judgeCount: 0, judgeSum: 0, implicitCount: 0, implicitSum: 0, costSum: 0, costCount: 0, latencySumMs: 0,
      };
      byArm.set(`${row.queryClass}\u0000${row.model}`, arm);
      out.push(arm);
    }
    arm.count += f * row.count;
    arm.weight += f * row.weight;
    arm.successes += f * row.successes;
    arm.quality += f * row.quality;
    arm.feedbackCount += f * row.feedbackCount;
    arm.feedbackSum += f * row.feedbackSum;
    arm.ratedCount += f * row.ratedCount;
    arm.ratedSum += f * row.ratedSum;
    arm.judgeCount += f * row.judgeCount;
    arm.judgeSum += f * row.judgeSum;
    arm.implicitCount += f * row.implicitCount;
    arm.implicitSum += f * row.implicitSum;
    arm.costSum += f * row.costSum;
    arm.costCount += f * row.costCount;
  }
  return out;
}

function toArmScore(row: ArmEvidence): ArmScore {
  return {
    model: row.model,
    count: row.count,
    successes: row.successes,
    feedbackCount: row.feedbackCount,
    feedbackSum: row.feedbackSum,
    costSum: row.costSum,
    costCount: row.costCount,
    lastTime: row.lastTime,
  };
}

/**
 * Argmax of the composite score. On a tie Python's `max` keeps the model seen first, and the original
 * lists traces newest first (`ORDER BY started_at DESC`): so the model with the most recent trace wins,
 * whatever order the rows come in.
 */
function bestArm(arms: readonly ArmScore[]): ArmScore | undefined {
  let best: ArmScore | undefined;
  let bestScore = -Infinity;
  for (const arm of arms) {
    const score = compositeScore(arm);
    if (score > bestScore || (score === bestScore && best !== undefined && arm.lastTime > best.lastTime)) {
      best = arm;
      bestScore = score;
    }
  }
  return best;
}
