/**
 * Runs tasks one at a time per key (in arrival order), tasks of different keys freely.
 * One process owns the storage, so an in-process queue is enough to serialise the
 * read-modify-write sequences that must not interleave.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = previous.then(() => new Promise<void>((resolve) => (release = resolve)));
    this.tails.set(key, mine);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === mine) this.tails.delete(key);
    }
  }
}
