/**
 * Blob store on any S3-compatible object store (AWS S3, Ceph RADOS Gateway, MinIO…), for
 * registries whose nodes share one bucket. Key layout: s3-keys.ts.
 *
 * Upload: the request stream goes out as a multipart upload to uploads/<random>, in parts
 * of `partSize` bytes (one part uploading while the next fills: at most ~2 parts in memory,
 * nothing on local disk); a blob smaller than one part is a single PUT. When the stream ends
 * the upload is completed under its temp key, which nothing serves. `commit(digest)`, called
 * once the caller has verified the digest, copies it server-side to blobs/sha256/… (one
 * CopyObject; a multipart copy past `singleCopyLimit`, the 5 GiB S3 allows) and deletes the
 * temp object. A crash at any point leaves at most an upload under uploads/ (removed once
 * abandoned: by init(), and by garbage collection through reclaimStale, since on many nodes
 * no node restarts for another's), never a partial blob. An existing blob is never replaced.
 *
 * Reads: GET with Range. `openReader` starts a GET of the whole blob at once, so the bytes
 * stay readable even if the blob is deleted meanwhile, and serves sequential reads from it;
 * a jump opens a ranged GET pinned to the same object (If-Match its ETag). It has no file
 * descriptor: the layer sender streams. `presignGet` hands out a URL for s3_redirect.
 *
 * Resumable (Registry API v2) uploads: each append is an object of its own under
 * sessions/<uuid>/ (the same multipart stream), named by its offset; an append that fails
 * leaves no object (a multipart upload completes atomically, and is aborted otherwise). The
 * commit writes the bytes under blobs/ at once: one server-side copy for a single append,
 * else one multipart upload fed from the session's objects, which appears whole or not at
 * all; then the session's objects are deleted.
 *
 * Failures of the object store itself (5xx, network) surface as UNAVAILABLE (503).
 */
import { Readable, Writable } from 'node:stream';
import { Presigner } from './s3-presign.js';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { invalidInput, notFound, RegistryError } from '../../domain/errors.js';
import { assertRange, type BlobInfo, type BlobReader, type BlobStore, type BlobWriter, type ByteRange } from './blob-store.js';
import { BLOBS_PREFIX, s3Keys, SESSIONS_PREFIX, UPLOADS_PREFIX } from './s3-keys.js';

export interface S3BlobStoreOptions {
  /** e.g. https://s3.eu-west-1.amazonaws.com or http://127.0.0.1:7480; empty: AWS's default for the region. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** Empty: the SDK's default credential chain (environment, instance profile…). */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Path-style URLs (http://host/bucket/key), which most S3-compatible servers need. */
  forcePathStyle?: boolean;
  /** Bytes per uploaded part (S3: at least 5 MiB). */
  partSize?: number;
  /** Largest blob copied with one CopyObject at commit; larger ones are copied in parts. */
  singleCopyLimit?: number;
  /** Bytes per part of such a multipart copy. */
  copyPartSize?: number;
  /**
   * init() removes uploads that received nothing for this long. Other nodes share the
   * bucket: their uploads in progress are younger (0 removes every upload: one node only).
   */
  abandonAfterMs?: number;
  /** Create the bucket at init() if it does not exist. */
  createBucket?: boolean;
}

const MiB = 1024 * 1024;
export const DEFAULT_PART_SIZE = 8 * MiB;
const MIN_PART_SIZE = 5 * MiB;
/** CopyObject's limit on AWS S3. */
const SINGLE_COPY_LIMIT = 5 * 1024 * MiB;
const COPY_PART_SIZE = 512 * MiB;
const ABANDON_AFTER_MS = 24 * 3600_000;
/** A forward jump of at most this many bytes in an open reader reads through instead of a new GET. */
const SKIP_LIMIT = 1 * MiB;

type UploadState = 'open' | 'committing' | 'committed' | 'aborted';

export class S3BlobStore implements BlobStore {
  readonly client: S3Client;
  readonly bucket: string;
  private readonly partSize: number;
  private readonly singleCopyLimit: number;
  private readonly copyPartSize: number;
  private readonly abandonAfterMs: number;
  private presigner: Presigner | null = null;

