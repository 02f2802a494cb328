import type { RecentArmTrace } from '../traces/types.js';
import { QUERY_CLASSES } from './classify.js';
import {
  anchorOf,
  clamp01,
  expectedCost,
  expectedSeconds,
  judgedSums,
  newArm,
  newModel,
  refreshTotals,
  reliability,
  temper,
  type Arm,
  type ArmDiagnostics,
  type ClassState,
  type ModelState,
  type PendingTrace,
  type PendingTraces,
  type Rating,
} from './adaptive-state.js';
import { DEFAULT_PRIOR_WEIGHT, DEFAULT_SOURCE_WEIGHTS } from '../core/config.js';
import { isRoutingEvidence } from '../core/reserved-classes.js';
import { loadEvidence, type StoreSums } from './adaptive-load.js';
import { attemptFailed, qualityFailure, ReplayBuffer } from './pending-feedback.js';
import {
  discountFactor,
  EXPLORE_FLOOR,
  PRICE_PRIOR_WEIGHT,
  priorCostUsd,
  ratingWeight,
  type SourceWeights,
} from './prior.js';
import { PriceCurve } from './price-curve.js';
import { Random } from './random.js';
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

/*
 * Why Thompson sampling on a Beta posterior of quality, per query class:
 * - rewards are fractional (ratings in [0, 1]) and a Beta posterior takes them as fractional
 *   successes with no change;
 * - it has no exploration constant to tune (LinUCB on the RouterBench subset was very sensitive to
 *   its constant);
 * - exploration fades by itself as the posteriors narrow, and comes back when forgetting widens them.
 *
 * An arm's value is its reliability (the share of attempts that succeed, from every trace) times the
 * quality of its successful answers, learned from ratings only (a human's, the judge's, an implicit
 * signal's, offline evidence), each weighed by its source: an answer that succeeded and was never
 * rated is evidence about availability, cost and latency only. Silence is not praise. The ratings
 * are kept twice, the whole record and a recent window forgetting per piece of evidence (ratings and
 * failures, not requests), and the record is used unless the window says the model changed.
 *
 * With few ratings the prior decides: the price prior (src/routing/price-curve.ts: a cheaper model
 * is assumed a little worse than what the class's rated models say, a pricier one no better), with
 * the anchor (router.defaultModel, else the priciest routed model) winning ties. Traffic leaves the
 * anchor as ratings say another model is as good for less; a model that claims to be better than the
 * anchor must show it by a margin (ANCHOR_MARGIN_SD).
 *
 * Exploration goes where evidence comes back: every request the judge will grade gets a Thompson
 * draw, and the others get one as often as a served answer brings a rating back from anyone else.
 */

/** Draws a shadow candidate may take to find a model that beats the served one (shadowCandidate). */
const SHADOW_DRAWS = 10;

/**
 * The margin a model whose quality estimate is above the anchor's must clear to take the anchor's
 * traffic: with its quality this many standard deviations lower (never lower than the anchor's), it
 * must still beat the anchor's utility (see shows). A model no better than the anchor needs no
 * margin (it wins, if it does, by being cheaper or more reliable); one that claims to be better must
 * show it, so a few lucky ratings do not move a class off its safe default.
 */
const ANCHOR_MARGIN_SD = 1;
/** Most traces remembered for late feedback. */
const MAX_PENDING = 100_000;
/**
 * Traces remembered per arm for late feedback (within MAX_PENDING overall). A late rating counts in
 * full however old its trace is, so this is a matter of memory, not of weight: a rating for a trace
 * that far back waits for the next rebuild.
 */
const PENDING_PER_ARM = 2000;

/**
 * The default policy: Thompson sampling per query class over the available models, on the utility
 * reliability × quality − costWeight × dollars − latencyWeight × seconds, with quality learned from
 * ratings only, an anchored price prior, and exploration where ratings come back.
 */
export class AdaptivePolicy implements RouterPolicy {
  readonly name = 'adaptive';

