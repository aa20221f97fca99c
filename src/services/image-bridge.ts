/**
 * How v1 and v2 see each other's images (the V1Face of manifests.ts). One store, one set of
 * tags; an image pushed over either API pulls over both.
 *
 * v2 → v1, when a manifest is pushed: an image manifest whose config is a container image
 * config and whose layers are tar or tar+gzip gets v1 images, derived exactly as the CLI
 * (and docker ≥ 1.10's v1 push, moby push_v1.go) derives them (domain/v1-ids.ts): ChainID
 * ids below the top, the config digest as the top id, the config spliced into the top JSON.
 * So `registry pull` writes the original config back and `docker load` reports the image ID
 * docker had. Their layers are the pushed blobs (one file, whatever face reads it). An index
 * shows its linux/amd64 image to v1.
 *
 * v1 → v2, when a v1 tag is pulled over v2: a schema 2 manifest (or OCI, for a client that
 * takes only OCI) synthesized from the chain, stored once and linked into the repository,
 * so the same bytes come back every time, also after restarts:
 *   config = the original config bytes when the chain came from a current-layout push (the
 *            top JSON is `{"id","parent",` + config, see v1-ids.ts), else one built from the
 *            top image's JSON as the CLI's pull builds it (recoverConfig);
 *   layers = the v1 layer blobs, typed by their real compression (gzip → tar.gzip, plain →
 *            the uncompressed tar type); each layer's diff_id (sha256 of the uncompressed
 *            bytes) is computed once and kept (LayerFacts).
 * A v1 image that came from a v2 push is shown through the manifest that was pushed.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { sha256Of, isSha256Digest, type Digest } from '../domain/digest.js';
import { RegistryError } from '../domain/errors.js';
import { defaultPlatformEntry, isForeignLayer, MEDIA, parseManifest, type ParsedManifest } from '../domain/manifest.js';
import type { ImageId, RepoName } from '../domain/names.js';
import type { LayerCompression, LayerFacts } from '../domain/records.js';
import { deriveV1Images, recoverConfig, type PulledMeta } from '../domain/v1-ids.js';
import type { BlobStore } from '../store/blobs/blob-store.js';
import type { ImageManifestStore, LayerFactsStore, ManifestFlavor, ManifestStore } from '../store/metadata/ports.js';
import type { BlobIngest } from './blob-ingest.js';
import type { BlobService, BlobView } from './blobs.js';
import type { WriteGate } from '../store/locks/locks.js';
import type { ImageService } from './images.js';
import type { V1Face } from './manifests.js';

/** Configs larger than this are not read for a v1 face (a real one is a few KiB). */
const MAX_CONFIG_BYTES = 8 * 1024 * 1024;
const CONFIG_TYPES: ReadonlySet<string> = new Set([MEDIA.dockerConfig, MEDIA.ociConfig]);
/** Layer types v1 clients can unpack (the rest: zstd, foreign, artifacts). */
const V1_LAYER_TYPES: ReadonlySet<string> = new Set([MEDIA.dockerLayerGzip, MEDIA.dockerLayerTar, MEDIA.ociLayerTar, MEDIA.ociLayerGzip]);

const LAYER_TYPE: Record<ManifestFlavor, Partial<Record<LayerCompression, string>>> = {
  docker: { none: MEDIA.dockerLayerTar, gzip: MEDIA.dockerLayerGzip },
  oci: { none: MEDIA.ociLayerTar, gzip: MEDIA.ociLayerGzip, zstd: MEDIA.ociLayerZstd },
};

export class ImageBridge implements V1Face {
  /** Syntheses in progress, so that concurrent pulls of one v1 tag make one manifest. */
  private readonly making = new Map<string, Promise<Digest>>();
  private readonly measuring = new Map<string, Promise<LayerFacts>>();

  constructor(
    private readonly meta: ManifestStore & LayerFactsStore & ImageManifestStore,
    private readonly store: BlobStore,
    private readonly blobs: BlobService,
    private readonly images: ImageService,
    private readonly ingest: BlobIngest,
    private readonly gate: WriteGate,
    private readonly now: () => Date = () => new Date(),
  ) {}

  // ── v2 → v1 ───────────────────────────────────────────────────────────────────────────

