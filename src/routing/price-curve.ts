import { judgedSums, type ClassState, type ModelState } from './adaptive-state.js';
import { PRICE_PRIOR_PER_DECADE } from './prior.js';

/**
 * The price prior's mean in one class, learned from every rated model of the class.
 *
 * The rule relates two models by price: a model k times cheaper than another is assumed
 * PRICE_PRIOR_PER_DECADE × log10(k) worse; a pricier one is not assumed better (nor worse). Each model
 * with ratings in the class is a reference: what it is rated says where every other model should
 * start. The anchor (router.defaultModel, else the priciest routed model) is always a reference, with
 * a uniform pseudo-rating, so with no ratings at all a model's prior is the anchor's neutral 0.5 less
 * the price gap, and the anchor wins ties. A model's prior is the mean of what the references say,
 * each weighed by its ratings.
 *
 * Anchoring only on the anchor left every cheap model far below the one being served whenever the
 * anchor itself was not served (cost-weighted routing seldom serves the priciest model): a model
 * never tried then stayed out of reach of the evidence that would show it better.
 *
 * `load(state)` reads the class once per decision; `mean(model)` is then a few multiply-adds per
 * reference, with no allocation.
 */
export class PriceCurve {
  private logCost = new Float64Array(16);
  private weight = new Float64Array(16);
  private sum = new Float64Array(16);
  private n = 0;

  constructor(private readonly anchor: ModelState | undefined) {}

  /** Whether models get a price prior at all (there is an anchor: some routed model has a price). */
  get active(): boolean {
    return this.anchor !== undefined;
  }

  /** Reads the references of one class: the anchor and every priced model rated there. */
  load(state: ClassState | undefined): void {
    this.n = 0;
    const anchor = this.anchor;
    if (anchor === undefined) return;
    const anchorSums = judgedSums(state?.arms.get(anchor.key));
    this.push(anchor.priorCost, 2 + anchorSums.weight, 1 + anchorSums.sum);
    if (state === undefined) return;
    for (const arm of state.arms.values()) {
      const model = arm.model;
      if (model === anchor || !model.priced) continue;
      const sums = judgedSums(arm);
      if (sums.weight > 0) this.push(model.priorCost, sums.weight, sums.sum);
    }
  }

  /** The prior mean of `model`'s quality in the loaded class, in [0.01, 0.99]. */
  mean(model: ModelState): number {
    const logCost = model.priorCost > 0 ? Math.log10(model.priorCost) : Number.NaN;
    let weight = 0;
    let sum = 0;
    for (let i = 0; i < this.n; i++) {
      const w = this.weight[i] as number;
      const gap = (this.logCost[i] as number) - logCost;
      // NaN (either price unknown or zero) compares false: no shift, as for a pricier reference.
      const shift = gap > 0 ? PRICE_PRIOR_PER_DECADE * gap : 0;
      weight += w;
      sum += (this.sum[i] as number) - w * shift;
    }
    if (weight === 0) return 0.5;
    return Math.min(0.99, Math.max(0.01, sum / weight));
  }

  private push(cost: number, weight: number, sum: number): void {
    if (this.n === this.weight.length) this.grow();
    this.logCost[this.n] = cost > 0 ? Math.log10(cost) : Number.NaN;
    this.weight[this.n] = weight;
    this.sum[this.n] = sum;
    this.n += 1;
  }

  private grow(): void {
    const size = this.weight.length * 2;
    const copy = (from: Float64Array) => {
      const to = new Float64Array(size);
      to.set(from);
      return to;
    };
    this.logCost = copy(this.logCost);
    this.weight = copy(this.weight);
    this.sum = copy(this.sum);
  }
}
