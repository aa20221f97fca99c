/**
 * Blob ingest: the one way bytes become a blob, shared by v1's layer PUT and v2's uploads
 * (distribution's blobwriter.go):
 *
 *   begin()  ─▶ one-request upload (a temp file, gone after commit/cancel or a restart)
 *   hold(id, (open) => … open(offset) …) ─▶ a resumable v2 session (its file lives in the
 *            upload area), held by one request at a time on any node (a keyed lock)
 *
 *   upload.append(stream)   bytes → one sha256 pass (+ what `observe` adds) → the file,
 *                           durable (fdatasync) once append resolves; a failed append keeps
 *                           nothing of itself (hash rolled back, the file is cut on the next)
 *   upload.commit(digest)   verify (DIGEST_INVALID) → link into the content address → record,
 *                           the last two under the GC gate, so a sweep never falls between
 *   upload.cancel()         safe at any time, also after a commit (then it does nothing)
 *
 * Node's Hash cannot be serialized: a session's hash state stays in memory between requests;
 * after a restart (or when evicted, or when another node took the last chunk: the state
 * kept covers fewer bytes than the session has) it is computed again from the file on
 * first use. A session's bytes below its offset never change, so a kept state that covers
 * exactly the offset is right whichever node wrote them.
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { finished, Readable, type Writable } from 'node:stream';
import { RegistryError, invalidInput } from '../domain/errors.js';
import { type Digest } from '../domain/digest.js';
import { Lru } from '../domain/lru.js';
import { releaseDeadBuffers } from '../memory.js';
import type { BlobStore, BlobWriter } from '../store/blobs/blob-store.js';
import type { Locks, WriteGate } from '../store/locks/locks.js';

export interface IngestedBlob {
  digest: Digest;
  size: number;
}

export interface AppendOptions {
  /** Aborts the append with its reason (an idle client: REQUEST_TIMEOUT). */
  signal?: AbortSignal;
  /** Sees every chunk too (v1: payload checksum, tarsum); a promise holds the source back. */
  observe?: (chunk: Buffer) => Promise<void> | undefined;
}

export interface Upload {
  readonly id: string;
  /** Bytes appended (and durable) so far. */
  readonly offset: number;
  /**
   * Appends `source` (read to its end, never destroyed) and resolves with the number of
   * bytes appended once they are durable. Rejects with the first error of either side or
   * with `signal`'s reason; the source is then paused and nothing of this append is kept.
   */
  append(source: Readable, options?: AppendOptions): Promise<number>;
  /** The digest of everything appended so far. */
  digest(): Promise<Digest>;
  /**
   * Verifies the bytes hash to `expected` (when given; DIGEST_INVALID otherwise, and the
   * upload stays as it was), publishes them as a blob and runs `record` with it, both under
   * the GC gate. The upload is over once it resolves.
   */
  commit(expected: Digest | null, record?: (blob: IngestedBlob) => Promise<void>): Promise<IngestedBlob>;
  /** Drops the upload and its bytes (nothing once committed). */
  cancel(): Promise<void>;
}

/** Hash state of a resumable session between its requests. */
interface SessionState {
  hash: Hash;
  offset: number;
}

/** Dead socket chunks are freed this often during an upload (see memory.ts). */
const RELEASE_EVERY_BYTES = 2 * 1024 * 1024;
/** Sessions whose hash state stays in memory; older ones are hashed again from their file. */
const KEPT_SESSIONS = 10_000;

/** The resumable sessions' hash states. */
class Sessions {
  private readonly states = new Lru<string, SessionState>(KEPT_SESSIONS);

  /** The kept hash state of `id` if it covers exactly `offset` bytes. */
  state(id: string, offset: number): SessionState | null {
    const state = this.states.get(id);
    return state && state.offset === offset ? state : null;
  }

  keep(id: string, state: SessionState): void {
    this.states.set(id, state);
  }

  drop(id: string): void {
    this.states.delete(id);
  }
}

export class BlobIngest {
  private readonly sessions = new Sessions();

  constructor(
    private readonly blobs: BlobStore,
    private readonly locks: Locks,
  ) {}

  /** A one-request upload (v1's layer PUT, v2's monolithic POST): not resumable. */
  async begin(): Promise<Upload> {
    return new OneShotUpload(await this.blobs.createWriter(), this.locks);
  }

  /** A fresh id for a resumable session (its file appears on the first append). */
  newSessionId(): string {
    return randomUUID();
  }