  private readonly gamma: number;
  private readonly costWeight: number;
  private readonly latencyWeight: number;
  private readonly defaultModel: string | undefined;
  private readonly priorWeight: number;
  private readonly weights: SourceWeights;
  private readonly configuredKeys: readonly string[];
  /** The configured models `auto` may route to (not `routed: false`): what the snapshot and its choice list. */
  private readonly routedKeys: readonly string[];
  private readonly source: EvidenceSource | undefined;
  private readonly random: Random;
  private readonly models = new Map<string, ModelState>();
  private readonly classes = new Map<QueryClass, ClassState>();
  /** The model the price prior is anchored to (undefined: no prices, no anchor). */
  private readonly anchor: ModelState | undefined;
  /** The price prior's references in the class being decided (loaded before each posterior loop). */
  private readonly curve: PriceCurve;
  private pending: PendingTraces;
  /** Traces remembered per arm: PENDING_PER_ARM, or MAX_PENDING shared among the arms when there are many. */
  private perArm: number;
  /** Served traces, and their ratings from anyone but the judge (raw): their ratio is how often the ungraded explore. */
  private traces = 0;
  private evidence = 0;
  /** Active while an update reads the store: what arrives meanwhile is replayed on the rebuilt state. */
  private readonly replay = new ReplayBuffer();
  private updates: Promise<unknown> = Promise.resolve();
  // Scratch output of posterior(), to keep select() free of allocations.
  private alpha = 1;
  private beta = 1;

  constructor(options: PolicyOptions) {
    this.gamma = discountFactor(options.halfLife);
    this.costWeight = options.costWeight;
    this.latencyWeight = options.latencyWeight;
    this.defaultModel = options.defaultModel;
    this.priorWeight = options.priorWeight ?? DEFAULT_PRIOR_WEIGHT;
    this.weights = options.sourceWeights ?? DEFAULT_SOURCE_WEIGHTS;
    this.configuredKeys = options.models.map((m) => m.key);
    this.source = options.source;
    this.random = new Random(options.seed);
    this.pending = this.newPending();
    this.perArm = this.recentPerArm();
    for (const model of options.models) {
      this.models.set(model.key, newModel(model.key, priorCostUsd(model), true));
    }
    const unrouted = new Set(options.models.filter((m) => m.routed === false).map((m) => m.key));
    this.routedKeys = this.configuredKeys.filter((key) => !unrouted.has(key));
    this.anchor = anchorOf(this.models, options.defaultModel, (key) => !unrouted.has(key));
    this.curve = new PriceCurve(this.anchor);
  }

  select(ctx: RoutingContext): Decision {
    const available = ctx.available;
    if (available.length === 0) return { model: this.defaultModel ?? '', reason: 'default' };
    const state = this.classes.get(ctx.queryClass);
    this.curve.load(state);
    // A graded answer nearly always brings its rating back: exploring there costs as much and teaches more.
    const explore = ctx.exploit !== true && (ctx.graded === true || this.random.uniform() < this.exploreShare());
    const anchor = this.anchorMark(state, available);
    let chosen = available[0] as string;
    let chosenScore = -Infinity;
    let greedy = chosen;
    let greedyScore = -Infinity;
    for (let i = 0; i < available.length; i++) {
      const key = available[i] as string;
      const model = this.model(key);
      const arm = state?.arms.get(key);
      this.posterior(model, arm);
      const penalty = this.penalty(model, arm);
      const reliable = reliability(arm);
      const mean = reliable * (this.alpha / (this.alpha + this.beta)) - penalty;
      // On a tie (no evidence yet) the anchor is the best estimate.
      if ((mean > greedyScore || (mean === greedyScore && model === this.anchor)) && this.shows(model, reliable, penalty, anchor)) {
        greedy = key;
        greedyScore = mean;
      }
      if (explore) {
        const c = arm === undefined ? 1 : temper(judgedSums(arm).weight);
        const sampled = reliable * this.random.beta(c * this.alpha, c * this.beta) - penalty;
        if (sampled > chosenScore) {
          chosen = key;
          chosenScore = sampled;
        }
      }
    }
    if (!explore) chosen = greedy;
    this.countPick(ctx.queryClass, chosen);
    return { model: chosen, reason: chosen === greedy ? 'learned' : 'explore' };
  }

