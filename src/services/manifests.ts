/**
 * Manifests, tags, referrers and the catalog of the Registry API v2, on the same
 * repositories and tags as v1.
 *
 *   PUT  manifest ─▶ size/digest/structure checked ─▶ every blob and child manifest it names
 *        held by the repository (MANIFEST_BLOB_UNKNOWN) ─▶ its v1 face derived (V1Face) ─▶
 *        bytes + link + referrer entry (one batch) ─▶ tag(s) (RepositoryService: one tag
 *        model, events, webhooks)
 *   GET  tag ─▶ the tag's manifest, or for a v1 tag the manifest V1Face synthesizes (stored
 *        once, same bytes ever after) ─▶ bytes, exactly as stored
 *
 * Manifest bytes are immutable (content-addressed): they are cached by digest.
 */
import { sha256Of, isSha256Digest, parseDigest, type Digest } from '../domain/digest.js';
import { RegistryError } from '../domain/errors.js';
import { Lru } from '../domain/lru.js';
import {
  accepts,
  defaultPlatformEntry,
  isForeignLayer,
  isIndexType,
  MEDIA,
  parseManifest,
  type Descriptor,
  type ParsedManifest,
} from '../domain/manifest.js';
import { nameOfRepo, parseTag, type ImageId, type RepoName, type Tag } from '../domain/names.js';
import type { ManifestLink, RepoRecord, TagRecord } from '../domain/records.js';
import type { ImageManifestStore, ManifestFlavor, ManifestStore, RepositoryStore, TagStore } from '../store/metadata/ports.js';
import type { AccessService, Principal } from './access.js';
import type { BlobService } from './blobs.js';
import type { WriteGate } from '../store/locks/locks.js';
import type { RepositoryService } from './repositories.js';

/** How the v1 face and the v2 face see each other's images (services/image-bridge.ts). */
export interface V1Face {
  /**
   * v2 → v1: derives and stores the v1 images of a manifest just checked (an image
   * manifest, or the linux/amd64 entry of an index); the top image id, or null when v1
   * cannot show it. Runs under the write gate.
   */
  imagesFor(name: RepoName, digest: Digest, manifest: ParsedManifest): Promise<ImageId | null>;
  /**
   * v1 → v2: the manifest that shows a complete v1 image in `flavor`, stored and linked
   * (with its blobs) into `name`; the same bytes every time.
   */
  manifestFor(name: RepoName, imageId: ImageId, flavor: ManifestFlavor): Promise<Digest>;
}

export interface ManifestView {
  digest: Digest;
  mediaType: string;
  bytes: Buffer;
  /** Set when the manifest was found through a tag. */
  tag?: Tag;
}

export interface PutResult {
  digest: Digest;
  subject: string | null;
  tags: Tag[];
}

export interface Page<T> {
  items: T[];
  /** The `last` value of the next page, when there is one. */
  next: string | null;
}

/** The client's Accept header, and what it means for manifests. */
export interface Negotiation {
  accept: string | undefined;
}

/** Cached manifest bytes: at most this many and this many bytes. */
const CACHED_MANIFESTS = 10_000;
const CACHED_MANIFEST_BYTES = 16 * 1024 * 1024;

export class ManifestService {
  private readonly cache = new Lru<string, Buffer>(CACHED_MANIFESTS, CACHED_MANIFEST_BYTES, (b) => b.length);
  /** `<name>@<digest>` → the media type the repository holds the manifest as (a link changes only by unlink and put). */
  private readonly mediaTypes = new Lru<string, string>(CACHED_MANIFESTS);
  /** Tag list answers keyed on the store's frozen tag list (same list: same answer). */
  private readonly tagNames = new WeakMap<object, readonly string[]>();

  constructor(
    private readonly meta: RepositoryStore & TagStore & ManifestStore & ImageManifestStore,
    private readonly repos: RepositoryService,
    private readonly blobs: BlobService,
    private readonly access: AccessService,
    private readonly gate: WriteGate,
    private readonly v1: V1Face,
    private readonly maxManifestBytes: number,
    private readonly now: () => Date = () => new Date(),
  ) {}