  /**
   * Runs `fn` holding resumable session `id`: BLOB_UPLOAD_INVALID while another request
   * (on any node) holds it. `open(offset)` is the session's Upload, whose durable bytes are
   * the first `offset` of its file (read the offset once held: another request may just
   * have moved it). The Upload is unusable once `fn` settles.
   */
  async hold<T>(id: string, fn: (open: (offset: number) => Upload) => Promise<T>): Promise<T> {
    const opened: SessionUpload[] = [];
    const held = await this.locks.keyed(sessionKey(id), async () => {
      try {
        return await fn((offset) => {
          const upload = new SessionUpload(id, offset, this.blobs, this.locks, this.sessions);
          opened.push(upload);
          return upload;
        });
      } finally {
        for (const upload of opened) upload.release();
      }
    });
    if (!held.acquired) throw new RegistryError('BLOB_UPLOAD_INVALID', 'Another request is writing this upload; retry later');
    return held.value;
  }

  /** Is a request (on any node) writing this session right now (garbage collection spares it)? */
  isBusy(id: string): Promise<boolean> {
    return this.locks.isKeyHeld(sessionKey(id));
  }

  /** Removes a session's bytes (cancelled, or reclaimed by GC); false if it had none. */
  discard(id: string): Promise<boolean> {
    this.sessions.drop(id);
    return this.blobs.deleteUpload(id);
  }
}

class OneShotUpload implements Upload {
  readonly id = 'once';
  private readonly hash = createHash('sha256');
  private size = 0;
  private appended = false;
  private final: Digest | null = null;

  constructor(
    private readonly writer: BlobWriter,
    private readonly gate: WriteGate,
  ) {}

  get offset(): number {
    return this.size;
  }

  async append(source: Readable, options: AppendOptions = {}): Promise<number> {
    if (this.appended) throw new Error('a one-request upload takes one append');
    this.appended = true;
    const { observe } = options;
    const hash = this.hash;
    let size = 0;
    await pump(source, this.writer.stream, (chunk) => {
      size += chunk.length;
      hash.update(chunk);
      return observe?.(chunk);
    }, options.signal);
    this.size = size;
    return size;
  }

  async digest(): Promise<Digest> {
    if (!this.appended) throw new Error('nothing appended');
    this.final ??= `sha256:${this.hash.digest('hex')}` as Digest;
    return this.final;
  }

  async commit(expected: Digest | null, record?: (blob: IngestedBlob) => Promise<void>): Promise<IngestedBlob> {
    if (!this.appended) await this.append(emptySource());
    const digest = await this.digest();
    if (expected && expected !== digest) throw digestMismatch(expected, digest);
    const blob = { digest, size: this.size };
    await this.gate.shared(async () => {
      await this.writer.commit(digest);
      await record?.(blob);
    });
    return blob;
  }

  cancel(): Promise<void> {
    return this.writer.abort();
  }
}

class SessionUpload implements Upload {
  private released = false;
  private state: SessionState | null;

  constructor(
    readonly id: string,
    private durable: number,
    private readonly blobs: BlobStore,
    private readonly gate: WriteGate,
    private readonly sessions: Sessions,
  ) {
    this.state = sessions.state(id, durable);
  }

  get offset(): number {
    return this.durable;
  }

  async append(source: Readable, options: AppendOptions = {}): Promise<number> {
    this.assertHeld();
    const state = await this.hashState();
    const before = state.hash.copy();
    const { observe } = options;
    let added = 0;
    const stream = await this.blobs.appendUpload(this.id, this.durable);
    try {
      await pump(source, stream, (chunk) => {
        added += chunk.length;
        state.hash.update(chunk);
        return observe?.(chunk);
      }, options.signal);
    } catch (err) {
      // Nothing of a failed append counts: the hash goes back, the next append cuts the file.
      state.hash = before;
      stream.destroy();
      throw err;
    }
    this.durable += added;
    state.offset = this.durable;
    this.sessions.keep(this.id, state);
    return added;
  }

  async digest(): Promise<Digest> {
    const state = await this.hashState();
    return `sha256:${state.hash.copy().digest('hex')}` as Digest;
  }

  async commit(expected: Digest | null, record?: (blob: IngestedBlob) => Promise<void>): Promise<IngestedBlob> {
    this.assertHeld();
    // An upload nothing was appended to has no file yet (an empty blob).
    if (this.durable === 0 && !(await this.blobs.statUpload(this.id))) await this.append(emptySource());
    const digest = await this.digest();
    if (expected && expected !== digest) throw digestMismatch(expected, digest);
    const blob = { digest, size: this.durable };
    await this.gate.shared(async () => {
      await this.blobs.commitUpload(this.id, digest);
      await record?.(blob);
    });
    this.sessions.drop(this.id);
    return blob;
  }