  /**
   * The model this policy most wants to learn about for this request besides the served one (a
   * shadow call's target): the model most likely to be better than the served one. Top-two Thompson
   * sampling: full-width draws over every model, the served one included, until one is won by
   * another model (at most SHADOW_DRAWS); if the served model wins them all, the best of the others
   * in the last draw. A model whose estimate is close to the served one's but still uncertain is
   * tried far more often than one known to be a little worse.
   */
  shadowCandidate(ctx: RoutingContext, served: string): string | undefined {
    const state = this.classes.get(ctx.queryClass);
    this.curve.load(state);
    let other: string | undefined;
    for (let draw = 0; draw < SHADOW_DRAWS; draw++) {
      let best: string | undefined;
      let bestScore = -Infinity;
      let otherScore = -Infinity;
      for (const key of ctx.available) {
        const model = this.model(key);
        const arm = state?.arms.get(key);
        this.posterior(model, arm);
        const sampled = reliability(arm) * this.random.beta(this.alpha, this.beta) - this.penalty(model, arm);
        if (sampled > bestScore) {
          best = key;
          bestScore = sampled;
        }
        if (key !== served && sampled > otherScore) {
          other = key;
          otherScore = sampled;
        }
      }
      if (best !== served) return best;
    }
    return other;
  }

  /**
   * The share of ungraded requests that get a Thompson draw: how often a served answer brings a rating
   * back from anyone but the judge (a user, an implicit signal). Requests the judge will grade always
   * get one (RoutingContext.graded), so the judge's ratings are not counted here.
   */
  private exploreShare(): number {
    return Math.min(1, Math.max(EXPLORE_FLOOR, (this.evidence + 1) / (this.traces + 1)));
  }

  /**
   * One finished attempt. A trace already known (e.g. read by a rebuild that ran meanwhile) is not
   * counted twice. For `updateFromTraces` to reproduce this state, call it for exactly the traces the
   * store sums, with failed-over attempts stored as failures.
   */
  observe(observation: Observation): void {
    if (observation.model === '' || !isRoutingEvidence(observation.queryClass) || this.pending.has(observation.traceId)) return;
    // The prompt is not needed to learn; do not hold it while buffering.
    if (this.replay.active) this.replay.observe({ ...observation, query: '' });
    const failed = attemptFailed(observation);
    const arm = this.arm(observation.queryClass, observation.model);
    const g = this.gamma;
    if (g !== 1) {
      arm.weight *= g;
      arm.successes *= g;
      arm.costSum *= g;
      arm.costCount *= g;
      arm.latencySumMs *= g;
    }
    arm.count += 1;
    arm.weight += 1;
    if (!failed) arm.successes += 1;
    if (observation.costUsd !== null && Number.isFinite(observation.costUsd)) {
      arm.costSum += observation.costUsd;
      arm.costCount += 1;
    }
    arm.latencySumMs += observation.latencyMs;
    arm.tick += 1;
    const served = observation.shadow !== true;
    if (served) this.traces += 1;
    const entry: PendingTrace = { arm, failed, served, rating: null };
    // A refused attempt counts against reliability (it did not answer), not as quality evidence.
    if (qualityFailure(observation)) this.forgetQuality(arm);
    else if (!failed && observation.feedback !== null && Number.isFinite(observation.feedback)) {
      const counted = served && observation.feedbackSource !== 'judge';
      entry.rating = this.addQuality(arm, clamp01(observation.feedback), ratingWeight(observation.feedbackSource, this.weights), counted);
      arm.rated += 1;
    }
    refreshTotals(arm.model);
    this.remember(observation.traceId, entry);
  }