  constructor(private readonly options: S3BlobStoreOptions) {
    this.bucket = options.bucket;
    this.partSize = Math.max(MIN_PART_SIZE, options.partSize ?? DEFAULT_PART_SIZE);
    this.singleCopyLimit = options.singleCopyLimit ?? SINGLE_COPY_LIMIT;
    this.copyPartSize = Math.max(MIN_PART_SIZE, options.copyPartSize ?? COPY_PART_SIZE);
    this.abandonAfterMs = options.abandonAfterMs ?? ABANDON_AFTER_MS;
    this.client = new S3Client({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      forcePathStyle: options.forcePathStyle ?? false,
      ...(options.accessKeyId ? { credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey ?? '' } } : {}),
      // Checksums only where S3 requires them: S3-compatible servers (Ceph 16, older MinIO)
      // refuse the CRC trailers the SDK otherwise adds to every upload.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // Requests that failed for the store's sake (5xx, throttling, a connection refused or
      // reset) are tried 3 times by the SDK; a body already streamed from a client cannot be
      // replayed, so such an upload fails (503) and the client pushes it again.
      maxAttempts: 3,
      // An endpoint that does not answer is given up on instead of holding the request.
      requestHandler: { connectionTimeout: 5000 },
    });
  }

  /** Runs one request; failures of the store itself become UNAVAILABLE. */
  private async call<T>(request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (err) {
      throw asUnavailable(err);
    }
  }

  async init(): Promise<{ removedTemp: number }> {
    if (this.options.createBucket) await this.ensureBucket();
    return { removedTemp: (await this.reclaimStale(this.abandonAfterMs, false)).removed };
  }

