/**
 * A Writable to a new file that is durable once it has closed, built for layer uploads:
 *
 * - Incoming chunks are copied into two pooled 1 MiB slabs and written from there, at
 *   explicit positions, while the other slab fills. The request's own chunks can then die
 *   young: queued until their write, they used to outlive young-generation collections,
 *   get promoted and cost a full mark-compact every ~20 MiB.
 * - Past the first BUFFERED_HEAD bytes, the slabs are written with O_DIRECT where the
 *   filesystem allows it: the bytes go from
 *   the slab to the device without a copy into the page cache. On the (virtual) machines
 *   this runs on, that copy plus its writeback cost ~2.5 CPU seconds per GB, more than
 *   hashing the layer twice; O_DIRECT writes cost ~0.4. Direct writes need aligned memory
 *   (the slabs live in a WebAssembly.Memory: page-aligned), aligned lengths and offsets
 *   (full slabs are; the tail is written through a second, buffered descriptor). A
 *   filesystem that refuses O_DIRECT (tmpfs) or an unaligned write (EINVAL) gets plain
 *   buffered writes instead, with the same durability.
 * - The final fdatasync (after the last write, before the stream finishes) makes the file
 *   durable: O_DIRECT alone is not (the device may cache; the file size is metadata).
 *   Buffered writes also get an fdatasync every `syncEvery` bytes in the background (one at
 *   a time), so the page cache writes back while the network is still delivering. Direct
 *   writes do not: there a sync only flushes the device's cache, and each one stalled the
 *   writes behind it (1 GiB: 64 syncs took ~1.6 s and ~260 MB/s became ~300 MB/s without).
 * A failed write or background sync fails the stream.
 */
import fs from 'node:fs';
import { Writable } from 'node:stream';
import { IdlePool } from '../../memory.js';

export interface DurableFileOptions {
  /** Bytes between background syncs (buffered writes only). */
  syncEvery: number;
  mode?: number;
  /** Try O_DIRECT writes (default true). */
  direct?: boolean;
  /** Bytes written buffered before O_DIRECT starts (default BUFFERED_HEAD). */
  bufferedHead?: number;
  /**
   * Appends to the file (created if missing) from this offset, cutting it there first (a
   * resumed upload: what lies beyond was never acknowledged). Without it the file must be
   * new (O_EXCL).
   */
  position?: number;
}

const SLAB = 1024 * 1024;
const SLABS = 2;
/** Offsets and lengths of direct writes are multiples of this (any logical block size up to 4 KiB). */
const ALIGN = 4096;
const WASM_PAGE = 64 * 1024;
/**
 * The first 64 MiB of a file are written buffered, O_DIRECT after that: the page cache takes
 * a small layer at memory speed and one fdatasync writes it back, where 1 MiB direct writes
 * go one at a time at the disk's pace (64 MiB layers, 4 per sample: 176-205 MB/s all direct,
 * 250-294 with the buffered head; 1 GiB: 272-320 vs 286-295, the same within the noise).
 */
export const BUFFERED_HEAD = 64 * 1024 * 1024;

// Node has WebAssembly; the lib settings here (ES2023, no DOM) do not declare it.
declare const WebAssembly: { Memory: new (descriptor: { initial: number; maximum?: number }) => { readonly buffer: ArrayBuffer } };

/** The slabs of one writer: one allocation. */
interface Arena {
  buf: Buffer;
  /** Page-aligned memory: usable for O_DIRECT. */
  aligned: boolean;
}
/** Two writers' slabs kept for reuse; emptied after 2 s unused. */
const pool = new IdlePool<Arena>(2);

function newArena(): Arena {
  const bytes = SLAB * SLABS;
  try {
    // A WebAssembly memory is page-aligned (node's Buffers are not: malloc'ed). It reserves
    // address space only; RSS is what is touched, as for a Buffer.
    const memory = new WebAssembly.Memory({ initial: bytes / WASM_PAGE, maximum: bytes / WASM_PAGE });
    return { buf: Buffer.from(memory.buffer), aligned: true };
  } catch {
    return { buf: Buffer.allocUnsafeSlow(bytes), aligned: false };
  }
}

interface Slab {
  buf: Buffer;
  used: number;
  writing: Promise<void> | null;
}

export class DurableFileWriter extends Writable {
  /** The file's descriptor, opened with O_DIRECT when `direct`. */
  private fd: number | null = null;
  private direct = false;
  private openedDirect = false;
  /** A second, buffered descriptor for unaligned writes (opened on first need). */
  private plain: Promise<number> | null = null;
  private arena: Arena | null = null;
  private readonly slabs: Slab[] = [];
  private current = 0;
  /** File offset of the next slab written. */
  private position = 0;
  private unsynced = 0;
  private syncing: Promise<void> | null = null;
  private failure: Error | null = null;
  /** Bytes written buffered before O_DIRECT starts. */
  private readonly bufferedHead: number;

