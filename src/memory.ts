/**
 * Keeps RSS flat while bytes stream in. Every chunk a socket delivers is a fresh buffer
 * whose memory lives outside the JS heap; a young-generation collection frees it, but V8
 * starts one only when the (small) JS heap fills or when ~64 MiB of such memory have piled
 * up. A layer upload therefore carried up to ~64 MiB of dead chunks. `releaseDeadBuffers`
 * runs a minor collection (well under a millisecond with a 1 MiB young generation) and is
 * called every few MiB of upload.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

type Gc = (options?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

let gc: Gc | null | undefined;

function collector(): Gc | null {
  if (gc === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      gc = vm.runInNewContext('gc') as Gc;
    } catch {
      gc = null;
    }
  }
  return gc;
}

export function releaseDeadBuffers(): void {
  collector()?.({ type: 'minor' });
}

/**
 * A pool of big reusable buffers (download buffers, upload slabs) that empties itself once
 * nobody has used it for `idleMs`: the memory a burst took (8 parallel downloads hold
 * 8 MiB) goes back after the burst instead of staying in RSS for good. Emptying it starts
 * a full collection, without which the dropped buffers could wait for a long time: an
 * idle server allocates nothing that would trigger one.
 */
export class IdlePool<T> {
  private readonly items: T[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly limit: number,
    private readonly idleMs = 2000,
  ) {}

  take(): T | undefined {
    return this.items.pop();
  }

  give(item: T): void {
    if (this.items.length < this.limit) this.items.push(item);
    if (this.timer) {
      this.timer.refresh();
      return;
    }
    this.timer = setTimeout(() => this.release(), this.idleMs);
    this.timer.unref();
  }

  private release(): void {
    this.timer = null;
    if (this.items.length === 0) return;
    this.items.length = 0;
    collector()?.({ type: 'major', execution: 'async' });
  }
}
