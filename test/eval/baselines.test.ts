import { describe, expect, it } from 'vitest';
import { computeBaselines, utility } from '../../src/eval/baselines.js';
import { parseDataset, splitOf } from '../../src/eval/dataset.js';
import { syntheticRows, toJsonl } from './synthetic.js';

// 200 prompts per kind, n = 400. See synthetic.ts for the scores; costs alpha .004, beta .002, gamma .001.
const data = parseDataset(toJsonl(syntheticRows(200)));
const base = computeBaselines(data.models, data.queries, [0, 50, 200, 500]);
const n = 400;

describe('baselines on the synthetic data', () => {
  it('single models: mean score and total dollars', () => {
    expect(base.n).toBe(n);
    // alpha (200·1 + 200·.5)/400; beta (200·.25 + 200·.9)/400; gamma (200·.5 + 200·.2)/400
    expect(base.models.alpha?.quality).toBeCloseTo(0.75, 12);
    expect(base.models.beta?.quality).toBeCloseTo(0.575, 12);
    expect(base.models.gamma?.quality).toBeCloseTo(0.35, 12);
    expect(base.models.alpha?.cost).toBeCloseTo(1.6, 12);
    expect(base.models.beta?.cost).toBeCloseTo(0.8, 12);
    expect(base.models.gamma?.cost).toBeCloseTo(0.4, 12);
  });

  it('random is the mean over models on every query; cheapest is the lowest total cost', () => {
    expect(base.random.quality).toBeCloseTo((0.75 + 0.575 + 0.35) / 3, 12);
    expect(base.random.cost).toBeCloseTo((400 * 0.007) / 3, 12);
    expect(base.cheapest).toMatchObject({ model: 'gamma' });
    expect(base.cheapest.quality).toBeCloseTo(0.35, 12);
  });

  it('best single model per λ is the highest utility', () => {
    // λ 0: alpha .75; λ 50: alpha .75 − 50·.004 = .55 (beta .475); λ 200: beta .575 − .4 = .175
    // (gamma .15, alpha −.05); λ 500: gamma .35 − .5 = −.15 (beta −.425).
    expect(base.bestSingle.get(0)?.model).toBe('alpha');
    expect(base.bestSingle.get(50)?.model).toBe('alpha');
    expect(base.bestSingle.get(200)?.model).toBe('beta');
    expect(base.bestSingle.get(500)?.model).toBe('gamma');
    expect(utility(base.bestSingle.get(200)!, 200, n)).toBeCloseTo(0.175, 12);
  });

  it('the per-query oracle takes the highest utility on each query, the cheaper on a tie', () => {
    // λ ≤ 200: every query has a model scoring 1, the cheapest such is taken. Code: even j → gamma
    // (200 prompts, half of them), odd j → alpha; long: j%5==0 → gamma (40), else beta (160).
    // Cost 100·.001 + 100·.004 + 40·.001 + 160·.002 = .86.
    for (const lambda of [0, 50, 200]) {
      expect(base.oracle.get(lambda)?.quality).toBeCloseTo(1, 12);
      expect(base.oracle.get(lambda)?.cost).toBeCloseTo(0.86, 12);
    }
    expect(utility(base.oracle.get(50)!, 50, n)).toBeCloseTo(1 - (50 * 0.86) / 400, 12);
    // λ 500: code all gamma (score .5 on average, $.2); long: gamma where it scores 1 (40), beta
    // elsewhere (160): quality (100 + 200)/400 = .75, cost .2 + .04 + .32 = .56, utility .75 − .7.
    expect(base.oracle.get(500)?.quality).toBeCloseTo(0.75, 12);
    expect(base.oracle.get(500)?.cost).toBeCloseTo(0.56, 12);
    expect(utility(base.oracle.get(500)!, 500, n)).toBeCloseTo(0.05, 12);
  });

  it('is computed on the queries given (the test split in train-test mode)', () => {
    const test = computeBaselines(data.models, splitOf(data, 'test'), [0]);
    expect(test.n).toBe(200);
    expect(test.models.beta?.quality).toBeCloseTo(0.575, 12);
    expect(test.models.beta?.cost).toBeCloseTo(0.4, 12);
    expect(test.oracle.get(0)?.cost).toBeCloseTo(0.43, 12);
  });
});
