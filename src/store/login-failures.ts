/**
 * Failed logins, counted per key (`user:<name>` or `addr:<address>`) for the login throttle
 * (services/throttle.ts). Two implementations pass test/store/login-failures.contract.ts:
 * InMemoryLoginFailures here (one process: LevelDB, the test double) and
 * PostgresMetadataStore (table login_failures: every node of a registry counts in the same
 * place, so a guesser gains nothing by spreading attempts over nodes).
 *
 * Times are milliseconds (the caller's clock); a key's failures are kept newest first up to
 * the `keep` the caller gives, older ones cannot matter to it.
 */
export interface LoginFailureStore {
  /** The failures of `key` after `since`, the newest `limit` of them, oldest first. */
  recentFailures(key: string, since: number, limit: number): Promise<number[]>;
  /** Counts a failure of `key` at `at`, keeping at most its `keep` newest failures. */
  addFailure(key: string, at: number, keep: number): Promise<void>;
  /** Forgets every failure of `key` (a successful login of an account). */
  clearFailures(key: string): Promise<void>;
  /** Forgets every failure at or before `before`, of every key; returns how many. */
  pruneFailures(before: number): Promise<number>;
}

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
