import type { TraceRecord } from '../traces/types.js';
import { BoundedMap } from './bounded-map.js';
import { QUERY_CLASSES } from './classify.js';
import {
  BIAS_SLOT,
  FEATURE_DIM,
  FeatureExtractor,
  isTextSlot,
  slotKind,
  type FeatureInput,
  type FeatureVector,
  type NamedFeature,
} from './features.js';
import { attemptFailed, ReplayBuffer, replaceQuality, type PendingQuality } from './pending-feedback.js';
import { DEFAULT_PRIOR_WEIGHT, discountFactor, offlineTraceWeight, priorCostUsd, traceQuality } from './prior.js';
import { Random } from './random.js';
import type {
  ArmSnapshot,
  ClassSnapshot,
  Decision,
  EvidenceSource,
  FeatureWeight,
  FeedbackObservation,
  ModelInfo,
  Observation,
  PolicyOptions,
  PolicySnapshot,
  QueryClass,
  QueryContext,
  RouterPolicy,
  RoutingContext,
  UpdateSummary,
} from './types.js';

/*
 * The contextual policy: one Bayesian linear model per upstream model over the query's features
 * (src/routing/features.ts: bias, class, length bucket, flags, signed-hashed words and word pairs of
 * the last user message and of the system prompt — FEATURE_DIM slots), predicting the reward
 * (quality: 0 for a failure, else the feedback, else 1) and, with the same design, the dollars of an
 * answer.
 *
 * Each model keeps its information matrix A (in pseudo-observations; the prior is PRIOR_COUNT × I,
 * with the reward bias at 0.5 and the cost bias at the configured price), its inverse S, and the
 * weights: recursive least squares, i.e. the exact posterior of a linear-Gaussian model, updated in
 * O(FEATURE_DIM²) per observation. The reward's posterior predictive variance on features z is
 * v(μ) · zᵀSz, v(μ) = μ(1 − μ) (the most a reward in [0, 1] with mean μ can vary, bounded below):
 * after n observations like z it is about μ(1 − μ)/n, as a Beta posterior's.
 *
 * Selection is linear Thompson sampling on the prediction: reward ~ N(θ·z, v · zᵀSz), drawn at full
 * width while a model has little evidence along z and at half width once it has much (see
 * EXPLORE_SCALE), then utility = reward − costWeight × predicted dollars − latencyWeight × mean
 * seconds; the highest sampled utility answers (`contextual`; `explore` when that is not the highest
 * mean utility). The variance shrinks as a model sees queries like this one, so exploration fades
 * with evidence, per direction of the feature space. A decision costs O(non-zero features²) per model.
 *
 * Why a full covariance on ~50 hashed slots rather than a diagonal one on thousands: with a diagonal
 * belief, the 30–80 words of one prompt template each keep their own variance, which overstates the
 * prediction's variance by about their number (on the RouterBench subset: a standard deviation of
 * 0.12 after a thousand identical prompts, and a policy that kept exploring), and per-feature
 * learning rates (a normalized LMS) left the estimates of tasks that share a class biased toward each
 * other (train/test AIQ 0.836). The exact posterior has neither problem; the word projection keeps what
 * tells queries apart on that data (the task), and a decision stays within a few microseconds.
 *
 * Forgetting (`halfLife`, γ = 2^(−1/halfLife)): before a live observation, the information along its
 * direction z is multiplied by γ (directional forgetting: A −= (1 − γ)·(Az)(Az)ᵀ/zᵀAz), so evidence
 * fades as newer observations like it arrive and evidence elsewhere (another class) is kept — the
 * analogue of the adaptive policy's per-arm forgetting; information along a recurring direction
 * settles near 1/(1 − γ) observations.
 *
 * Priors: offline evidence (imported evaluation results) is learned first, each trace weighted so
 * that a class × model counts at most `priorWeight` observations, and without forgetting; live traces
 * come after it, so they override it as they accumulate. Pooling across classes comes from the
 * shared slots (the bias, the words): a model's record elsewhere informs a class where it is new.
 */

const D = FEATURE_DIM;
/** Where a request context keeps its features once computed. */
const FEATURES = Symbol('contextual features');
/**
 * Prior pseudo-observations on every weight (ridge): the reward bias's prior mean is 0.5, the others'
 * 0. A query has 3–6 unit-norm feature groups (bias, class, length, words, …), so an untried model's
 * prediction rests on about PRIOR_COUNT / 4 = 2 pseudo-observations, as the adaptive policy's Beta
 * prior. A stronger prior (16) explored less on the RouterBench subset but was slower to learn a class
 * where a model differs from its record elsewhere.
 */
