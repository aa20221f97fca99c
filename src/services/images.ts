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
 * request at a time may write a given image (json, layer or checksum), on whichever node
 * (a keyed lock, `image:<id>`): a concurrent one gets UPLOAD_IN_PROGRESS instead of racing it.
 *
 * Caches: none here. One node caches complete images in front of its store
 * (store/metadata/image-cache.ts, which sees every delete); nodes sharing PostgreSQL read
 * the store every time, as another node's garbage collection may delete an image.
 */
import type { Readable } from 'node:stream';
import { assertNonEmptyChecksum, checksumMatches, isTarsum, LayerDigester, parseChecksum } from '../domain/checksums.js';
import { invalidInput, notFound, RegistryError } from '../domain/errors.js';
import { isImageId, type ImageId } from '../domain/names.js';
import { TarsumStream, tarsumVersionOf } from '../domain/tarsum.js';
import type { ImageRecord } from '../domain/records.js';
import type { BlobReader, BlobStore } from '../store/blobs/blob-store.js';
import type { ImageStore } from '../store/metadata/ports.js';
import { asUploadError, type BlobIngest } from './blob-ingest.js';
import type { Locks } from '../store/locks/locks.js';

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

export class ImageService {
  private completions = 0;
  private forgets = 0;

  constructor(
    private readonly meta: ImageStore,
    private readonly blobs: BlobStore,
    private readonly locks: Locks,
    private readonly ingest: BlobIngest,
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

    await this.exclusive(id, () => this.locks.shared(async () => {
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
      const upload = await this.ingest.begin();
      try {
        await upload.append(source, { signal, observe: (chunk) => digester.update(chunk) });
        const got = await digester.result();
        if (record.claimedChecksum && !checksumMatches(record.claimedChecksum, got)) {
          throw new RegistryError('CHECKSUM_MISMATCH', 'Checksum mismatch');
        }
        // Publishing the blob and recording it happen together, never across a GC sweep.
        const blob = await upload.commit(null, (b) =>
          this.meta.updateImage({
            ...record,
            layer: { digest: b.digest, size: b.size, payloadChecksum: got.payloadChecksum, tarsum: got.tarsum },
          }),
        );
        return { digest: blob.digest, size: blob.size };
      } catch (err) {
        throw asUploadError(err, 'layer');
      } finally {
        await upload.cancel();
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
      await this.locks.shared(async () => {
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
    await this.exclusive(id, () => this.locks.shared(async () => {
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
   * Records complete images whose layers are stored blobs already (the v1 face of a
   * manifest pushed over v2), base first: each image's parent is the one before it. An
   * image that is complete already is kept as it is (complete images are immutable); one
   * a v1 request is writing right now makes the whole call give up (false), leaving what
   * was adopted before it. The caller holds the write gate.
   */
  async adopt(chain: ReadonlyArray<{ id: ImageId; parent: ImageId | null; json: Buffer; layer: { digest: string; size: number } }>): Promise<boolean> {
    let parentAncestry: readonly ImageId[] = [];
    for (const image of chain) {
      const existing = await this.meta.getImage(image.id);
      let ancestry: readonly ImageId[];
      if (existing?.status === 'complete') {
        ancestry = (await this.meta.getAncestry(image.id)) ?? [image.id];
      } else {
        // Asked only of images not complete yet (on many nodes, a question to PostgreSQL).
        if (await this.isWriting(image.id)) return false;
        ancestry = [image.id, ...parentAncestry];
        if (ancestry.length > MAX_ANCESTRY) return false;
        const at = this.now().toISOString();
        const record: ImageRecord = {
          id: image.id,
          parent: image.parent,
          status: 'complete',
          jsonSize: image.json.length,
          claimedChecksum: null,
          layer: { digest: image.layer.digest, size: image.layer.size, payloadChecksum: null, tarsum: null },
          createdAt: existing?.createdAt ?? at,
          completedAt: at,
        };
        await this.meta.putImage(record, image.json, [...ancestry]);
        this.completions += 1;
      }
      parentAncestry = ancestry;
    }
    return true;
  }

  /**
   * Counters for caches of what depends on images' states (the repositories' image lists):
   * `completions` grows whenever an image becomes complete, `forgets` whenever an image is
   * deleted or repaired (see forget). Nothing else changes which images are complete:
   * a complete image is immutable. They count this node's changes only: caches keyed on
   * them must be of a store only this process writes (see RepositoryService.listImages).
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

  /**
   * The record whatever its state, or null. One node caches complete images in front of the
   * store (store/metadata/image-cache.ts); nodes sharing PostgreSQL read it every time.
   */
  find(id: ImageId): Promise<ImageRecord | null> {
    return this.meta.getImage(id);
  }

  async getJson(id: ImageId): Promise<ImageJsonView> {
    const record = await this.getComplete(id);
    const json = await this.meta.getImageJson(id);
    if (!json) throw notFound('Image not found');
    return { json, layerSize: record.layer?.size ?? null, payloadChecksum: record.layer?.payloadChecksum ?? null };
  }

  /** [id, parent, …]; frozen (the same array while the image cache holds it). */
  async getAncestry(id: ImageId): Promise<readonly ImageId[]> {
    await this.getComplete(id);
    return Object.freeze((await this.meta.getAncestry(id)) ?? [id]);
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

  /** Is some request (on any node) writing this image right now (garbage collection spares it)? */
  isWriting(id: ImageId): Promise<boolean> {
    return this.locks.isKeyHeld(imageKey(id));
  }

  /** Counts a delete or a repair of an image (see stateChanges). */
  forget(_id: ImageId): void {
    this.forgets += 1;
  }

  private async exclusive<T>(id: ImageId, fn: () => Promise<T>): Promise<T> {
    const held = await this.locks.keyed(imageKey(id), fn);
    if (!held.acquired) throw new RegistryError('UPLOAD_IN_PROGRESS', 'Another request is uploading this image; retry later');
    return held.value;
  }
}

/** The keyed lock of one image's writers. */
function imageKey(id: ImageId): string {
  return `image:${id}`;
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
