/**
 * Locks that must hold across every node of one registry (see "The house for the next
 * wave" in the design notes): "one writer per image" (keyed) and the write gate between
 * writes that reference images (shared) and garbage collection / fsck (exclusive).
 *
 * Two implementations pass test/store/locks.contract.ts: InProcessLocks (one process:
 * LevelDB + files) and PostgresLocks (PostgreSQL advisory locks: every node of a registry on
 * one database). compose wires one of them (by `metadata_store`) into every service that
 * writes: ImageService (one writer per image), BlobIngest (one request per upload session),
 * the write gate's users, and garbage collection / fsck.
 */
export type Keyed<T> = { acquired: true; value: T } | { acquired: false };

export interface Locks {
  /**
   * Runs `fn` holding `key` alone. If anyone (on any node) holds `key`, resolves
   * `{ acquired: false }` at once without running `fn`. The lock is released when `fn`
   * settles, whether it resolves or rejects (a rejection is passed on).
   */
  keyed<T>(key: string, fn: () => Promise<T>): Promise<Keyed<T>>;
  /** Whether anyone holds `key` right now (garbage collection spares what is being written). */
  isKeyHeld(key: string): Promise<boolean>;
  /** Runs `fn` on the shared side of the write gate: any number at once, on all nodes. */
  shared<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Runs `fn` on the exclusive side: waits until no shared holder is left, and holds new
   * shared ones back meanwhile (a steady stream of writes cannot starve it).
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** The write gate alone: what services that never take a keyed lock need. */
export type WriteGate = Pick<Locks, 'shared' | 'exclusive'>;