const PRIOR_COUNT = 8;
/**
 * Thompson samples are drawn at full width while a model has little evidence on queries like this one
 * (fewer than FULL_WIDTH_BELOW observations along z), then at a width narrowing to EXPLORE_SCALE × the
 * posterior's standard deviation ("tempered") as evidence grows: scale = clamp(√(N·zᵀSz), 0.5, 1),
 * N = FULL_WIDTH_BELOW (half width from 4N observations on).
 * Full width throughout kept exploring close calls among 11 models for longer than it paid on the
 * RouterBench subset; half width throughout locked onto a mediocre model in 6 of 16 runs of a
 * two-kinds-in-one-class test (its early failures on one kind dragged its other kind down).
 * N = 30 (tried first) kept MBPP prompts at full width for good: their words vary from prompt to
 * prompt, so the evidence along any one of them stays near 25 observations however many come (after
 * full-information training, a standard deviation of ~0.09 and ~80 exploring picks in 945). N = 10
 * narrows there, and lost fewer runs of the two-kinds test (2 of 32 seeds below 90%, one of them a
 * lock-in that N = 30 shares, against 4 of 32); N ≤ 5 lost more (4 of 32, and a share of 0).
 */
const EXPLORE_SCALE = 0.5;
/** Bounds of the reward variance μ(1 − μ), so a prediction near 0 or 1 still explores a little. */
const MIN_VARIANCE = 0.02;
const MAX_VARIANCE = 0.25;
/** Unit of the cost model for models whose configured price is 0 or unknown (dollars). */
const FALLBACK_COST_UNIT = 1e-3;
/** S is recomputed from A (Cholesky) after this many rank-one updates, against rounding drift. */
const REFRESH_EVERY = 1_000;

/** A rebuild reads at most this many of the newest live traces, and of the newest offline traces. */
export const MAX_REBUILD_LIVE = 50_000;
export const MAX_REBUILD_OFFLINE = 100_000;
/** Most traces remembered (with their features) for late feedback. */
const MAX_PENDING = 50_000;
/** Recent queries kept per class for the snapshot's per-class estimates, and classes tracked. */
const CLASS_SAMPLES = 32;
const MAX_CLASSES = 256;
/** Strongest features shown per model in the snapshot; names kept per slot. */
const SNAPSHOT_FEATURES = 6;
const NAMES_PER_SLOT = 24;
/** Names are read from one observation in this many (a second, named pass over the text). */
const NAME_EVERY = 8;
/** A full rebuild at most this often (ms); the updates in between fold in the new traces. */
const FULL_REBUILD_MS = 10 * 60_000;
/** A fold-in reads this many traces more than the store's count grew by (reordering, concurrent writers). */
const SYNC_MARGIN = 500;
/** A rebuild lets the event loop run after this many traces. */
const YIELD_EVERY = 2_000;

const FULL_WIDTH_BELOW = 10;
/** Full width while the evidence along z is under FULL_WIDTH_BELOW observations, narrowing to EXPLORE_SCALE. */
function explorationScale(spread: number): number {
  return Math.min(1, Math.max(EXPLORE_SCALE, Math.sqrt(FULL_WIDTH_BELOW * spread)));
}

/** The width of a Thompson sample: the posterior's standard deviation along z, tempered. */
export function sampleWidth(mean: number, spread: number): number {
  return Math.sqrt(rewardVariance(mean) * spread) * explorationScale(spread);
}

/** μ(1 − μ), bounded: the variance of a reward in [0, 1] with mean μ is at most that. */
function rewardVariance(mean: number): number {
  return Math.min(MAX_VARIANCE, Math.max(MIN_VARIANCE, mean * (1 - mean)));
}

/** One upstream model's beliefs. */
class ModelBelief {
  /** Reward weights, and cost weights in units of `unit` dollars. */
  readonly theta = new Float64Array(D);
  readonly costTheta = new Float64Array(D);
  /** Information matrix (row-major) and its inverse. */
  readonly a = new Float64Array(D * D);
  readonly s = new Float64Array(D * D);
  /** Observations (live and offline) learned. */
  ticks = 0;
  private sinceRefresh = 0;
  /** Discounted latency sum and weight (ms), for latencyWeight. */
  latencySum = 0;
  latencyWeight = 0;

  constructor(
    readonly key: string,
    readonly unit: number,
    priorCost: number,
  ) {
    for (let i = 0; i < D; i++) {
      this.a[i * D + i] = PRIOR_COUNT;
      this.s[i * D + i] = 1 / PRIOR_COUNT;
    }
    this.theta[BIAS_SLOT] = 0.5;
    this.costTheta[BIAS_SLOT] = priorCost / unit;
  }

  /** zᵀSz over the non-zero features (S is symmetric: the upper triangle, doubled). */
  spread(x: FeatureVector): number {
    const s = this.s;
    const idx = x.index;
    const val = x.value;
    const n = x.size;
    let diagonal = 0;
    let off = 0;
    for (let k = 0; k < n; k++) {
      const row = idx[k]! * D;
      const vk = val[k]!;
      diagonal += s[row + idx[k]!]! * vk * vk;
      let dot = 0;
      for (let l = k + 1; l < n; l++) dot += s[row + idx[l]!]! * val[l]!;
      off += dot * vk;
    }
    return diagonal + 2 * off;
  }

