import { describe, expect, it } from 'vitest';
import { decodeTime, isValid } from 'ulid';
import { monotonicUlidFactory } from '../../src/traces/ulid.js';

describe('monotonicUlidFactory (trace ids on the hot path)', () => {
  it('makes valid ULIDs whose time is the clock and which sort in the order they were made', () => {
    const next = monotonicUlidFactory();
    const before = Date.now();
    const ids = Array.from({ length: 20_000 }, () => next());
    const after = Date.now();
    for (const id of ids) expect(isValid(id)).toBe(true);
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
    expect(decodeTime(ids[0]!)).toBeGreaterThanOrEqual(before);
    expect(decodeTime(ids[ids.length - 1]!)).toBeLessThanOrEqual(after);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('within one millisecond (or when the clock goes back) advances the random part by a random step, so the next id cannot be guessed', () => {
    let now = 1_700_000_000_000;
    const next = monotonicUlidFactory(() => now);
    const a = next();
    const b = next();
    now -= 5; // the clock went back: still after the last id, at the last id's time
    const c = next();
    expect(decodeTime(a)).toBe(1_700_000_000_000);
    expect(decodeTime(c)).toBe(1_700_000_000_000);
    expect(a < b && b < c).toBe(true);
    const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
    const value = (id: string) => [...id.slice(10)].reduce((v, ch) => v * 32n + BigInt(alphabet.indexOf(ch)), 0n);
    const steps = [value(b) - value(a), value(c) - value(b)];
    for (const step of steps) {
      expect(step >= 1n && step <= 2n ** 40n).toBe(true);
    }
    // A counter (a step of 1, what the `ulid` package does) would let anyone holding one trace id
    // name the next: over many ids of one millisecond the steps are spread over 1..2^40.
    const many = Array.from({ length: 1000 }, () => next()).map(value);
    const gaps = many.slice(1).map((v, i) => v - many[i]!);
    expect(gaps.every((g) => g >= 1n && g <= 2n ** 40n)).toBe(true);
    expect(gaps.filter((g) => g < 2n ** 30n).length).toBeLessThan(10);
    expect(new Set(gaps.map(String)).size).toBe(gaps.length);
    now += 10;
    const d = next();
    expect(decodeTime(d)).toBe(1_700_000_000_005);
  });
});