  async imagesFor(_name: RepoName, digest: Digest, manifest: ParsedManifest): Promise<ImageId | null> {
    if (manifest.kind === 'index') return this.imageOfIndex(manifest);
    const config = manifest.config;
    if (!config || !CONFIG_TYPES.has(config.mediaType) || config.size > MAX_CONFIG_BYTES) return null;
    if (manifest.layers.length === 0 || !manifest.layers.every((l) => V1_LAYER_TYPES.has(l.mediaType) && !isForeignLayer(l))) return null;
    const configBytes = await this.readSmallBlob(config.digest);
    if (!configBytes) return null;
    let derived: ReturnType<typeof deriveV1Images>;
    try {
      derived = deriveV1Images(configBytes);
    } catch {
      return null; // not an image config v1 can show (no diff_ids, not JSON)
    }
    if (derived.images.length !== manifest.layers.length) return null;
    const chain = derived.images.map((image, i) => ({
      id: image.id as ImageId,
      parent: image.parent as ImageId | null,
      json: image.json,
      layer: { digest: manifest.layers[i].digest, size: manifest.layers[i].size },
    }));
    if (!(await this.images.adopt(chain))) return null;
    const top = chain[chain.length - 1].id;
    // A v1 tag of this image (now or later) shows the manifest that was pushed.
    await this.meta.putImageManifest(top, manifest.mediaType === MEDIA.ociManifest ? 'oci' : 'docker', digest);
    return top;
  }

  /** The image of an index's linux/amd64 entry, when that entry has a v1 face. */
  private async imageOfIndex(index: ParsedManifest): Promise<ImageId | null> {
    const entry = defaultPlatformEntry(index);
    if (!entry) return null;
    const bytes = await this.meta.getManifest(entry.digest);
    if (!bytes) return null;
    let child: ParsedManifest;
    try {
      child = parseManifest(bytes, entry.mediaType);
    } catch {
      return null;
    }
    if (child.kind !== 'image' || !child.config) return null;
    const top = child.config.digest.slice('sha256:'.length) as ImageId;
    const image = await this.images.find(top);
    return image?.status === 'complete' ? top : null;
  }

  // ── v1 → v2 ───────────────────────────────────────────────────────────────────────────

  async manifestFor(name: RepoName, imageId: ImageId, flavor: ManifestFlavor): Promise<Digest> {
    const known = await this.meta.getImageManifest(imageId, flavor);
    if (known && isSha256Digest(known) && (await this.meta.getManifest(known))) {
      await this.linkInto(name, known);
      return known;
    }
    const key = `${imageId}!${flavor}`;
    let making = this.making.get(key);
    if (!making) {
      making = this.synthesize(name, imageId, flavor).finally(() => this.making.delete(key));
      this.making.set(key, making);
    }
    const digest = await making;
    await this.linkInto(name, digest);
    return digest;
  }

  /** Builds the manifest of a v1 chain, stores it into `name` (with its blobs), records it for the image. */
  private async synthesize(name: RepoName, imageId: ImageId, flavor: ManifestFlavor): Promise<Digest> {
    const ancestry = await this.images.getAncestry(imageId);
    const chain = [...ancestry].reverse();
    const metas: PulledMeta[] = [];
    const layers: Array<{ mediaType: string; size: number; digest: string }> = [];
    const held: BlobView[] = [];
    const diffIds: string[] = [];
    for (const id of chain) {
      const view = await this.images.getJson(id);
      const layer = await this.images.getLayer(id);
      const facts = await this.layerFacts(layer.digest);
      const mediaType = LAYER_TYPE[flavor][facts.compression];
      if (!mediaType) {
        throw new RegistryError('MANIFEST_UNKNOWN', `Image ${id}: its layer is ${facts.compression}-compressed, which a ${flavor} manifest cannot carry`);
      }
      metas.push({ id, json: view.json });
      layers.push({ mediaType, size: layer.size, digest: layer.digest });
      held.push({ digest: layer.digest as Digest, size: layer.size });
      diffIds.push(facts.diffId);
    }
    const config = recoverConfig(metas, diffIds).bytes;
    const configBlob = await this.storeBlob(config);
    const doc = {
      schemaVersion: 2,
      mediaType: flavor === 'docker' ? MEDIA.dockerManifest : MEDIA.ociManifest,
      config: { mediaType: flavor === 'docker' ? MEDIA.dockerConfig : MEDIA.ociConfig, size: configBlob.size, digest: configBlob.digest },
      layers,
    };
    // Fixed key order and layout: the same chain always gives the same bytes.
    const bytes = Buffer.from(JSON.stringify(doc, null, 3));
    const digest = sha256Of(bytes);
    await this.gate.shared(async () => {
      await this.blobs.linkStored(name, [configBlob, ...held]);
      await this.meta.putManifest(name, digest, bytes, { mediaType: doc.mediaType, size: bytes.length, createdAt: this.now().toISOString() });
      await this.meta.putImageManifest(imageId, flavor, digest);
    });
    return digest;
  }