  /** Directional forgetting: the information along z is multiplied by γ. */
  forget(x: FeatureVector, gamma: number, az: Float64Array): void {
    const a = this.a;
    const idx = x.index;
    const val = x.value;
    az.fill(0);
    for (let i = 0; i < D; i++) {
      const row = i * D;
      let sum = 0;
      for (let k = 0; k < x.size; k++) sum += a[row + idx[k]!]! * val[k]!;
      az[i] = sum;
    }
    let q = 0;
    for (let k = 0; k < x.size; k++) q += val[k]! * az[idx[k]!]!;
    if (!(q > 1e-12)) return;
    const c = (1 - gamma) / q;
    for (let i = 0; i < D; i++) {
      const ci = c * az[i]!;
      if (ci === 0) continue;
      const row = i * D;
      for (let j = 0; j < D; j++) a[row + j]! -= ci * az[j]!;
    }
    // Sherman–Morrison: S + ((1 − γ)/(γ q)) z zᵀ.
    const e = (1 - gamma) / (gamma * q);
    const s = this.s;
    for (let k = 0; k < x.size; k++) {
      const row = idx[k]! * D;
      const ek = e * val[k]!;
      for (let l = 0; l < x.size; l++) s[row + idx[l]!]! += ek * val[l]!;
    }
  }

  /** One observation of weight w: the gain S'z (S' the updated inverse) is left in `gain`. */
  observe(x: FeatureVector, w: number, sz: Float64Array, gain: Float64Array): void {
    const s = this.s;
    const idx = x.index;
    const val = x.value;
    for (let i = 0; i < D; i++) {
      const row = i * D;
      let sum = 0;
      for (let k = 0; k < x.size; k++) sum += s[row + idx[k]!]! * val[k]!;
      sz[i] = sum;
    }
    let r = 0;
    for (let k = 0; k < x.size; k++) r += val[k]! * sz[idx[k]!]!;
    const denom = 1 + w * r;
    if (!(r >= 0) || !(denom > 0)) {
      // Rounding broke S: rebuild it from A and start over.
      this.addOuter(x, w);
      this.refresh();
      this.gainFromS(x, gain);
      return;
    }
    const f = w / denom;
    for (let i = 0; i < D; i++) {
      const fi = f * sz[i]!;
      gain[i] = sz[i]! / denom;
      if (fi === 0) continue;
      const row = i * D;
      for (let j = 0; j < D; j++) s[row + j]! -= fi * sz[j]!;
    }
    this.addOuter(x, w);
    if (++this.sinceRefresh >= REFRESH_EVERY) this.refresh();
  }

  private addOuter(x: FeatureVector, w: number): void {
    const a = this.a;
    for (let k = 0; k < x.size; k++) {
      const row = x.index[k]! * D;
      const wk = w * x.value[k]!;
      for (let l = 0; l < x.size; l++) a[row + x.index[l]!]! += wk * x.value[l]!;
    }
  }

  /** gain = S z (after S is current). */
  gainFromS(x: FeatureVector, gain: Float64Array): void {
    for (let i = 0; i < D; i++) {
      const row = i * D;
      let sum = 0;
      for (let k = 0; k < x.size; k++) sum += this.s[row + x.index[k]!]! * x.value[k]!;
      gain[i] = sum;
    }
  }

  /** S = A⁻¹ by Cholesky (A is symmetric positive definite: the prior alone makes it so). */
  refresh(): void {
    this.sinceRefresh = 0;
    const l = new Float64Array(D * D);
    const a = this.a;
    for (let i = 0; i < D; i++) {
      for (let j = 0; j <= i; j++) {
        let sum = (a[i * D + j]! + a[j * D + i]!) / 2;
        for (let k = 0; k < j; k++) sum -= l[i * D + k]! * l[j * D + k]!;
        if (i === j) l[i * D + i] = Math.sqrt(Math.max(sum, 1e-9));
        else l[i * D + j] = sum / l[j * D + j]!;
      }
    }
    // Columns of A⁻¹: solve L Lᵀ x = e_c.
    const y = new Float64Array(D);
    for (let c = 0; c < D; c++) {
      for (let i = 0; i < D; i++) {
        let sum = i === c ? 1 : 0;
        for (let k = 0; k < i; k++) sum -= l[i * D + k]! * y[k]!;
        y[i] = sum / l[i * D + i]!;
      }
      for (let i = D - 1; i >= 0; i--) {
        let sum = y[i]!;
        for (let k = i + 1; k < D; k++) sum -= l[k * D + i]! * y[k]!;
        y[i] = sum / l[i * D + i]!;
      }
      for (let i = 0; i < D; i++) this.s[i * D + c] = y[i]!;
    }
  }
}

/** The reward and cost a model is predicted to have on one query. */
export interface Prediction {
  model: string;
  /** Predicted reward (quality), and its standard deviation. */
  reward: number;
  sd: number;
  /** Predicted dollars. */
  costUsd: number;
  /** reward − costWeight × dollars − latencyWeight × seconds. */
  utility: number;
}

export interface ExplainedFeature extends FeatureWeight {
  /** The feature's value in this query (words: signed, scaled with the rest of the text). */
  value: number;
  /** value × weight: what it adds to the predicted reward. */
  contribution: number;
}

export interface Explanation {
  queryClass: string;
  /** The model the policy would choose without exploring (highest mean utility). */
  choice: string;
  predictions: (Prediction & { features: ExplainedFeature[] })[];
}

interface PendingTrace extends PendingQuality {
  readonly model: ModelBelief;
  readonly features: FeatureVector;
  readonly tick: number;
}