  /**
   * A new rating, the arm's newest piece of evidence: the window's older ones weigh γ less. `counted`:
   * it counts in how often to explore (Rating.counted).
   */
  private addQuality(arm: Arm, score: number, weight: number, counted: boolean): Rating {
    this.forgetQuality(arm);
    arm.qWeight += weight;
    arm.qSum += weight * score;
    arm.lWeight += weight;
    arm.lSum += weight * score;
    if (counted) this.evidence += 1;
    return { score, weight, qTick: arm.qTick, counted };
  }

  /**
   * A new piece of quality evidence (a rating, or a failure: the store orders both): the window's
   * older ratings weigh γ less.
   */
  private forgetQuality(arm: Arm): void {
    const g = this.gamma;
    arm.qWeight *= g;
    arm.qSum *= g;
    arm.qTick += 1;
  }

  /** The arms' rings decide what is forgotten (a plain Map, capped overall). */
  private newPending(): PendingTraces {
    return new Map<string, PendingTrace>();
  }

  /** Keeps a trace for late feedback; the arm's oldest one goes when the arm has its fill. */
  private remember(traceId: string, entry: PendingTrace): void {
    const arm = entry.arm;
    const ring = (arm.recent ??= new Array<string | undefined>(this.perArm));
    const old = ring[arm.recentNext];
    const swaps = old !== undefined && this.pending.get(old)?.arm === arm;
    // An arm that has its fill swaps its oldest trace out, so it always takes new ones. Past the
    // overall bound (only with more arms than the capacity was shared among) a trace that would grow
    // the map is not remembered: its late feedback then waits for the next rebuild.
    if (!swaps && this.pending.size >= MAX_PENDING && !this.pending.has(traceId)) return;
    if (swaps) this.pending.delete(old);
    this.pending.set(traceId, entry);
    ring[arm.recentNext] = traceId;
    arm.recentNext = (arm.recentNext + 1) % ring.length;
  }

  /**
   * A rating that arrives after its trace is the arm's newest piece of quality evidence (as the store
   * orders it: by when the rating was given). A rating that replaces an earlier one takes the earlier
   * one out first (weighed as it weighs now), so nothing is counted twice. A failed trace's quality is
   * 0 whatever is said of it. A trace no longer remembered is left to the next rebuild.
   */
  observeFeedback(feedback: FeedbackObservation): void {
    this.replay.feedback(feedback);
    const entry = this.pending.get(feedback.traceId);
    if (entry === undefined || entry.failed || feedback.outcome !== 'success') return;
    const arm = entry.arm;
    const score = clamp01(feedback.score);
    const weight = ratingWeight(feedback.source, this.weights);
    const old = entry.rating;
    const counted = entry.served && feedback.source !== 'judge';
    if (old !== null) {
      if (old.score === score && old.weight === weight && old.counted === counted) return;
      const w = old.weight * Math.pow(this.gamma, arm.qTick - old.qTick);
      arm.qWeight = Math.max(0, arm.qWeight - w);
      arm.qSum = Math.min(arm.qWeight, Math.max(0, arm.qSum - w * old.score));
      arm.lWeight = Math.max(0, arm.lWeight - old.weight);
      arm.lSum = Math.min(arm.lWeight, Math.max(0, arm.lSum - old.weight * old.score));
      if (old.counted) this.evidence -= 1;
    } else {
      arm.rated += 1;
    }
    entry.rating = this.addQuality(arm, score, weight, counted);
  }

  /** Rebuilds the whole learned state from the store (updates run one at a time). */
  updateFromTraces(range: { since?: number; until?: number } = {}): Promise<UpdateSummary> {
    const source = this.source;
    if (source === undefined) return Promise.resolve({ error: 'no analyzer configured' });
    const run = this.updates.then(() => this.rebuild(source, range));
    this.updates = run.catch(() => undefined);
    return run;
  }

