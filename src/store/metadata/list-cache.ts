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
import { Lru } from '../../domain/lru.js';

export class ListCache<V extends readonly unknown[]> {
  /** Weighed by list items, an empty list counting as one. */
  private readonly lists: Lru<string, V>;
  private readonly reading = new Map<string, Set<{ stale: boolean }>>();

  /** At most `maxItems` list items in all, counting an empty list as one. */
  constructor(maxItems: number) {
    this.lists = new Lru<string, V>(Infinity, maxItems, (list) => list.length + 1);
  }

  /** The cached list without loading it (undefined: not cached). */
  peek(key: string): V | undefined {
    return this.lists.peek(key);
  }

  async get(key: string, load: () => Promise<V>): Promise<V> {
    const hit = this.lists.get(key);
    if (hit) return hit;
    const token = { stale: false };
    let tokens = this.reading.get(key);
    if (!tokens) this.reading.set(key, (tokens = new Set()));
    tokens.add(token);
    try {
      const value = Object.freeze(await load()) as V;
      if (!token.stale) this.lists.set(key, value);
      return value;
    } finally {
      tokens.delete(token);
      if (tokens.size === 0 && this.reading.get(key) === tokens) this.reading.delete(key);
    }
  }

  /** Call after every committed write that changes the list of `key`. */
  invalidate(key: string): void {
    this.lists.delete(key);
    const tokens = this.reading.get(key);
    if (tokens) for (const token of tokens) token.stale = true;
  }

  clear(): void {
    this.lists.clear();
    for (const tokens of this.reading.values()) for (const token of tokens) token.stale = true;
  }
}
