/*
 * The adaptive policy's state: per model, per class × model ("arm"), and the traces remembered for
 * late feedback. Plain data and the few functions that keep it consistent; the policy is adaptive.ts.
 */

/** TEMPER_FROM and MAX_TEMPER: see temper(). */
const TEMPER_FROM = 100;
const MAX_TEMPER = 4;

export interface ModelState {
  readonly key: string;
  readonly priorCost: number;
  /** Configured (so its price, even 0, is known). */
  readonly priced: boolean;
  readonly arms: Arm[];
  /** Sums over this model's arms in all classes: its mean latency where a class has none yet. */
  weight: number;
  latencySumMs: number;
}

/** One class × model. The sums follow ArmEvidence's meaning (discounted per arm). */
export interface Arm {
  readonly model: ModelState;
  /** Traces (raw), their discounted weight, successes, cost and latency sums (forgetting per trace). */
  count: number;
  weight: number;
  successes: number;
  costSum: number;
  costCount: number;
  latencySumMs: number;
  /** Traces of this arm so far. */
  tick: number;
  /**
   * The quality of its successful answers (QualityEvidence's ratings: Σ sourceWeight and Σ
   * sourceWeight × score) twice: forgetting per piece of evidence, failures included (the recent
   * window, qWeight/qSum), and without forgetting (the whole record, lWeight/lSum). The record is the
   * estimate unless the window says it changed.
   */
  qWeight: number;
  qSum: number;
  lWeight: number;
  lSum: number;
  /** Pieces of quality evidence of this arm so far (ratings and failures, raw): what the window's forgetting counts. */
  qTick: number;
  /** Rated answers behind the estimate (raw; a replaced rating counts once). */
  rated: number;
  /** Discounted count of the class's selections that chose this arm, as of the class's pick `pickTick`. */
  picks: number;
  pickTick: number;
  /** Ids of this arm's newest traces remembered for late feedback (a ring), and its next slot. */
  recent: (string | undefined)[] | null;
  recentNext: number;
}

export interface ClassState {
  readonly arms: Map<string, Arm>;
  /** Selections made in this class so far. */
  pickTick: number;
}

/** The rating a remembered trace counts with now: its score, its source's weight, and when it arrived. */
export interface Rating {
  score: number;
  weight: number;
  qTick: number;
  /** Counted in how often to explore: a served answer's rating from anyone but the judge (see exploreShare). */
  counted: boolean;
}

/** A recent trace, kept so that its late feedback can be counted. */
export interface PendingTrace {
  readonly arm: Arm;
  readonly failed: boolean;
  /** Not a shadow call's: its evidence counts toward how often to explore. */
  readonly served: boolean;
  rating: Rating | null;
}

/** Traces remembered for late feedback, by trace id. */
export interface PendingTraces {
  readonly size: number;
  get(id: string): PendingTrace | undefined;
  has(id: string): boolean;
  set(id: string, entry: PendingTrace): unknown;
  delete(id: string): boolean;
}

/** The Thompson draw's concentration factor for an arm of this (discounted) weight: see TEMPER_FROM. */
export function temper(weight: number): number {
  return Math.min(MAX_TEMPER, Math.max(1, weight / TEMPER_FROM));
}

export function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}

export function armKey(queryClass: string, model: string): string {
  return `${queryClass}\u0000${model}`;
}

/**
 * router.defaultModel when configured, else the priciest routed model (none when no routed model has
 * a price). A model kept out of `auto` (a judge, say) is never the anchor.
 */
export function anchorOf(models: ReadonlyMap<string, ModelState>, defaultModel: string | undefined, routed: (key: string) => boolean): ModelState | undefined {
  if (defaultModel !== undefined) {
    const configured = models.get(defaultModel);
    if (configured !== undefined && routed(defaultModel)) return configured;
  }
  let anchor: ModelState | undefined;
  for (const model of models.values()) {
    if (routed(model.key) && model.priorCost > 0 && (anchor === undefined || model.priorCost > anchor.priorCost)) anchor = model;
  }
  return anchor;
}

export function newModel(key: string, priorCost: number, priced: boolean): ModelState {
  return { key, priorCost, priced, arms: [], weight: 0, latencySumMs: 0 };
}

