import { CHANGE_Z } from './adaptive-state.js';
import { BIAS_SLOT, FEATURE_DIM, type FeatureVector } from './features.js';

/*
 * The contextual policy's beliefs about one upstream model: two Bayesian linear regressions over the
 * query's features, one for the reward (quality) and one for the dollars of an answer, each with its
 * own information matrix A (in pseudo-observations; the prior is PRIOR_COUNT × I), its inverse S and
 * its weights: recursive least squares, i.e. the exact posterior of a linear-Gaussian model, updated in
 * O(FEATURE_DIM²) per observation. They are separate because they learn from different evidence: the
 * reward from failures and ratings only, the cost from every trace whose cost is known; so each has
 * its own uncertainty, forgetting and observation count.
 *
 * The reward's posterior predictive variance on features z is v(μ) · zᵀSz, v(μ) = μ(1 − μ) (the most
 * a reward in [0, 1] with mean μ can vary, bounded below): after n observations like z it is about
 * μ(1 − μ)/n, as a Beta posterior's.
 *
 * Forgetting (γ = 2^(−1/halfLife)): before a live observation, the information along its direction z
 * is multiplied by γ (directional forgetting: A −= (1 − γ)·(Az)(Az)ᵀ/zᵀAz), so evidence fades as newer
 * observations like it arrive and evidence elsewhere (another class) is kept; information along a
 * recurring direction settles near 1/(1 − γ) observations. Each belief forgets per observation of its
 * own: the reward per rating or failure, the cost per trace with a known cost.
 *
 * The reward is kept twice, as the adaptive policy keeps an arm's quality sums: the whole record
 * (no forgetting) and the recent window (forgetting as above), both learning every quality
 * observation. A query is predicted from the record unless the window's prediction for it is more
 * than CHANGE_Z of the window's standard deviations (√(v(μ)·zᵀSz), the window's μ and S) from the
 * record's; then from the window. A steady model keeps everything it ever earned (its estimate and
 * its narrowing uncertainty are those of no forgetting), and one that breaks or degrades is judged
 * on its recent evidence within tens of observations. Both are functions of the observations in
 * order, so a rebuild from the store makes the same call as the online updates did. Without
 * forgetting the two are one belief.
 */

const D = FEATURE_DIM;
/**
 * Prior pseudo-observations on every weight (ridge): the reward bias's prior mean is 0.5, the cost
 * bias's the configured price, the others' 0. A query has 3–6 unit-norm feature groups (bias, class,
 * length, words, …), so an untried model's prediction rests on about PRIOR_COUNT / 4 = 2
 * pseudo-observations, as the adaptive policy's Beta prior. A stronger prior (16) explored less on the
 * RouterBench subset but was slower to learn a class where a model differs from its record elsewhere.
 */
const PRIOR_COUNT = 8;
/**
 * Thompson samples are drawn at full width while a model has little evidence on queries like this one
 * (fewer than FULL_WIDTH_BELOW observations along z), then at a width narrowing to EXPLORE_SCALE × the
 * posterior's standard deviation ("tempered") as evidence grows: scale = clamp(√(N·zᵀSz), 0.5, 1),
 * N = FULL_WIDTH_BELOW (half width from 4N observations on).
 * Full width throughout keeps exploring close calls among many models for longer than it pays;
 * half width throughout can lock onto a mediocre model whose early failures on one kind of query
 * drag down its estimate on another kind in the same class. The threshold must be low enough that
 * prompts whose words vary from one to the next (code) still narrow: the evidence along any one of
 * their words stays small however many come. The values were chosen with `tracegate eval` and the
 * learning tests (docs/routing.md).
 */
const EXPLORE_SCALE = 0.5;
const FULL_WIDTH_BELOW = 10;
/** Bounds of the reward variance μ(1 − μ), so a prediction near 0 or 1 still explores a little. */
const MIN_VARIANCE = 0.02;
const MAX_VARIANCE = 0.25;
/** S is recomputed from A (Cholesky) after this many rank-one updates, against rounding drift. */
const REFRESH_EVERY = 1_000;
/**
 * An observation is taken out only while what remains along its direction stays positive definite
 * with room to spare (1 − w·zᵀSz ≥ this); otherwise its weight is reduced to fit.
 */
const MIN_REMAINDER = 1e-3;

// Scratch vectors of the updates (one thread: no update interleaves with another).
const scratchSz = new Float64Array(D);
const scratchAz = new Float64Array(D);

/** Full width while the evidence along z is under FULL_WIDTH_BELOW observations, narrowing to EXPLORE_SCALE. */
function explorationScale(spread: number): number {
  return Math.min(1, Math.max(EXPLORE_SCALE, Math.sqrt(FULL_WIDTH_BELOW * spread)));
}

