import type { FeedbackSource, TraceRecord } from '../traces/types.js';
import { BoundedMap } from './bounded-map.js';
import { ModelBelief } from './contextual-belief.js';
import { FEATURE_DIM, FeatureExtractor, isTextSlot, slotKind, type FeatureInput, type FeatureVector, type NamedFeature } from './features.js';
import { priorCostUsd, ratingWeight, type SourceWeights } from './prior.js';
import type { ModelInfo, QueryClass, QueryContext } from './types.js';

/*
 * What the contextual policy has learned (State: the models' beliefs, per-class statistics, the traces
 * remembered for late feedback) and how one trace or one rating is learned into it (Learner), shared by
 * live observation and by the rebuilds from the store, so that both count evidence the same way:
 * - every trace: its cost (when known) into the cost belief; a live trace, its latency;
 * - a failure: reward 0 at the trace's weight (1 live; offline evidence, its prior weight), never replaced;
 * - a rated success: its rating, at the trace's weight × ratingWeight(source);
 * - an unrated success: nothing about quality (silence is not praise).
 */

/** Most traces remembered (with their features) for late feedback. */
const MAX_PENDING = 50_000;
/** Recent queries kept per class for the snapshot's per-class estimates, and classes tracked. */
const CLASS_SAMPLES = 32;
const MAX_CLASSES = 256;
/** Names kept per slot. */
const NAMES_PER_SLOT = 24;

/** The rating a remembered trace counts with now: its score, its weight, and the reward tick it was learned at. */
export interface Rating {
  score: number;
  weight: number;
  tick: number;
}

/** A live trace remembered for late feedback. */
export interface PendingTrace {
  readonly model: ModelBelief;
  readonly queryClass: QueryClass;
  readonly features: FeatureVector;
  readonly failed: boolean;
  /** The failure (score 0) or rating it counts with in the reward; null: unrated so far. */
  rating: Rating | null;
}

export interface ClassStats {
  /** Live traces observed per model. */
  readonly counts: Map<string, number>;
  /** Live quality observations (failures and rated successes) per model. */
  readonly rated: Map<string, number>;
  /** Discounted picks per model, as of the class's pick `tick`. */
  readonly picks: Map<string, { picks: number; tick: number }>;
  pickTick: number;
  /** The newest queries of the class (a ring). */
  readonly samples: FeatureVector[];
  next: number;
}

/** Everything learned; a rebuild makes a new one and swaps it in. */
export class State {
  readonly models = new Map<string, ModelBelief>();
  readonly classes = new Map<QueryClass, ClassStats>();
  readonly pending = new BoundedMap<string, PendingTrace>(MAX_PENDING);
  /** Live traces and live quality observations learned (raw): their ratio is how often evidence comes back. */
  traces = 0;
  evidence = 0;

  /** `forgets`: the policy forgets (γ < 1), so each model's reward keeps a record beside its window. */
  constructor(models: readonly ModelInfo[], fallbackUnit: number, forgets: boolean) {
    for (const m of models) {
      const prior = priorCostUsd(m);
      this.models.set(m.key, new ModelBelief(m.key, prior > 0 ? prior : fallbackUnit, prior, forgets));
    }
  }

  classStats(queryClass: QueryClass): ClassStats | undefined {
    let stats = this.classes.get(queryClass);
    if (stats === undefined) {
      if (this.classes.size >= MAX_CLASSES) return undefined;
      stats = { counts: new Map(), rated: new Map(), picks: new Map(), pickTick: 0, samples: [], next: 0 };
      this.classes.set(queryClass, stats);
    }
    return stats;
  }

  /** Counts `n` live quality observations of a class × model. */
  countRated(queryClass: QueryClass, model: string, n: number): void {
    this.evidence += n;
    const stats = this.classStats(queryClass);
    if (stats !== undefined) stats.rated.set(model, (stats.rated.get(model) ?? 0) + n);
  }

  /** Keeps x among the class's recent queries and counts `traces` live traces of the model there. */
  noteClass(queryClass: QueryClass, model: string, x: FeatureVector, traces: number): void {
    const stats = this.classStats(queryClass);
    if (stats === undefined) return;
    if (traces > 0) stats.counts.set(model, (stats.counts.get(model) ?? 0) + traces);
    if (stats.samples.length < CLASS_SAMPLES) stats.samples.push(x);
    else stats.samples[stats.next] = x;
    stats.next = (stats.next + 1) % CLASS_SAMPLES;
  }
}

/** One trace as learned: what the policy is told of it. */
export interface TraceEvidence {
  readonly queryClass: QueryClass;
  readonly failed: boolean;
  /**
   * Failed as `refused` (a refused provider key, a rate limit, a request too big for the model): no
   * quality evidence, and its latency (a quick refusal) is not the model's.
   */
  readonly refused?: boolean;
  /** The rating known now (null: none, or one that arrives later). */
  readonly rating: { score: number; source: FeedbackSource | null | undefined } | null;
  readonly costUsd: number | null;
  readonly latencyMs: number;
}