  private async rebuild(source: EvidenceSource, range: { since?: number; until?: number }): Promise<UpdateSummary> {
    this.replay.start();
    try {
      // The reads start in the same turn, so a store that flushes its writes before reading sees
      // the same traces in all of them.
      const [rows, quality, record, recent, offline, offlineQuality] = await Promise.all([
        source.evidence({ since: range.since, until: range.until, decay: this.gamma, source: 'live' }),
        source.qualityEvidence({ since: range.since, until: range.until, decay: this.gamma, source: 'live' }),
        this.gamma === 1 ? null : source.qualityEvidence({ since: range.since, until: range.until, source: 'live' }),
        source.recentByArm(this.recentPerArm()),
        source.evidence({ since: range.since, until: range.until, source: 'offline' }),
        source.qualityEvidence({ since: range.since, until: range.until, source: 'offline' }),
      ]);
      let totalTraces = 0;
      const seenClasses = new Set<QueryClass>();
      for (const row of [...rows, ...offline]) {
        if (!isRoutingEvidence(row.queryClass)) continue;
        totalTraces += row.count;
        if (row.count > 0) seenClasses.add(row.queryClass);
      }
      if (totalTraces === 0) return { updated: false, reason: 'no traces' };

      // From here on nothing awaits: the swap is atomic for select() and observe().
      const before = new Map<QueryClass, string>();
      for (const queryClass of seenClasses) {
        if (this.hasEvidence(queryClass)) before.set(queryClass, this.greedyChoice(queryClass));
      }
      const usable = <T extends { queryClass: string; model: string }>(row: T) => row.model !== '' && isRoutingEvidence(row.queryClass);
      this.load(
        {
          rows: rows.filter((row) => row.count > 0 && usable(row)),
          quality: quality.filter(usable),
          record: (record ?? quality).filter(usable),
          offline: offline.filter((row) => row.count > 0 && usable(row)),
          offlineQuality: offlineQuality.filter(usable),
        },
        recent.filter(usable),
      );
      const changes: Record<string, { old: string; new: string }> = {};
      for (const queryClass of seenClasses) {
        const old = before.get(queryClass) ?? '';
        const now = this.greedyChoice(queryClass);
        if (now !== old) changes[queryClass] = { old, new: now };
      }
      // What arrived while reading: observations the store did not have yet are added (known trace
      // ids are skipped by observe), and feedback is re-applied (it replaces, so it cannot double count).
      this.replay.replayInto(this);
      return { updated: true, query_classes: seenClasses.size, total_traces: totalTraces, changes };
    } finally {
      this.replay.stop();
    }
  }

  /** How many recent traces per arm to remember for late feedback: PENDING_PER_ARM, within MAX_PENDING overall. */
  private recentPerArm(): number {
    let known = 0;
    for (const state of this.classes.values()) for (const arm of state.arms.values()) if (arm.count > 0) known++;
    const arms = Math.max(1, known, this.configuredKeys.length * QUERY_CLASSES.length);
    const byCapacity = Math.max(1, Math.floor(MAX_PENDING / arms));
    return Math.min(byCapacity, PENDING_PER_ARM);
  }

  /** Loads the store's sums into the arms (loadEvidence), and remembers the recent traces for late feedback. */
  private load(sums: StoreSums, recent: readonly RecentArmTrace[]): void {
    const loaded = loadEvidence(
      { classes: this.classes, models: this.models, arm: (queryClass, key) => this.arm(queryClass, key), gamma: this.gamma, priorWeight: this.priorWeight, weights: this.weights },
      sums,
    );
    this.traces = loaded.traces;
    this.evidence = loaded.evidence;

    this.pending = this.newPending();
    this.perArm = this.recentPerArm();
    // Oldest first, so that eviction drops the oldest. A rated trace's rating counts as the arm's
    // newest (its place among the arm's ratings is not read back).
    const ordered = [...recent].sort((a, b) => b.age - a.age);
    for (const trace of ordered) {
      const arm = this.classes.get(trace.queryClass)?.arms.get(trace.model);
      if (arm === undefined || arm.count === 0) continue;
      const failed = trace.failed === true;
      const rating =
        !failed && trace.feedback !== null && trace.feedback !== undefined
          ? { score: clamp01(trace.feedback), weight: ratingWeight(trace.feedbackSource, this.weights), qTick: arm.qTick, counted: trace.feedbackSource !== 'judge' }
          : null;
      this.remember(trace.id, { arm, failed, served: true, rating });
    }
  }

