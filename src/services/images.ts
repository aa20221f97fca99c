/**
 * Images: the v1 upload state machine and reads.
 *
 *   PUT json ──▶ pending (no layer) ──PUT layer──▶ pending (layer stored, checksums known)
 *                   ▲     ▲                              │
 *                   │     └──── PUT layer again ─────────┤ (a failed or abandoned push
 *                   └──── PUT another json ──────────────┤  can simply be pushed again)
 *                                                        └─PUT checksum (verified)──▶ complete
 *
 * The same json again changes nothing (a second pusher of the image keeps the first one's
 * layer). An old-style PUT checksum (only X-Docker-Checksum) records the checksum the
 * layer must match, in any pending state. Only complete images are served or tagged; a
 * complete image is immutable (409). One
 * request at a time may write a given image (json, layer or checksum): a concurrent one
 * gets UPLOAD_IN_PROGRESS instead of racing it.
 */
import { finished, type Readable, type Writable } from 'node:stream';
import { assertNonEmptyChecksum, checksumMatches, isTarsum, LayerDigester, parseChecksum } from '../domain/checksums.js';
import { invalidInput, notFound, RegistryError } from '../domain/errors.js';
import { isImageId, type ImageId } from '../domain/names.js';
import { TarsumStream, tarsumVersionOf } from '../domain/tarsum.js';
import type { ImageRecord } from '../domain/records.js';
import type { BlobReader, BlobStore } from '../store/blobs/blob-store.js';
import type { MetadataStore } from '../store/metadata/metadata-store.js';
import { releaseDeadBuffers } from '../memory.js';
import type { Gate } from './gate.js';
import { Lru } from '../domain/lru.js';

export interface ImageJsonView {
  json: Buffer;
  layerSize: number | null;
  payloadChecksum: string | null;
}

export interface LayerView {
  digest: string;
  size: number;
}

const MAX_ANCESTRY = 1024;
/** Dead socket chunks are freed this often during an upload (see memory.ts). */
const RELEASE_EVERY_BYTES = 2 * 1024 * 1024;

export class ImageService {
  /** Images some request is writing right now (json, layer or checksum). */
  private readonly writing = new Set<ImageId>();
  /** Complete images are immutable: their records, JSON and ancestry are cached once read. */
  private readonly completeCache = new Lru<ImageId, ImageRecord>(20_000);
  private readonly jsonCache = new Lru<ImageId, Buffer>(20_000, 8 * 1024 * 1024, (b) => b.length);
  private readonly ancestryCache = new Lru<ImageId, readonly ImageId[]>(5_000, 4 * 1024 * 1024, (a) => a.length * 72);
  private completions = 0;
  private forgets = 0;

