import { describe, it, expect } from 'vitest';
import { BoundedMap } from '../../src/routing/bounded-map.js';

describe('BoundedMap', () => {
  it('forgets the oldest inserted key beyond its capacity', () => {
    const map = new BoundedMap<string, number>(3);
    for (const [i, key] of ['a', 'b', 'c', 'd'].entries()) map.set(key, i);
    expect(map.size).toBe(3);
    expect(map.has('a')).toBe(false);
    expect([map.get('b'), map.get('c'), map.get('d')]).toEqual([1, 2, 3]);
    map.set('e', 4);
    expect(map.has('b')).toBe(false);
    expect(map.size).toBe(3);
  });

  it('updates a present key in place, keeping its place in the eviction order', () => {
    const map = new BoundedMap<string, number>(2);
    map.set('a', 1);
    map.set('b', 2);
    map.set('a', 10);
    expect(map.get('a')).toBe(10);
    expect(map.size).toBe(2);
    map.set('c', 3);
    expect(map.has('a')).toBe(false);
    expect(map.get('b')).toBe(2);
  });

  it('rejects a capacity below 1', () => {
    expect(() => new BoundedMap(0)).toThrow(RangeError);
  });
});
