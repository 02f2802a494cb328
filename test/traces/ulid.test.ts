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

  it('within one millisecond (or when the clock goes back) increments the random part, with carry', () => {
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
    expect(value(b) - value(a)).toBe(1n);
    expect(value(c) - value(b)).toBe(1n);
    now += 10;
    const d = next();
    expect(decodeTime(d)).toBe(1_700_000_000_005);
  });
});
