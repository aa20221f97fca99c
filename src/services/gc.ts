/**
 * Garbage collection: frees the disk of images, manifests, blobs and uploads nothing refers
 * to.
 *
 * Mark:
 * - images: the roots are every image a repository lists or tags (tags link their image's
 *   ancestry into the list), every image being uploaded right now, and every image younger
 *   than the grace period (a push may not have tagged it yet); everything in their
 *   ancestry is live;
 * - manifests: every manifest a repository holds (a link) is live, and with it its config
 *   and layers; stored manifest bytes no repository holds are garbage;
 * - blobs: used by a live or pending image, or by a live manifest; a blob nothing uses is
 *   kept while it is younger than the grace period (its file, or a repository's link to it:
 *   a v2 push uploads its blobs before the manifest that uses them).
 *
 * Sweep: the other images, manifest bytes and blobs are deleted, then the repository links
 * to deleted blobs, the layer facts of deleted blobs and the v1-image → manifest records
 * whose image or manifest is gone. Upload sessions that received nothing for the upload
 * expiry (and are not being written) are reclaimed with their bytes, as are upload files
 * with no session that old, and what unfinished one-request uploads left in the blob store
 * (temp files, S3 multipart uploads) that received nothing for that long: a node that died
 * mid-push leaves them, and no node's start removes another node's (BlobStore.reclaimStale).
 *
 * The whole run holds the write gate exclusively, on every node of the registry (Locks):
 * uploads' commits, manifest and tag writes and image list writes wait for it (reads and
 * the streaming part of uploads go on), so nothing can start referencing something in
 * between its mark and its sweep. What is being written right now (an image, a session) is
 * asked of the keyed locks, again on every node, and only for what would be deleted.
 */
import { withAncestors } from '../domain/ancestry.js';
import { isForeignLayer, parseManifest } from '../domain/manifest.js';
import { nameOfRepo, type ImageId, type RepoName } from '../domain/names.js';
import type { ImageRecord } from '../domain/records.js';
import type { BlobStore } from '../store/blobs/blob-store.js';
import type {
  BlobLinkStore,
  ImageListStore,
  ImageManifestStore,
  ImageStore,
  LayerFactsStore,
  ManifestStore,
  RepositoryStore,
  TagStore,
  UploadSessionStore,
} from '../store/metadata/ports.js';
import type { WriteGate } from '../store/locks/locks.js';

/** What a run keeps: the configured `gc_grace_seconds` and `upload_expiry_seconds`, in ms. */
export interface GcRetention {
  /** Unreferenced images and blobs younger than this are kept (ms). */
  graceMs: number;
  /** Upload sessions idle this long are reclaimed (ms). */
  uploadExpiryMs: number;
}

/** One run: a dry run or not; a retention given here replaces the configured one. */
export interface GcOptions extends Partial<GcRetention> {
  dryRun: boolean;
}

export interface GcReport {
  dryRun: boolean;
  images: { scanned: number; deleted: number; deletedIds: ImageId[] };
  manifests: { scanned: number; deleted: number; deletedDigests: string[] };
  blobs: { scanned: number; deleted: number; bytesFreed: number; linksRemoved: number };
  uploads: { scanned: number; reclaimed: number; bytesFreed: number };
  durationMs: number;
}

/** What GC needs to know about writes in flight (on any node), and whom to tell about deletions. */
export interface UploadTracker {
  /** Is a v1 request writing this image? */
  isWriting(id: ImageId): Promise<boolean>;
  forget(id: ImageId): void;
  /** Is a request writing this v2 upload session? */
  isUploading(sessionId: string): Promise<boolean>;
}

/** What GC walks and deletes: every record that can keep an image, a manifest or a blob alive. */
export type GcStores =
  & ImageStore
  & RepositoryStore
  & TagStore
  & ImageListStore
  & ManifestStore
  & BlobLinkStore
  & UploadSessionStore
  & LayerFactsStore
  & ImageManifestStore;

export class GarbageCollector {
  constructor(
    private readonly meta: GcStores,
    private readonly blobs: BlobStore,
    private readonly gate: WriteGate,
    private readonly uploads: UploadTracker,
    private readonly retention: GcRetention,
    private readonly now: () => number = () => Date.now(),
  ) {}

  run({ dryRun, graceMs = this.retention.graceMs, uploadExpiryMs = this.retention.uploadExpiryMs }: GcOptions): Promise<GcReport> {
    return this.gate.exclusive(() => this.collect(dryRun, graceMs, uploadExpiryMs));
  }

