/**
 * Blob store on the local filesystem: temp file → fsync → rename into the content address
 * (layout in blob-paths.ts). Reads use large buffers: the 64 KiB default costs throughput.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { invalidInput, notFound } from '../../domain/errors.js';
import { BlobPaths } from './blob-paths.js';
import { DurableFileWriter } from './durable-file.js';
import { assertRange, isUploadId, type BlobInfo, type BlobReader, type BlobStore, type BlobWriter, type ByteRange } from './blob-store.js';

export const READ_BUFFER_BYTES = 1024 * 1024;
/** Buffered writes only (see durable-file.ts): background fdatasync every this many bytes. */
const SYNC_EVERY_BYTES = 16 * 1024 * 1024;

export interface FsBlobStoreOptions {
  /**
   * init() removes temp files untouched for this long. 0 (the default): all of them, the
   * storage root is this process's own; when nodes share it (PostgreSQL metadata on a
   * shared filesystem) the younger ones are other nodes' uploads in progress.
   */
  abandonAfterMs?: number;
}

export class FsBlobStore implements BlobStore {
  readonly paths: BlobPaths;
  /** Temp files being removed in the background (dropped duplicates). */
  private readonly removing = new Set<Promise<void>>();
  private readonly abandonAfterMs: number;

  constructor(root: string, options: FsBlobStoreOptions = {}) {
    this.paths = new BlobPaths(root);
    this.abandonAfterMs = options.abandonAfterMs ?? 0;
  }

  async init(): Promise<{ removedTemp: number }> {
    await Promise.all(this.removing);
    await fs.mkdir(this.paths.blobs, { recursive: true });
    await fs.mkdir(this.paths.tmp, { recursive: true });
    // Resumable uploads survive restarts (garbage collection reclaims abandoned ones).
    await fs.mkdir(this.paths.uploads, { recursive: true });
    if (this.abandonAfterMs > 0) return { removedTemp: (await this.reclaimStale(this.abandonAfterMs, false)).removed };
    let removedTemp = 0;
    for (const name of await fs.readdir(this.paths.tmp)) {
      await fs.rm(path.join(this.paths.tmp, name), { force: true, recursive: true });
      removedTemp += 1;
    }
    return { removedTemp };
  }

  async reclaimStale(idleMs: number, dryRun: boolean, now = Date.now()): Promise<{ removed: number; bytes: number }> {
    let removed = 0;
    let bytes = 0;
    for (const name of await readdirIfPresent(this.paths.tmp)) {
      const file = path.join(this.paths.tmp, name);
      const info = await statIfPresent(file);
      // A temp file being written is touched by every write (and its background fdatasync).
      if (!info || !(now - info.modifiedAt >= idleMs)) continue;
      if (!dryRun) await fs.rm(file, { force: true, recursive: true });
      removed += 1;
      bytes += info.size;
    }
    return { removed, bytes };
  }

  async createWriter(): Promise<BlobWriter> {
    const tmp = this.paths.newTemp();
    // Durable once closed (fdatasync, mostly done in the background while bytes arrive), so
    // after 'close' the bytes can be linked into place.
    const stream = new DurableFileWriter(tmp, { syncEvery: SYNC_EVERY_BYTES });
    const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    let state: 'open' | 'committing' | 'committed' | 'aborted' = 'open';
    return {
      stream,
      commit: async (digest: string) => {
        if (state !== 'open') throw new Error(`blob writer already ${state}`);
        const target = this.paths.blob(digest);
        if (!stream.writableFinished) throw new Error('blob writer committed before its stream finished');
        state = 'committing';
        try {
          await closed;
          await this.publish(tmp, target);
          state = 'committed';
        } catch (err) {
          // A failed commit ends the upload: nothing is left for abort() to clean.
          state = 'aborted';
          throw err;
        }
      },
      abort: async () => {
        // While a commit runs, the commit itself removes the temp file.
        if (state !== 'open') return;
        state = 'aborted';
        stream.destroy();
        await closed;
        await fs.rm(tmp, { force: true });
      },
    };
  }

