/**
 * Locks for a registry that is one process (LevelDB + files, or the in-memory test double):
 * keys in a Set, and the write gate is a readers-writer Gate (gate.ts). Nothing leaves the
 * process: no cost beyond a Set lookup.
 */
import { Gate } from './gate.js';
import type { Keyed, Locks } from './locks.js';

export class InProcessLocks implements Locks {
  private readonly held = new Set<string>();

  constructor(private readonly gate: Gate = new Gate()) {}

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
