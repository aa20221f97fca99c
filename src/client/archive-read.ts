/**
 * Reads an image tarball (what `docker save` writes, what `docker load` reads) into a push
 * plan: the v1 images base first, each with its JSON bytes and where its layer lies in the
 * file. Nothing is extracted; layers are streamed from the file later.
 *
 * Layouts:
 * - current (`manifest.json` → Config + Layers; docker 1.10–24, skopeo `docker-archive:`,
 *   docker ≥ 25 which points Layers into `blobs/sha256/…`): ids and JSON derived from the
 *   config (domain/v1-ids.ts);
 * - OCI image layout (`index.json`, `oci-layout`, `blobs/<alg>/<hex>`, e.g. skopeo
 *   `oci-archive:`): the same, from the manifest the index names;
 * - legacy (`repositories`, `<id>/json`, `<id>/layer.tar`, `<id>/VERSION`): ids and JSON
 *   taken as they are in the file (JSON byte-exact), following `parent` links.
 * When `manifest.json` or `index.json` is present the current reading is used, unless
 * `layout: 'legacy'` asks for the legacy part.
 */
import { createHash } from 'node:crypto';
import { isImageId } from '../domain/names.js';
import { TarIndex, TarFormatError } from './tar-index.js';
import { deriveV1Images } from '../domain/v1-ids.js';

export type Compression = 'none' | 'gzip' | 'zstd' | 'bzip2' | 'xz';

export interface PlanImage {
  id: string;
  parent: string | null;
  json: Buffer;
  /** Where the layer bytes are in the tarball. */
  layer: { offset: number; size: number; path: string };
  compression: Compression;
  /** The uncompressed digest the layer must have (current layouts); null for legacy. */
  diffId: string | null;
}

export interface PushPlan {
  layout: 'legacy' | 'docker' | 'oci';
  /** Base first; the last one is what the tag points at. */
  images: PlanImage[];
  topId: string;
  /** The names the tarball gives the image (RepoTags / repositories / OCI ref names). */
  names: string[];
  /** sha256 of the config (current layouts): the docker image ID. */
  configDigest: string | null;
}

export interface ReadOptions {
  layout?: 'legacy' | 'current';
  /** Which image, when the tarball holds several: a RepoTags / repositories name. */
  image?: string;
  /** Platform for OCI indexes that list several (default: linux and this machine's arch). */
  platform?: { os: string; architecture: string };
}

export class ArchiveError extends Error {
  override name = 'ArchiveError';
}

export function compressionOf(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 3 && head.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  return 'none';
}

function parseJson<T>(buf: Buffer, what: string): T {
  try {
    return JSON.parse(buf.toString('utf8')) as T;
  } catch {
    throw new ArchiveError(`${what} is not valid JSON`);
  }
}

function nameMatches(candidate: string, wanted: string): boolean {
  const norm = (s: string) => (/:[^/]+$/.test(s) ? s : `${s}:latest`);
  return candidate === wanted || norm(candidate) === norm(wanted);
}

const DIGEST = /^(sha256|sha512):([a-f0-9]{64,128})$/;

function blobPath(digest: unknown): string {
  const m = typeof digest === 'string' ? DIGEST.exec(digest) : null;
  if (!m) throw new ArchiveError(`invalid digest ${JSON.stringify(digest)} in the OCI layout`);
  return `blobs/${m[1]}/${m[2]}`;
}

export function goArch(arch: string = process.arch): string {
  return arch === 'x64' ? 'amd64' : arch === 'ia32' ? '386' : arch;
}

export async function readArchive(file: string, options: ReadOptions = {}): Promise<PushPlan> {
  let index: TarIndex;
  try {
    index = await TarIndex.open(file);
  } catch (err) {
    if (err instanceof TarFormatError) throw new ArchiveError(`${file}: ${err.message}`);
    throw err;
  }
  const hasManifest = index.has('manifest.json');
  const hasOci = index.has('index.json');
  if (options.layout !== 'legacy' && hasManifest) return readDockerManifest(index, options);
  if (options.layout !== 'legacy' && hasOci) return readOci(index, options);
  if (options.layout === 'current') throw new ArchiveError('no manifest.json or index.json in the tarball (a legacy tarball: drop --layout current)');
  return readLegacy(index, options);
}