  /**
   * Links a finished, durable file into the blob address `target`, then removes the file
   * (also when the link failed). link() refuses to replace: an existing blob (same digest =
   * same bytes) stays as it is.
   */
  private async publish(file: string, target: string): Promise<void> {
    let duplicate = false;
    try {
      await fs.mkdir(path.dirname(target), { recursive: true });
      try {
        await fs.link(file, target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        duplicate = true;
        // The stored blob was just uploaded again (a push under way): young again for GC.
        const now = new Date();
        await fs.utimes(target, now, now);
      }
      await syncDir(path.dirname(target));
    } finally {
      // A dropped duplicate is the file's last link: removing it frees all its blocks
      // (~0.75 s for 1 GiB on ext4 with discard), which the upload need not wait for.
      if (duplicate) this.removeLater(file);
      else await fs.rm(file, { force: true });
    }
  }

  async appendUpload(id: string, position: number): Promise<Writable> {
    const file = this.paths.upload(id);
    if (!Number.isSafeInteger(position) || position < 0) throw invalidInput(`Invalid upload position: ${position}`);
    return new DurableFileWriter(file, { syncEvery: SYNC_EVERY_BYTES, position });
  }

  async statUpload(id: string): Promise<BlobInfo | null> {
    return await statIfPresent(this.paths.upload(id));
  }

  async readUpload(id: string, length: number): Promise<Readable> {
    const file = this.paths.upload(id);
    if (length === 0) return Readable.from([]);
    const handle = await openForReading(file, 'Upload not found');
    return handle.createReadStream({ highWaterMark: READ_BUFFER_BYTES, start: 0, end: length - 1 });
  }

  async commitUpload(id: string, digest: string): Promise<void> {
    const file = this.paths.upload(id);
    const target = this.paths.blob(digest);
    await fs.access(file).catch(() => {
      throw notFound('Upload not found');
    });
    await this.publish(file, target);
  }

  async deleteUpload(id: string): Promise<boolean> {
    return await unlinkIfPresent(this.paths.upload(id));
  }

  async *listUploads(): AsyncIterable<string> {
    for (const name of (await readdirIfPresent(this.paths.uploads)).sort()) if (isUploadId(name)) yield name;
  }

  /** Removes a temp file in the background; init() waits for it (a crash leaves it to init). */
  private removeLater(file: string): void {
    const removal: Promise<void> = fs.rm(file, { force: true }).then(
      () => undefined,
      () => undefined, // left for the next init() to clean
    ).finally(() => this.removing.delete(removal));
    this.removing.add(removal);
  }

  async stat(digest: string): Promise<BlobInfo | null> {
    return await statIfPresent(this.paths.blob(digest));
  }

  async read(digest: string, range?: ByteRange): Promise<Readable> {
    const file = this.paths.blob(digest);
    if (range) assertRange(range);
    const handle = await openForReading(file, 'Blob not found');
    // Once open, the bytes stay readable even if the blob is deleted meanwhile.
    try {
      return handle.createReadStream({
        highWaterMark: READ_BUFFER_BYTES,
        ...(range ? { start: range.start, end: range.end } : {}),
      });
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async openReader(digest: string): Promise<BlobReader> {
    const handle = await openForReading(this.paths.blob(digest), 'Blob not found');
    try {
      const { size } = await handle.stat();
      return {
        size,
        fd: handle.fd,
        read: async (buffer, length, position) => (await handle.read(buffer, 0, length, position)).bytesRead,
        close: () => handle.close(),
      };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async delete(digest: string): Promise<boolean> {
    return await unlinkIfPresent(this.paths.blob(digest));
  }

  async *list(): AsyncIterable<string> {
    for (const dir of (await readdirIfPresent(this.paths.blobs)).sort()) {
      let names: string[];
      try {
        names = await fs.readdir(path.join(this.paths.blobs, dir));
      } catch {
        continue;
      }
      for (const name of names.sort()) {
        const digest = this.paths.digestOf(dir, name);
        if (digest) yield digest;
      }
    }
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Size and mtime of a file, or null when it does not exist. */
async function statIfPresent(file: string): Promise<BlobInfo | null> {
  try {
    const st = await fs.stat(file);
    return { size: st.size, modifiedAt: st.mtimeMs };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Removes a file; false when it did not exist. */
async function unlinkIfPresent(file: string): Promise<boolean> {
  try {
    await fs.unlink(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** The names in a directory; none when it does not exist. */
async function readdirIfPresent(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Opens a file to read; NOT_FOUND (`message`) when it does not exist. */
async function openForReading(file: string, message: string): Promise<fs.FileHandle> {
  try {
    return await fs.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(message);
    throw err;
  }
}