  /**
   * Multipart uploads never completed (writes in progress when a node died: to uploads/, to
   * a session's append, and multipart copies cut short at commit, which target a blob key
   * but never became an object) whose last part, or start, is `idleMs` old; and completed
   * uploads under uploads/ never committed or aborted, as old.
   */
  async reclaimStale(idleMs: number, dryRun: boolean, now = Date.now()): Promise<{ removed: number; bytes: number }> {
    const stale = (at: Date | undefined) => now - (at?.getTime() ?? 0) >= idleMs;
    let removed = 0;
    let bytes = 0;
    for await (const upload of this.listMultipart()) {
      if (!stale(upload.Initiated)) continue;
      const parts = await this.listParts(upload.Key, upload.UploadId);
      // null: gone meanwhile (completed or aborted by its writer).
      if (!parts || !parts.every((part) => stale(part.LastModified))) continue;
      if (!dryRun) await this.abortMultipart(upload.Key, upload.UploadId);
      removed += 1;
      bytes += parts.reduce((sum, part) => sum + (part.Size ?? 0), 0);
    }
    for await (const object of this.listObjects(UPLOADS_PREFIX)) {
      if (!stale(object.LastModified)) continue;
      if (!dryRun) await this.call(() => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: object.Key })));
      removed += 1;
      bytes += object.Size ?? 0;
    }
    return { removed, bytes };
  }

  /** The bucket's unfinished multipart uploads under this store's prefixes. */
  private async *listMultipart(): AsyncIterable<{ Key: string; UploadId: string; Initiated?: Date }> {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await this.call(() => this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker })));
      for (const upload of page.Uploads ?? []) {
        const key = upload.Key;
        if (!key || !upload.UploadId || ![UPLOADS_PREFIX, BLOBS_PREFIX, SESSIONS_PREFIX].some((prefix) => key.startsWith(prefix))) continue;
        yield { Key: key, UploadId: upload.UploadId, Initiated: upload.Initiated };
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
  }

  /** The parts uploaded so far of a multipart upload; null when it no longer exists. */
  private async listParts(key: string, uploadId: string): Promise<Array<{ LastModified?: Date; Size?: number }> | null> {
    const parts: Array<{ LastModified?: Date; Size?: number }> = [];
    let marker: string | undefined;
    try {
      do {
        const page = await this.client.send(new ListPartsCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }));
        for (const part of page.Parts ?? []) parts.push({ LastModified: part.LastModified, Size: part.Size });
        marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
      } while (marker);
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw asUnavailable(err);
    }
    return parts;
  }

  private async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      if (statusOf(err) !== 404) throw asUnavailable(err);
      try {
        await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
      } catch (createErr) {
        // Another node created it first.
        if (!['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes((createErr as Error).name)) throw asUnavailable(createErr);
      }
    }
  }

  /** Cheap liveness check: the bucket answers. */
  async ping(): Promise<void> {
    await this.call(() => this.client.send(new HeadBucketCommand({ Bucket: this.bucket })));
  }

  private async *listObjects(prefix: string): AsyncIterable<{ Key: string; LastModified?: Date; Size?: number }> {
    let token: string | undefined;
    do {
      const page = await this.call(() => this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      ));
      for (const object of page.Contents ?? []) if (object.Key) yield { Key: object.Key, LastModified: object.LastModified, Size: object.Size };
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  private async abortMultipart(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
    } catch (err) {
      if (statusOf(err) !== 404) throw asUnavailable(err);
    }
  }

  async createWriter(): Promise<BlobWriter> {
    const tempKey = s3Keys.newUpload();
    const stream = new MultipartUploadStream(this, tempKey, this.partSize);
    let state: UploadState = 'open';
    let cleanup: Promise<void> | null = null;
    const removeTemp = () => (cleanup ??= stream.discard());
    return {
      stream,
      commit: async (digest: string) => {
        if (state !== 'open') throw new Error(`blob writer already ${state}`);
        const target = s3Keys.blob(digest);
        if (!stream.writableFinished || !stream.completed) throw new Error('blob writer committed before its stream finished');
        state = 'committing';
        try {
          // First write wins: an existing blob (same digest = same bytes) is never replaced.
          if (!(await this.stat(digest))) await this.copy(tempKey, target, stream.bytes);
          state = 'committed';
        } catch (err) {
          // A failed commit ends the upload.
          state = 'aborted';
          throw err;
        } finally {
          // Left behind if this fails: removed once abandoned (init(), reclaimStale).
          await removeTemp().catch(() => {});
        }
      },
      abort: async () => {
        if (state === 'committing' || state === 'committed') return;
        state = 'aborted';
        stream.destroy();
        await removeTemp();
      },
    };
  }

  /** Server-side copy of `from` to `to` (`size` bytes). */
  private async copy(from: string, to: string, size: number): Promise<void> {
    const source = `${this.bucket}/${from}`;
    if (size <= this.singleCopyLimit) {
      await this.call(() => this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: to, CopySource: source })));
      return;
    }
    const { UploadId } = await this.call(() => this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: to })));
    if (!UploadId) throw new Error('the object store returned no upload id');
    try {
      const parts: CompletedPart[] = [];
      for (let start = 0, n = 1; start < size; start += this.copyPartSize, n++) {
        const end = Math.min(size, start + this.copyPartSize) - 1;
        const result = await this.call(() => this.client.send(
          new UploadPartCopyCommand({ Bucket: this.bucket, Key: to, UploadId, PartNumber: n, CopySource: source, CopySourceRange: `bytes=${start}-${end}` }),
        ));
        parts.push({ ETag: result.CopyPartResult?.ETag, PartNumber: n });
      }
      await this.call(() => this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: to, UploadId, MultipartUpload: { Parts: parts } })));
    } catch (err) {
      await this.abortMultipart(to, UploadId).catch(() => {});
      throw err;
    }
  }

  async stat(digest: string): Promise<BlobInfo | null> {
    const key = s3Keys.blob(digest);
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: head.ContentLength ?? 0, modifiedAt: head.LastModified?.getTime() ?? 0 };
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw asUnavailable(err);
    }
  }

  async read(digest: string, range?: ByteRange): Promise<Readable> {
    const key = s3Keys.blob(digest);
    if (range) assertRange(range);
    try {
      const object = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
      );
      return object.Body as Readable;
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) throw notFound('Blob not found');
      // A range starting past the last byte: nothing to read (as a file read at EOF).
      if (status === 416 && range) {
        if (!(await this.stat(digest))) throw notFound('Blob not found');
        return Readable.from([]);
      }
      throw asUnavailable(err);
    }
  }

  async openReader(digest: string): Promise<BlobReader> {
    const key = s3Keys.blob(digest);
    let object;
    try {
      object = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      if (statusOf(err) === 404) throw notFound('Blob not found');
      throw asUnavailable(err);
    }
    return new S3Reader(this, key, object.ContentLength ?? 0, object.ETag, object.Body as Readable);
  }

  async delete(digest: string): Promise<boolean> {
    const key = s3Keys.blob(digest);
    // DeleteObject succeeds whether or not the key exists: ask first.
    if (!(await this.stat(digest))) return false;
    await this.call(() => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })));
    return true;
  }

  async *list(): AsyncIterable<string> {
    for await (const object of this.listObjects(BLOBS_PREFIX)) {
      const digest = s3Keys.digestOf(object.Key);
      if (digest) yield digest;
    }
  }

  // ── resumable uploads ─────────────────────────────────────────────────────────────

  /** The objects of a session in order, the contiguous run from byte 0 (a gap ends it). */
  private async sessionParts(id: string): Promise<{ parts: Array<{ key: string; start: number; size: number }>; size: number; modifiedAt: number; all: string[] }> {
    const found: Array<{ key: string; start: number; size: number; at: number }> = [];
    for await (const object of this.listObjects(s3Keys.session(id))) {
      const part = s3Keys.sessionPartOf(object.Key);
      if (part) found.push({ key: object.Key, start: part.start, size: object.Size ?? 0, at: object.LastModified?.getTime() ?? 0 });
    }
    found.sort((a, b) => a.start - b.start);
    const parts: Array<{ key: string; start: number; size: number }> = [];
    let size = 0;
    for (const part of found) {
      if (part.start !== size) break;
      parts.push(part);
      size += part.size;
    }
    return { parts, size, modifiedAt: Math.max(0, ...found.map((p) => p.at)), all: found.map((p) => p.key) };
  }

  async appendUpload(id: string, position: number): Promise<Writable> {
    if (!Number.isSafeInteger(position) || position < 0) throw invalidInput(`Invalid upload position: ${position}`);
    // Cut at `position`: an append that never was acknowledged is dropped. (Appends end on
    // object boundaries; an object that spans `position` is rewritten shorter.)
    const { parts, all } = await this.sessionParts(id);
    for (const key of all) {
      const part = s3Keys.sessionPartOf(key);
      if (part && part.start >= position) await this.call(() => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })));
    }
    const spanning = parts.find((p) => p.start < position && position < p.start + p.size);
    if (spanning) await this.truncateObject(spanning.key, position - spanning.start);
    const stream = new MultipartUploadStream(this, s3Keys.sessionPart(id, position), this.partSize);
    // Given up before it completed: no object, and no multipart upload left behind.
    stream.once('close', () => {
      if (!stream.completed) stream.discard().catch(() => {});
    });
    return stream;
  }

  /** Rewrites `key` with its first `length` bytes (a PUT replaces an object whole, atomically). */
  private async truncateObject(key: string, length: number): Promise<void> {
    const object = await this.call(() => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=0-${length - 1}` })));
    const stream = new MultipartUploadStream(this, key, this.partSize);
    await new Promise<void>((resolve, reject) => {
      stream.once('error', reject);
      stream.once('finish', resolve);
      (object.Body as Readable).once('error', reject).pipe(stream);
    });
  }

  async statUpload(id: string): Promise<BlobInfo | null> {
    const session = await this.sessionParts(id);
    return session.all.length === 0 ? null : { size: session.size, modifiedAt: session.modifiedAt };
  }

  async readUpload(id: string, length: number): Promise<Readable> {
    const { parts, all } = await this.sessionParts(id);
    if (all.length === 0) throw notFound('Upload not found');
    return Readable.from(this.sessionBytes(parts, length));
  }

  /** The first `length` bytes of a session's objects, one GET after the other. */
  private async *sessionBytes(parts: Array<{ key: string; start: number; size: number }>, length: number): AsyncIterable<Buffer> {
    for (const part of parts) {
      if (part.start >= length || part.size === 0) continue;
      const end = Math.min(part.size, length - part.start) - 1;
      const object = await this.call(() => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: part.key, Range: `bytes=0-${end}` })));
      for await (const chunk of object.Body as Readable) yield chunk as Buffer;
    }
  }

  async commitUpload(id: string, digest: string): Promise<void> {
    const target = s3Keys.blob(digest);
    const { parts, size, all } = await this.sessionParts(id);
    if (all.length === 0) throw notFound('Upload not found');
    // First write wins: an existing blob (same digest = same bytes) is never replaced.
    if (!(await this.stat(digest))) {
      if (parts.length === 1) {
        await this.copy(parts[0].key, target, size);
      } else {
        const stream = new MultipartUploadStream(this, target, this.partSize);
        try {
          await new Promise<void>((resolve, reject) => {
            stream.once('error', reject);
            stream.once('finish', resolve);
            Readable.from(this.sessionBytes(parts, size)).once('error', reject).pipe(stream);
          });
        } catch (err) {
          await stream.discard().catch(() => {});
          throw err;
        }
      }
    }
    await this.deleteUpload(id);
  }

  async deleteUpload(id: string): Promise<boolean> {
    const { all } = await this.sessionParts(id);
    for (const key of all) await this.call(() => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })));
    return all.length > 0;
  }

  async *listUploads(): AsyncIterable<string> {
    const seen = new Set<string>();
    for await (const object of this.listObjects(SESSIONS_PREFIX)) {
      const part = s3Keys.sessionPartOf(object.Key);
      if (part && !seen.has(part.id)) {
        seen.add(part.id);
        yield part.id;
      }
    }
  }

  /**
   * A URL that GETs the blob straight from the object store for `expiresInSeconds` (s3_redirect).
   * The client sends its Range header there itself.
   */
  async presignGet(digest: string, expiresInSeconds: number): Promise<string> {
    const key = s3Keys.blob(digest);
    // Static keys: signed here (a fraction of the SDK presigner's CPU, see s3-presign.ts).
    if (this.options.accessKeyId) {
      this.presigner ??= new Presigner({
        endpoint: this.options.endpoint,
        region: this.options.region,
        bucket: this.bucket,
        accessKeyId: this.options.accessKeyId,
        secretAccessKey: this.options.secretAccessKey ?? '',
        forcePathStyle: this.options.forcePathStyle ?? false,
      });
      return this.presigner.presignGet(key, expiresInSeconds);
    }
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: key }), { expiresIn: expiresInSeconds });
  }

  close(): void {
    this.client.destroy();
  }

  // ── used by MultipartUploadStream and S3Reader ────────────────────────────────────

  /** @internal */
  async putObject(key: string, body: Buffer): Promise<void> {
    await this.call(() => this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: body.length })));
  }

  /** @internal */
  async startMultipart(key: string): Promise<string> {
    const { UploadId } = await this.call(() => this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key })));
    if (!UploadId) throw new Error('the object store returned no upload id');
    return UploadId;
  }

  /** @internal */
  async uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer): Promise<CompletedPart> {
    const { ETag } = await this.call(() => this.client.send(
      new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: body, ContentLength: body.length }),
    ));
    return { ETag, PartNumber: partNumber };
  }

  /** @internal */
  async completeMultipart(key: string, uploadId: string, parts: CompletedPart[]): Promise<void> {
    await this.call(() => this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } })));
  }

  /** @internal Removes an upload whatever state it reached: the multipart upload, the completed object. */
  async removeUpload(key: string, uploadId: string | null, completed: boolean): Promise<void> {
    if (uploadId && !completed) await this.abortMultipart(key, uploadId);
    if (completed) await this.call(() => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })));
  }

  /** @internal A GET of `key` from `start` on, pinned to the object with `etag`. */
  async getFrom(key: string, start: number, etag: string | undefined): Promise<Readable> {
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=${start}-`, IfMatch: etag }));
      return object.Body as Readable;
    } catch (err) {
      const status = statusOf(err);
      if (status === 404 || status === 412) throw notFound('Blob was deleted or replaced while it was being read');
      throw asUnavailable(err);
    }
  }
}