interface ClassStats {
  /** Live traces observed per model. */
  readonly counts: Map<string, number>;
  /** Discounted picks per model, as of the class's pick `tick`. */
  readonly picks: Map<string, { picks: number; tick: number }>;
  pickTick: number;
  /** The newest queries of the class (a ring). */
  readonly samples: FeatureVector[];
  next: number;
}

/** Everything learned; a rebuild makes a new one and swaps it in. */
class State {
  readonly models = new Map<string, ModelBelief>();
  readonly classes = new Map<QueryClass, ClassStats>();
  readonly pending = new BoundedMap<string, PendingTrace>(MAX_PENDING);

  constructor(models: readonly ModelInfo[], fallbackUnit: number) {
    for (const m of models) {
      const prior = priorCostUsd(m);
      this.models.set(m.key, new ModelBelief(m.key, prior > 0 ? prior : fallbackUnit, prior));
    }
  }

  classStats(queryClass: QueryClass): ClassStats | undefined {
    let stats = this.classes.get(queryClass);
    if (stats === undefined) {
      if (this.classes.size >= MAX_CLASSES) return undefined;
      stats = { counts: new Map(), picks: new Map(), pickTick: 0, samples: [], next: 0 };
      this.classes.set(queryClass, stats);
    }
    return stats;
  }
}

export class ContextualPolicy implements RouterPolicy {
  readonly name = 'contextual';

  private readonly gamma: number;
  private readonly costWeight: number;
  private readonly latencyWeight: number;
  private readonly defaultModel: string | undefined;
  private readonly configured: readonly ModelInfo[];
  private readonly fallbackUnit: number;
  private readonly priorWeight: number;
  private readonly source: EvidenceSource | undefined;
  private readonly random: Random;
  private readonly extractor: FeatureExtractor;
  /** Names seen per slot, with how often (bounded), for snapshots. */
  private readonly names: Map<string, number>[] = Array.from({ length: D }, () => new Map());
  private observed = 0;
  private state: State;
  /** The store's trace count at the last update (null: never), and when the last full rebuild started. */
  private lastCount: number | null = null;
  private lastFull = 0;
  private readonly replay = new ReplayBuffer();
  private updates: Promise<unknown> = Promise.resolve();
  // Scratch vectors of the updates.
  private readonly scratchA = new Float64Array(D);
  private readonly scratchB = new Float64Array(D);

  constructor(options: PolicyOptions) {
    this.gamma = discountFactor(options.halfLife);
    this.costWeight = options.costWeight;
    this.latencyWeight = options.latencyWeight;
    this.defaultModel = options.defaultModel;
    this.configured = options.models;
    this.priorWeight = options.priorWeight ?? DEFAULT_PRIOR_WEIGHT;
    this.source = options.source;
    this.random = new Random(options.seed);
    this.extractor = new FeatureExtractor(options.textChars ?? 200);
    const priced = options.models.map(priorCostUsd).filter((c) => c > 0);
    this.fallbackUnit = priced.length > 0 ? priced.reduce((a, b) => a + b, 0) / priced.length : FALLBACK_COST_UNIT;
    this.state = new State(options.models, this.fallbackUnit);
  }

  /** The features of a routing context (computed once per request context). */
  featuresOf(ctx: { query: string; queryClass: QueryClass; context?: QueryContext }): FeatureVector {
    const context = ctx.context;
    if (context === undefined) return this.extractor.extract(bareInput(ctx.query, ctx.queryClass));
    // Computed once per request context (select, failover, observe), kept on the context object
    // under a private symbol (cheaper than a WeakMap on the hot path).
    const cached = context as QueryContext & { [FEATURES]?: { textChars: number; features: FeatureVector } };
    const entry = cached[FEATURES];
    if (entry !== undefined && entry.textChars === this.extractor.textChars) return entry.features;
    const features = this.extractor.extract(contextInput(context));
    cached[FEATURES] = { textChars: this.extractor.textChars, features };
    return features;
  }

  select(ctx: RoutingContext): Decision {
    const available = ctx.available;
    if (available.length === 0) return { model: this.defaultModel ?? '', reason: 'default' };
    const x = this.featuresOf(ctx);
    const models = this.state.models;
    let chosen = available[0] as string;
    let chosenScore = -Infinity;
    let greedy = chosen;
    let greedyScore = -Infinity;
    const n = x.size;
    const index = x.index;
    const value = x.value;
    for (let a = 0; a < available.length; a++) {
      const key = available[a] as string;
      const m = models.get(key);
      if (m === undefined) continue;
      const theta = m.theta;
      const costTheta = m.costTheta;
      let mean = 0;
      let cost = 0;
      for (let k = 0; k < n; k++) {
        const i = index[k]!;
        const v = value[k]!;
        mean += theta[i]! * v;
        cost += costTheta[i]! * v;
      }
      const expected = mean - this.penalty(m, cost);
      if (expected > greedyScore) {
        greedy = key;
        greedyScore = expected;
      }
      // The sample is expected + (a non-negative width) × draw: with a draw ≤ 0 it cannot beat the
      // best sample so far unless the mean does, so the spread (most of a decision's cost) is skipped.
      // The draws and the choice are exactly those of computing every spread.
      const draw = this.random.normal();
      if (draw <= 0 && expected <= chosenScore) continue;
      const spread = Math.max(0, m.spread(x));
      const sampled = expected + sampleWidth(mean, spread) * draw;
      if (sampled > chosenScore) {
        chosen = key;
        chosenScore = sampled;
      }
    }
    this.countPick(ctx.queryClass, chosen);
    return { model: chosen, reason: chosen === greedy ? 'contextual' : 'explore' };
  }

