/**
 * Seeding the test double: real images pushed through the real services, in-process (no
 * HTTP), in the order and with the data a push makes:
 *
 *   push start   repos.mergeImages([{id}, …])       creates the repository, lists the ids
 *   per image, base first (skipped when it is already complete, as a push skips it):
 *                images.putJson → images.putLayer → images.putChecksum
 *   tag          repos.putTag(topId), with the User-Agent of `registry push`
 *   push end     repos.mergeImages([{id, checksum}, …])
 *
 * Images given as layers are built as `registry push` would find them in a `docker save`
 * tarball: each layer a tar (or the bytes you give), a config whose rootfs.diff_ids are the
 * layers' sha256, and the v1 ids and JSON derived from it exactly as the CLI derives them
 * (src/client/v1-ids.ts, README "Image ids"). Configs are deterministic (a fixed `created`),
 * so the same seed gives the same ids every time.
 *
 * Registry API v2: a v1 tag is shown over v2 as a Docker schema 2 manifest naming the
 * config blob and the same layer blobs (services/image-bridge.ts). The seeder makes that
 * manifest right after the tag, as the first v2 pull would, and gives its digest
 * (`manifestDigest`): a seeded image pulls over both APIs.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { compressionOf, readArchive } from '../client/archive-read.js';
import { USER_AGENT } from '../client/http.js';
import { LayerCheck } from '../client/layer-check.js';
import { tarOf } from '../client/tar-write.js';
import { deriveV1Images } from '../domain/v1-ids.js';
import { parseImageId, parseRepoPath, parseTag, type RepoName, type Tag } from '../domain/names.js';
import type { Services } from '../compose.js';

/**
 * One layer: bytes are the layer as it is (a tar, or a gzip-compressed tar), and so are
 * `base64` bytes (for JSON seed files); a string becomes a tar holding one file,
 * `layer<N>.txt` (N: the layer's position, from 0), with that text; `files` becomes a tar
 * holding those files (paths relative to the image root).
 */
export type SeedLayer = Uint8Array | string | { files: Record<string, string | Uint8Array> } | { base64: string };

export interface SeedImage {
  /** Base first; at least one. */
  layers: SeedLayer[];
  /**
   * Keys of the image config (`architecture`, `os`, `config: {Env, Cmd, …}`, `created`,
   * `history`, …) over the defaults (amd64, linux, a fixed `created`, one history entry per
   * layer). `rootfs` is always the layers'.
   */
  config?: Record<string, unknown>;
}

export interface SeedRepository {
  /** `namespace/repository`, or `repository` for `library/repository`. */
  name: string;
  private?: boolean;
  description?: string;
  /** Tag → image. Tags are set in the order given. */
  tags?: Record<string, SeedImage>;
  /** Who pushed the tags (the Hub API's `last_updater`); default: the namespace's account, if there is one. */
  pusher?: string;
}

export interface SeedSpec {
  repositories?: SeedRepository[];
}

/** One v1 image of a seeded image (one per layer), base first. */
export interface SeededLayer {
  /** The v1 image id. */
  id: string;
  parent: string | null;
  /** `sha256:` of the layer bytes as stored (the blob). */
  digest: string;
  /** `sha256:` of the uncompressed layer (the config's diff_id); null for legacy tarballs. */
  diffId: string | null;
  size: number;
  /** `X-Docker-Checksum-Payload`: sha256 of the image JSON, "\n" and the layer (null for images a v2 push made). */
  payloadChecksum: string | null;
}

export interface SeededImage {
  /** The v1 id the tag points at: for images built from a config, the docker image ID. */
  id: string;
  /** `sha256:` of the config (null for legacy tarballs, which have none). */
  configDigest: string | null;
  /** The digest of the Docker schema 2 manifest that shows the image over the Registry API v2. */
  manifestDigest: string;
  layers: SeededLayer[];
}