/**
 * The upload's byte stream: fills a part, uploads it while the next one fills (backpressure
 * holds the writer while two parts are in hand), and at the end completes the upload under
 * its temp key. Small uploads never start a multipart upload: one PUT at the end.
 */
class MultipartUploadStream extends Writable {
  /** Bytes written so far. */
  bytes = 0;
  /** The temp object exists (the stream finished and its upload was completed). */
  completed = false;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private uploadId: string | null = null;
  private readonly parts: CompletedPart[] = [];
  /** The part being uploaded (never rejects: its failure is kept in `failure`). */
  private inFlight: Promise<void> = Promise.resolve();
  private failure: Error | null = null;
  /** Every request this stream started; discard() waits for them. */
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly store: S3BlobStore,
    private readonly key: string,
    private readonly partSize: number,
  ) {
    super();
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.pending.add(p);
    const forget = () => this.pending.delete(p);
    p.then(forget, forget);
    return p;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    this.bytes += chunk.length;
    if (this.buffered < this.partSize) {
      callback();
      return;
    }
    this.track(this.sendPart()).then(() => callback(), callback);
  }

  /** Waits for the previous part, then starts uploading the buffered bytes as the next one. */
  private async sendPart(): Promise<void> {
    const body = this.takeBuffered();
    await this.inFlight;
    if (this.failure) throw this.failure;
    if (this.destroyed) throw new Error('upload aborted');
    this.uploadId ??= await this.track(this.store.startMultipart(this.key));
    const partNumber = this.parts.length + 1;
    this.parts.push({ PartNumber: partNumber });
    const uploadId = this.uploadId;
    this.inFlight = this.track(this.store.uploadPart(this.key, uploadId, partNumber, body)).then(
      (part) => {
        this.parts[partNumber - 1] = part;
      },
      (err: Error) => {
        this.failure ??= err;
      },
    );
  }

  private takeBuffered(): Buffer {
    const body = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [];
    this.buffered = 0;
    return body;
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.track(this.finish()).then(() => callback(), callback);
  }

  private async finish(): Promise<void> {
    if (this.uploadId === null) {
      await this.store.putObject(this.key, this.takeBuffered());
    } else {
      if (this.buffered > 0) await this.sendPart();
      await this.inFlight;
      if (this.failure) throw this.failure;
      await this.store.completeMultipart(this.key, this.uploadId, this.parts);
    }
    this.completed = true;
  }

  /** Waits for every request of this upload, then removes whatever it left in the bucket. */
  async discard(): Promise<void> {
    this.chunks = [];
    this.buffered = 0;
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    await this.store.removeUpload(this.key, this.uploadId, this.completed);
  }
}

