/**
 * A Map that holds at most `capacity` keys and forgets the oldest inserted first. Eviction walks a
 * ring of keys: evicting through `map.keys().next()` is O(deleted entries) in V8, which grows with
 * every eviction.
 */
export class BoundedMap<K, V> {
  private readonly map = new Map<K, V>();
  private readonly ring: (K | undefined)[];
  private next = 0;

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError('capacity must be at least 1');
    this.ring = new Array<K | undefined>(capacity);
  }

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    return this.map.get(key);
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  /** Forgets a key now (its slot in the eviction order is reused later). */
  delete(key: K): boolean {
    return this.map.delete(key);
  }

  /** A key already present keeps its place in the eviction order. */
  set(key: K, value: V): void {
    if (this.map.has(key)) {
      this.map.set(key, value);
      return;
    }
    const evicted = this.ring[this.next];
    if (evicted !== undefined) this.map.delete(evicted);
    this.ring[this.next] = key;
    this.next = (this.next + 1) % this.capacity;
    this.map.set(key, value);
  }
}