async function planFromConfig(
  index: TarIndex,
  layout: 'docker' | 'oci',
  configBytes: Buffer,
  layerPaths: string[],
  names: string[],
): Promise<PushPlan> {
  let derived;
  try {
    derived = deriveV1Images(configBytes);
  } catch (err) {
    throw new ArchiveError((err as Error).message);
  }
  if (derived.images.length !== layerPaths.length) {
    throw new ArchiveError(`the config lists ${derived.images.length} layers (rootfs.diff_ids) but the manifest ${layerPaths.length}`);
  }
  const images: PlanImage[] = [];
  for (let i = 0; i < layerPaths.length; i++) {
    const entry = index.resolve(layerPaths[i]);
    if (!entry) throw new ArchiveError(`layer ${layerPaths[i]} is not in the tarball`);
    const compression = compressionOf(await index.readRange(entry.offset, Math.min(8, entry.size)));
    if (compression !== 'none' && compression !== 'gzip') {
      throw new ArchiveError(`layer ${layerPaths[i]} is ${compression}-compressed: only plain and gzip layers can be pushed to a v1 registry`);
    }
    const d = derived.images[i];
    images.push({ id: d.id, parent: d.parent, json: d.json, layer: { offset: entry.offset, size: entry.size, path: layerPaths[i] }, compression, diffId: d.diffId });
  }
  return { layout, images, topId: images[images.length - 1].id, names, configDigest: derived.configDigest };
}

interface ManifestEntry {
  Config?: unknown;
  RepoTags?: unknown;
  Layers?: unknown;
}

async function readDockerManifest(index: TarIndex, options: ReadOptions): Promise<PushPlan> {
  const manifest = parseJson<ManifestEntry[]>(await index.readSmall('manifest.json'), 'manifest.json');
  if (!Array.isArray(manifest) || manifest.length === 0) throw new ArchiveError('manifest.json lists no image');
  const tagsOf = (m: ManifestEntry) => (Array.isArray(m.RepoTags) ? (m.RepoTags.filter((t) => typeof t === 'string') as string[]) : []);
  let chosen: ManifestEntry;
  if (options.image) {
    const found = manifest.filter((m) => tagsOf(m).some((t) => nameMatches(t, options.image as string)));
    if (found.length !== 1) throw new ArchiveError(`no image named ${options.image} in the tarball (it has: ${manifest.map((m) => tagsOf(m).join(', ') || '<untagged>').join('; ')})`);
    chosen = found[0];
  } else if (manifest.length === 1) {
    chosen = manifest[0];
  } else {
    throw new ArchiveError(`the tarball holds ${manifest.length} images: choose one with --image NAME (${manifest.map((m) => tagsOf(m).join(', ') || '<untagged>').join('; ')})`);
  }
  if (typeof chosen.Config !== 'string' || !Array.isArray(chosen.Layers) || !chosen.Layers.every((l) => typeof l === 'string')) {
    throw new ArchiveError('manifest.json: an entry needs Config and Layers');
  }
  const configBytes = await index.readSmall(chosen.Config);
  return planFromConfig(index, 'docker', configBytes, chosen.Layers as string[], tagsOf(chosen));
}

interface Descriptor {
  mediaType?: string;
  digest?: string;
  platform?: { os?: string; architecture?: string; variant?: string };
  annotations?: Record<string, string>;
}

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);

async function readOci(index: TarIndex, options: ReadOptions): Promise<PushPlan> {
  const platform = options.platform ?? { os: 'linux', architecture: goArch() };
  const refName = (d: Descriptor) => d.annotations?.['io.containerd.image.name'] ?? d.annotations?.['org.opencontainers.image.ref.name'];
  let doc = parseJson<{ manifests?: Descriptor[]; mediaType?: string }>(await index.readSmall('index.json'), 'index.json');
  let names: string[] = [];
  for (let depth = 0; depth < 4; depth++) {
    const list = Array.isArray(doc.manifests) ? doc.manifests : [];
    if (list.length === 0) throw new ArchiveError('the OCI index lists no manifest');
    let chosen: Descriptor | undefined;
    if (depth === 0 && options.image) {
      chosen = list.find((d) => {
        const n = refName(d);
        return n !== undefined && (nameMatches(n, options.image as string) || n === options.image?.split(':').pop());
      });
      if (!chosen) throw new ArchiveError(`no image named ${options.image} in the OCI layout`);
    } else if (list.length === 1) {
      chosen = list[0];
    } else {
      const withPlatform = list.filter((d) => d.platform);
      if (withPlatform.length > 0) {
        chosen = withPlatform.find((d) => d.platform?.os === platform.os && d.platform?.architecture === platform.architecture);
        if (!chosen) throw new ArchiveError(`no manifest for ${platform.os}/${platform.architecture} in the OCI index`);
      } else {
        throw new ArchiveError(`the OCI layout holds ${list.length} images: choose one with --image NAME`);
      }
    }
    const n = refName(chosen);
    if (n && names.length === 0) names = [n];
    const blob = await index.readSmall(blobPath(chosen.digest));
    verifyDigest(blob, chosen.digest as string);
    const parsed = parseJson<{ mediaType?: string; manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] }>(blob, `manifest ${chosen.digest}`);
    const type = parsed.mediaType ?? chosen.mediaType ?? '';
    if (INDEX_TYPES.has(type) || (Array.isArray(parsed.manifests) && !parsed.config)) {
      doc = parsed;
      continue;
    }
    if (!parsed.config || !Array.isArray(parsed.layers)) throw new ArchiveError(`manifest ${chosen.digest} has no config or layers`);
    const configBytes = await index.readSmall(blobPath(parsed.config.digest));
    verifyDigest(configBytes, parsed.config.digest as string);
    return planFromConfig(index, 'oci', configBytes, parsed.layers.map((l) => blobPath(l.digest)), names);
  }
  throw new ArchiveError('OCI indexes nested too deep');
}

