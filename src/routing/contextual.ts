import { fullWidth, rewardVariance, sampleWidth, squaredNorm, type ModelBelief } from './contextual-belief.js';
import { bareInput, classInput, contextInput, Learner, State } from './contextual-state.js';
import { NAME_EVERY, StoreSync } from './contextual-sync.js';
import { isRoutingEvidence } from '../core/reserved-classes.js';
import { QUERY_CLASSES } from './classify.js';
import { BIAS_SLOT, FEATURE_DIM, FeatureExtractor, type FeatureVector, type NamedFeature } from './features.js';
import { attemptFailed } from './pending-feedback.js';
import { DEFAULT_PRIOR_WEIGHT, DEFAULT_SOURCE_WEIGHTS, DEFAULT_TRUNCATE_CHARS } from '../core/config.js';
import { discountFactor, EXPLORE_FLOOR, priorCostUsd } from './prior.js';
import { Random } from './random.js';
import type {
  ArmSnapshot,
  ClassSnapshot,
  Decision,
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

export { sampleWidth } from './contextual-belief.js';
export { MAX_REBUILD_LIVE, MAX_REBUILD_OFFLINE } from './contextual-sync.js';

/*
 * The contextual policy: per upstream model, Bayesian linear models over the query's features
 * (src/routing/features.ts: bias, class, length bucket, flags, signed-hashed words and word pairs of
 * the last user message and of the system prompt — FEATURE_DIM slots) predicting the reward (quality)
 * and the dollars of an answer, each with its own posterior (src/routing/contextual-belief.ts).
 *
 * Quality evidence is failures (0) and ratings (a human's, the judge's, an implicit signal's, offline
 * evidence; each counts ratingWeight(source) observations): the reward learns only from those. An
 * answer that succeeded and was never rated is evidence about availability, cost and latency only: it
 * informs the cost model and the latency, and leaves the reward's estimate and uncertainty as they
 * were. A rating that arrives after its answer is a new reward observation then (see Learner.rate).
 * The gateway's own classes (the judge's calls, embeddings: RESERVED_CLASSES) are never routing evidence.
 *
 * Selection is linear Thompson sampling on the prediction: reward ~ N(θ·z, v · zᵀSz), drawn at full
 * width while a model has little evidence along z and at half width once it has much (sampleWidth),
 * then utility = reward − costWeight × predicted dollars − latencyWeight × mean seconds; the highest
 * sampled utility answers (`contextual`; `explore` when that is not the highest mean utility). The
 * variance shrinks as a model sees rated queries like this one, so exploration fades with evidence,
 * per direction of the feature space. A draw is made on a share of requests equal to the share of
 * answers that bring quality evidence back (ratings, failures), at least EXPLORE_FLOOR; the other
 * requests get the highest mean utility: exploring on a request whose answer will never be rated costs
 * its quality and teaches nothing. A decision costs O(non-zero features²) per model.
 *
 * Why a full covariance on ~50 hashed slots rather than a diagonal one on thousands: with a diagonal
 * belief, the 30–80 words of one prompt template each keep their own variance, which overstates the
 * prediction's variance by about their number (on the RouterBench subset: a standard deviation of
 * 0.12 after a thousand identical prompts, and a policy that kept exploring), and per-feature
 * learning rates (a normalized LMS) left the estimates of tasks that share a class biased toward each
 * other (train/test AIQ 0.836). The exact posterior has neither problem; the word projection keeps what
 * tells queries apart on that data (the task), and a decision stays within a few microseconds.
 *
 * Forgetting (`halfLife`): directional, per observation of each belief — the reward per quality
 * observation, the cost per trace with a known cost, the latency per trace — so ratings that come
 * once in fifty answers are remembered over more traffic than costs are. The reward is kept twice:
 * the whole record (no forgetting) is the prediction, and the recent window (forgetting) replaces it
 * on a query where the two differ by more than CHANGE_Z of the window's standard deviations (a model
 * that broke or degraded there); see ModelBelief.windowSpread.
 *
 * Priors: offline evidence (imported evaluation results) is learned first, each trace weighted so
 * that a class × model counts at most `priorWeight` traces, and without forgetting; live traces
 * come after it: in the record they outweigh it as they accumulate, and where live traffic says a
 * model is not what the prior says, the window (in which the prior fades) shows it sooner. Pooling
 * across classes comes from the shared slots (the bias, the words): a model's record elsewhere
 * informs a class where it is new.
 * The store's traces are read back by src/routing/contextual-sync.ts, learned as live ones are.
 */

const D = FEATURE_DIM;
/** Where a request context keeps its features once computed. */
const FEATURES = Symbol('contextual features');
/** Unit of the cost model for models whose configured price is 0 or unknown (dollars). */
const FALLBACK_COST_UNIT = 1e-3;
/** Strongest features shown per model in the snapshot. */
const SNAPSHOT_FEATURES = 6;
/** The bias alone: what a model's weights are judged on when no query is given. */
const BIAS_ONLY: FeatureVector = { index: [BIAS_SLOT], value: [1], size: 1 };

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

export class ContextualPolicy implements RouterPolicy {
  readonly name = 'contextual';

  private readonly costWeight: number;
  private readonly latencyWeight: number;
  private readonly defaultModel: string | undefined;
  private readonly configured: readonly ModelInfo[];
  private readonly fallbackUnit: number;
  private readonly random: Random;
  private readonly extractor: FeatureExtractor;
  private readonly learner: Learner;
  private readonly sync: StoreSync;
  private observed = 0;
  private state: State;

  constructor(options: PolicyOptions) {
    this.costWeight = options.costWeight;
    this.latencyWeight = options.latencyWeight;
    this.defaultModel = options.defaultModel;
    this.configured = options.models;
    this.random = new Random(options.seed);
    this.extractor = new FeatureExtractor(options.textChars ?? DEFAULT_TRUNCATE_CHARS);
    this.learner = new Learner(discountFactor(options.halfLife), options.sourceWeights ?? DEFAULT_SOURCE_WEIGHTS, this.extractor);
    const priced = options.models.map(priorCostUsd).filter((c) => c > 0);
    this.fallbackUnit = priced.length > 0 ? priced.reduce((a, b) => a + b, 0) / priced.length : FALLBACK_COST_UNIT;
    this.state = new State(options.models, this.fallbackUnit, this.learner.gamma < 1);
    const priorWeight = options.priorWeight ?? DEFAULT_PRIOR_WEIGHT;
    // The sync swaps in the state it rebuilds, and asks for per-class choices and the replay.
    this.sync = new StoreSync(
      {
        learner: this.learner,
        priorWeight,
        current: () => this.state,
        replace: (state) => {
          this.state = state;
        },
        newState: () => new State(this.configured, this.fallbackUnit, this.learner.gamma < 1),
        classChoice: (state, queryClass) => this.classChoice(state, queryClass),
        observe: (o) => this.observe(o),
        observeFeedback: (f) => this.observeFeedback(f),
      },
      options.source,
    );
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
    // When every answer brings evidence back, every request explores (and no draw decides it); so
    // does a request the judge will grade. None does while shadow calls explore.
    const share = this.exploreShare();
    const explore = ctx.exploit !== true && (ctx.graded === true || share >= 1 || this.random.uniform() < share);
    let chosen = available[0] as string;
    let chosenScore = -Infinity;
    let greedy = chosen;
    let greedyScore = -Infinity;
    const n = x.size;
    const index = x.index;
    const value = x.value;
    const zz = squaredNorm(x);
    for (let a = 0; a < available.length; a++) {
      const key = available[a] as string;
      const m = models.get(key);
      if (m === undefined) continue;
      const theta = m.record.theta;
      const recent = m.window.theta;
      const costTheta = m.cost.theta;
      let recordMean = 0;
      let windowMean = 0;
      let cost = 0;
      for (let k = 0; k < n; k++) {
        const i = index[k]!;
        const v = value[k]!;
        recordMean += theta[i]! * v;
        windowMean += recent[i]! * v;
        cost += costTheta[i]! * v;
      }
      // The record, unless the window says this model changed on queries like this one.
      const changed = m.windowSpread(x, windowMean, recordMean, zz);
      const mean = changed >= 0 ? windowMean : recordMean;
      const expected = mean - this.penalty(m, cost);
      if (expected > greedyScore) {
        greedy = key;
        greedyScore = expected;
      }
      if (!explore) continue;
      // The sample is expected + (a non-negative width) × draw: with a draw ≤ 0 it cannot beat the
      // best sample so far unless the mean does, so the spread (most of a decision's cost) is skipped.
      // The draws and the choice are exactly those of computing every spread.
      const draw = this.random.normal();
      if (draw <= 0 && expected <= chosenScore) continue;
      const spread = changed >= 0 ? changed : Math.max(0, m.record.spread(x));
      const sampled = expected + sampleWidth(mean, spread) * draw;
      if (sampled > chosenScore) {
        chosen = key;
        chosenScore = sampled;
      }
    }
    if (!explore) chosen = greedy;
    this.countPick(ctx.queryClass, chosen);
    return { model: chosen, reason: chosen === greedy ? 'contextual' : 'explore' };
  }

  /**
   * The model this policy most wants to learn about for this request besides the served one: a
   * full-width (untempered) Thompson draw over the other available models (a shadow call's target).
   */
  shadowCandidate(ctx: RoutingContext, served: string): string | undefined {
    const x = this.featuresOf(ctx);
    let best: string | undefined;
    let bestScore = -Infinity;
    for (const key of ctx.available) {
      if (key === served) continue;
      const m = this.state.models.get(key);
      if (m === undefined) continue;
      const { mean, spread } = m.judged(x);
      const sampled = mean - this.penalty(m, m.cost.mean(x)) + fullWidth(mean, spread) * this.random.normal();
      if (sampled > bestScore) {
        best = key;
        bestScore = sampled;
      }
    }
    return best;
  }

  /** The share of the requests not graded that get a Thompson draw: how often an answer brings quality evidence back. */
  private exploreShare(): number {
    const state = this.state;
    return Math.max(EXPLORE_FLOOR, (state.evidence + 1) / (state.traces + 1));
  }

  private penalty(m: ModelBelief, costUnits: number): number {
    let penalty = 0;
    if (this.costWeight > 0) penalty += this.costWeight * Math.max(0, costUnits) * m.unit;
    if (this.latencyWeight > 0 && m.latencyWeight > 0) penalty += (this.latencyWeight * m.latencySum) / m.latencyWeight / 1000;
    return penalty;
  }

  /**
   * One finished attempt: its cost and latency, and its failure or rating if any. A trace already
   * known (read by a rebuild that ran meanwhile) is not counted twice.
   */
  observe(observation: Observation): void {
    const state = this.state;
    if (observation.model === '' || !isRoutingEvidence(observation.queryClass) || state.pending.has(observation.traceId)) return;
    const m = state.models.get(observation.model);
    if (m === undefined) return;
    this.sync.replay.observe(observation);
    const x = this.featuresOf(observation);
    const feedback = observation.feedback;
    const entry = this.learner.learn(
      state,
      m,
      x,
      {
        queryClass: observation.queryClass,
        failed: attemptFailed(observation),
        refused: observation.outcome === 'refused',
        rating: feedback !== null ? { score: feedback, source: observation.feedbackSource } : null,
        costUsd: observation.costUsd,
        latencyMs: observation.latencyMs,
      },
      1,
      true,
    );
    if (this.observed++ % NAME_EVERY === 0) {
      this.learner.noteNames(observation.context !== undefined ? contextInput(observation.context) : bareInput(observation.query, observation.queryClass));
    }
    state.pending.set(observation.traceId, entry);
  }

  /**
   * A rating given after its answer was observed: a new quality observation if the trace had none, a
   * replacement of its rating otherwise (see Learner.rate). Feedback on a failed attempt, or that says
   * the attempt did not succeed, changes nothing. A trace no longer remembered is left to the next
   * rebuild, which reads its rating from the store.
   */
  observeFeedback(feedback: FeedbackObservation): void {
    this.sync.replay.feedback(feedback);
    const entry = this.state.pending.get(feedback.traceId);
    if (entry === undefined || feedback.outcome !== 'success') return;
    this.learner.rate(this.state, entry, feedback.score, feedback.source);
  }

  /** Rebuilds from the store, or folds in what it has not seen yet (src/routing/contextual-sync.ts). */
  updateFromTraces(range: { since?: number; until?: number } = {}): Promise<UpdateSummary> {
    return this.sync.update(range);
  }

  private countPick(queryClass: QueryClass, model: string): void {
    const stats = this.state.classStats(queryClass);
    if (stats === undefined) return;
    stats.pickTick += 1;
    const entry = stats.picks.get(model);
    const before = entry === undefined ? 0 : entry.picks * Math.pow(this.learner.gamma, stats.pickTick - 1 - entry.tick);
    stats.picks.set(model, { picks: before + 1, tick: stats.pickTick });
  }

  private predict(m: ModelBelief, x: FeatureVector): Prediction {
    const { mean, spread } = m.judged(x);
    const cost = m.cost.mean(x);
    const sd = Math.sqrt(rewardVariance(mean) * spread);
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

  /** Per class: the estimates, traces (`samples`) and quality observations (`rated`) per model; confidence: the class's quality observations. */
  snapshot(): PolicySnapshot {
    const state = this.state;
    const gamma = this.learner.gamma;
    const order = (queryClass: string): number => {
      const i = (QUERY_CLASSES as readonly string[]).indexOf(queryClass);
      return i === -1 ? QUERY_CLASSES.length : i;
    };
    const classes: ClassSnapshot[] = [];
    for (const [queryClass, stats] of state.classes) {
      let totalPicks = 0;
      const picksNow = new Map<string, number>();
      for (const [model, p] of stats.picks) {
        const now = p.picks * Math.pow(gamma, stats.pickTick - p.tick);
        picksNow.set(model, now);
        totalPicks += now;
      }
      let confidence = 0;
      for (const c of stats.rated.values()) confidence += c;
      const arms: ArmSnapshot[] = this.classEstimates(state, queryClass).map((p) => ({
        model: p.model,
        estimate: p.reward,
        uncertainty: p.sd,
        costUsd: p.costUsd,
        samples: stats.counts.get(p.model) ?? 0,
        rated: stats.rated.get(p.model) ?? 0,
        share: totalPicks > 0 ? (picksNow.get(p.model) ?? 0) / totalPicks : 0,
      }));
      classes.push({ queryClass, choice: this.classChoice(state, queryClass), confidence, arms });
    }
    classes.sort((a, b) => order(a.queryClass) - order(b.queryClass) || a.queryClass.localeCompare(b.queryClass));
    const features: Record<string, FeatureWeight[]> = {};
    for (const m of state.models.values()) features[m.key] = this.strongest(m, SNAPSHOT_FEATURES);
    return { policy: this.name, classes, features };
  }

  /**
   * The bias, then the `limit` slots of largest |weight| in a model's reward, named by what was seen
   * there: the record's weights, or the window's where the two differ on the bias alone.
   */
  private strongest(m: ModelBelief, limit: number): FeatureWeight[] {
    const theta = m.judged(BIAS_ONLY).belief.theta;
    const slots: number[] = [];
    for (let i = 0; i < D; i++) if (i !== BIAS_SLOT && theta[i] !== 0) slots.push(i);
    slots.sort((a, b) => Math.abs(theta[b]!) - Math.abs(theta[a]!));
    return [
      { feature: '(bias)', weight: theta[BIAS_SLOT]! },
      ...slots.slice(0, limit).map((i) => ({ feature: this.learner.slotName(i), weight: theta[i]! })),
    ];
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
      const theta = m.judged(x).belief.theta;
      const features: ExplainedFeature[] = [...merged.values()].map((f) => ({
        feature: f.name,
        value: f.value,
        weight: theta[f.slot]!,
        contribution: f.value * theta[f.slot]!,
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