  private penalty(m: ModelBelief, costUnits: number): number {
    let penalty = 0;
    if (this.costWeight > 0) penalty += this.costWeight * Math.max(0, costUnits) * m.unit;
    if (this.latencyWeight > 0 && m.latencyWeight > 0) penalty += (this.latencyWeight * m.latencySum) / m.latencyWeight / 1000;
    return penalty;
  }

  /**
   * One finished attempt. A trace already known (read by a rebuild that ran meanwhile) is not
   * counted twice.
   */
  observe(observation: Observation): void {
    const state = this.state;
    if (observation.model === '' || state.pending.has(observation.traceId)) return;
    const m = state.models.get(observation.model);
    if (m === undefined) return;
    this.replay.observe(observation);
    const x = this.featuresOf(observation);
    const failed = attemptFailed(observation);
    const quality = traceQuality(failed, observation.feedback);
    this.learn(m, x, quality, observation.costUsd, observation.latencyMs, 1, true);
    if (this.observed++ % NAME_EVERY === 0) {
      this.noteNames(observation.context !== undefined ? contextInput(observation.context) : bareInput(observation.query, observation.queryClass));
    }
    this.noteClass(state, observation.queryClass, observation.model, x, true);
    state.pending.set(observation.traceId, { model: m, features: x, tick: m.ticks, quality, failed });
  }

  /**
   * Late feedback replaces the trace's reward: the weights move by S·z × (new − old reward), which is
   * exactly the change of the least-squares solution without forgetting, and is discounted by
   * γ^(newer observations of the model) with it; S does not change (no new observation), and a
   * second feedback replaces the first. A trace no longer remembered is left to the next rebuild,
   * which reads its feedback from the store.
   */
  observeFeedback(feedback: FeedbackObservation): void {
    this.replay.feedback(feedback);
    const entry = this.state.pending.get(feedback.traceId);
    if (entry === undefined) return;
    const delta = replaceQuality(entry, feedback);
    if (delta === 0) return;
    const m = entry.model;
    const gain = this.scratchB;
    m.gainFromS(entry.features, gain);
    const step = delta * Math.pow(this.gamma, m.ticks - entry.tick);
    for (let i = 0; i < D; i++) m.theta[i]! += gain[i]! * step;
  }

  /**
   * One observation of weight `weight`: directional forgetting (live only), then the least-squares
   * update of the reward weights and, when the cost is known, of the cost weights.
   */
  private learn(
    m: ModelBelief,
    x: FeatureVector,
    quality: number,
    costUsd: number | null,
    latencyMs: number,
    weight: number,
    live: boolean,
  ): void {
    const g = this.gamma;
    if (live && g !== 1) {
      m.forget(x, g, this.scratchA);
      m.latencySum *= g;
      m.latencyWeight *= g;
    }
    let predicted = 0;
    let predictedCost = 0;
    for (let k = 0; k < x.size; k++) {
      predicted += m.theta[x.index[k]!]! * x.value[k]!;
      predictedCost += m.costTheta[x.index[k]!]! * x.value[k]!;
    }
    const gain = this.scratchB;
    m.observe(x, weight, this.scratchA, gain);
    const error = weight * (quality - predicted);
    for (let i = 0; i < D; i++) m.theta[i]! += gain[i]! * error;
    if (costUsd !== null && Number.isFinite(costUsd)) {
      const costError = weight * (costUsd / m.unit - predictedCost);
      for (let i = 0; i < D; i++) m.costTheta[i]! += gain[i]! * costError;
    }
    if (live) {
      m.latencySum += latencyMs;
      m.latencyWeight += 1;
    }
    m.ticks += 1;
  }

  /** Records the names of a query's features, per slot (bounded; for the snapshot). */
  private noteNames(input: FeatureInput): void {
    const named: NamedFeature[] = [];
    this.extractor.extract(input, named);
    for (const f of named) {
      const names = this.names[f.slot]!;
      const key = isTextSlot(f.slot) ? `${f.value < 0 ? '−' : '+'}${f.name.slice(f.name.indexOf(':') + 1)}` : f.name;
      const count = names.get(key);
      if (count !== undefined) names.set(key, count + 1);
      else if (names.size < NAMES_PER_SLOT) names.set(key, 1);
    }
  }

  private noteClass(state: State, queryClass: QueryClass, model: string, x: FeatureVector, count: boolean): void {
    const stats = state.classStats(queryClass);
    if (stats === undefined) return;
    if (count) stats.counts.set(model, (stats.counts.get(model) ?? 0) + 1);
    if (stats.samples.length < CLASS_SAMPLES) stats.samples.push(x);
    else stats.samples[stats.next] = x;
    stats.next = (stats.next + 1) % CLASS_SAMPLES;
  }