  private async collect(dryRun: boolean, graceMs: number, uploadExpiryMs: number): Promise<GcReport> {
    const started = this.now();
    const young = (at: number) => !(started - at >= graceMs);

    // ── images ──────────────────────────────────────────────────────────────────────────
    const images = new Map<ImageId, ImageRecord>();
    for await (const record of this.meta.listImages()) images.set(record.id, record);
    const names: RepoName[] = [];
    const roots = new Set<ImageId>();
    for await (const repo of this.meta.listRepos()) {
      const name = nameOfRepo(repo);
      names.push(name);
      for (const [, tag] of await this.meta.listTags(name)) if (tag.imageId) roots.add(tag.imageId);
      for (const entry of await this.meta.getRepoImages(name)) roots.add(entry.id);
    }
    for (const record of images.values()) {
      if (young(Date.parse(record.completedAt ?? record.createdAt))) roots.add(record.id);
    }
    let live = withAncestors(roots, (id) => images.get(id)?.parent);
    // Images being written are spared too: asked only of those that would go (a question
    // to PostgreSQL each, on many nodes).
    let writing = 0;
    for (const id of images.keys()) {
      if (live.has(id) || !(await this.uploads.isWriting(id))) continue;
      roots.add(id);
      writing += 1;
    }
    if (writing > 0) live = withAncestors(roots, (id) => images.get(id)?.parent);
    const deletedIds = [...images.keys()].filter((id) => !live.has(id)).sort();
    if (!dryRun) {
      for (const id of deletedIds) {
        await this.meta.deleteImage(id);
        this.uploads.forget(id);
      }
    }
    const used = new Set<string>();
    for (const [id, record] of images) {
      if (record.layer && (dryRun ? live.has(id) : !deletedIds.includes(id))) used.add(record.layer.digest);
    }

    // ── manifests ───────────────────────────────────────────────────────────────────────
    const linked = new Set<string>();
    /** Blob digest → the newest time a repository linked it. */
    const linkedAt = new Map<string, number>();
    const blobLinks: Array<[RepoName, string]> = [];
    for (const name of names) {
      for (const [digest] of await this.meta.listManifestLinks(name)) linked.add(digest);
      for (const [digest, link] of await this.meta.listBlobLinks(name)) {
        blobLinks.push([name, digest]);
        const at = Date.parse(link.createdAt);
        if (!(at <= (linkedAt.get(digest) ?? -Infinity))) linkedAt.set(digest, at);
      }
    }
    let manifestsScanned = 0;
    const deletedDigests: string[] = [];
    for await (const digest of this.meta.listManifests()) {
      manifestsScanned += 1;
      if (!linked.has(digest)) {
        deletedDigests.push(digest);
        continue;
      }
      const bytes = await this.meta.getManifest(digest);
      if (!bytes) continue;
      try {
        const manifest = parseManifest(bytes, undefined);
        if (manifest.config) used.add(manifest.config.digest);
        for (const layer of manifest.layers) if (!isForeignLayer(layer)) used.add(layer.digest);
      } catch {
        // Unreadable stored bytes (fsck reports them): whatever they named is not known.
      }
    }
    deletedDigests.sort();
    if (!dryRun) for (const digest of deletedDigests) await this.meta.deleteManifest(digest);

    // ── blobs ───────────────────────────────────────────────────────────────────────────
    let scanned = 0;
    let deleted = 0;
    let bytesFreed = 0;
    const present = new Set<string>();
    const gone = new Set<string>();
    for await (const digest of this.blobs.list()) {
      scanned += 1;
      present.add(digest);
      if (used.has(digest)) continue;
      const info = await this.blobs.stat(digest);
      if (!info) continue;
      if (young(info.modifiedAt) || young(linkedAt.get(digest) ?? -Infinity)) continue;
      if (!dryRun && !(await this.blobs.delete(digest))) continue;
      gone.add(digest);
      deleted += 1;
      bytesFreed += info.size;
    }
    let linksRemoved = 0;
    for (const [name, digest] of blobLinks) {
      if (present.has(digest) && !gone.has(digest)) continue;
      linksRemoved += 1;
      if (!dryRun) await this.meta.unlinkBlob(name, digest);
    }
    if (!dryRun) {
      for (const digest of gone) await this.meta.deleteLayerFacts(digest);
      const deletedImages = new Set(deletedIds);
      const deletedManifests = new Set(deletedDigests);
      for await (const entry of this.meta.listImageManifests()) {
        if (deletedImages.has(entry.id) || deletedManifests.has(entry.digest) || !images.has(entry.id)) {
          await this.meta.deleteImageManifest(entry.id, entry.flavor);
        }
      }
    }

    // ── uploads ─────────────────────────────────────────────────────────────────────────
    let uploadsScanned = 0;
    let reclaimed = 0;
    let uploadBytes = 0;
    const sessions = new Set<string>();
    for await (const record of this.meta.listUploads()) {
      uploadsScanned += 1;
      sessions.add(record.id);
      if (!(started - Date.parse(record.updatedAt) >= uploadExpiryMs) || (await this.uploads.isUploading(record.id))) continue;
      const info = await this.blobs.statUpload(record.id);
      reclaimed += 1;
      uploadBytes += info?.size ?? 0;
      if (!dryRun) {
        await this.blobs.deleteUpload(record.id);
        await this.meta.deleteUpload(record.id);
      }
    }
    for await (const id of this.blobs.listUploads()) {
      if (sessions.has(id)) continue;
      const info = await this.blobs.statUpload(id);
      if (!info || !(started - info.modifiedAt >= uploadExpiryMs) || (await this.uploads.isUploading(id))) continue;
      reclaimed += 1;
      uploadBytes += info.size;
      if (!dryRun) await this.blobs.deleteUpload(id);
    }
    const stale = await this.blobs.reclaimStale(uploadExpiryMs, dryRun, started);
    reclaimed += stale.removed;
    uploadBytes += stale.bytes;

    return {
      dryRun,
      images: { scanned: images.size, deleted: deletedIds.length, deletedIds },
      manifests: { scanned: manifestsScanned, deleted: deletedDigests.length, deletedDigests },
      blobs: { scanned, deleted, bytesFreed, linksRemoved },
      uploads: { scanned: uploadsScanned, reclaimed, bytesFreed: uploadBytes },
      durationMs: this.now() - started,
    };
  }
}