  async cancel(): Promise<void> {
    this.sessions.drop(this.id);
    await this.blobs.deleteUpload(this.id);
  }

  /** The request's hold on the session ended (BlobIngest.hold). */
  release(): void {
    this.released = true;
  }

  private assertHeld(): void {
    if (this.released) throw new Error(`upload ${this.id} was released`);
  }

  /** The session's hash state: kept from its last request, else computed from its file. */
  private async hashState(): Promise<SessionState> {
    if (this.state) return this.state;
    const hash = createHash('sha256');
    let read = 0;
    if (this.durable > 0) {
      const info = await this.blobs.statUpload(this.id);
      if (!info || info.size < this.durable) {
        throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `Upload ${this.id} lost its bytes (a crash?); start it again`);
      }
      for await (const chunk of await this.blobs.readUpload(this.id, this.durable)) {
        hash.update(chunk as Buffer);
        read += (chunk as Buffer).length;
      }
      if (read !== this.durable) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `Upload ${this.id} lost its bytes; start it again`);
    }
    this.state = { hash, offset: this.durable };
    return this.state;
  }
}

/** The keyed lock of one upload session's writers. */
function sessionKey(id: string): string {
  return `upload:${id}`;
}

function digestMismatch(expected: string, got: string): RegistryError {
  return new RegistryError('DIGEST_INVALID', `Digest mismatch: the content is ${got}, not ${expected}`, { expected, got });
}

/** A finished, empty body: what a request with no bytes looks like to pump(). */
function emptySource(): Readable {
  return Readable.from([]);
}

/**
 * Streams `source` into `sink` through `onChunk`, straight from the source's 'data'
 * events: no intermediate stream or async iterator per chunk (that machinery cost more
 * CPU than the copy). Backpressure: the source pauses while the sink is full or `onChunk`
 * is busy (a tarsum). Resolves once the sink has finished (durable); rejects with the first
 * error of either side or with `signal`'s reason. The source is paused on failure, never
 * destroyed: the caller decides what happens to the rest of it.
 */
export function pump(source: Readable, sink: Writable, onChunk: (chunk: Buffer) => Promise<void> | undefined, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    /** Reasons the source is paused for: a full sink, a busy observer. */
    let holds = 0;
    let sinceRelease = 0;
    const release = () => {
      if (--holds === 0 && !settled) source.resume();
    };
    const hold = () => {
      if (holds++ === 0) source.pause();
    };
    const onData = (chunk: Buffer) => {
      const busy = onChunk(chunk);
      if (!sink.write(chunk)) {
        hold();
        sink.once('drain', release);
      }
      if (busy) {
        hold();
        busy.then(release, fail);
      }
      sinceRelease += chunk.length;
      if (sinceRelease >= RELEASE_EVERY_BYTES) {
        sinceRelease = 0;
        releaseDeadBuffers();
      }
    };
    const onAbort = () => fail(signal?.reason);
    const stopSource = finished(source, { writable: false }, (err) => {
      if (err) fail(err);
      else if (!settled) sink.end();
    });
    const stopSink = finished(sink, (err) => {
      if (err) fail(err);
      else done();
    });
    const cleanup = () => {
      settled = true;
      source.off('data', onData);
      sink.off('drain', release);
      signal?.removeEventListener('abort', onAbort);
      stopSource();
      stopSink();
    };
    function done() {
      if (settled) return;
      cleanup();
      resolve();
    }
    function fail(err: unknown) {
      if (settled) return;
      cleanup();
      source.pause();
      reject(err);
    }
    if (signal?.aborted) return fail(signal.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    source.on('data', onData);
    source.resume();
  });
}

/**
 * A client that goes away mid-upload is an input problem, not a server fault; a full disk
 * is INSUFFICIENT_STORAGE. `what` names the upload in the message (`layer`, `blob`).
 */
export function asUploadError(err: unknown, what = 'blob'): unknown {
  if (err instanceof RegistryError) return err;
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || (err as Error)?.message === 'aborted') {
    return invalidInput(`${what[0].toUpperCase()}${what.slice(1)} upload was interrupted`);
  }
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new RegistryError('INSUFFICIENT_STORAGE', `Not enough storage space for this ${what}`);
  }
  return err;
}
