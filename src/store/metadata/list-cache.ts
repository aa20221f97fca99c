/**
 * A bounded, least-recently-used cache of per-repository lists read from LevelDB (tags,
 * image lists), for LevelMetadataStore. The store is the only writer of its database, so
 * every write can drop what it changes; the one race to handle is a read that is still
 * iterating when a write commits: such a read is answered but never cached (`invalidate`
 * marks the reads in flight for the key as stale).
 *
 * Cached values are frozen and shared: the same array comes back until the list changes,
 * so callers may key their own derived caches (serialized responses) on its identity.
 */
export class ListCache<V extends readonly unknown[]> {
  private readonly map = new Map<string, V>();
  private readonly reading = new Map<string, Set<{ stale: boolean }>>();
  private size = 0;

  /** At most `maxItems` list items in all, counting an empty list as one. */
  constructor(private readonly maxItems: number) {}

  /** The cached list without loading it (undefined: not cached). */
  peek(key: string): V | undefined {
    return this.map.get(key);
  }

  async get(key: string, load: () => Promise<V>): Promise<V> {
    const hit = this.map.get(key);
    if (hit) {
      // Re-insert: Map iteration order is insertion order, so this marks it recently used.
      this.map.delete(key);
      this.map.set(key, hit);
      return hit;
    }
    const token = { stale: false };
    let tokens = this.reading.get(key);
    if (!tokens) this.reading.set(key, (tokens = new Set()));
    tokens.add(token);
    try {
      const value = Object.freeze(await load()) as V;
      if (!token.stale) this.put(key, value);
      return value;
    } finally {
      tokens.delete(token);
      if (tokens.size === 0 && this.reading.get(key) === tokens) this.reading.delete(key);
    }
  }

  /** Call after every committed write that changes the list of `key`. */
  invalidate(key: string): void {
    this.drop(key);
    const tokens = this.reading.get(key);
    if (tokens) for (const token of tokens) token.stale = true;
  }

  clear(): void {
    this.map.clear();
    this.size = 0;
    for (const tokens of this.reading.values()) for (const token of tokens) token.stale = true;
  }

  private put(key: string, value: V): void {
    const weight = value.length + 1;
    if (weight > this.maxItems) return;
    this.drop(key);
    this.map.set(key, value);
    this.size += weight;
    while (this.size > this.maxItems) this.drop(this.map.keys().next().value as string);
  }

  private drop(key: string): void {
    const value = this.map.get(key);
    if (value === undefined) return;
    this.map.delete(key);
    this.size -= value.length + 1;
  }
}