  // ── push ──────────────────────────────────────────────────────────────────────────────

  /**
   * PUT /v2/<name>/manifests/<reference> (plus `?tag=` when the reference is a digest).
   * `reference` is a tag or a digest, `contentType` the request's Content-Type.
   */
  async put(
    name: RepoName,
    reference: string,
    bytes: Buffer,
    contentType: string | undefined,
    extra: { tags?: string[]; userAgent?: string; actor?: string | null } = {},
  ): Promise<PutResult> {
    if (bytes.length > this.maxManifestBytes) throw tooLarge(this.maxManifestBytes);
    const digest = sha256Of(bytes);
    const tags: Tag[] = [];
    if (isReferenceDigest(reference)) {
      const claimed = parseDigest(reference);
      if (claimed !== digest) throw new RegistryError('DIGEST_INVALID', `The manifest's digest is ${digest}, not ${claimed}`, { digest });
    } else {
      tags.push(parseManifestTag(reference));
    }
    for (const t of extra.tags ?? []) tags.push(parseManifestTag(t));
    const manifest = parseManifest(bytes, contentType);

    let imageId: ImageId | null = null;
    await this.gate.shared(async () => {
      await this.checkReferences(name, manifest);
      imageId = await this.v1.imagesFor(name, digest, manifest);
      await this.repos.ensure(name);
      await this.meta.putManifest(name, digest, bytes, this.linkOf(manifest, bytes.length));
    });
    this.cache.set(digest, bytes);
    this.mediaTypes.set(`${name.full}@${digest}`, manifest.mediaType);
    for (const tag of new Set(tags)) {
      await this.repos.putManifestTag(name, tag, digest, imageId, extra.userAgent, extra.actor ?? null);
    }
    return { digest, subject: manifest.subject?.digest ?? null, tags: [...new Set(tags)] };
  }

