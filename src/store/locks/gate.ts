/**
 * A readers-writer gate between writes that reference images (uploads, tags, image
 * lists: shared) and the garbage collector's sweep (exclusive). Many shared holders run at
 * once; the exclusive holder waits for them to finish and holds new ones back, so GC never
 * deletes an image or blob that a write is about to reference. Waiters are handed the
 * gate already counted, so nobody can slip in between a wake-up and its resumption.
 */
export class Gate {
  private shared = 0;
  private exclusiveHeld = false;
  private readonly waitingExclusive: Array<() => void> = [];
  private readonly waitingShared: Array<() => void> = [];

  async withShared<T>(fn: () => Promise<T>): Promise<T> {
    if (this.exclusiveHeld || this.waitingExclusive.length > 0) {
      await new Promise<void>((resolve) => this.waitingShared.push(resolve));
    } else {
      this.shared += 1;
    }
    try {
      return await fn();
    } finally {
      this.shared -= 1;
      this.wake();
    }
  }

  async withExclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.exclusiveHeld || this.shared > 0) {
      await new Promise<void>((resolve) => this.waitingExclusive.push(resolve));
    } else {
      this.exclusiveHeld = true;
    }
    try {
      return await fn();
    } finally {
      this.exclusiveHeld = false;
      this.wake();
    }
  }

  private wake(): void {
    if (this.exclusiveHeld) return;
    if (this.waitingExclusive.length > 0) {
      if (this.shared > 0) return;
      this.exclusiveHeld = true;
      (this.waitingExclusive.shift() as () => void)();
      return;
    }
    const resumes = this.waitingShared.splice(0);
    this.shared += resumes.length;
    for (const resume of resumes) resume();
  }
}