export interface SeedResult {
  /** By the name each repository was given in the spec, then by tag. */
  repositories: Record<string, { tags: Record<string, SeededImage> }>;
}

/** A created time for configs that do not say: fixed, so a seed always gives the same ids. */
const CREATED = '2020-01-01T00:00:00Z';

/** One image ready to push: its v1 id and JSON, and its layer. */
interface PushableImage {
  id: string;
  parent: string | null;
  json: Buffer;
  diffId: string | null;
  /** Opens the layer bytes; `payload()` is the payload checksum once they have been read. */
  open(): { stream: Readable; payload(): Promise<string> };
}

export class Seeder {
  constructor(private readonly services: () => Services) {}

  async seed(spec: SeedSpec): Promise<SeedResult> {
    const result: SeedResult = { repositories: {} };
    for (const repository of spec.repositories ?? []) {
      const name = parseRepoPath(repository.name);
      const { repos } = this.services();
      if (repository.private !== undefined || repository.description !== undefined) {
        await repos.setProperties(name, {
          ...(repository.private !== undefined ? { access: repository.private ? 'private' : 'public' } : {}),
          ...(repository.description !== undefined ? { description: repository.description } : {}),
        });
      } else {
        await repos.ensure(name);
      }
      const tags: Record<string, SeededImage> = {};
      for (const [tag, image] of Object.entries(repository.tags ?? {})) {
        const built = buildImage(image);
        const pushed = await this.push(name, parseTag(tag), built.images, repository.pusher);
        tags[tag] = { id: pushed.id, configDigest: built.configDigest, manifestDigest: pushed.manifestDigest, layers: pushed.layers };
      }
      result.repositories[repository.name] = { tags };
    }
    return result;
  }

  /** Pushes an image of a `docker save` tarball (any layout `registry push` reads) as `ref` (`ns/repo[:tag]`). */
  async fromTarball(file: string, ref: string, options: { image?: string; layout?: 'legacy' | 'current' } = {}): Promise<SeededImage> {
    const m = /^([^:]+)(?::([^:/]+))?$/.exec(ref);
    if (!m) throw new TypeError(`seed.fromTarball: ${JSON.stringify(ref)} is not a reference "namespace/repository[:tag]"`);
    const name = parseRepoPath(m[1]);
    const plan = await readArchive(file, options);
    const images: PushableImage[] = plan.images.map((image) => ({
      id: image.id,
      parent: image.parent,
      json: image.json,
      diffId: image.diffId,
      open() {
        const check = new LayerCheck(image);
        const { offset, size } = image.layer;
        const source: Readable = size > 0 ? fs.createReadStream(file, { start: offset, end: offset + size - 1 }) : Readable.from([]);
        const tap = check.tap();
        source.once('error', (err) => tap.destroy(err));
        tap.once('close', () => source.destroy());
        source.pipe(tap);
        return { stream: tap, payload: () => check.finish() };
      },
    }));
    const pushed = await this.push(name, parseTag(m[2] ?? 'latest'), images, undefined);
    return { id: pushed.id, configDigest: plan.configDigest, manifestDigest: pushed.manifestDigest, layers: pushed.layers };
  }

