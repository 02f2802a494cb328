import { describe, it, expect } from 'vitest';
import { LruMap } from '../../src/routing/lru-map.js';

describe('LruMap', () => {
  it('forgets the least recently used key beyond its capacity: a read or a write makes a key recent', () => {
    const map = new LruMap<string, number>(3);
    map.set('a', 1);
    map.set('b', 2);
    map.set('c', 3);
    expect(map.get('a')).toBe(1);
    map.set('d', 4);
    expect(map.has('b')).toBe(false);
    expect(map.keys()).toEqual(['c', 'a', 'd']);
    map.set('c', 30);
    map.set('e', 5);
    expect(map.keys()).toEqual(['d', 'c', 'e']);
    expect(map.size).toBe(3);
    expect(map.peek('d')).toBe(4);
    expect(map.keys()).toEqual(['d', 'c', 'e']);
  });

  it('deletes from any place in the order, and stays consistent over many operations', () => {
    const map = new LruMap<number, number>(50);
    const model: number[] = [];
    let x = 12345;
    for (let i = 0; i < 20_000; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      const key = x % 80;
      const op = x % 3;
      const at = model.indexOf(key);
      if (op === 0) {
        expect(map.delete(key)).toBe(at >= 0);
        if (at >= 0) model.splice(at, 1);
      } else if (op === 1) {
        expect(map.get(key)).toBe(at >= 0 ? key : undefined);
        if (at >= 0) model.push(...model.splice(at, 1));
      } else {
        map.set(key, key);
        if (at >= 0) model.splice(at, 1);
        else if (model.length === 50) model.shift();
        model.push(key);
      }
    }
    expect(map.keys()).toEqual(model);
    expect(map.size).toBe(model.length);
  });

  it('rejects a capacity below 1', () => {
    expect(() => new LruMap(0)).toThrow(RangeError);
  });
});