/** Recomputed by summation rather than kept by increments, so it never drifts. */
export function refreshTotals(model: ModelState): void {
  let weight = 0;
  let latencySumMs = 0;
  for (const arm of model.arms) {
    weight += arm.weight;
    latencySumMs += arm.latencySumMs;
  }
  model.weight = weight;
  model.latencySumMs = latencySumMs;
}

export function newArm(model: ModelState): Arm {
  return {
    model,
    count: 0,
    weight: 0,
    successes: 0,
    costSum: 0,
    costCount: 0,
    latencySumMs: 0,
    tick: 0,
    qWeight: 0,
    qSum: 0,
    lWeight: 0,
    lSum: 0,
    qTick: 0,
    rated: 0,
    picks: 0,
    pickTick: 0,
    recent: null,
    recentNext: 0,
  };
}

/**
 * How far (in standard deviations of the recent window's mean) the recent window must be from the
 * whole record before the record is set aside: a model that breaks (its failures all count) or whose
 * rated quality moves is judged on its recent evidence alone, within tens of observations, while a
 * steady model keeps everything it ever earned. Both are plain sums, so a rebuild from the store
 * makes the same call as the online updates did.
 */
export const CHANGE_Z = 3;

/** The quality sums an arm is judged on: its whole record, or its recent window when that differs by more than CHANGE_Z. */
export function judgedSums(arm: Arm | undefined): { weight: number; sum: number } {
  if (arm === undefined) return { weight: 0, sum: 0 };
  const record = (1 + arm.lSum) / (2 + arm.lWeight);
  const recent = (1 + arm.qSum) / (2 + arm.qWeight);
  const sd = Math.sqrt((record * (1 - record)) / (2 + arm.qWeight));
  return Math.abs(recent - record) > CHANGE_Z * sd ? { weight: arm.qWeight, sum: arm.qSum } : { weight: arm.lWeight, sum: arm.lSum };
}

/**
 * The prior of an arm's reliability (the share of its attempts that succeed): RELIABILITY_PRIOR_WEIGHT
 * pseudo-attempts at RELIABILITY_PRIOR. Most upstreams answer; a model must fail several times in a
 * row, or often, before its expected utility drops much — and a model failing at an ordinary rate
 * (a few percent) keeps nearly all of its estimate, however much traffic it serves.
 */
const RELIABILITY_PRIOR = 0.98;
const RELIABILITY_PRIOR_WEIGHT = 10;

/** An arm's expected reliability, from its recent attempts (forgetting per trace). */
export function reliability(arm: Arm | undefined): number {
  return (RELIABILITY_PRIOR_WEIGHT * RELIABILITY_PRIOR + (arm?.successes ?? 0)) / (RELIABILITY_PRIOR_WEIGHT + (arm?.weight ?? 0));
}

/** Pseudo-observations given to the price-based cost prior. */
const COST_PRIOR_WEIGHT = 1;

/** Mean of known costs blended with the price-based prior as COST_PRIOR_WEIGHT pseudo-observations. */
export function expectedCost(model: ModelState, arm: Arm | undefined): number {
  const priorWeight = model.priced ? COST_PRIOR_WEIGHT : 0;
  const count = priorWeight + (arm?.costCount ?? 0);
  if (count === 0) return 0;
  return (priorWeight * model.priorCost + (arm?.costSum ?? 0)) / count;
}

/** The arm's mean latency; for an untried arm the model's mean in other classes, else 0 (optimistic). */
export function expectedSeconds(model: ModelState, arm: Arm | undefined): number {
  if (arm !== undefined && arm.weight > 0) return arm.latencySumMs / arm.weight / 1000;
  if (model.weight > 0.5) return model.latencySumMs / model.weight / 1000;
  return 0;
}

/** One arm's raw sums (AdaptivePolicy.armState, for tests and diagnostics). */
export interface ArmDiagnostics {
  count: number;
  weight: number;
  /** The recent window's quality sums, and the whole record's. */
  quality: number;
  qualityWeight: number;
  record: number;
  recordWeight: number;
  rated: number;
  costSum: number;
  costCount: number;
  latencySumMs: number;
}