/** μ(1 − μ), bounded: the variance of a reward in [0, 1] with mean μ is at most that. */
export function rewardVariance(mean: number): number {
  return Math.min(MAX_VARIANCE, Math.max(MIN_VARIANCE, mean * (1 - mean)));
}

/** The width of a Thompson sample: the posterior's standard deviation along z, tempered. */
export function sampleWidth(mean: number, spread: number): number {
  return Math.sqrt(rewardVariance(mean) * spread) * explorationScale(spread);
}

/** The width of an untempered Thompson sample: the posterior's standard deviation along z. */
export function fullWidth(mean: number, spread: number): number {
  return Math.sqrt(rewardVariance(mean) * spread);
}

/** One Bayesian linear regression (recursive least squares with directional forgetting). */
export class LinearBelief {
  readonly theta = new Float64Array(D);
  /** Information matrix (row-major) and its inverse. */
  readonly a = new Float64Array(D * D);
  readonly s = new Float64Array(D * D);
  /** Observations added so far (a rating's age is counted in these). */
  ticks = 0;
  private sinceRefresh = 0;
  /** maxInformation()'s value since A last changed (NaN: to be computed). */
  private information = NaN;

  constructor(biasMean: number) {
    for (let i = 0; i < D; i++) {
      this.a[i * D + i] = PRIOR_COUNT;
      this.s[i * D + i] = 1 / PRIOR_COUNT;
    }
    this.theta[BIAS_SLOT] = biasMean;
  }

