/**
 * The narrow interface every blob backend implements (filesystem now, object stores
 * later). A blob is an immutable byte string addressed by `sha256:<hex>` of its content.
 * test/store/blob-store.contract.ts is the behaviour every implementation must pass.
 */
import type { Readable, Writable } from 'node:stream';
import { invalidInput } from '../../domain/errors.js';

const DIGEST = /^sha256:([a-f0-9]{64})$/;

/**
 * The hex part of a blob digest; INVALID_INPUT for anything but `sha256:<64 lowercase hex>`.
 * Every implementation checks digests with this before they reach a path, key or request.
 */
export function digestHex(digest: string): string {
  const m = typeof digest === 'string' ? DIGEST.exec(digest) : null;
  if (!m) throw invalidInput(`Invalid blob digest: ${JSON.stringify(String(digest)).slice(0, 80)}`);
  return m[1];
}

/** Upload session ids: what BlobIngest makes (UUIDs), nothing that could be a path or a key. */
const UPLOAD_ID = /^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$/;

export function isUploadId(value: unknown): value is string {
  return typeof value === 'string' && UPLOAD_ID.test(value);
}

/** INVALID_INPUT unless `id` is an upload session id; every implementation checks with this. */
export function assertUploadId(id: string): void {
  if (!isUploadId(id)) throw invalidInput(`Invalid upload id: ${JSON.stringify(String(id)).slice(0, 80)}`);
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

/**
 * INVALID_INPUT unless `range` has whole, non-negative offsets with start <= end (an `end`
 * past the last byte is fine: reads stop at the last byte).
 */
export function assertRange(range: ByteRange): void {
  const { start, end } = range;
  if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && start >= 0 && end >= start)) {
    throw invalidInput(`Invalid byte range: ${JSON.stringify(range)}`);
  }
}

export interface BlobInfo {
  size: number;
  /** When the blob was committed (ms since the epoch); garbage collection spares young blobs. */
  modifiedAt: number;
}

/**
 * One upload in progress. Bytes go to `stream`; nothing is visible under any digest until
 * `commit` succeeds. `abort` is safe to call at any time, any number of times, and after
 * a commit (then it does nothing), so callers can simply `finally { await w.abort() }`.
 */
export interface BlobWriter {
  readonly stream: Writable;
  /**
   * Makes the written bytes durable and visible as `digest`. The caller must have verified
   * that `digest` is the sha256 of what was written. If the blob already exists (same
   * content uploaded before), the new copy is dropped (possibly in the background: init()
   * waits for it) and the stored blob is never replaced.
   * Rejects with INVALID_INPUT for a malformed digest (the upload stays open), and rejects
   * if the stream has not finished. A commit that fails for any other reason ends the upload.
   */
  commit(digest: string): Promise<void>;
  abort(): Promise<void>;
}

/** An open blob for positional reads (the fast path for serving layers). */
export interface BlobReader {
  readonly size: number;
  /** The open file's descriptor, when the blob is a local file (for zero-copy sends); valid until close(). */
  readonly fd?: number;
  /** Reads up to `length` bytes at `position` into the start of `buffer`; 0 at the end. */
  read(buffer: Buffer, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * Every method taking a digest accepts only `sha256:<64 lowercase hex>` and rejects anything
 * else with INVALID_INPUT before the digest reaches a path, key or request.
 */
export interface BlobStore {
  /**
   * Prepares the backend; removes unfinished one-request uploads left behind by a previous
   * run (all of them, or only those idle for the store's abandon age when other nodes
   * share the store: theirs are in progress).
   */
  init(): Promise<{ removedTemp: number }>;
  /**
   * Removes (unless `dryRun`: counts) what unfinished one-request uploads, and appends to
   * sessions cut short, left in the store that received nothing for `idleMs` before `now`
   * (temp files, multipart uploads): garbage collection's share of what init() does, safe
   * while other nodes upload. Upload sessions themselves (listUploads) are not touched.
   */
  reclaimStale(idleMs: number, dryRun: boolean, now?: number): Promise<{ removed: number; bytes: number }>;
  createWriter(): Promise<BlobWriter>;
  /** Size of a blob, or null when it does not exist. */
  stat(digest: string): Promise<BlobInfo | null>;
  /**
   * Opens the blob and streams its bytes (or `range`). Rejects with NOT_FOUND if absent,
   * with INVALID_INPUT for a range that is not whole, non-negative offsets with start <= end
   * (an `end` past the last byte stops at the last byte). Once it resolves, the stream
   * delivers the bytes even if the blob is deleted meanwhile.
   */
  read(digest: string, range?: ByteRange): Promise<Readable>;
  /**
   * Opens the blob for positional reads (rejects with NOT_FOUND if absent). Like `read`,
   * the bytes stay readable until `close` even if the blob is deleted meanwhile.
   */
  openReader(digest: string): Promise<BlobReader>;
  /** Removes a blob; false when it did not exist. */
  delete(digest: string): Promise<boolean>;
  /** Every stored digest, in no particular order. */
  list(): AsyncIterable<string>;

  // ── resumable uploads (Registry API v2 sessions); ids are validated (INVALID_INPUT) ──
  /**
   * A stream appending to upload `id` from `position`: the upload is created when missing
   * and cut at `position` first (bytes beyond it were never acknowledged). What was written
   * is durable once the stream has finished; destroy it to give up (what it wrote may
   * remain: the next append cuts it).
   */
  appendUpload(id: string, position: number): Promise<Writable>;
  /** Size and last change of an upload, or null when it does not exist. */
  statUpload(id: string): Promise<BlobInfo | null>;
  /** The first `length` bytes of an upload (to hash them again after a restart). */
  readUpload(id: string, length: number): Promise<Readable>;
  /**
   * Publishes an upload's bytes as `digest` (the caller verified them), as BlobWriter.commit
   * does, and removes the upload. A blob that already exists is kept as it is.
   */
  commitUpload(id: string, digest: string): Promise<void>;
  /** Removes an upload's bytes; false when there were none. */
  deleteUpload(id: string): Promise<boolean>;
  /** Every upload id, in no particular order. */
  listUploads(): AsyncIterable<string>;
}