  constructor(
    private readonly meta: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly gate: Gate,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** PUT /v1/images/:id/json */
  async putJson(id: ImageId, body: Buffer, announcedChecksum: string | undefined): Promise<void> {
    const data = parseImageJson(body);
    if (!('id' in data)) throw invalidInput("Missing key `id' in JSON");
    if (data.id !== id) throw invalidInput('JSON data contains invalid id');
    const claimed = announcedChecksum === undefined || announcedChecksum.trim() === ''
      ? null
      : parseChecksum(announcedChecksum, 'X-Docker-Checksum');
    let parent: ImageId | null = null;
    if (data.parent !== undefined && data.parent !== null && data.parent !== '') {
      if (!isImageId(data.parent)) throw invalidInput('JSON data contains an invalid parent id');
      if (data.parent === id) throw invalidInput('Image cannot be its own parent');
      parent = data.parent;
    }

    await this.exclusive(id, () => this.gate.withShared(async () => {
      const existing = await this.meta.getImage(id);
      if (existing?.status === 'complete') throw new RegistryError('ALREADY_EXISTS', 'Image already exists');
      // The same json again (a second pusher of the same image, or a retry) changes nothing:
      // the layer another request uploaded stays. A different json starts the image over.
      if (existing && (claimed === null || claimed === existing.claimedChecksum)) {
        if ((await this.meta.getImageJson(id))?.equals(body)) return;
      }
      let ancestry: ImageId[] = [id];
      if (parent) {
        const parentRecord = await this.meta.getImage(parent);
        if (!parentRecord) throw invalidInput('Image depends on a non existing parent');
        if (parentRecord.status !== 'complete') throw invalidInput('Image depends on a parent that is still being uploaded');
        const parentAncestry = (await this.meta.getAncestry(parent)) ?? [parent];
        if (parentAncestry.length >= MAX_ANCESTRY) throw invalidInput(`Image ancestry deeper than ${MAX_ANCESTRY}`);
        ancestry = [id, ...parentAncestry];
      }
      const record: ImageRecord = {
        id,
        parent,
        status: 'pending',
        jsonSize: body.length,
        claimedChecksum: claimed,
        layer: null,
        createdAt: existing?.createdAt ?? this.now().toISOString(),
        completedAt: null,
      };
      await this.meta.putImage(record, body, ancestry);
    }));
  }

  /**
   * PUT /v1/images/:id/layer: streams `source` to a temp blob while hashing it, verifies a
   * checksum announced with the json, then publishes the blob. The image stays pending.
   * `source` is read, never destroyed; when `signal` aborts, the upload fails with its reason.
   */
  async putLayer(id: ImageId, source: Readable, signal?: AbortSignal): Promise<LayerView> {
    return this.exclusive(id, async () => {
      const record = await this.meta.getImage(id);
      if (!record) throw notFound('Image not found');
      if (record.status === 'complete') throw new RegistryError('ALREADY_EXISTS', 'Image already exists');
      const json = await this.meta.getImageJson(id);
      if (!json) throw notFound('Image not found');

      const digester = new LayerDigester(json, record.claimedChecksum);
      const writer = await this.blobs.createWriter();
      try {
        await copyLayer(source, digester, writer.stream, signal);
        const got = await digester.result();
        if (record.claimedChecksum && !checksumMatches(record.claimedChecksum, got)) {
          throw new RegistryError('CHECKSUM_MISMATCH', 'Checksum mismatch');
        }
        // Publishing the blob and recording it happen together, never across a GC sweep.
        await this.gate.withShared(async () => {
          await writer.commit(got.digest);
          await this.meta.updateImage({
            ...record,
            layer: { digest: got.digest, size: got.size, payloadChecksum: got.payloadChecksum, tarsum: got.tarsum },
          });
        });
        return { digest: got.digest, size: got.size };
      } catch (err) {
        throw asUploadError(err);
      } finally {
        await writer.abort();
      }
    });
  }

  /**
   * PUT /v1/images/:id/checksum. With `X-Docker-Checksum-Payload` (docker ≥ 0.10) the image
   * becomes complete when the payload checksum matches what the layer upload computed, and
   * the checksum announced for the image (with the json, or by an old-style PUT checksum)
   * matches the layer too. With only `X-Docker-Checksum` (the old style: a tarsum or sha256
   * announced before or after the layer), the checksum is recorded as the image's announced
   * checksum, to be verified by the layer upload and again when the image completes; the
   * image stays pending. With neither: CHECKSUM_REQUIRED (412).
   */
  async putChecksum(id: ImageId, payload: string | undefined, tarsum: string | undefined): Promise<void> {
    const announced = tarsum !== undefined && tarsum.trim() !== '' ? parseChecksum(tarsum, 'X-Docker-Checksum') : null;
    if (payload === undefined) {
      if (announced === null) {
        throw new RegistryError(
          'CHECKSUM_REQUIRED',
          'X-Docker-Checksum-Payload not set. If you are using the Docker daemon, you should upgrade to version 0.10 or later',
        );
      }
      await this.announceChecksum(id, announced);
      return;
    }
    assertNonEmptyChecksum(payload);
    const claimedPayload = parseChecksum(payload, 'X-Docker-Checksum-Payload');

    await this.exclusive(id, async () => {
      const record = await this.meta.getImage(id);
      if (!record) throw notFound('Image not found');
      if (record.status === 'complete') throw new RegistryError('ALREADY_EXISTS', 'Cannot set this image checksum: image already complete');
      if (!record.layer) throw invalidInput('Image layer has not been uploaded yet');
      const layer = record.layer;
      if (!checksumMatches(claimedPayload, { payloadChecksum: layer.payloadChecksum, tarsum: null })) {
        throw new RegistryError('CHECKSUM_MISMATCH', 'Checksum mismatch');
      }
      // A tarsum sent along can only be checked if we computed one while the layer streamed
      // (the client announced it before); otherwise it is recorded as sent.
      if (announced && isTarsum(announced) && layer.tarsum && announced !== layer.tarsum) {
        throw new RegistryError('CHECKSUM_MISMATCH', 'Checksum mismatch (tarsum)');
      }
      // The checksum announced for the image must match the layer. One announced before the
      // layer was checked while it streamed; a tarsum announced after it is computed now.
      const claimed = record.claimedChecksum;
      if (claimed && !checksumMatches(claimed, layer)) {
        const late = isTarsum(claimed) && !layer.tarsum ? await this.storedLayerTarsum(id, layer.digest, claimed) : null;
        if (late !== claimed) throw new RegistryError('CHECKSUM_MISMATCH', 'Checksum mismatch (X-Docker-Checksum)');
      }
      await this.gate.withShared(async () => {
        if (!(await this.blobs.stat(layer.digest))) {
          throw invalidInput('Image layer is missing; upload it again');
        }
        await this.meta.updateImage({
          ...record,
          status: 'complete',
          claimedChecksum: claimed ?? announced,
          completedAt: this.now().toISOString(),
        });
      });
      this.completions += 1;
    });
  }

  /** An old-style PUT checksum (only `X-Docker-Checksum`): recorded, verified later. */
  private async announceChecksum(id: ImageId, checksum: string): Promise<void> {
    await this.exclusive(id, () => this.gate.withShared(async () => {
      const record = await this.meta.getImage(id);
      if (!record) throw notFound('Image not found');
      if (record.status === 'complete') throw new RegistryError('ALREADY_EXISTS', 'Cannot set this image checksum: image already complete');
      await this.meta.updateImage({ ...record, claimedChecksum: checksum });
    }));
  }

  /** The tarsum (of `claimed`'s version) of a stored layer and its image's json. */
  private async storedLayerTarsum(id: ImageId, digest: string, claimed: string): Promise<string | null> {
    const version = tarsumVersionOf(claimed);
    const json = await this.meta.getImageJson(id);
    if (!version || !json) return null;
    const tarsum = new TarsumStream(version, json);
    for await (const chunk of await this.blobs.read(digest)) await tarsum.write(chunk as Buffer);
    return tarsum.digest();
  }

  /**
   * Counters for caches of what depends on images' states (the repositories' image lists):
   * `completions` grows whenever an image becomes complete, `forgets` whenever an image is
   * deleted or repaired (see forget). Nothing else changes which images are complete:
   * a complete image is immutable.
   */
  get stateChanges(): { completions: number; forgets: number } {
    return { completions: this.completions, forgets: this.forgets };
  }

  /** A complete image's record; NOT_FOUND or IMAGE_INCOMPLETE otherwise. */
  async getComplete(id: ImageId): Promise<ImageRecord> {
    const record = await this.find(id);
    if (!record) throw notFound('Image not found');
    if (record.status !== 'complete') throw new RegistryError('IMAGE_INCOMPLETE', 'Image is being uploaded, retry later');
    return record;
  }

  /** The record whatever its state, or null. Complete records are immutable: cached. */
  async find(id: ImageId): Promise<ImageRecord | null> {
    const cached = this.completeCache.get(id);
    if (cached) return cached;
    const record = await this.meta.getImage(id);
    if (record?.status === 'complete') this.completeCache.set(id, record);
    return record;
  }

  async getJson(id: ImageId): Promise<ImageJsonView> {
    const record = await this.getComplete(id);
    let json = this.jsonCache.get(id);
    if (!json) {
      const stored = await this.meta.getImageJson(id);
      if (!stored) throw notFound('Image not found');
      json = stored;
      this.jsonCache.set(id, json);
    }
    return { json, layerSize: record.layer?.size ?? null, payloadChecksum: record.layer?.payloadChecksum ?? null };
  }

  /** [id, parent, …]; frozen and shared (the same array while it is cached). */
  async getAncestry(id: ImageId): Promise<readonly ImageId[]> {
    await this.getComplete(id);
    let ancestry = this.ancestryCache.get(id);
    if (!ancestry) {
      ancestry = Object.freeze((await this.meta.getAncestry(id)) ?? [id]);
      this.ancestryCache.set(id, ancestry);
    }
    return ancestry;
  }

  async getLayer(id: ImageId): Promise<LayerView> {
    const record = await this.getComplete(id);
    if (!record.layer) throw notFound('Image layer not found');
    return { digest: record.layer.digest, size: record.layer.size };
  }

  /** Opens a layer's blob for positional reads (the caller closes it). */
  async openLayer(layer: LayerView): Promise<BlobReader> {
    const reader = await this.blobs.openReader(layer.digest);
    if (reader.size !== layer.size) {
      await reader.close();
      throw new Error(`blob ${layer.digest} has ${reader.size} bytes, the image records ${layer.size}`);
    }
    return reader;
  }

  /** Is some request writing this image right now (garbage collection spares it)? */
  isWriting(id: ImageId): boolean {
    return this.writing.has(id);
  }

  /** Forgets cached records (after a delete or a repair). */
  forget(id: ImageId): void {
    this.forgets += 1;
    this.completeCache.delete(id);
    this.jsonCache.delete(id);
    this.ancestryCache.delete(id);
  }

  private async exclusive<T>(id: ImageId, fn: () => Promise<T>): Promise<T> {
    if (this.writing.has(id)) {
      throw new RegistryError('UPLOAD_IN_PROGRESS', 'Another request is uploading this image; retry later');
    }
    this.writing.add(id);
    try {
      return await fn();
    } finally {
      this.writing.delete(id);
    }
  }
}

function parseImageJson(body: Buffer): Record<string, unknown> {
  let data: unknown;
  try {
    data = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    throw invalidInput('Invalid JSON');
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw invalidInput('Invalid JSON: expected an object');
  return data as Record<string, unknown>;
}

/**
 * Streams `source` into `sink` through `digester`, straight from the source's 'data'
 * events: no intermediate stream or async iterator per chunk (that machinery cost more
 * CPU than the copy). Backpressure: the source pauses while the sink is full or the
 * digester (tarsum) is busy. Resolves once the sink has finished (durable); rejects with
 * the first error of either side or with `signal`'s reason. The source is paused on
 * failure, never destroyed: the caller decides what happens to the rest of it.
 */
function copyLayer(source: Readable, digester: LayerDigester, sink: Writable, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    /** Reasons the source is paused for: a full sink, a busy digester. */
    let holds = 0;
    let sinceRelease = 0;
    const release = () => {
      if (--holds === 0 && !settled) source.resume();
    };
    const hold = () => {
      if (holds++ === 0) source.pause();
    };
    const onData = (chunk: Buffer) => {
      const busy = digester.update(chunk);
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

/** A client that goes away mid-upload is an input problem, not a server fault. */
function asUploadError(err: unknown): unknown {
  if (err instanceof RegistryError) return err;
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || (err as Error)?.message === 'aborted') {
    return invalidInput('Layer upload was interrupted');
  }
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new RegistryError('INSUFFICIENT_STORAGE', 'Not enough storage space for this layer');
  }
  return err;
}