  snapshot(): PolicySnapshot {
    const order = (queryClass: string): number => {
      const i = (QUERY_CLASSES as readonly string[]).indexOf(queryClass);
      return i === -1 ? QUERY_CLASSES.length : i;
    };
    const classes: ClassSnapshot[] = [];
    for (const [queryClass, state] of this.classes) {
      let hasData = false;
      for (const arm of state.arms.values()) if (arm.weight > 0 || arm.picks > 0) hasData = true;
      if (hasData) classes.push(this.classSnapshot(queryClass, state));
    }
    classes.sort((a, b) => order(a.queryClass) - order(b.queryClass));
    return { policy: this.name, classes };
  }

  private classSnapshot(queryClass: QueryClass, state: ClassState): ClassSnapshot {
    let totalPicks = 0;
    let confidence = 0;
    for (const arm of state.arms.values()) {
      totalPicks += this.picksNow(state, arm);
      confidence += judgedSums(arm).weight;
    }
    const arms: ArmSnapshot[] = [];
    this.curve.load(state);
    for (const key of this.candidates(state)) {
      const model = this.model(key);
      const arm = state.arms.get(key);
      this.posterior(model, arm);
      const sum = this.alpha + this.beta;
      const known = model.priced || (arm !== undefined && arm.costCount > 0);
      arms.push({
        model: key,
        estimate: this.alpha / sum,
        uncertainty: Math.sqrt((this.alpha * this.beta) / (sum * sum * (sum + 1))),
        costUsd: known ? expectedCost(model, arm) : null,
        samples: arm?.count ?? 0,
        rated: arm?.rated ?? 0,
        share: arm !== undefined && totalPicks > 0 ? this.picksNow(state, arm) / totalPicks : 0,
      });
    }
    return { queryClass, choice: this.greedyChoice(queryClass), confidence, arms };
  }

  /** The routed configured models (in config order), then any other model seen in the class but an unrouted one. */
  private candidates(state: ClassState | undefined): string[] {
    const keys = [...this.routedKeys];
    if (state !== undefined) {
      for (const key of state.arms.keys()) if (!keys.includes(key) && !this.configuredKeys.includes(key)) keys.push(key);
    }
    return keys;
  }

  /** Argmax of posterior mean utility over the candidates: what the policy would pick without exploring. */
  private greedyChoice(queryClass: QueryClass): string {
    const state = this.classes.get(queryClass);
    this.curve.load(state);
    const candidates = this.candidates(state);
    const anchor = this.anchorMark(state, candidates);
    let best = '';
    let bestScore = -Infinity;
    for (const key of candidates) {
      const model = this.model(key);
      const arm = state?.arms.get(key);
      this.posterior(model, arm);
      const reliable = reliability(arm);
      const penalty = this.penalty(model, arm);
      const score = reliable * (this.alpha / (this.alpha + this.beta)) - penalty;
      if ((score > bestScore || (score === bestScore && model === this.anchor)) && this.shows(model, reliable, penalty, anchor)) {
        best = key;
        bestScore = score;
      }
    }
    return best;
  }

  /**
   * What a model is measured against to take the anchor's traffic (see shows): the anchor's quality
   * and expected utility in the class, when the anchor is among `keys`; null otherwise (no margin).
   */
  private anchorMark(state: ClassState | undefined, keys: readonly string[]): { quality: number; utility: number } | null {
    const anchor = this.anchor;
    if (anchor === undefined || !keys.includes(anchor.key)) return null;
    const arm = state?.arms.get(anchor.key);
    this.posterior(anchor, arm);
    const quality = this.alpha / (this.alpha + this.beta);
    return { quality, utility: reliability(arm) * quality - this.penalty(anchor, arm) };
  }

