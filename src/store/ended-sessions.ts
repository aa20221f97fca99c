/**
 * Web UI sessions a logout ended (services/sessions.ts): a session cookie is stateless and
 * signed, so a logout is remembered by id until the cookie would have expired anyway. Two
 * implementations pass test/store/ended-sessions.contract.ts: InMemoryEndedSessions here
 * (one process: LevelDB, the test double) and PostgresMetadataStore (table ended_sessions:
 * a logout on one node ends the session on every node).
 */
export interface EndedSessionStore {
  /** Remembers that session `id` ended; `expiresAt` (unix s): when it would have expired. */
  endSession(id: string, expiresAt: number): Promise<void>;
  /** Whether a logout ended session `id` (and it has not expired since `now`, unix s). */
  isSessionEnded(id: string, now: number): Promise<boolean>;
  /** Forgets sessions that expired at or before `now` (unix s); returns how many. */
  pruneEndedSessions(now: number): Promise<number>;
}

/** In one process's memory: at most `max` ids (the oldest are forgotten first). */
export class InMemoryEndedSessions implements EndedSessionStore {
  /** Session id → its expiry (unix s), in the order they ended. */
  private readonly ended = new Map<string, number>();

  constructor(private readonly max = 100_000) {}

  async endSession(id: string, expiresAt: number): Promise<void> {
    this.ended.delete(id);
    this.ended.set(id, expiresAt);
    while (this.ended.size > this.max) this.ended.delete(this.ended.keys().next().value as string);
  }

  async isSessionEnded(id: string, now: number): Promise<boolean> {
    const expiry = this.ended.get(id);
    return expiry !== undefined && expiry > now;
  }

  async pruneEndedSessions(now: number): Promise<number> {
    let pruned = 0;
    for (const [id, expiry] of this.ended) {
      if (expiry > now) continue;
      this.ended.delete(id);
      pruned += 1;
    }
    return pruned;
  }
}
