/**
 * A bounded cache (complete images, per-repository lists): at most `maxEntries` entries
 * and `maxBytes` of their `sizeOf`, least recently used out first.
 */
export class Lru<K, V> {
  private readonly map = new Map<K, V>();
  private bytes = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes = Infinity,
    private readonly sizeOf: (value: V) => number = () => 0,
  ) {}

  /** The value without marking it recently used. */
  peek(key: K): V | undefined {
    return this.map.get(key);
  }

  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      // Re-insert: Map iteration order is insertion order, so this marks it recently used.
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    const size = this.sizeOf(value);
    if (size > this.maxBytes) return;
    this.delete(key);
    this.map.set(key, value);
    this.bytes += size;
    while (this.map.size > this.maxEntries || this.bytes > this.maxBytes) {
      this.delete(this.map.keys().next().value as K);
    }
  }

  delete(key: K): void {
    const value = this.map.get(key);
    if (value === undefined) return;
    this.map.delete(key);
    this.bytes -= this.sizeOf(value);
  }

  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }
}