  /** What `registry push` does on the wire, as service calls (see the top of this file). */
  private async push(
    name: RepoName,
    tag: Tag,
    images: PushableImage[],
    pusher: string | undefined,
  ): Promise<{ id: string; manifestDigest: string; layers: SeededLayer[] }> {
    const { images: imageService, repos, users, bridge } = this.services();
    await repos.mergeImages(name, images.map((image) => ({ id: image.id })));
    const layers: SeededLayer[] = [];
    for (const image of images) {
      const id = parseImageId(image.id);
      let record = await imageService.find(id);
      if (record?.status !== 'complete') {
        await imageService.putJson(id, image.json, undefined);
        const { stream, payload } = image.open();
        try {
          await imageService.putLayer(id, stream);
        } finally {
          // Read to the end when it worked; a refused upload leaves it unread (and open).
          stream.destroy();
        }
        await imageService.putChecksum(id, await payload(), undefined);
        record = await imageService.getComplete(id);
      }
      const layer = record.layer;
      if (!layer) throw new Error(`image ${id} is complete without a layer`);
      layers.push({ id, parent: image.parent, digest: layer.digest, diffId: image.diffId, size: layer.size, payloadChecksum: layer.payloadChecksum });
    }
    const top = images[images.length - 1];
    const actor = pusher ?? ((await users.get(name.namespace)) ? name.namespace : null);
    await repos.putTag(name, tag, top.id, USER_AGENT, actor);
    await repos.mergeImages(name, layers.map((layer) => (layer.payloadChecksum ? { id: layer.id, checksum: layer.payloadChecksum } : { id: layer.id })));
    // The v2 side: the manifest (and config blob) a v2 pull of the tag gets.
    const manifestDigest = await bridge.manifestFor(name, parseImageId(top.id), 'docker');
    return { id: top.id, manifestDigest, layers };
  }
}

/** The v1 images of a seed image, base first, as the CLI would push them from a tarball. */
function buildImage(image: SeedImage): { images: PushableImage[]; configDigest: string } {
  if (!Array.isArray(image.layers) || image.layers.length === 0) throw new TypeError('seed: every image needs at least one layer');
  const layers = image.layers.map(layerBytes);
  const diffIds = layers.map((bytes) => `sha256:${sha256(compressionOf(bytes) === 'gzip' ? zlib.gunzipSync(bytes) : bytes)}`);
  const given = image.config ?? {};
  const config = {
    architecture: 'amd64',
    os: 'linux',
    created: CREATED,
    config: {},
    history: layers.map((_, i) => ({ created: CREATED, created_by: `seed layer ${i}` })),
    ...given,
    rootfs: { type: 'layers', diff_ids: diffIds },
  };
  const { images, configDigest } = deriveV1Images(Buffer.from(JSON.stringify(config)));
  const pushable = images.map((derived, i) => ({
    id: derived.id,
    parent: derived.parent,
    json: derived.json,
    diffId: derived.diffId,
    open: () => ({
      stream: Readable.from([layers[i]]),
      payload: async () => `sha256:${createHash('sha256').update(derived.json).update('\n').update(layers[i]).digest('hex')}`,
    }),
  }));
  return { images: pushable, configDigest };
}

function layerBytes(layer: SeedLayer, index: number): Buffer {
  if (layer instanceof Uint8Array) return Buffer.from(layer);
  if (typeof layer === 'string') return tarOf([{ name: `layer${index}.txt`, data: Buffer.from(layer) }]);
  if (layer && typeof layer === 'object' && 'files' in layer && layer.files && typeof layer.files === 'object') return filesTar(layer.files);
  if (layer && typeof layer === 'object' && 'base64' in layer && typeof layer.base64 === 'string') return Buffer.from(layer.base64, 'base64');
  throw new TypeError(`seed: layer ${index} must be bytes, a string, {files: {path: content}} or {base64}`);
}

/** A tar of `files` (deterministic: uid/gid 0, mtime 0), with the directories they need. */
function filesTar(files: Record<string, string | Uint8Array>): Buffer {
  const entries: Array<{ name: string; data?: Buffer }> = [];
  const dirs = new Set<string>();
  for (const [path, content] of Object.entries(files)) {
    const clean = path.replace(/^\/+/, '');
    const parts = clean.split('/');
    if (!clean || parts.some((part) => part === '' || part === '.' || part === '..')) throw new TypeError(`seed: ${JSON.stringify(path)} is not a file path`);
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!dirs.has(dir)) {
        dirs.add(dir);
        entries.push({ name: dir });
      }
    }
    entries.push({ name: clean, data: Buffer.from(content) });
  }
  return tarOf(entries);
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
