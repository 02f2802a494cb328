import { priorCostUsd } from '../routing/prior.js';
import type { ModelInfo } from '../routing/types.js';
import type { Dataset } from './dataset.js';

/**
 * Configured prices for the policies, derived from the data: each model's mean dollars per query.
 *
 * The adaptive policy's cost prior is `priorCostUsd(model)` = (inputCostPerMTok × 500 +
 * outputCostPerMTok × 200) / 1e6 dollars, an assumed 500-token prompt and 200-token answer. With
 * inputCostPerMTok = outputCostPerMTok = p that is p × 700e-6, so p = meanCost / 700e-6 makes the
 * prior exactly the model's mean cost per query. The unit price is read from priorCostUsd itself
 * (priorCostUsd at 1 $/MTok both ways), so the match holds if its token counts ever change.
 * Prices come from every line of the file (a price list is known before any query is routed).
 */
export function pricedModels(dataset: Dataset): ModelInfo[] {
  const unit = priorCostUsd({ inputCostPerMTok: 1, outputCostPerMTok: 1 });
  const n = dataset.queries.length;
  return dataset.models.map((key, i) => {
    let sum = 0;
    for (const q of dataset.queries) sum += q.costs[i] as number;
    const perMTok = n > 0 && unit > 0 ? sum / n / unit : 0;
    return { key, inputCostPerMTok: perMTok, outputCostPerMTok: perMTok };
  });
}
