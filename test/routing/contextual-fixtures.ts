import type { ModelInfo, PolicyOptions } from '../../src/routing/types.js';

/** What the contextual policy's tests share: models, options and two kinds of prompt that share a class. */

export const free = (key: string): ModelInfo => ({ key, inputCostPerMTok: 0, outputCostPerMTok: 0 });
export const priced = (key: string, perMTok: number): ModelInfo => ({ key, inputCostPerMTok: perMTok, outputCostPerMTok: perMTok });

export function options(models: ModelInfo[], over: Partial<PolicyOptions> = {}): PolicyOptions {
  return { models, minSamples: 5, costWeight: 0, latencyWeight: 0, halfLife: 50, seed: 1, ...over };
}

const FILLER = ' Answer carefully and briefly, in plain words, without any heading.'.repeat(10);
export const LEGAL = (i: number) => `Review clause ${i} of this contract for liability and indemnification risk.${FILLER}`;
export const POEM = (i: number) => `Write a sonnet ${i} about the autumn moon and the falling leaves.${FILLER}`;