  private countPick(queryClass: QueryClass, model: string): void {
    const stats = this.state.classStats(queryClass);
    if (stats === undefined) return;
    stats.pickTick += 1;
    const entry = stats.picks.get(model);
    const before = entry === undefined ? 0 : entry.picks * Math.pow(this.gamma, stats.pickTick - 1 - entry.tick);
    stats.picks.set(model, { picks: before + 1, tick: stats.pickTick });
  }

  /** Rebuilds everything from the store (updates run one at a time). */
  /**
   * Rebuilds from the store, or folds in what it has not seen yet. The first update, one with a time
   * range, one after traces were deleted (purge), and one FULL_REBUILD_MS after the last full
   * rebuild read everything again (bounded: the newest MAX_REBUILD_* traces); the others read only
   * the newest live traces since the last update (the store's count tells how many) and learn those
   * it has not observed — another instance's, on a shared store — and the feedback given to them
   * since. Updates run one at a time.
   */
  updateFromTraces(range: { since?: number; until?: number } = {}): Promise<UpdateSummary> {
    const source = this.source;
    if (source === undefined) return Promise.resolve({ error: 'no analyzer configured' });
    const run = this.updates.then(async () => {
      const full =
        range.since !== undefined ||
        range.until !== undefined ||
        this.lastCount === null ||
        source.exportTraces === undefined ||
        source.count === undefined ||
        Date.now() - this.lastFull >= FULL_REBUILD_MS;
      if (!full) {
        const summary = await this.foldIn(source);
        if (summary !== null) return summary;
      }
      return this.rebuild(source, range);
    });
    this.updates = run.catch(() => undefined);
    return run;
  }

