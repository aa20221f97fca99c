/**
 * Blob store in memory, for the test double (src/testing/): the same contract as the file
 * store (test/store/blob-store.contract.ts), nothing on disk. Bytes still stream in through
 * a Writable and out through a Readable or positional reads, so every caller runs its real
 * code path; readers have no file descriptor, so layer downloads are streamed (no sendfile).
 *
 *   blobs     digest → { bytes, modifiedAt }   committed blobs, never replaced
 *   uploads   the writers neither committed nor aborted (init() drops them, as the file
 *             store removes tmp/ at start-up)
 *   sessions  uuid → { bytes, modifiedAt }   resumable (v2) uploads; they survive init()
 */
import { Readable, Writable } from 'node:stream';
import { invalidInput, notFound } from '../../domain/errors.js';
import { assertRange, assertUploadId, digestHex, type BlobInfo, type BlobReader, type BlobStore, type BlobWriter, type ByteRange } from './blob-store.js';

/** Bytes per chunk of a read stream (the file store reads 1 MiB at a time too). */
const READ_CHUNK = 1024 * 1024;

interface StoredBlob {
  bytes: Buffer;
  modifiedAt: number;
}

export class MemoryBlobStore implements BlobStore {
  private readonly blobs = new Map<string, StoredBlob>();
  /** Uploads in progress: what drops one (init() after a "crash"), its bytes and last write. */
  private readonly uploads = new Map<BlobWriter, { drop(): void; size(): number; modifiedAt: number }>();
  private readonly sessions = new Map<string, StoredBlob>();

  async init(): Promise<{ removedTemp: number }> {
    const removedTemp = this.uploads.size;
    for (const upload of this.uploads.values()) upload.drop();
    this.uploads.clear();
    return { removedTemp };
  }

  async reclaimStale(idleMs: number, dryRun: boolean, now = Date.now()): Promise<{ removed: number; bytes: number }> {
    let removed = 0;
    let bytes = 0;
    for (const upload of [...this.uploads.values()]) {
      if (!(now - upload.modifiedAt >= idleMs)) continue;
      removed += 1;
      bytes += upload.size();
      if (!dryRun) upload.drop();
    }
    return { removed, bytes };
  }

  async createWriter(): Promise<BlobWriter> {
    let chunks: Buffer[] = [];
    let state: 'open' | 'committed' | 'aborted' | 'dropped' = 'open';
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        // A copy: the caller may reuse its buffer once the write has called back.
        if (state === 'open') chunks.push(Buffer.from(chunk));
        upload.modifiedAt = Date.now();
        callback();
      },
    });
    const end = (next: typeof state) => {
      state = next;
      chunks = [];
      this.uploads.delete(writer);
    };
    const writer: BlobWriter = {
      stream,
      commit: async (digest: string) => {
        digestHex(digest);
        if (state !== 'open') throw new Error(state === 'dropped' ? 'upload was removed (the store was initialised again)' : `blob writer already ${state}`);
        if (!stream.writableFinished) throw new Error('blob writer committed before its stream finished');
        // First write wins: an existing blob (same digest, same bytes) is never replaced.
        if (!this.blobs.has(digest)) this.blobs.set(digest, { bytes: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks), modifiedAt: Date.now() });
        end('committed');
      },
      abort: async () => {
        if (state !== 'open' && state !== 'dropped') return;
        stream.destroy();
        end('aborted');
      },
    };
    const upload = { drop: () => end('dropped'), size: () => chunks.reduce((n, c) => n + c.length, 0), modifiedAt: Date.now() };
    this.uploads.set(writer, upload);
    return writer;
  }

  async stat(digest: string): Promise<BlobInfo | null> {
    digestHex(digest);
    const blob = this.blobs.get(digest);
    return blob ? { size: blob.bytes.length, modifiedAt: blob.modifiedAt } : null;
  }

  async read(digest: string, range?: ByteRange): Promise<Readable> {
    const { bytes } = this.get(digest);
    if (range) assertRange(range);
    const start = range?.start ?? 0;
    const end = Math.min(range ? range.end + 1 : bytes.length, bytes.length);
    // Holds the bytes themselves: a delete after this point does not cut the read short.
    return Readable.from(chunksOf(bytes, start, end), { objectMode: false });
  }

  async openReader(digest: string): Promise<BlobReader> {
    const { bytes } = this.get(digest);
    return {
      size: bytes.length,
      read: async (buffer, length, position) => (position >= bytes.length ? 0 : bytes.copy(buffer, 0, position, Math.min(bytes.length, position + length))),
      close: async () => undefined,
    };
  }

  async delete(digest: string): Promise<boolean> {
    digestHex(digest);
    return this.blobs.delete(digest);
  }

  async *list(): AsyncIterable<string> {
    yield* [...this.blobs.keys()];
  }

  async appendUpload(id: string, position: number): Promise<Writable> {
    assertUploadId(id);
    if (!Number.isSafeInteger(position) || position < 0) throw invalidInput(`Invalid upload position: ${position}`);
    const chunks: Buffer[] = [];
    return new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(Buffer.from(chunk));
        callback();
      },
      final: (callback) => {
        const before = this.sessions.get(id)?.bytes ?? Buffer.alloc(0);
        this.sessions.set(id, { bytes: Buffer.concat([before.subarray(0, position), ...chunks]), modifiedAt: Date.now() });
        callback();
      },
    });
  }

  async statUpload(id: string): Promise<BlobInfo | null> {
    assertUploadId(id);
    const session = this.sessions.get(id);
    return session ? { size: session.bytes.length, modifiedAt: session.modifiedAt } : null;
  }

  async readUpload(id: string, length: number): Promise<Readable> {
    assertUploadId(id);
    const session = this.sessions.get(id);
    if (!session) throw notFound('Upload not found');
    return Readable.from(chunksOf(session.bytes, 0, Math.min(length, session.bytes.length)), { objectMode: false });
  }

  async commitUpload(id: string, digest: string): Promise<void> {
    assertUploadId(id);
    digestHex(digest);
    const session = this.sessions.get(id);
    if (!session) throw notFound('Upload not found');
    if (this.blobs.has(digest)) this.blobs.get(digest)!.modifiedAt = Date.now();
    else this.blobs.set(digest, { bytes: session.bytes, modifiedAt: Date.now() });
    this.sessions.delete(id);
  }

  async deleteUpload(id: string): Promise<boolean> {
    assertUploadId(id);
    return this.sessions.delete(id);
  }

  async *listUploads(): AsyncIterable<string> {
    yield* [...this.sessions.keys()].sort();
  }

  private get(digest: string): StoredBlob {
    digestHex(digest);
    const blob = this.blobs.get(digest);
    if (!blob) throw notFound('Blob not found');
    return blob;
  }
}

function* chunksOf(bytes: Buffer, start: number, end: number): Generator<Buffer> {
  for (let at = start; at < end; at += READ_CHUNK) yield bytes.subarray(at, Math.min(end, at + READ_CHUNK));
}