  constructor(
    private readonly file: string,
    private readonly options: DurableFileOptions,
  ) {
    super({ highWaterMark: SLAB });
    this.bufferedHead = options.bufferedHead ?? BUFFERED_HEAD;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    const arena = pool.take() ?? newArena();
    this.arena = arena;
    for (let i = 0; i < SLABS; i++) this.slabs.push({ buf: arena.buf.subarray(i * SLAB, (i + 1) * SLAB), used: 0, writing: null });
    const { O_WRONLY, O_CREAT, O_EXCL, O_DIRECT } = fs.constants;
    // O_EXCL: the temp name is fresh; an existing file would mean a collision, never reuse it.
    // An append (resumed upload) opens its file as it is and cuts it at `position`.
    const append = this.options.position !== undefined;
    const flags = append ? O_WRONLY | O_CREAT : O_WRONLY | O_CREAT | O_EXCL;
    const mode = this.options.mode ?? 0o644;
    const tryDirect = this.options.direct !== false && arena.aligned && O_DIRECT !== undefined;
    const open = (direct: boolean) =>
      fs.open(this.file, direct ? flags | O_DIRECT : flags, mode, (err, fd) => {
        // Refused (tmpfs and the like): the same file, buffered.
        if (err && direct && err.code === 'EINVAL') return open(false);
        if (err) return callback(err); // no descriptor: _destroy has nothing to close
        this.fd = fd;
        this.direct = direct;
        this.openedDirect = direct;
        if (!append) return callback();
        const position = this.options.position as number;
        this.position = position;
        fs.ftruncate(fd, position, (truncErr) => callback(truncErr));
      });
    open(tryDirect);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.copyIn(chunk, 0, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    // The tail goes last, after every other write: an unaligned tail is written buffered,
    // never beside a direct write in flight.
    const tail = this.slabs[this.current];
    Promise.all(this.slabs.map((s) => s.writing))
      .then(() => {
        if (tail.used > 0 && !this.failure) this.flush(this.current);
        return tail.writing;
      })
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
    const plain = this.plain;
    // Never close a descriptor (or reuse a slab) under a write or a sync in flight.
    const settle = Promise.allSettled([...this.slabs.map((s) => s.writing), this.syncing]);
    settle
      .then(() => (plain ? plain.then((p) => closeFd(p), () => undefined) : undefined))
      .then(() => {
        this.slabs.splice(0);
        if (this.arena) pool.give(this.arena);
        this.arena = null;
        return fd === null ? undefined : closeFd(fd);
      })
      .then(() => callback(error), (closeErr: Error) => callback(error ?? closeErr));
  }

  /**
   * Copies `chunk` (from `offset`) into the slabs, synchronously while a slab is free (the
   * common case: `callback` runs at once, no promise per chunk); waits for a slab's write
   * otherwise.
   */
  private copyIn(chunk: Buffer, offset: number, callback: (error?: Error | null) => void): void {
    while (offset < chunk.length) {
      if (this.failure) return callback(this.failure);
      const slab = this.slabs[this.current];
      if (slab.writing) {
        slab.writing.then(() => this.copyIn(chunk, offset, callback));
        return;
      }
      const n = chunk.copy(slab.buf, slab.used, offset);
      slab.used += n;
      offset += n;
      if (slab.used === slab.buf.length) {
        this.flush(this.current);
        this.current = (this.current + 1) % SLABS;
      }
    }
    callback(this.failure);
  }

  /** Starts writing a full (or the last) slab at its place in the file. */
  private flush(index: number): void {
    const slab = this.slabs[index];
    const length = slab.used;
    const position = this.position;
    this.position += length;
    // Empty from now on as far as filling goes; copyIn waits for `writing` before reusing it.
    slab.used = 0;
    slab.writing = this.writeAt(slab.buf, length, position).then(
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

  /** Writes `length` bytes of `buf` at `position`: directly what is aligned, the rest buffered. */
  private async writeAt(buf: Buffer, length: number, position: number): Promise<void> {
    if (this.direct && position >= this.bufferedHead) {
      const head = length - (length % ALIGN);
      if (head > 0) {
        try {
          await writeFully(this.fd as number, buf, 0, head, position);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
          // The filesystem wants another alignment: buffered from now on (this slab included).
          this.direct = false;
          return this.writeAt(buf, length, position);
        }
      }
      if (head < length) await writeFully(await this.plainFd(), buf, head, length - head, position + head);
      return;
    }
    await writeFully(await this.plainFd(), buf, 0, length, position);
  }

  /** A buffered descriptor of the file: `fd` itself unless it was opened O_DIRECT. */
  private plainFd(): Promise<number> {
    if (this.plain) return this.plain;
    // Opened buffered in the first place: no second descriptor needed.
    if (!this.openedDirect) return Promise.resolve(this.fd as number);
    this.plain = new Promise<number>((resolve, reject) =>
      fs.open(this.file, fs.constants.O_WRONLY, (err, p) => (err ? reject(err) : resolve(p))),
    );
    return this.plain;
  }

  private maybeSync(): void {
    if ((this.direct && this.position > this.bufferedHead) || this.syncing || this.unsynced < this.options.syncEvery || this.fd === null) return;
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

/** Writes `length` bytes of `buf` from `offset` at `position`, carrying on after short writes. */
function writeFully(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (done: number) => {
      if (done === length) return resolve();
      fs.write(fd, buf, offset + done, length - done, position + done, (err, written) => (err ? reject(err) : step(done + written)));
    };
    step(0);
  });
}

function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve())));
}