  /**
   * Whether the model whose posterior is in this.alpha / this.beta may be the greedy choice against
   * the anchor: the anchor itself, a model no better than the anchor's quality (it wins, if it does,
   * by being cheaper or more reliable), or one whose quality ANCHOR_MARGIN_SD standard deviations
   * lower (never lower than the anchor's) still beats the anchor's utility.
   */
  private shows(model: ModelState, reliable: number, penalty: number, anchor: { quality: number; utility: number } | null): boolean {
    if (anchor === null || model === this.anchor) return true;
    const sum = this.alpha + this.beta;
    const mean = this.alpha / sum;
    if (mean <= anchor.quality) return true;
    const sd = Math.sqrt((this.alpha * this.beta) / (sum * sum * (sum + 1)));
    return reliable * Math.max(anchor.quality, mean - ANCHOR_MARGIN_SD * sd) - penalty > anchor.utility;
  }

  private hasEvidence(queryClass: QueryClass): boolean {
    const state = this.classes.get(queryClass);
    if (state === undefined) return false;
    for (const arm of state.arms.values()) if (arm.weight > 0 || arm.lWeight > 0) return true;
    return false;
  }

  /**
   * Beta posterior of an arm's quality into this.alpha / this.beta: a uniform prior, plus
   * PRICE_PRIOR_WEIGHT pseudo-observations at the price prior's mean (from the class's rated models:
   * PriceCurve), plus the ratings the arm is judged on (its whole record, or its recent window:
   * judgedSums). A model's quality in other classes is not lent: a model good at one kind of query
   * is often poor at another (on the RouterBench subset, Yi-34B is the best buy on ARC and Winogrande
   * and among the worst on MBPP).
   */
  private posterior(model: ModelState, arm: Arm | undefined): void {
    let alpha = 1;
    let beta = 1;
    const judged = judgedSums(arm);
    if (this.curve.active && model.priced) {
      const mean = this.curve.mean(model);
      alpha += PRICE_PRIOR_WEIGHT * mean;
      beta += PRICE_PRIOR_WEIGHT * (1 - mean);
    }
    this.alpha = alpha + judged.sum;
    this.beta = beta + Math.max(0, judged.weight - judged.sum);
  }

  private penalty(model: ModelState, arm: Arm | undefined): number {
    let penalty = 0;
    if (this.costWeight > 0) penalty += this.costWeight * expectedCost(model, arm);
    if (this.latencyWeight > 0) penalty += this.latencyWeight * expectedSeconds(model, arm);
    return penalty;
  }

  private picksNow(state: ClassState, arm: Arm): number {
    if (arm.picks === 0) return 0;
    return arm.picks * Math.pow(this.gamma, state.pickTick - arm.pickTick);
  }

  private countPick(queryClass: QueryClass, key: string): void {
    const arm = this.arm(queryClass, key);
    const state = this.classes.get(queryClass) as ClassState;
    state.pickTick += 1;
    arm.picks = this.picksNow(state, arm) + 1;
    arm.pickTick = state.pickTick;
  }

  private model(key: string): ModelState {
    let model = this.models.get(key);
    if (model === undefined) {
      model = newModel(key, 0, false);
      this.models.set(key, model);
    }
    return model;
  }

  private arm(queryClass: QueryClass, key: string): Arm {
    let state = this.classes.get(queryClass);
    if (state === undefined) {
      state = { arms: new Map(), pickTick: 0 };
      this.classes.set(queryClass, state);
    }
    let arm = state.arms.get(key);
    if (arm === undefined) {
      const model = this.model(key);
      arm = newArm(model);
      state.arms.set(key, arm);
      model.arms.push(arm);
    }
    return arm;
  }

  /** Raw sums of one arm (for tests and diagnostics); undefined if the arm was never seen. */
  armState(queryClass: QueryClass, model: string): ArmDiagnostics | undefined {
    const arm = this.classes.get(queryClass)?.arms.get(model);
    if (arm === undefined) return undefined;
    const { count, weight, costSum, costCount, latencySumMs } = arm;
    return {
      count,
      weight,
      quality: arm.qSum,
      qualityWeight: arm.qWeight,
      record: arm.lSum,
      recordWeight: arm.lWeight,
      rated: arm.rated,
      costSum,
      costCount,
      latencySumMs,
    };
  }
}

