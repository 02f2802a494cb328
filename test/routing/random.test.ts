import { describe, it, expect } from 'vitest';
import { Random } from '../../src/routing/random.js';

function moments(draw: () => number, n: number): { mean: number; variance: number } {
  let sum = 0;
  let sumSq = 0;
  for (let i = 0; i < n; i++) {
    const x = draw();
    sum += x;
    sumSq += x * x;
  }
  const mean = sum / n;
  return { mean, variance: sumSq / n - mean * mean };
}

describe('Random', () => {
  it('repeats its sequence for a seed and differs across seeds', () => {
    const a = new Random(42);
    const b = new Random(42);
    const c = new Random(43);
    const seqA = Array.from({ length: 20 }, () => a.beta(2, 3));
    const seqB = Array.from({ length: 20 }, () => b.beta(2, 3));
    const seqC = Array.from({ length: 20 }, () => c.beta(2, 3));
    expect(seqA).toEqual(seqB);
    expect(seqA).not.toEqual(seqC);
  });

  it('draws uniforms strictly inside (0, 1)', () => {
    const r = new Random(1);
    let min = 1;
    let max = 0;
    for (let i = 0; i < 100_000; i++) {
      const u = r.uniform();
      min = Math.min(min, u);
      max = Math.max(max, u);
    }
    expect(min).toBeGreaterThan(0);
    expect(max).toBeLessThan(1);
    expect(moments(() => r.uniform(), 50_000).mean).toBeCloseTo(0.5, 2);
  });

  it('draws standard normals', () => {
    const r = new Random(2);
    const { mean, variance } = moments(() => r.normal(), 100_000);
    expect(Math.abs(mean)).toBeLessThan(0.02);
    expect(Math.abs(variance - 1)).toBeLessThan(0.03);
  });

  it('draws Gamma(k) with mean k and variance k, also for k < 1', () => {
    const r = new Random(3);
    for (const k of [0.4, 1, 2.5, 40]) {
      const { mean, variance } = moments(() => r.gamma(k), 100_000);
      expect(Math.abs(mean - k) / k, `mean k=${k}`).toBeLessThan(0.02);
      expect(Math.abs(variance - k) / k, `variance k=${k}`).toBeLessThan(0.05);
    }
  });

  it('draws Beta(a, b) with the right mean and variance', () => {
    const r = new Random(4);
    for (const [a, b] of [
      [1, 1],
      [2, 5],
      [60.5, 12.25],
    ] as const) {
      const { mean, variance } = moments(() => r.beta(a, b), 100_000);
      const s = a + b;
      expect(mean).toBeCloseTo(a / s, 2);
      expect(Math.abs(variance - (a * b) / (s * s * (s + 1))) / ((a * b) / (s * s * (s + 1)))).toBeLessThan(0.05);
    }
  });
});