  /** Every blob and child manifest `manifest` names must be in `name` (subjects need not). */
  private async checkReferences(name: RepoName, manifest: ParsedManifest): Promise<void> {
    const missing: string[] = [];
    const blobs: Descriptor[] = manifest.kind === 'image' ? [manifest.config as Descriptor, ...manifest.layers.filter((l) => !isForeignLayer(l))] : [];
    for (const d of blobs) {
      const held = await this.blobs.find(name, d.digest);
      if (!held) missing.push(d.digest);
      else if (held.size !== d.size) {
        throw new RegistryError('MANIFEST_INVALID', `The manifest says ${d.digest} has ${d.size} bytes; it has ${held.size}`);
      }
    }
    for (const d of manifest.manifests) {
      if (!(await this.meta.getManifestLink(name, d.digest))) missing.push(d.digest);
    }
    if (missing.length > 0) {
      throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `The manifest names what ${name.full} does not hold: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`, {
        digest: missing[0],
      });
    }
  }

  private linkOf(manifest: ParsedManifest, size: number): ManifestLink {
    const link: ManifestLink = { mediaType: manifest.mediaType, size, createdAt: this.now().toISOString() };
    if (manifest.subject) {
      link.subject = manifest.subject.digest;
      if (manifest.artifactType) link.artifactType = manifest.artifactType;
      if (manifest.annotations) link.annotations = manifest.annotations;
    }
    return link;
  }

  // ── pull ──────────────────────────────────────────────────────────────────────────────

  /**
   * GET/HEAD /v2/<name>/manifests/<reference>. A tag set over v1 is shown through the
   * manifest V1Face synthesizes (Docker schema 2, or OCI for a client that takes only OCI).
   * An index asked for by a client whose Accept excludes it: its linux/amd64 entry.
   */
  async get(name: RepoName, reference: string, negotiation: Negotiation): Promise<ManifestView> {
    const repo = await this.meta.getRepo(name);
    if (!repo) throw unknownName(name);
    let view: ManifestView;
    if (isReferenceDigest(reference)) {
      const digest = parseDigest(reference);
      const link = await this.meta.getManifestLink(name, digest);
      if (!link) throw unknownManifest(reference);
      view = { digest, mediaType: link.mediaType, bytes: await this.bytesOf(digest) };
    } else {
      const tag = parseManifestTag(reference, 'MANIFEST_UNKNOWN');
      const record = await this.meta.getTag(name, tag);
      if (!record) throw unknownManifest(`${name.full}:${tag}`);
      const digest = await this.digestOfTag(name, record, negotiation);
      const bytes = await this.bytesOf(digest);
      view = { digest, mediaType: await this.mediaTypeOf(name, digest, bytes), bytes, tag };
    }
    if (isIndexType(view.mediaType) && !accepts(negotiation.accept, view.mediaType)) {
      const entry = defaultPlatformEntry(parseManifest(view.bytes, view.mediaType));
      if (!entry || !(await this.meta.getManifestLink(name, entry.digest))) {
        throw unknownManifest(`${reference} is an index, and the client accepts none (no linux/amd64 entry to fall back to)`);
      }
      return { digest: entry.digest, mediaType: entry.mediaType, bytes: await this.bytesOf(entry.digest), tag: view.tag };
    }
    return view;
  }

  /** The manifest a tag shows: set over v2, or synthesized for a v1 tag. */
  private async digestOfTag(name: RepoName, record: TagRecord, negotiation: Negotiation): Promise<Digest> {
    if (record.manifest && isSha256Digest(record.manifest)) return record.manifest;
    if (!record.imageId) throw unknownManifest('tag without a manifest');
    const flavor: ManifestFlavor =
      !accepts(negotiation.accept, MEDIA.dockerManifest) && accepts(negotiation.accept, MEDIA.ociManifest) ? 'oci' : 'docker';
    return this.v1.manifestFor(name, record.imageId, flavor);
  }

  private async mediaTypeOf(name: RepoName, digest: Digest, bytes: Buffer): Promise<string> {
    const key = `${name.full}@${digest}`;
    let mediaType = this.mediaTypes.get(key);
    if (mediaType === undefined) {
      const link = await this.meta.getManifestLink(name, digest);
      mediaType = link?.mediaType ?? parseManifest(bytes, undefined).mediaType;
      if (link) this.mediaTypes.set(key, mediaType);
    }
    return mediaType;
  }

  private async bytesOf(digest: Digest): Promise<Buffer> {
    const cached = this.cache.get(digest);
    if (cached) return cached;
    const bytes = await this.meta.getManifest(digest);
    if (!bytes) throw unknownManifest(digest);
    this.cache.set(digest, bytes);
    return bytes;
  }

  // ── delete ────────────────────────────────────────────────────────────────────────────

  /**
   * DELETE /v2/<name>/manifests/<reference>: a tag is deleted alone; a digest takes every
   * tag of the repository that shows it along (v1 tags included), then the repository
   * lets go of the manifest (GC frees what nothing holds any more).
   */
  async delete(name: RepoName, reference: string, actor: string | null): Promise<void> {
    if (!(await this.meta.getRepo(name))) throw unknownName(name);
    if (!isReferenceDigest(reference)) {
      const tag = parseManifestTag(reference, 'MANIFEST_UNKNOWN');
      if (!(await this.meta.getTag(name, tag))) throw unknownManifest(`${name.full}:${tag}`);
      await this.repos.deleteTag(name, tag, actor);
      return;
    }
    const digest = parseDigest(reference);
    if (!(await this.meta.getManifestLink(name, digest))) throw unknownManifest(reference);
    for (const [tag, record] of await this.meta.listTags(name)) {
      if (await this.tagShows(record, digest)) await this.repos.deleteTag(name, tag, actor).catch(ignoreNotFound);
    }
    await this.meta.unlinkManifest(name, digest);
    this.mediaTypes.delete(`${name.full}@${digest}`);
  }

  /** Does the tag show this manifest (set over v2, or the manifest synthesized for its v1 image)? */
  private async tagShows(record: TagRecord, digest: string): Promise<boolean> {
    if (record.manifest) return record.manifest === digest;
    if (!record.imageId) return false;
    for (const flavor of ['docker', 'oci'] as const) {
      if ((await this.meta.getImageManifest(record.imageId, flavor)) === digest) return true;
    }
    return false;
  }

  // ── discovery ─────────────────────────────────────────────────────────────────────────

  /** GET /v2/<name>/tags/list: tag names in code-unit (Go sort.Strings) order. */
  async tags(name: RepoName, n: number | null, last: string | null): Promise<Page<string>> {
    if (!(await this.meta.getRepo(name))) throw unknownName(name);
    const records = await this.meta.listTags(name);
    let all = this.tagNames.get(records);
    if (!all) {
      all = Object.freeze(records.map(([tag]) => tag));
      this.tagNames.set(records, all);
    }
    return page(all, n, last, (t) => t);
  }

  /** GET /v2/_catalog: the repositories the caller may read, by full name. */
  async catalog(principal: Principal, n: number | null, last: string | null): Promise<Page<string>> {
    const visible: string[] = [];
    for (const record of await this.meta.allRepos()) {
      const name = nameOfRepo(record);
      if (this.access.canRead(principal, name, record)) visible.push(name.full);
    }
    return page(visible, n, last, (x) => x);
  }

  /** GET /v2/<name>/referrers/<digest>: an OCI index of the manifests whose subject it is. */
  async referrers(name: RepoName, subject: string, artifactType: string | null): Promise<{ index: object; filtered: boolean }> {
    const repo: RepoRecord | null = await this.meta.getRepo(name);
    if (!repo) throw unknownName(name);
    const digest = parseDigest(subject);
    const manifests: Descriptor[] = [];
    for (const [d, link] of await this.meta.listReferrers(name, digest)) {
      if (artifactType && link.artifactType !== artifactType) continue;
      const entry: Descriptor = { mediaType: link.mediaType, digest: d as Digest, size: link.size };
      if (link.artifactType) entry.artifactType = link.artifactType;
      if (link.annotations) entry.annotations = link.annotations;
      manifests.push(entry);
    }
    return { index: { schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests }, filtered: artifactType !== null };
  }
}

