import type { EvalQuery } from './dataset.js';

/** Mean score per query and total dollars over a set of queries. */
export interface QualityCost {
  quality: number;
  cost: number;
}

export interface ModelBaseline extends QualityCost {
  model: string;
}

export interface Baselines {
  /** Queries the baselines are computed on. */
  n: number;
  models: Record<string, QualityCost>;
  /** Expected value of a uniformly random model per query. */
  random: QualityCost;
  /** The single model with the lowest total cost (ties: the better one). */
  cheapest: ModelBaseline;
  /** Per λ: the single model with the highest utility (ties: the cheaper one). */
  bestSingle: Map<number, ModelBaseline>;
  /** Per λ: the model of highest utility on each query (ties: the cheaper one, then the first). */
  oracle: Map<number, QualityCost>;
}

/** Utility of an operating point: quality − λ × dollars per query. */
export function utility(point: QualityCost, lambda: number, n: number): number {
  return point.quality - (lambda * point.cost) / n;
}

export function computeBaselines(models: readonly string[], queries: readonly EvalQuery[], lambdas: readonly number[]): Baselines {
  const n = queries.length;
  const m = models.length;
  const scoreSums = new Float64Array(m);
  const costSums = new Float64Array(m);
  let randomQuality = 0;
  let randomCost = 0;
  for (const q of queries) {
    for (let i = 0; i < m; i++) {
      scoreSums[i] = (scoreSums[i] as number) + (q.scores[i] as number);
      costSums[i] = (costSums[i] as number) + (q.costs[i] as number);
    }
  }
  const perModel: ModelBaseline[] = models.map((model, i) => ({
    model,
    quality: n > 0 ? (scoreSums[i] as number) / n : 0,
    cost: costSums[i] as number,
  }));
  for (let i = 0; i < m; i++) {
    randomQuality += (perModel[i] as ModelBaseline).quality / m;
    randomCost += (costSums[i] as number) / m;
  }

  let cheapest = perModel[0] as ModelBaseline;
  for (const p of perModel) {
    if (p.cost < cheapest.cost || (p.cost === cheapest.cost && p.quality > cheapest.quality)) cheapest = p;
  }

  const bestSingle = new Map<number, ModelBaseline>();
  const oracle = new Map<number, QualityCost>();
  for (const lambda of lambdas) {
    let best = perModel[0] as ModelBaseline;
    for (const p of perModel) {
      const u = utility(p, lambda, n);
      const b = utility(best, lambda, n);
      if (u > b || (u === b && p.cost < best.cost)) best = p;
    }
    bestSingle.set(lambda, best);

    let quality = 0;
    let cost = 0;
    for (const q of queries) {
      let chosen = 0;
      let chosenU = -Infinity;
      for (let i = 0; i < m; i++) {
        const c = q.costs[i] as number;
        const u = (q.scores[i] as number) - lambda * c;
        if (u > chosenU || (u === chosenU && c < (q.costs[chosen] as number))) {
          chosen = i;
          chosenU = u;
        }
      }
      quality += q.scores[chosen] as number;
      cost += q.costs[chosen] as number;
    }
    oracle.set(lambda, { quality: n > 0 ? quality / n : 0, cost });
  }

  return {
    n,
    models: Object.fromEntries(perModel.map((p) => [p.model, { quality: p.quality, cost: p.cost }])),
    random: { quality: randomQuality, cost: randomCost },
    cheapest,
    bestSingle,
    oracle,
  };
}
