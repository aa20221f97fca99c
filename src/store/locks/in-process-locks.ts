/**
 * Locks for a registry that is one process (LevelDB + files): keys in a Set, and the write
 * gate is the readers-writer Gate the services already use (passed in, so both sides of the
 * gate stay one object).
 */
import type { Keyed, Locks } from './locks.js';

/** The readers-writer gate (services/gate.ts). */
export interface ReadersWriterGate {
  withShared<T>(fn: () => Promise<T>): Promise<T>;
  withExclusive<T>(fn: () => Promise<T>): Promise<T>;
}

export class InProcessLocks implements Locks {
  private readonly held = new Set<string>();

  constructor(private readonly gate: ReadersWriterGate) {}

  async keyed<T>(key: string, fn: () => Promise<T>): Promise<Keyed<T>> {
    if (this.held.has(key)) return { acquired: false };
    this.held.add(key);
    try {
      return { acquired: true, value: await fn() };
    } finally {
      this.held.delete(key);
    }
  }

  async isKeyHeld(key: string): Promise<boolean> {
    return this.held.has(key);
  }

  shared<T>(fn: () => Promise<T>): Promise<T> {
    return this.gate.withShared(fn);
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.gate.withExclusive(fn);
  }

  async close(): Promise<void> {}
}
