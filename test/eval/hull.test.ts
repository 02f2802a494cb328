import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { computeBaselines } from '../../src/eval/baselines.js';
import { loadDataset, splitOf } from '../../src/eval/dataset.js';
import { hullArea, nonDecreasingHull } from '../../src/eval/hull.js';

/** The RouterBench subset, when TRACEGATE_EVAL_DATA names it (docs/evaluation.md: getting the data). */
const ROUTERBENCH = process.env.TRACEGATE_EVAL_DATA ?? '';

const pt = (cost: number, quality: number) => ({ cost, quality });

describe('non-decreasing convex hull and its area (AIQ)', () => {
  it('keeps the upper-left hull up to the best quality', () => {
    const points = [pt(0, 0.5), pt(1, 0.9), pt(0.5, 0.8), pt(0.25, 0.6), pt(0.8, 0.7), pt(1.5, 0.85), pt(0.5, 0.7)];
    expect(nonDecreasingHull(points)).toEqual([pt(0, 0.5), pt(0.5, 0.8), pt(1, 0.9)]);
  });

  it('integrates the hull over the normalized cost range', () => {
    // 0.5·(0.5 + 0.8)/2 + 0.5·(0.8 + 0.9)/2 = 0.325 + 0.425
    const points = [pt(0, 0.5), pt(1, 0.9), pt(0.5, 0.8), pt(0.25, 0.6), pt(0.8, 0.7)];
    expect(hullArea(points, { min: 0, max: 1 })).toBeCloseTo(0.75, 12);
    // The same in dollars over [2, 6]: normalization makes it the same area.
    const scaled = points.map((p) => pt(2 + 4 * p.cost, p.quality));
    expect(hullArea(scaled, { min: 2, max: 6 })).toBeCloseTo(0.75, 12);
  });

  it('is flat right of the costliest useful point and 0 left of the cheapest', () => {
    // One point at the middle: nothing on [0, 0.5], 0.8 on [0.5, 1].
    expect(hullArea([pt(0.5, 0.8)], { min: 0, max: 1 })).toBeCloseTo(0.4, 12);
    // A dominated costlier point does not pull the curve down: 0.5·(0.5 + 0.9)/2 + 0.5·0.9.
    expect(hullArea([pt(0, 0.5), pt(1, 0.9), pt(2, 0.8)], { min: 0, max: 2 })).toBeCloseTo(0.8, 12);
  });

  it('clips a curve that starts left of the range', () => {
    // Normalized x = −0.5 and 0.5; the line is at 0.7 at x = 0: 0.5·(0.7 + 0.9)/2 + 0.5·0.9.
    expect(hullArea([pt(0, 0.5), pt(2, 0.9)], { min: 1, max: 3 })).toBeCloseTo(0.85, 12);
  });

  it.skipIf(ROUTERBENCH === '' || !existsSync(ROUTERBENCH))(
    `gives the zero router 0.823 on the RouterBench subset's test split (${ROUTERBENCH})`,
    () => {
      const data = loadDataset(ROUTERBENCH);
      const base = computeBaselines(data.models, splitOf(data, 'test'), [0]);
      const singles = Object.values(base.models);
      const range = { min: Math.min(...singles.map((p) => p.cost)), max: Math.max(...singles.map((p) => p.cost)) };
      expect(hullArea(singles, range)).toBeCloseTo(0.823, 3);
    },
  );
});