  /** Learns the live traces stored since the last update that it has not observed; null: rebuild instead. */
  private async foldIn(source: EvidenceSource): Promise<UpdateSummary | null> {
    const count = await source.count!();
    const added = count - (this.lastCount ?? 0);
    if (added < 0) return null; // traces were deleted: read everything again
    const state = this.state;
    const before = new Map<QueryClass, string>();
    for (const queryClass of state.classes.keys()) before.set(queryClass, this.classChoice(state, queryClass));
    let learned = 0;
    let read = 0;
    for await (const t of source.exportTraces!({ source: 'live', newest: added + SYNC_MARGIN })) {
      if (++read % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
      if (this.state !== state) return null;
      const known = state.pending.get(t.id);
      if (known !== undefined) {
        // Observed here, or read before: only feedback given elsewhere since then is new.
        const quality = traceQuality(t.outcome !== 'success', t.feedback);
        if (quality !== known.quality) {
          this.observeFeedback({ traceId: t.id, queryClass: t.queryClass, model: t.modelKey, outcome: t.outcome, score: t.feedback ?? 1, previous: null });
        }
        continue;
      }
      if (this.learnTrace(state, t, 1, true, read)) learned++;
    }
    this.lastCount = count;
    const changes: Record<string, { old: string; new: string }> = {};
    for (const queryClass of state.classes.keys()) {
      const old = before.get(queryClass) ?? '';
      const now = this.classChoice(state, queryClass);
      if (now !== old) changes[queryClass] = { old, new: now };
    }
    return { updated: learned > 0, query_classes: state.classes.size, total_traces: learned, changes };
  }

  /**
   * Reads the newest offline traces (as a prior: weighted, no forgetting), then the newest live
   * traces (with forgetting), into a new state, which then replaces the current one; what arrived
   * meanwhile is replayed on it (known trace ids are skipped, feedback replaces).
   */
  private async rebuild(source: EvidenceSource, range: { since?: number; until?: number }): Promise<UpdateSummary> {
    this.replay.start();
    try {
      const fresh = new State(this.configured, this.fallbackUnit);
      // Counted before reading: what is added meanwhile is read again by the next fold-in (and skipped if known).
      const count = source.count !== undefined ? await source.count() : null;
      const started = Date.now();
      let total = 0;
      if (source.exportTraces !== undefined) {
        const offline = await source.evidence({ source: 'offline', since: range.since, until: range.until });
        const offlineCount = new Map<string, number>();
        for (const row of offline) offlineCount.set(`${row.queryClass}\u0000${row.model}`, row.count);
        let read = 0;
        const pause = async () => {
          if (++read % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
        };
        for await (const t of source.exportTraces({ ...range, source: 'offline', newest: MAX_REBUILD_OFFLINE })) {
          const n = offlineCount.get(`${t.queryClass}\u0000${t.modelKey}`) ?? 1;
          if (this.learnTrace(fresh, t, offlineTraceWeight(this.priorWeight, n), false, read)) total++;
          await pause();
        }
        for await (const t of source.exportTraces({ ...range, source: 'live', newest: MAX_REBUILD_LIVE })) {
          if (this.learnTrace(fresh, t, 1, true, read)) total++;
          await pause();
        }
      } else {
        total = await this.warmFromEvidence(fresh, source, range);
      }
      const whole = range.since === undefined && range.until === undefined;
      if (total === 0) {
        if (whole) {
          this.lastCount = count;
          this.lastFull = started;
        }
        return { updated: false, reason: 'no traces' };
      }

      // From here on nothing awaits: the swap is atomic for select() and observe().
      if (whole) {
        this.lastCount = count;
        this.lastFull = started;
      }
      const before = new Map<QueryClass, string>();
      for (const queryClass of fresh.classes.keys()) {
        if (this.state.classes.has(queryClass)) before.set(queryClass, this.classChoice(this.state, queryClass));
      }
      // Selection shares are kept (the store has none).
      for (const [queryClass, stats] of this.state.classes) {
        const target = fresh.classStats(queryClass);
        if (target === undefined) continue;
        for (const [model, p] of stats.picks) target.picks.set(model, { ...p });
        target.pickTick = stats.pickTick;
      }
      this.state = fresh;
      const changes: Record<string, { old: string; new: string }> = {};
      for (const queryClass of fresh.classes.keys()) {
        if (!fresh.classes.get(queryClass)!.counts.size && !before.has(queryClass)) continue;
        const old = before.get(queryClass) ?? '';
        const now = this.classChoice(fresh, queryClass);
        if (now !== old) changes[queryClass] = { old, new: now };
      }
      this.replay.replayInto(this);
      return { updated: true, query_classes: fresh.classes.size, total_traces: total, changes };
    } finally {
      this.replay.stop();
    }
  }

  /** Learns one stored trace into `state`; false if its model is not configured. */
  private learnTrace(state: State, t: TraceRecord, weight: number, live: boolean, read: number): boolean {
    const m = state.models.get(t.modelKey);
    if (m === undefined) return false;
    const input = traceInput(t);
    const x = this.extractor.extract(input);
    const failed = t.outcome !== 'success';
    const quality = traceQuality(failed, t.feedback);
    this.learn(m, x, quality, t.costUsd, t.latencyMs, weight, live);
    if (read % NAME_EVERY === 0) this.noteNames(input);
    this.noteClass(state, t.queryClass, t.modelKey, x, live);
    if (live) state.pending.set(t.id, { model: m, features: x, tick: m.ticks, quality, failed });
    return true;
  }

  /**
   * Without per-trace access (a source with only sums), the per-class evidence is learned as one
   * aggregated observation per class × model on the class's features (bias and class).
   */
  private async warmFromEvidence(state: State, source: EvidenceSource, range: { since?: number; until?: number }): Promise<number> {
    const [offline, live] = await Promise.all([
      source.evidence({ ...range, source: 'offline' }),
      source.evidence({ ...range, source: 'live', decay: this.gamma }),
    ]);
    let total = 0;
    const apply = (rows: typeof live, prior: boolean) => {
      for (const row of rows) {
        const m = state.models.get(row.model);
        if (m === undefined || row.count === 0 || row.weight <= 0) continue;
        const x = this.extractor.extract(classInput(row.queryClass));
        const weight = prior ? Math.min(row.weight, this.priorWeight) : row.weight;
        const quality = Math.min(1, Math.max(0, row.quality / row.weight));
        const cost = row.costCount > 0 ? row.costSum / row.costCount : null;
        this.learn(m, x, quality, cost, 0, weight, false);
        m.ticks += row.count - 1;
        this.noteClass(state, row.queryClass, row.model, x, false);
        const stats = state.classStats(row.queryClass);
        if (!prior && stats !== undefined) stats.counts.set(row.model, (stats.counts.get(row.model) ?? 0) + row.count);
        total += row.count;
      }
    };
    apply(offline, true);
    apply(live, false);
    return total;
  }

  private predict(m: ModelBelief, x: FeatureVector): Prediction {
    let mean = 0;
    let cost = 0;
    for (let k = 0; k < x.size; k++) {
      const i = x.index[k]!;
      const v = x.value[k]!;
      mean += m.theta[i]! * v;
      cost += m.costTheta[i]! * v;
    }
    const sd = Math.sqrt(rewardVariance(mean) * Math.max(0, m.spread(x)));
    return { model: m.key, reward: mean, sd, costUsd: Math.max(0, cost) * m.unit, utility: mean - this.penalty(m, cost) };
  }

  /** The model with the best mean utility over the class's recent queries. */
  private classChoice(state: State, queryClass: QueryClass): string {
    let best = '';
    let bestUtility = -Infinity;
    for (const e of this.classEstimates(state, queryClass)) {
      if (e.utility > bestUtility) {
        best = e.model;
        bestUtility = e.utility;
      }
    }
    return best;
  }

  /** Per configured model, the predictions averaged over the class's recent queries. */
  private classEstimates(state: State, queryClass: QueryClass): Prediction[] {
    const stats = state.classes.get(queryClass);
    const samples = stats !== undefined && stats.samples.length > 0 ? stats.samples : [this.extractor.extract(classInput(queryClass))];
    const out: Prediction[] = [];
    for (const m of state.models.values()) {
      const acc: Prediction = { model: m.key, reward: 0, sd: 0, costUsd: 0, utility: 0 };
      for (const x of samples) {
        const p = this.predict(m, x);
        acc.reward += p.reward;
        acc.sd += p.sd;
        acc.costUsd += p.costUsd;
        acc.utility += p.utility;
      }
      const n = samples.length;
      out.push({ model: m.key, reward: acc.reward / n, sd: acc.sd / n, costUsd: acc.costUsd / n, utility: acc.utility / n });
    }
    return out;
  }

  snapshot(): PolicySnapshot {
    const state = this.state;
    const order = (queryClass: string): number => {
      const i = (QUERY_CLASSES as readonly string[]).indexOf(queryClass);
      return i === -1 ? QUERY_CLASSES.length : i;
    };
    const classes: ClassSnapshot[] = [];
    for (const [queryClass, stats] of state.classes) {
      let totalPicks = 0;
      const picksNow = new Map<string, number>();
      for (const [model, p] of stats.picks) {
        const now = p.picks * Math.pow(this.gamma, stats.pickTick - p.tick);
        picksNow.set(model, now);
        totalPicks += now;
      }
      let confidence = 0;
      for (const c of stats.counts.values()) confidence += c;
      const arms: ArmSnapshot[] = this.classEstimates(state, queryClass).map((p) => ({
        model: p.model,
        estimate: p.reward,
        uncertainty: p.sd,
        costUsd: p.costUsd,
        samples: stats.counts.get(p.model) ?? 0,
        share: totalPicks > 0 ? (picksNow.get(p.model) ?? 0) / totalPicks : 0,
      }));
      classes.push({ queryClass, choice: this.classChoice(state, queryClass), confidence, arms });
    }
    classes.sort((a, b) => order(a.queryClass) - order(b.queryClass) || a.queryClass.localeCompare(b.queryClass));
    const features: Record<string, FeatureWeight[]> = {};
    for (const m of state.models.values()) features[m.key] = this.strongest(m, SNAPSHOT_FEATURES);
    return { policy: this.name, classes, features };
  }

  /** The bias, then the `limit` slots of largest |weight| in a model's reward, named by what was seen there. */
  private strongest(m: ModelBelief, limit: number): FeatureWeight[] {
    const slots: number[] = [];
    for (let i = 0; i < D; i++) if (i !== BIAS_SLOT && m.theta[i] !== 0) slots.push(i);
    slots.sort((a, b) => Math.abs(m.theta[b]!) - Math.abs(m.theta[a]!));
    return [
      { feature: '(bias)', weight: m.theta[BIAS_SLOT]! },
      ...slots.slice(0, limit).map((i) => ({ feature: this.slotName(i), weight: m.theta[i]! })),
    ];
  }

  /** A slot's most frequent names ("user words #3: +which, −answer"), or its kind. */
  private slotName(slot: number): string {
    const names = [...this.names[slot]!].sort((a, b) => b[1] - a[1]).map(([name]) => name);
    if (names.length === 0) return slotKind(slot);
    if (!isTextSlot(slot)) return names.slice(0, 3).join(' | ');
    return `${slotKind(slot)}: ${names.slice(0, 4).join(', ')}${names.length > 4 ? ', …' : ''}`;
  }

  /** What the policy predicts for one query, per configured model, with the features that weigh most. */
  explain(context: QueryContext, limit = 5): Explanation {
    const named: NamedFeature[] = [];
    const x = this.extractor.extract(contextInput(context), named);
    // One entry per distinct feature (a word said twice adds up).
    const merged = new Map<string, NamedFeature>();
    for (const f of named) {
      const key = `${f.slot}\u0000${f.name}`;
      const seen = merged.get(key);
      if (seen !== undefined) seen.value += f.value;
      else merged.set(key, { ...f });
    }
    const predictions = [...this.state.models.values()].map((m) => {
      const features: ExplainedFeature[] = [...merged.values()].map((f) => ({
        feature: f.name,
        value: f.value,
        weight: m.theta[f.slot]!,
        contribution: f.value * m.theta[f.slot]!,
      }));
      features.sort((a, b) => Math.abs(b.contribution) - Math.abs(a.contribution));
      return { ...this.predict(m, x), features: features.slice(0, limit) };
    });
    let choice = '';
    let best = -Infinity;
    for (const p of predictions) {
      if (p.utility > best) {
        best = p.utility;
        choice = p.model;
      }
    }
    return { queryClass: context.queryClass, choice, predictions };
  }
}

function contextInput(c: QueryContext): FeatureInput {
  return {
    query: c.query,
    queryLength: c.query.length,
    system: c.system,
    queryClass: c.queryClass,
    tools: c.tools,
    images: c.images,
    responseFormat: c.responseFormat,
  };
}

function bareInput(query: string, queryClass: QueryClass): FeatureInput {
  return { query, queryLength: query.length, system: '', queryClass, tools: false, images: false, responseFormat: false };
}

/** Only the class (and the bias): for per-class sums, and classes without recent queries. */
function classInput(queryClass: QueryClass): FeatureInput {
  return { query: '', queryLength: -1, system: '', queryClass, tools: false, images: false, responseFormat: false };
}

/** A stored trace keeps the (possibly truncated) last user message, its length and the class. */
function traceInput(t: TraceRecord): FeatureInput {
  return {
    query: t.query ?? '',
    queryLength: t.queryLength,
    system: '',
    queryClass: t.queryClass,
    tools: false,
    images: false,
    responseFormat: false,
  };
}
