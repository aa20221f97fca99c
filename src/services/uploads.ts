/**
 * Registry API v2 upload sessions: one repository each, recorded in the metadata store (so
 * they survive restarts), their bytes ingested by BlobIngest.
 *
 *   start ─▶ [append …] ─▶ finish(digest) ─▶ a blob linked into the repository
 *        └─▶ cancel            (abandoned sessions: reclaimed by GC after the grace period)
 *
 * A session's `offset` is what was received and made durable; a chunk must start there
 * (416 otherwise, with the offset to resume from). A failed chunk leaves the session as it
 * was before it.
 */
import type { Readable } from 'node:stream';
import { isSha256Digest, type Digest } from '../domain/digest.js';
import { RegistryError } from '../domain/errors.js';
import type { RepoName } from '../domain/names.js';
import type { UploadRecord } from '../domain/records.js';
import { isUploadId } from '../store/blobs/blob-store.js';
import type { UploadSessionStore } from '../store/metadata/ports.js';
import { asUploadError, type BlobIngest, type IngestedBlob, type Upload } from './blob-ingest.js';
import type { BlobService } from './blobs.js';

/** A chunk's `Content-Range` (inclusive bytes), and its announced length. */
export interface ChunkRange {
  start: number;
  end: number;
}

export interface ChunkOptions {
  range?: ChunkRange;
  /** Content-Length, when the client sent one. */
  length?: number;
  signal?: AbortSignal;
}

export class UploadService {
  constructor(
    private readonly meta: UploadSessionStore,
    private readonly ingest: BlobIngest,
    private readonly blobs: BlobService,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** POST …/blobs/uploads/: a new session in `name`. */
  async start(name: RepoName): Promise<UploadRecord> {
    const at = this.now().toISOString();
    const record: UploadRecord = { id: this.ingest.newSessionId(), repo: name.full, offset: 0, startedAt: at, updatedAt: at };
    await this.meta.putUpload(record);
    return record;
  }

  /** The session, if it belongs to `name`; BLOB_UPLOAD_UNKNOWN otherwise. */
  async get(name: RepoName, id: string): Promise<UploadRecord> {
    const record = isUploadId(id) ? await this.meta.getUpload(id) : null;
    if (!record || record.repo !== name.full) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `Upload unknown: ${id.slice(0, 64)}`);
    return record;
  }

  /** PATCH: appends a chunk at the session's offset. */
  append(name: RepoName, id: string, source: Readable, options: ChunkOptions = {}): Promise<UploadRecord> {
    return this.hold(name, id, (record, upload) => this.appendChunk(record, upload, source, options));
  }

  /**
   * PUT ?digest=: appends the last chunk (when `source` has one), verifies the digest and
   * links the blob into the repository. A digest that does not match ends the session
   * (DIGEST_INVALID), as Docker Distribution does; a malformed one leaves it open.
   */
  async finish(name: RepoName, id: string, digest: unknown, source: Readable | null, options: ChunkOptions = {}): Promise<IngestedBlob> {
    await this.get(name, id);
    const expected = expectDigest(digest);
    return this.hold(name, id, async (record, upload) => {
      let current = record;
      if (source) current = await this.appendChunk(record, upload, source, options);
      try {
        const blob = await upload.commit(expected, (b) => this.blobs.linkStored(name, [b]));
        await this.meta.deleteUpload(current.id);
        return blob;
      } catch (err) {
        if (err instanceof RegistryError && err.code === 'DIGEST_INVALID') await this.end(upload, current.id);
        throw err;
      }
    });
  }

  /** DELETE: ends the session and drops its bytes. */
  async cancel(name: RepoName, id: string): Promise<void> {
    await this.hold(name, id, (record, upload) => this.end(upload, record.id));
  }

  /** POST ?digest= with the whole blob as the body: one request, no session kept. */
  async monolithic(name: RepoName, digest: unknown, source: Readable, signal?: AbortSignal): Promise<IngestedBlob> {
    const expected = expectDigest(digest);
    const upload = await this.ingest.begin();
    try {
      await upload.append(source, { signal });
      return await upload.commit(expected, (b) => this.blobs.linkStored(name, [b]));
    } catch (err) {
      throw asUploadError(err);
    } finally {
      await upload.cancel();
    }
  }

  /** Sessions older than `maxIdleMs` since their last chunk and not in use (for GC). */
  async *abandoned(maxIdleMs: number): AsyncIterable<UploadRecord> {
    const now = this.now().getTime();
    for await (const record of this.meta.listUploads()) {
      if (now - Date.parse(record.updatedAt) >= maxIdleMs && !(await this.ingest.isBusy(record.id))) yield record;
    }
  }

  /** Removes a session and its bytes (GC, for abandoned ones). */
  async reclaim(record: UploadRecord): Promise<void> {
    if (await this.ingest.isBusy(record.id)) return;
    await this.ingest.discard(record.id);
    await this.meta.deleteUpload(record.id);
  }

  /**
   * Runs `fn` holding the session (BLOB_UPLOAD_INVALID while another request on any node
   * does), with its record as it is once held: the one read before may be a chunk behind.
   */
  private hold<T>(name: RepoName, id: string, fn: (record: UploadRecord, upload: Upload) => Promise<T>): Promise<T> {
    return this.ingest.hold(id, async (open) => {
      const record = await this.get(name, id);
      return fn(record, open(record.offset));
    });
  }

  private async appendChunk(record: UploadRecord, upload: Upload, source: Readable, options: ChunkOptions): Promise<UploadRecord> {
    const { range, length } = options;
    if (range) {
      if (range.start !== record.offset || range.end < range.start) {
        throw new RegistryError('RANGE_NOT_SATISFIABLE', `Chunk out of order: the upload has ${record.offset} bytes, the chunk starts at ${range.start}`, {
          uploadOffset: record.offset,
        });
      }
      if (length !== undefined && length !== range.end - range.start + 1) {
        throw new RegistryError('SIZE_INVALID', `Content-Length ${length} does not match Content-Range ${range.start}-${range.end}`);
      }
    }
    let added: number;
    try {
      added = await upload.append(source, { signal: options.signal });
    } catch (err) {
      throw asUploadError(err);
    }
    if (range && added !== range.end - range.start + 1) {
      // The bytes are in (and durable); the range only said how many to expect.
      throw new RegistryError('SIZE_INVALID', `Content-Range announced ${range.end - range.start + 1} bytes, the body had ${added}`);
    }
    const next: UploadRecord = { ...record, offset: upload.offset, updatedAt: this.now().toISOString() };
    await this.meta.putUpload(next);
    return next;
  }

  private async end(upload: Upload, id: string): Promise<void> {
    await upload.cancel();
    await this.meta.deleteUpload(id);
  }
}

function expectDigest(value: unknown): Digest {
  if (value === undefined || value === null || value === '') throw new RegistryError('DIGEST_INVALID', 'The digest query parameter is missing');
  if (!isSha256Digest(value)) throw new RegistryError('DIGEST_INVALID', `Invalid or unsupported digest: ${JSON.stringify(String(value)).slice(0, 80)} (sha256:<64 hex> expected)`);
  return value;
}
