/**
 * A Writable to a new file that is durable when it closes, without paying for the whole
 * fsync at the end: every `syncEvery` bytes it starts an fdatasync in the background (one
 * at a time), so the disk writes back while the network is still delivering; the final
 * fdatasync only has the tail left. Chunks queued while a write is in flight go to disk in
 * one writev. A failed background sync fails the stream at its end.
 */
import fs from 'node:fs';
import { Writable } from 'node:stream';

export interface DurableFileOptions {
  /** Bytes between background syncs. */
  syncEvery: number;
  highWaterMark: number;
  mode?: number;
}

export class DurableFileWriter extends Writable {
  private fd: number | null = null;
  private unsynced = 0;
  private syncing: Promise<void> | null = null;
  private syncError: Error | null = null;

  constructor(
    private readonly file: string,
    private readonly options: DurableFileOptions,
  ) {
    super({ highWaterMark: options.highWaterMark });
  }

  override _construct(callback: (error?: Error | null) => void): void {
    // 'wx': the temp name is fresh; an existing file would mean a collision, never reuse it.
    fs.open(this.file, 'wx', this.options.mode ?? 0o644, (err, fd) => {
      this.fd = fd;
      callback(err);
    });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeAll([chunk], callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.writeAll(
      chunks.map((c) => c.chunk),
      callback,
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    const fd = this.fd as number;
    Promise.resolve(this.syncing)
      .then(() => {
        if (this.syncError) throw this.syncError;
        return new Promise<void>((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
      })
      .then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const fd = this.fd;
    this.fd = null;
    const close = () => (fd === null ? callback(error) : fs.close(fd, (closeErr) => callback(error ?? closeErr)));
    // Never close the descriptor under a background sync.
    if (this.syncing) this.syncing.then(close, close);
    else close();
  }

  private writeAll(buffers: Buffer[], callback: (error?: Error | null) => void): void {
    const fd = this.fd as number;
    const step = (pending: Buffer[]) => {
      fs.writev(fd, pending, (err, written) => {
        if (err) return callback(err);
        this.unsynced += written;
        const rest = dropBytes(pending, written);
        if (rest.length > 0) return step(rest); // a short write: carry on with what is left
        this.maybeSync();
        callback();
      });
    };
    step(buffers);
  }

  private maybeSync(): void {
    if (this.syncing || this.unsynced < this.options.syncEvery || this.fd === null) return;
    this.unsynced = 0;
    const fd = this.fd;
    this.syncing = new Promise<void>((resolve) => {
      fs.fdatasync(fd, (err) => {
        if (err) this.syncError ??= err;
        this.syncing = null;
        resolve();
      });
    });
  }
}

/** The buffers left after the first `n` bytes were written. */
function dropBytes(buffers: Buffer[], n: number): Buffer[] {
  let skip = n;
  const out: Buffer[] = [];
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}
