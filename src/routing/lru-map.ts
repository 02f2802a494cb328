interface Node<K, V> {
  key: K;
  value: V;
  /** Toward the most recently used. */
  newer: Node<K, V> | null;
  /** Toward the least recently used. */
  older: Node<K, V> | null;
}

/**
 * A Map that holds at most `capacity` keys and forgets the least recently used first: `get` and
 * `set` make a key the most recently used. A list through the entries keeps the order, so every
 * operation is O(1) (unlike BoundedMap, which forgets the oldest inserted whatever was read since).
 */
export class LruMap<K, V> {
  private readonly map = new Map<K, Node<K, V>>();
  private newest: Node<K, V> | null = null;
  private oldest: Node<K, V> | null = null;

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError('capacity must be at least 1');
  }

  get size(): number {
    return this.map.size;
  }

  /** The value, now the most recently used; undefined when absent. */
  get(key: K): V | undefined {
    const node = this.map.get(key);
    if (node === undefined) return undefined;
    this.toNewest(node);
    return node.value;
  }

  /** The value without changing the order. */
  peek(key: K): V | undefined {
    return this.map.get(key)?.value;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  delete(key: K): boolean {
    const node = this.map.get(key);
    if (node === undefined) return false;
    this.unlink(node);
    this.map.delete(key);
    return true;
  }

  /** Sets the value, now the most recently used; forgets the least recently used past `capacity`. */
  set(key: K, value: V): void {
    const node = this.map.get(key);
    if (node !== undefined) {
      node.value = value;
      this.toNewest(node);
      return;
    }
    if (this.map.size >= this.capacity && this.oldest !== null) this.delete(this.oldest.key);
    const added: Node<K, V> = { key, value, newer: null, older: null };
    this.map.set(key, added);
    this.link(added);
  }

  /** Keys from the least to the most recently used (for tests). */
  keys(): K[] {
    const out: K[] = [];
    for (let n = this.oldest; n !== null; n = n.newer) out.push(n.key);
    return out;
  }

  private toNewest(node: Node<K, V>): void {
    if (this.newest === node) return;
    this.unlink(node);
    this.link(node);
  }

  private link(node: Node<K, V>): void {
    node.older = this.newest;
    node.newer = null;
    if (this.newest !== null) this.newest.newer = node;
    this.newest = node;
    if (this.oldest === null) this.oldest = node;
  }

  private unlink(node: Node<K, V>): void {
    if (node.older !== null) node.older.newer = node.newer;
    else this.oldest = node.newer;
    if (node.newer !== null) node.newer.older = node.older;
    else this.newest = node.older;
    node.newer = node.older = null;
  }
}