  /** θ·z. */
  mean(x: FeatureVector): number {
    let sum = 0;
    for (let k = 0; k < x.size; k++) sum += this.theta[x.index[k]!]! * x.value[k]!;
    return sum;
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

  /**
   * An upper bound on A's largest eigenvalue, the most information along any direction:
   * min(‖A‖_F, PRIOR_COUNT + ‖A − PRIOR_COUNT·I‖_F), so zᵀSz ≥ zᵀz / maxInformation(). O(D²) once
   * after each change of A.
   */
  maxInformation(): number {
    if (this.information === this.information) return this.information;
    const a = this.a;
    let squares = 0;
    for (let i = 0; i < D * D; i++) squares += a[i]! * a[i]!;
    let shifted = squares;
    for (let i = 0; i < D; i++) {
      const diagonal = a[i * D + i]!;
      shifted += (diagonal - PRIOR_COUNT) * (diagonal - PRIOR_COUNT) - diagonal * diagonal;
    }
    this.information = Math.min(Math.sqrt(squares), PRIOR_COUNT + Math.sqrt(Math.max(0, shifted)));
    return this.information;
  }

  /** Directional forgetting: the information along z is multiplied by γ. */
  forget(x: FeatureVector, gamma: number): void {
    this.information = NaN;
    const a = this.a;
    const idx = x.index;
    const val = x.value;
    const az = scratchAz;
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

  /** Learns one observation y of weight w on features z: θ += w·S'z·(y − θ·z), S' the updated inverse. */
  add(x: FeatureVector, w: number, y: number): void {
    const error = w * (y - this.mean(x));
    const sz = this.sTimes(x);
    let r = 0;
    for (let k = 0; k < x.size; k++) r += x.value[k]! * sz[x.index[k]!]!;
    const denom = 1 + w * r;
    this.ticks += 1;
    if (!(r >= 0) || !(denom > 0)) {
      // Rounding broke S: rebuild it from A and start over.
      this.addOuter(x, w);
      this.refresh();
      this.step(this.sTimes(x), error);
      return;
    }
    const f = w / denom;
    const s = this.s;
    for (let i = 0; i < D; i++) {
      const fi = f * sz[i]!;
      if (fi === 0) continue;
      const row = i * D;
      for (let j = 0; j < D; j++) s[row + j]! -= fi * sz[j]!;
    }
    this.addOuter(x, w);
    // S'z = Sz / (1 + w·zᵀSz).
    this.step(sz, error / denom);
    if (++this.sinceRefresh >= REFRESH_EVERY) this.refresh();
  }

  /**
   * Takes out an observation y of weight w learned earlier (an RLS downdate: the exact inverse of
   * `add` without forgetting in between): A −= w·zzᵀ, θ −= w·S'z·(y − θ·z), S' = (A − w·zzᵀ)⁻¹.
   */
  remove(x: FeatureVector, w: number, y: number): void {
    if (!(w > 0)) return;
    const sz = this.sTimes(x);
    let r = 0;
    for (let k = 0; k < x.size; k++) r += x.value[k]! * sz[x.index[k]!]!;
    if (!(r > 0)) return;
    const weight = Math.min(w, (1 - MIN_REMAINDER) / r);
    const denom = 1 - weight * r;
    const error = weight * (y - this.mean(x));
    const f = weight / denom;
    const s = this.s;
    for (let i = 0; i < D; i++) {
      const fi = f * sz[i]!;
      if (fi === 0) continue;
      const row = i * D;
      for (let j = 0; j < D; j++) s[row + j]! += fi * sz[j]!;
    }
    this.addOuter(x, -weight);
    // S'z = Sz / (1 − w·zᵀSz).
    this.step(sz, -error / denom);
    if (++this.sinceRefresh >= REFRESH_EVERY) this.refresh();
  }

  /** S z into the scratch vector. */
  private sTimes(x: FeatureVector): Float64Array {
    const s = this.s;
    const sz = scratchSz;
    for (let i = 0; i < D; i++) {
      const row = i * D;
      let sum = 0;
      for (let k = 0; k < x.size; k++) sum += s[row + x.index[k]!]! * x.value[k]!;
      sz[i] = sum;
    }
    return sz;
  }

  /** θ += direction × amount. */
  private step(direction: Float64Array, amount: number): void {
    if (amount === 0) return;
    for (let i = 0; i < D; i++) this.theta[i]! += direction[i]! * amount;
  }

  private addOuter(x: FeatureVector, w: number): void {
    this.information = NaN;
    const a = this.a;
    for (let k = 0; k < x.size; k++) {
      const row = x.index[k]! * D;
      const wk = w * x.value[k]!;
      for (let l = 0; l < x.size; l++) a[row + x.index[l]!]! += wk * x.value[l]!;
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

/** One upstream model's beliefs: reward (its record and its recent window), cost (in units of `unit` dollars) and latency. */
export class ModelBelief {
  /** The reward with forgetting: the recent window. */
  readonly window = new LinearBelief(0.5);
  /** The reward without forgetting: the whole record (the window itself when the policy does not forget). */
  readonly record: LinearBelief;
  readonly cost: LinearBelief;
  /** Discounted latency sum and weight (ms, per live trace), for latencyWeight. */
  latencySum = 0;
  latencyWeight = 0;

  constructor(
    readonly key: string,
    readonly unit: number,
    priorCost: number,
    forgets: boolean,
  ) {
    this.record = forgets ? new LinearBelief(0.5) : this.window;
    this.cost = new LinearBelief(priorCost / unit);
  }

  /** A quality observation (a failure at 0, or a rating) of weight w, in both memories; γ < 1: the window forgets along z first. */
  rate(x: FeatureVector, score: number, w: number, gamma: number): void {
    if (gamma !== 1) this.window.forget(x, gamma);
    this.window.add(x, w, score);
    if (this.record !== this.window) this.record.add(x, w, score);
  }

  /** Takes out a quality observation learned earlier: at weight w from the record, at w × `faded` from the window. */
  unrate(x: FeatureVector, score: number, w: number, faded: number): void {
    this.window.remove(x, w * faded, score);
    if (this.record !== this.window) this.record.remove(x, w, score);
  }

  /**
   * Whether the window's reward prediction on z (`windowMean`) is more than CHANGE_Z of its standard
   * deviations √(v(μ)·zᵀS z) from the record's (`recordMean`): the window's zᵀS z when it is (the
   * window is then the estimate), −1 when the record holds. `zz` is zᵀz: with the bound on the
   * window's information, it gives a floor under zᵀS z that settles most queries without it.
   */
  windowSpread(x: FeatureVector, windowMean: number, recordMean: number, zz: number): number {
    if (this.record === this.window) return -1;
    const gap = windowMean - recordMean;
    const limit = CHANGE_Z * CHANGE_Z * rewardVariance(windowMean);
    if (gap * gap <= limit * (zz / this.window.maxInformation())) return -1;
    const spread = Math.max(0, this.window.spread(x));
    return gap * gap > limit * spread ? spread : -1;
  }

  /** The reward belief this query is judged on, its mean and zᵀS z. */
  judged(x: FeatureVector): { belief: LinearBelief; mean: number; spread: number } {
    const recordMean = this.record.mean(x);
    const windowMean = this.record === this.window ? recordMean : this.window.mean(x);
    const spread = this.windowSpread(x, windowMean, recordMean, squaredNorm(x));
    if (spread >= 0) return { belief: this.window, mean: windowMean, spread };
    return { belief: this.record, mean: recordMean, spread: Math.max(0, this.record.spread(x)) };
  }

  /** The dollars of one answer, observed with weight w; γ < 1: forgetting along z first. */
  spend(x: FeatureVector, costUsd: number, w: number, gamma: number): void {
    if (gamma !== 1) this.cost.forget(x, gamma);
    this.cost.add(x, w, costUsd / this.unit);
  }

  /** The latency of one live trace (forgetting per trace). */
  wait(latencyMs: number, gamma: number): void {
    this.latencySum = this.latencySum * gamma + latencyMs;
    this.latencyWeight = this.latencyWeight * gamma + 1;
  }
}

/** zᵀz. */
export function squaredNorm(x: FeatureVector): number {
  let sum = 0;
  for (let k = 0; k < x.size; k++) sum += x.value[k]! * x.value[k]!;
  return sum;
}