/** How traces and ratings are learned (the policy's settings), and the names seen per feature slot. */
export class Learner {
  /** Names seen per slot, with how often (bounded), for snapshots. */
  private readonly names: Map<string, number>[] = Array.from({ length: FEATURE_DIM }, () => new Map());

  constructor(
    readonly gamma: number,
    readonly weights: SourceWeights,
    readonly extractor: FeatureExtractor,
  ) {}

  /**
   * One trace of weight `weight` (offline evidence: its prior weight; live: 1). A live trace forgets
   * along z in each belief it informs, is counted in the class's statistics, and is returned for late
   * feedback; offline evidence (a prior) neither forgets nor counts.
   */
  learn(state: State, m: ModelBelief, x: FeatureVector, t: TraceEvidence, weight: number, live: boolean): PendingTrace {
    const g = live ? this.gamma : 1;
    if (t.costUsd !== null && Number.isFinite(t.costUsd)) m.spend(x, t.costUsd, weight, g);
    if (live && t.refused !== true) m.wait(t.latencyMs, g);
    const entry: PendingTrace = { model: m, queryClass: t.queryClass, features: x, failed: t.failed, rating: null };
    // A refused attempt adds no rating; a later rating of any failed attempt is ignored (entry.failed).
    if (t.failed) {
      if (t.refused !== true) entry.rating = this.addRating(m, x, 0, weight, g);
    } else if (t.rating !== null && Number.isFinite(t.rating.score)) {
      entry.rating = this.addRating(m, x, clamp01(t.rating.score), weight * ratingWeight(t.rating.source, this.weights), g);
    }
    if (live) {
      state.traces += 1;
      if (entry.rating !== null) state.countRated(t.queryClass, m.key, 1);
    }
    state.noteClass(t.queryClass, m.key, x, live ? 1 : 0);
    return entry;
  }

  /**
   * A rating of a live trace learned earlier. The first is a new quality observation (the reward's
   * newest, with forgetting in the window as a live observation). One that replaces an earlier rating
   * takes that one out first (an RLS downdate) and is then added as the newest: exact in the record
   * (no forgetting). In the window it is an approximation: the earlier rating is taken out at its
   * weight × γ^k, k the model's reward observations since it; directional forgetting keeps at least
   * that share of the information along any direction (each step keeps A ⪰ γA), so the downdate
   * never takes out more than is there, and where the newer observations were along other
   * directions part of the earlier rating stays. A failed trace stays 0.
   */
  rate(state: State, entry: PendingTrace, score: number, source: FeedbackSource | null | undefined): void {
    if (entry.failed || !Number.isFinite(score)) return;
    const m = entry.model;
    const value = clamp01(score);
    const weight = ratingWeight(source, this.weights);
    const old = entry.rating;
    if (old !== null) {
      if (old.score === value && old.weight === weight) return;
      m.unrate(entry.features, old.score, old.weight, Math.pow(this.gamma, m.window.ticks - old.tick));
    } else {
      state.countRated(entry.queryClass, m.key, 1);
    }
    entry.rating = this.addRating(m, entry.features, value, weight, this.gamma);
  }

  private addRating(m: ModelBelief, x: FeatureVector, score: number, weight: number, gamma: number): Rating {
    m.rate(x, score, weight, gamma);
    return { score, weight, tick: m.window.ticks };
  }

  /** Records the names of a query's features, per slot (bounded; for the snapshot). */
  noteNames(input: FeatureInput): void {
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

  /** A slot's most frequent names ("user words #3: +which, −answer"), or its kind. */
  slotName(slot: number): string {
    const names = [...this.names[slot]!].sort((a, b) => b[1] - a[1]).map(([name]) => name);
    if (names.length === 0) return slotKind(slot);
    if (!isTextSlot(slot)) return names.slice(0, 3).join(' | ');
    return `${slotKind(slot)}: ${names.slice(0, 4).join(', ')}${names.length > 4 ? ', …' : ''}`;
  }
}

export function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}

export function contextInput(c: QueryContext): FeatureInput {
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

export function bareInput(query: string, queryClass: QueryClass): FeatureInput {
  return { query, queryLength: query.length, system: '', queryClass, tools: false, images: false, responseFormat: false };
}

/** Only the class (and the bias): for per-class sums, and classes without recent queries. */
export function classInput(queryClass: QueryClass): FeatureInput {
  return { query: '', queryLength: -1, system: '', queryClass, tools: false, images: false, responseFormat: false };
}

/** A stored trace keeps the (possibly truncated) last user message, its length and the class. */
export function traceInput(t: TraceRecord): FeatureInput {
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
