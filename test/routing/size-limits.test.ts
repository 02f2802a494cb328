import { describe, expect, it } from 'vitest';
import { MIN_LEARNED_BYTES, SizeLimits } from '../../src/routing/size-limits.js';

const BIG = MIN_LEARNED_BYTES * 4;

describe('SizeLimits', () => {
  it('keeps the smallest request a model refused, and leaves the other models alone', () => {
    const limits = new SizeLimits();
    limits.tooBig('a', BIG, 0);
    limits.tooBig('a', BIG * 2, 0);
    expect(limits.limit('a', 0)).toBe(BIG);
    limits.tooBig('a', BIG / 2, 0);
    expect(limits.limit('a', 0)).toBe(BIG / 2);
    expect(limits.fits('a', BIG / 2 - 1, 0)).toBe(true);
    expect(limits.fits('a', BIG / 2, 0)).toBe(false);
    expect(limits.fits('b', BIG * 10, 0)).toBe(true);
    expect(limits.snapshot(0)).toEqual({ a: BIG / 2 });
  });

  it('learns nothing from a refusal of a request under MIN_LEARNED_BYTES (no window is that small)', () => {
    const limits = new SizeLimits();
    limits.tooBig('a', MIN_LEARNED_BYTES - 1, 0);
    expect(limits.limit('a', 0)).toBeUndefined();
    expect(limits.fits('a', BIG, 0)).toBe(true);
  });

  it('forgets a limit when the model answers a request at least that big, or once memoryMs has passed', () => {
    const limits = new SizeLimits(1000);
    limits.tooBig('a', BIG, 0);
    limits.answered('a', BIG - 1);
    expect(limits.limit('a', 0)).toBe(BIG);
    limits.answered('a', BIG);
    expect(limits.limit('a', 0)).toBeUndefined();
    limits.tooBig('a', BIG, 0);
    expect(limits.fits('a', BIG, 999)).toBe(false);
    expect(limits.fits('a', BIG, 1000)).toBe(true);
    expect(limits.snapshot(1000)).toEqual({});
  });
});
