/**
 * The sessions a logout ended (the EndedSessionStore port, metadata/ports.ts) of one
 * process: a LevelDB registry or the test double. Nodes sharing PostgreSQL keep them there
 * (PostgresMetadataStore), so a logout on one node ends the session on every node.
 */
import type { EndedSessionStore } from './metadata/ports.js';

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
