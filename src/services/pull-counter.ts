/**
 * Pull statistics counted in memory and written in batches (as cnpmcore's
 * plusPackageVersionCounter does): a pull is a read, and a read must not cost two metadata
 * writes (a manifest GET over v2 is the registry's most frequent small request). Pending
 * counts are written at most `flushMs` after the first one, and on close; readers merge
 * them in, so what the Hub double shows is never behind. A crash loses at most the last
 * `flushMs` of pull counts (never anything else).
 *
 * Reads, batch writes and forgets run one at a time: a read never sees a batch half-way
 * between memory and the store, and a tag or repository delete drops what is pending for it
 * after any batch before it was written, so a batch never brings back statistics of
 * something deleted.
 */
import type { RepoName, Tag } from '../domain/names.js';
import type { PullStatsStore, RepoPullStats, TagStats } from '../store/metadata/ports.js';

export const PULL_FLUSH_MS = 1000;

interface PendingRepo {
  name: RepoName;
  count: number;
  lastPulledAt: string;
  /** Tag → ISO time it was last pulled. */
  tags: Map<Tag, string>;
}

export class PullCounter {
  private pending = new Map<string, PendingRepo>();
  private timer: NodeJS.Timeout | null = null;
  /**
   * Reads of the statistics, batch writes and forgets run one at a time, in order: a read
   * never sees a batch half-way between the memory and the store.
   */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly meta: PullStatsStore,
    private readonly flushMs = PULL_FLUSH_MS,
  ) {}

  repositoryPulled(name: RepoName, at: string): void {
    const entry = this.entry(name);
    entry.count += 1;
    entry.lastPulledAt = at;
    this.schedule();
  }

  tagsPulled(name: RepoName, tags: readonly Tag[], at: string): void {
    if (tags.length === 0) return;
    const entry = this.entry(name);
    for (const tag of tags) entry.tags.set(tag, at);
    this.schedule();
  }

  /** The stored statistics plus what is pending. */
  repoPulls(name: RepoName): Promise<RepoPullStats | null> {
    return this.serial(async () => {
      const stored = await this.meta.getRepoPulls(name);
      const pending = this.pending.get(name.full);
      if (!pending || pending.count === 0) return stored;
      return { count: (stored?.count ?? 0) + pending.count, lastPulledAt: pending.lastPulledAt };
    });
  }

  tagStats(name: RepoName, tags: Tag[]): Promise<TagStats[]> {
    return this.serial(async () => {
      const stored = await this.meta.getTagStats(name, tags);
      const pending = this.pending.get(name.full);
      if (!pending) return stored;
      return stored.map((s, i) => {
        const at = pending.tags.get(tags[i]);
        return at ? { ...s, lastPulledAt: at } : s;
      });
    });
  }

  /** Forgets what is pending for a tag (it is being deleted: call before deleting its statistics). */
  forgetTag(name: RepoName, tag: Tag): Promise<void> {
    return this.serial(async () => {
      this.pending.get(name.full)?.tags.delete(tag);
    });
  }

  /** Forgets what is pending for a repository (it is being deleted). */
  forgetRepo(name: RepoName): Promise<void> {
    return this.serial(async () => {
      this.pending.delete(name.full);
    });
  }

  /** Writes what is pending (in order with the reads and writes before it). */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    return this.serial(() => {
      const batch = this.pending;
      this.pending = new Map();
      return this.write(batch);
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async write(batch: Map<string, PendingRepo>): Promise<void> {
    for (const entry of batch.values()) {
      if (entry.count > 0) await this.meta.addRepoPull(entry.name, entry.lastPulledAt, entry.count);
      const byTime = new Map<string, Tag[]>();
      for (const [tag, at] of entry.tags) byTime.set(at, [...(byTime.get(at) ?? []), tag]);
      for (const [at, tags] of byTime) await this.meta.setTagsPulled(entry.name, tags, at);
    }
  }

  private entry(name: RepoName): PendingRepo {
    let entry = this.pending.get(name.full);
    if (!entry) this.pending.set(name.full, (entry = { name, count: 0, lastPulledAt: '', tags: new Map() }));
    return entry;
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      // A failed write loses those counts only; it is not the pull's failure.
      this.flush().catch(() => undefined);
    }, this.flushMs);
    this.timer.unref();
  }
}
