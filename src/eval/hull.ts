/**
 * RouterBench's AIQ ("average improvement in quality"): the area under a router's non-decreasing
 * convex hull in the cost–quality plane, over a normalized cost axis.
 *
 * Conventions (the same for the zero router and for every policy, so the numbers compare):
 * - The cost axis is normalized to [0, 1] over [min, max] of the single models' costs on the same
 *   queries (RouterBench's paper: AIQ = 1/(c_max − c_min) ∫ R̃(c) dc). With this range the zero router
 *   on the RouterBench subset's test split gives 0.823, the figure in routing-facts.md. (RouterBench's
 *   code instead divides by c_max alone, integrating over [0, c_max]; that gives 0.809 there.)
 * - The hull is the upper-left convex hull of the points, cut at its highest point: the best quality
 *   reachable at each cost by mixing two operating points, never decreasing with cost.
 * - Right of the hull's costliest vertex the curve stays flat at its quality (up to the range's end).
 * - Left of the hull's cheapest point the curve is 0, as in RouterBench's code (np.trapz starts at the
 *   router's first point): a router with no operating point that cheap earns no area there. For the
 *   zero router the cheapest single model is the range's start, so nothing is lost; a policy whose
 *   λ grid never reaches the cheapest model's cost loses that strip (run larger λ to reach it).
 * - Parts of the curve outside [min, max] (a router cheaper than every single model, or costlier)
 *   are clipped.
 */

export interface CostQuality {
  /** Dollars (any unit: it is normalized). */
  cost: number;
  quality: number;
}

/** The upper-left non-decreasing convex hull, as vertices sorted by cost. */
export function nonDecreasingHull(points: readonly CostQuality[]): CostQuality[] {
  const finite = points.filter((p) => Number.isFinite(p.cost) && Number.isFinite(p.quality));
  const sorted = [...finite].sort((a, b) => a.cost - b.cost || b.quality - a.quality);
  const hull: CostQuality[] = [];
  for (const p of sorted) {
    const last = hull[hull.length - 1];
    if (last !== undefined && last.cost === p.cost) continue; // same cost: the better one came first
    while (hull.length >= 2) {
      const a = hull[hull.length - 2] as CostQuality;
      const b = hull[hull.length - 1] as CostQuality;
      // b is on or under the line a → p: not a vertex of the upper hull.
      const cross = (b.cost - a.cost) * (p.quality - a.quality) - (b.quality - a.quality) * (p.cost - a.cost);
      if (cross >= 0) hull.pop();
      else break;
    }
    hull.push(p);
  }
  // Non-decreasing: nothing after the (first) best quality.
  let best = 0;
  for (let i = 1; i < hull.length; i++) if ((hull[i] as CostQuality).quality > (hull[best] as CostQuality).quality) best = i;
  return hull.slice(0, best + 1);
}

/** Area under the hull of `points` over the normalized cost range [min, max] (see the conventions above). */
export function hullArea(points: readonly CostQuality[], range: { min: number; max: number }): number {
  const hull = nonDecreasingHull(points);
  if (hull.length === 0) return 0;
  const width = range.max - range.min;
  if (!(width > 0)) {
    // Every single model costs the same: the axis has no length; take the best quality at or below that cost.
    const reachable = hull.filter((p) => p.cost <= range.max);
    return reachable.length > 0 ? (reachable[reachable.length - 1] as CostQuality).quality : 0;
  }
  const xs = hull.map((p) => (p.cost - range.min) / width);
  const ys = hull.map((p) => p.quality);
  const lastX = xs[xs.length - 1] as number;
  const lastY = ys[ys.length - 1] as number;
  if (lastX < 1) {
    xs.push(1);
    ys.push(lastY);
  }
  let area = 0;
  for (let k = 0; k + 1 < xs.length; k++) {
    const x0 = xs[k] as number;
    const x1 = xs[k + 1] as number;
    const y0 = ys[k] as number;
    const y1 = ys[k + 1] as number;
    const lo = Math.max(x0, 0);
    const hi = Math.min(x1, 1);
    if (!(hi > lo)) continue;
    const at = (x: number): number => (x1 === x0 ? y1 : y0 + ((y1 - y0) * (x - x0)) / (x1 - x0));
    area += ((hi - lo) * (at(lo) + at(hi))) / 2;
  }
  return area;
}