/** A reference that is a digest (by the general grammar): `algorithm:encoded`. */
function isReferenceDigest(reference: string): boolean {
  return reference.includes(':');
}

function parseManifestTag(value: string, code: 'MANIFEST_INVALID' | 'MANIFEST_UNKNOWN' = 'MANIFEST_INVALID'): Tag {
  try {
    return parseTag(value);
  } catch {
    throw new RegistryError(code, `Invalid tag: ${JSON.stringify(value.slice(0, 140))} (expected [A-Za-z0-9_][A-Za-z0-9_.-]{0,127})`);
  }
}

/** `n` items after `last` (exclusive) of a sorted list; `next` when more follow. */
function page<T>(sorted: readonly T[], n: number | null, last: string | null, keyOf: (item: T) => string): Page<T> {
  let start = 0;
  if (last !== null) {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keyOf(sorted[mid]) <= last) lo = mid + 1;
      else hi = mid;
    }
    start = lo;
  }
  if (n === null) return { items: start === 0 ? (sorted as T[]) : sorted.slice(start), next: null };
  const items = sorted.slice(start, start + n);
  const more = n > 0 && start + n < sorted.length;
  return { items, next: more ? keyOf(items[items.length - 1]) : null };
}

function unknownManifest(what: string): RegistryError {
  return new RegistryError('MANIFEST_UNKNOWN', `Manifest unknown: ${what}`);
}

function unknownName(name: RepoName): RegistryError {
  return new RegistryError('NAME_UNKNOWN', `Repository unknown: ${name.full}`);
}

function tooLarge(limit: number): RegistryError {
  return new RegistryError('PAYLOAD_TOO_LARGE', `Manifest larger than ${limit} bytes`);
}

function ignoreNotFound(err: unknown): void {
  if (!(err instanceof RegistryError && err.code === 'NOT_FOUND')) throw err;
}
