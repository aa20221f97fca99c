/**
 * A Writable to a new file that is durable once it has closed, built for layer uploads:
 *
 * - Incoming chunks are copied into two pooled 1 MiB slabs and written from there, at
 *   explicit positions, while the other slab fills. The request's own chunks can then die
 *   young: queued until their write, they used to outlive young-generation collections,
 *   get promoted and cost a full mark-compact every ~20 MiB.
 * - Every `syncEvery` bytes an fdatasync starts in the background (one at a time), so the
 *   disk writes back while the network is still delivering; the final fdatasync only has
 *   the tail left.
 * A failed write or background sync fails the stream.
 */
import fs from 'node:fs';
import { Writable } from 'node:stream';

export interface DurableFileOptions {
  /** Bytes between background syncs. */
  syncEvery: number;
  mode?: number;
}

const SLAB = 1024 * 1024;
const POOL_LIMIT = 4;
const pool: Buffer[] = [];

interface Slab {
  buf: Buffer;
  used: number;
  writing: Promise<void> | null;
}

export class DurableFileWriter extends Writable {
  private fd: number | null = null;
  private readonly slabs: Slab[] = [];
  private current = 0;
  /** File offset of the next slab written. */
  private position = 0;
  private unsynced = 0;
  private syncing: Promise<void> | null = null;
  private failure: Error | null = null;

  constructor(
    private readonly file: string,
    private readonly options: DurableFileOptions,
  ) {
    super({ highWaterMark: SLAB });
  }

  override _construct(callback: (error?: Error | null) => void): void {
    // 'wx': the temp name is fresh; an existing file would mean a collision, never reuse it.
    fs.open(this.file, 'wx', this.options.mode ?? 0o644, (err, fd) => {
      if (err) return callback(err); // no descriptor: _destroy has nothing to close
      this.fd = fd;
      for (let i = 0; i < 2; i++) this.slabs.push({ buf: pool.pop() ?? Buffer.allocUnsafeSlow(SLAB), used: 0, writing: null });
      callback(err);
    });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.copyIn(chunk).then(() => callback(this.failure), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.slabs[this.current].used > 0) this.flush(this.current);
    Promise.all(this.slabs.map((s) => s.writing))
      .then(() => this.syncing)
      .then(() => {
        if (this.failure) throw this.failure;
        return new Promise<void>((resolve, reject) => fs.fdatasync(this.fd as number, (err) => (err ? reject(err) : resolve())));
      })
      .then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const fd = this.fd;
    this.fd = null;
    // Never close the descriptor (or reuse a slab) under a write or a sync in flight.
    const settle = Promise.allSettled([...this.slabs.map((s) => s.writing), this.syncing]);
    settle.then(() => {
      for (const slab of this.slabs.splice(0)) if (pool.length < POOL_LIMIT) pool.push(slab.buf);
      if (fd === null) callback(error);
      else fs.close(fd, (closeErr) => callback(error ?? closeErr));
    });
  }

  private async copyIn(chunk: Buffer): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.failure) return;
      const slab = this.slabs[this.current];
      if (slab.writing) await slab.writing;
      const n = chunk.copy(slab.buf, slab.used, offset);
      slab.used += n;
      offset += n;
      if (slab.used === slab.buf.length) {
        this.flush(this.current);
        this.current = 1 - this.current;
      }
    }
  }

  /** Starts writing a full (or the last) slab at its place in the file. */
  private flush(index: number): void {
    const slab = this.slabs[index];
    const length = slab.used;
    const position = this.position;
    this.position += length;
    // Empty from now on as far as filling goes; copyIn waits for `writing` before reusing it.
    slab.used = 0;
    slab.writing = writeFully(this.fd as number, slab.buf, length, position).then(
      () => {
        slab.writing = null;
        this.unsynced += length;
        this.maybeSync();
      },
      (err: Error) => {
        this.failure ??= err;
        slab.writing = null;
      },
    );
  }

  private maybeSync(): void {
    if (this.syncing || this.unsynced < this.options.syncEvery || this.fd === null) return;
    this.unsynced = 0;
    const fd = this.fd;
    this.syncing = new Promise<void>((resolve) => {
      fs.fdatasync(fd, (err) => {
        if (err) this.failure ??= err;
        this.syncing = null;
        resolve();
      });
    });
  }
}

/** Writes `length` bytes of `buf` at `position`, carrying on after short writes. */
function writeFully(fd: number, buf: Buffer, length: number, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (done: number) => {
      if (done === length) return resolve();
      fs.write(fd, buf, done, length - done, position + done, (err, written) => (err ? reject(err) : step(done + written)));
    };
    step(0);
  });
}