  /**
   * Makes `name` hold a stored manifest and the blobs it names (a v1 tag shown over v2 in
   * another repository than the one it was first shown in).
   */
  private async linkInto(name: RepoName, digest: Digest): Promise<void> {
    if (await this.meta.getManifestLink(name, digest)) return;
    const bytes = await this.meta.getManifest(digest);
    if (!bytes) throw new RegistryError('MANIFEST_UNKNOWN', `Manifest unknown: ${digest}`);
    const manifest = parseManifest(bytes, undefined);
    const blobs: BlobView[] = [];
    for (const d of manifest.kind === 'image' && manifest.config ? [manifest.config, ...manifest.layers] : []) {
      if (isForeignLayer(d)) continue;
      const info = await this.store.stat(d.digest);
      if (!info) throw new RegistryError('MANIFEST_UNKNOWN', `Manifest ${digest}: blob ${d.digest} is missing`);
      blobs.push({ digest: d.digest, size: info.size });
    }
    await this.gate.shared(async () => {
      await this.blobs.linkStored(name, blobs);
      await this.meta.putManifest(name, digest, bytes, { mediaType: manifest.mediaType, size: bytes.length, createdAt: this.now().toISOString() });
    });
  }

  /** A small blob (a config) stored through blob ingest; the same bytes are one blob. */
  private async storeBlob(bytes: Buffer): Promise<BlobView> {
    const digest = sha256Of(bytes);
    if (await this.store.stat(digest)) return { digest, size: bytes.length };
    const upload = await this.ingest.begin();
    try {
      await upload.append(Readable.from([bytes]));
      return await upload.commit(digest);
    } finally {
      await upload.cancel();
    }
  }

  private async readSmallBlob(digest: string): Promise<Buffer | null> {
    const info = await this.store.stat(digest);
    if (!info || info.size > MAX_CONFIG_BYTES) return null;
    const chunks: Buffer[] = [];
    for await (const chunk of await this.store.read(digest)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  // ── layer facts ───────────────────────────────────────────────────────────────────────

  /** Compression and diff_id of a layer blob: computed once (one full read), then kept. */
  async layerFacts(digest: string): Promise<LayerFacts> {
    const known = await this.meta.getLayerFacts(digest);
    if (known) return known;
    let measuring = this.measuring.get(digest);
    if (!measuring) {
      measuring = this.measure(digest).finally(() => this.measuring.delete(digest));
      this.measuring.set(digest, measuring);
    }
    return measuring;
  }

  private async measure(digest: string): Promise<LayerFacts> {
    const head = Buffer.alloc(6);
    const reader = await this.store.openReader(digest);
    let n: number;
    try {
      n = await reader.read(head, head.length, 0);
    } finally {
      await reader.close();
    }
    const compression = compressionOf(head.subarray(0, n));
    let diffId: string;
    if (compression === 'none') diffId = digest;
    else if (compression === 'gzip') {
      const hash = createHash('sha256');
      await pipeline(await this.store.read(digest), zlib.createGunzip(), async function* (source) {
        for await (const chunk of source) hash.update(chunk as Buffer);
      });
      diffId = `sha256:${hash.digest('hex')}`;
    } else {
      throw new RegistryError('MANIFEST_UNKNOWN', `Layer ${digest} is ${compression}-compressed: the registry cannot compute its diff_id to show it over v2`);
    }
    const facts: LayerFacts = { compression, diffId };
    await this.meta.putLayerFacts(digest, facts);
    return facts;
  }
}

/** A layer's compression from its first bytes (its magic number). */
export function compressionOf(head: Buffer): LayerCompression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32BE(0) === 0x28b52ffd) return 'zstd';
  if (head.length >= 3 && head.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (head.length >= 6 && head.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  return 'none';
}
