/**
 * Garbage collection: frees the disk of images and layers nothing refers to.
 *
 * Mark: the roots are every image a repository lists or tags (tags link their image's
 * ancestry into the list), every image being uploaded right now, and every image younger
 * than the grace period (a push may not have tagged it yet); everything in their ancestry
 * is live. Sweep: the other images are deleted, then every blob no remaining image uses.
 * Layers shared by several images stay while one of them is live.
 *
 * The whole run holds the write gate exclusively: uploads' commits, tag writes and image
 * list writes wait for it (reads go on), so nothing can start referencing an image in
 * between its mark and its sweep.
 */
import { withAncestors } from '../domain/ancestry.js';
import { nameOfRepo, type ImageId } from '../domain/names.js';
import type { ImageRecord } from '../domain/records.js';
import type { BlobStore } from '../store/blobs/blob-store.js';
import type { MetadataStore } from '../store/metadata/metadata-store.js';
import type { Gate } from './gate.js';

export interface GcOptions {
  dryRun: boolean;
  /** Unreferenced images younger than this are kept (ms). */
  graceMs: number;
}

export interface GcReport {
  dryRun: boolean;
  images: { scanned: number; deleted: number; deletedIds: ImageId[] };
  blobs: { scanned: number; deleted: number; bytesFreed: number };
  durationMs: number;
}

/** What GC needs to know about uploads in flight, and whom to tell about deletions. */
export interface UploadTracker {
  isWriting(id: ImageId): boolean;
  forget(id: ImageId): void;
}

export class GarbageCollector {
  constructor(
    private readonly meta: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly gate: Gate,
    private readonly uploads: UploadTracker,
    private readonly now: () => number = () => Date.now(),
  ) {}

  run(options: GcOptions): Promise<GcReport> {
    return this.gate.withExclusive(() => this.collect(options));
  }

  private async collect({ dryRun, graceMs }: GcOptions): Promise<GcReport> {
    const started = this.now();
    const images = new Map<ImageId, ImageRecord>();
    for await (const record of this.meta.listImages()) images.set(record.id, record);

    const roots = new Set<ImageId>();
    for await (const repo of this.meta.listRepos()) {
      const name = nameOfRepo(repo);
      for (const [, tag] of await this.meta.listTags(name)) if (tag.imageId) roots.add(tag.imageId);
      for (const entry of await this.meta.getRepoImages(name)) roots.add(entry.id);
    }
    for (const record of images.values()) {
      const touched = Date.parse(record.completedAt ?? record.createdAt);
      if (this.uploads.isWriting(record.id) || !(started - touched >= graceMs)) roots.add(record.id);
    }

    const live = withAncestors(roots, (id) => images.get(id)?.parent);

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
    let scanned = 0;
    let deleted = 0;
    let bytesFreed = 0;
    for await (const digest of this.blobs.list()) {
      scanned += 1;
      if (used.has(digest)) continue;
      const info = await this.blobs.stat(digest);
      if (!info) continue;
      if (!dryRun && !(await this.blobs.delete(digest))) continue;
      deleted += 1;
      bytesFreed += info.size;
    }
    return {
      dryRun,
      images: { scanned: images.size, deleted: deletedIds.length, deletedIds },
      blobs: { scanned, deleted, bytesFreed },
      durationMs: this.now() - started,
    };
  }
}