/** Positional reads over GETs: sequential reads come from one response body. */
class S3Reader implements BlobReader {
  private body: Readable | null;
  private iterator: AsyncIterator<Buffer> | null = null;
  /** Bytes taken from the body but not handed out yet. */
  private leftover: Buffer | null = null;
  /** The blob offset of the next byte the body (or leftover) delivers. */
  private position = 0;
  private closed = false;

  constructor(
    private readonly store: S3BlobStore,
    private readonly key: string,
    readonly size: number,
    private readonly etag: string | undefined,
    body: Readable,
  ) {
    this.body = body;
  }

  async read(buffer: Buffer, length: number, position: number): Promise<number> {
    if (this.closed) throw new Error('reader is closed');
    const want = Math.min(length, buffer.length, this.size - position);
    if (want <= 0) return 0;
    if (position !== this.position) await this.seek(position);
    let filled = 0;
    while (filled < want) {
      const chunk = this.leftover ?? (await this.next());
      this.leftover = null;
      if (!chunk) break;
      const n = Math.min(chunk.length, want - filled);
      chunk.copy(buffer, filled, 0, n);
      filled += n;
      if (n < chunk.length) this.leftover = chunk.subarray(n);
    }
    this.position += filled;
    return filled;
  }

  private async next(): Promise<Buffer | null> {
    if (!this.body) return null;
    this.iterator ??= this.body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const { value, done } = await this.iterator.next();
    return done ? null : value;
  }

  private async seek(position: number): Promise<void> {
    if (this.body && position > this.position && position - this.position <= SKIP_LIMIT) {
      // Close ahead: read through.
      let skip = position - this.position;
      while (skip > 0) {
        const chunk = this.leftover ?? (await this.next());
        this.leftover = null;
        if (!chunk) break;
        if (chunk.length > skip) this.leftover = chunk.subarray(skip);
        skip -= Math.min(skip, chunk.length);
      }
      this.position = position;
      return;
    }
    this.drop();
    this.body = await this.store.getFrom(this.key, position, this.etag);
    this.position = position;
  }

  private drop(): void {
    this.body?.destroy();
    this.body = null;
    this.iterator = null;
    this.leftover = null;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.drop();
  }
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** The object store failed (5xx, network, timeout): UNAVAILABLE; anything else as it is. */
function asUnavailable(err: unknown): unknown {
  if (err instanceof RegistryError) return err;
  const status = statusOf(err);
  if (status === undefined || status >= 500) {
    return new RegistryError('UNAVAILABLE', 'The blob store is unavailable; retry later', { retryAfter: 1, cause: String((err as Error)?.message ?? err) });
  }
  return err;
}
