/**
 * The login failures (the LoginFailureStore port, metadata/ports.ts) of one process: a
 * LevelDB registry or the test double. Nodes sharing PostgreSQL count them there instead
 * (PostgresMetadataStore), so a guesser gains nothing by spreading attempts over nodes.
 */
import type { LoginFailureStore } from './metadata/ports.js';

/** In one process's memory, bounded: at most `maxKeys` keys (those failed least recently go first). */
export class InMemoryLoginFailures implements LoginFailureStore {
  /** Failure times per key, oldest first; Map order: least recently failed first. */
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly maxKeys = 200_000) {}

  async recentFailures(key: string, since: number, limit: number): Promise<number[]> {
    const times = this.failures.get(key);
    if (!times) return [];
    const live = times.filter((at) => at > since);
    if (live.length === 0) this.failures.delete(key);
    return live.slice(-limit);
  }

  async addFailure(key: string, at: number, keep: number): Promise<void> {
    const times = this.failures.get(key) ?? [];
    // Kept sorted (clocks of callers may interleave), at most `keep` of them.
    let i = times.length;
    while (i > 0 && times[i - 1] > at) i -= 1;
    times.splice(i, 0, at);
    if (times.length > keep) times.splice(0, times.length - keep);
    // Re-inserted: the key becomes the most recently failed.
    this.failures.delete(key);
    this.failures.set(key, times);
    while (this.failures.size > this.maxKeys) this.failures.delete(this.failures.keys().next().value as string);
  }

  async clearFailures(key: string): Promise<void> {
    this.failures.delete(key);
  }

  async pruneFailures(before: number): Promise<number> {
    let pruned = 0;
    for (const [key, times] of [...this.failures.entries()]) {
      const live = times.filter((at) => at > before);
      pruned += times.length - live.length;
      if (live.length === 0) this.failures.delete(key);
      else if (live.length < times.length) times.splice(0, times.length - live.length);
    }
    return pruned;
  }

  /** Keys tracked (for tests). */
  get size(): number {
    return this.failures.size;
  }
}