function verifyDigest(data: Buffer, digest: string): void {
  const [alg, hex] = digest.split(':');
  if (createHash(alg).update(data).digest('hex') !== hex) throw new ArchiveError(`blob ${digest} does not match its digest`);
}

async function readLegacy(index: TarIndex, options: ReadOptions): Promise<PushPlan> {
  let topId: string | undefined;
  let names: string[] = [];
  if (index.has('repositories')) {
    const repos = parseJson<Record<string, Record<string, string>>>(await index.readSmall('repositories'), 'repositories');
    const all: Array<{ name: string; id: string }> = [];
    for (const [repo, tags] of Object.entries(repos ?? {})) {
      for (const [tag, id] of Object.entries(tags ?? {})) all.push({ name: `${repo}:${tag}`, id });
    }
    const candidates = options.image ? all.filter((e) => nameMatches(e.name, options.image as string)) : all;
    const ids = [...new Set(candidates.map((e) => e.id))];
    if (ids.length === 1) {
      topId = ids[0];
      names = candidates.filter((e) => e.id === topId).map((e) => e.name);
    } else if (options.image) {
      throw new ArchiveError(`no image named ${options.image} in the tarball (it has: ${all.map((e) => e.name).join(', ')})`);
    } else if (ids.length > 1) {
      throw new ArchiveError(`the tarball holds ${ids.length} images: choose one with --image NAME (${all.map((e) => e.name).join(', ')})`);
    }
  }
  if (!topId) {
    // No repositories file (docker save of an image id): the one image no other names as parent.
    const ids = index.names().filter((n) => /^[a-f0-9]{16,64}\/json$/.test(n)).map((n) => n.slice(0, -'/json'.length));
    const parents = new Set<string>();
    for (const id of ids) {
      const p = (parseJson<{ parent?: unknown }>(await index.readSmall(`${id}/json`), `${id}/json`)).parent;
      if (typeof p === 'string') parents.add(p);
    }
    const tops = ids.filter((id) => !parents.has(id));
    if (tops.length !== 1) {
      throw new ArchiveError(
        ids.length === 0
          ? 'not an image tarball: no manifest.json, index.json, repositories or <id>/json'
          : `the tarball holds ${tops.length} unrelated images and no repositories file to choose from`,
      );
    }
    topId = tops[0];
  }
  if (!isImageId(topId)) throw new ArchiveError(`invalid image id ${JSON.stringify(topId)} in the tarball`);
  const chain: PlanImage[] = [];
  const seen = new Set<string>();
  let id: string | null = topId;
  while (id) {
    if (seen.has(id)) throw new ArchiveError(`image ${id} is its own ancestor`);
    seen.add(id);
    if (!isImageId(id)) throw new ArchiveError(`invalid image id ${JSON.stringify(id)} in the tarball`);
    const json: Buffer = await index.readSmall(`${id}/json`).catch(() => {
      throw new ArchiveError(`${id}/json is not in the tarball`);
    });
    const doc: { id?: unknown; parent?: unknown } = parseJson<{ id?: unknown; parent?: unknown }>(json, `${id}/json`);
    if (doc.id !== id) throw new ArchiveError(`${id}/json names id ${JSON.stringify(doc.id)}`);
    const entry = index.resolve(`${id}/layer.tar`);
    if (!entry) throw new ArchiveError(`${id}/layer.tar is not in the tarball`);
    const compression = compressionOf(await index.readRange(entry.offset, Math.min(8, entry.size)));
    const parent: string | null = typeof doc.parent === 'string' && doc.parent ? doc.parent : null;
    chain.push({ id, parent, json, layer: { offset: entry.offset, size: entry.size, path: `${id}/layer.tar` }, compression, diffId: null });
    id = parent;
  }
  chain.reverse();
  return { layout: 'legacy', images: chain, topId, names, configDigest: null };
}
