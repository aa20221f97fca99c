/**
 * Blobs as the Registry API v2 sees them: content in the one blob store (a v1 layer and a
 * v2 blob with the same sha256 are one file), held by a repository through a link. A blob is
 * readable through a repository only if that repository holds it: uploaded there, mounted
 * there, or used by a manifest (or a v1 image shown over v2) it holds. That is what keeps a
 * private repository's blobs private from someone who only knows their digest.
 */
import { RegistryError } from '../domain/errors.js';
import type { Digest } from '../domain/digest.js';
import type { RepoName } from '../domain/names.js';
import type { BlobReader, BlobStore } from '../store/blobs/blob-store.js';
import type { BlobLinkStore } from '../store/metadata/ports.js';
import type { WriteGate } from '../store/locks/locks.js';

export interface BlobView {
  digest: Digest;
  size: number;
}

export class BlobService {
  constructor(
    private readonly meta: BlobLinkStore,
    private readonly blobs: BlobStore,
    private readonly gate: WriteGate,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** The blob as `name` holds it; BLOB_UNKNOWN when not linked there or not stored. */
  async stat(name: RepoName, digest: Digest): Promise<BlobView> {
    const blob = await this.find(name, digest);
    if (!blob) throw unknownBlob(digest);
    return blob;
  }

  /** The blob if `name` holds it (linked and stored), else null. */
  async find(name: RepoName, digest: Digest): Promise<BlobView | null> {
    if (!(await this.meta.getBlobLink(name, digest))) return null;
    const info = await this.blobs.stat(digest);
    return info ? { digest, size: info.size } : null;
  }

  /** Opens a blob for positional reads (the caller closes it). */
  async open(blob: BlobView): Promise<BlobReader> {
    const reader = await this.blobs.openReader(blob.digest);
    if (reader.size !== blob.size) {
      await reader.close();
      throw new Error(`blob ${blob.digest} has ${reader.size} bytes, ${blob.size} expected`);
    }
    return reader;
  }

  /**
   * Links stored blobs into a repository. Call it under the write gate together with the
   * write that makes them needed, or it may race a sweep (see link()).
   */
  async linkStored(name: RepoName, blobs: readonly BlobView[]): Promise<void> {
    const at = this.now().toISOString();
    await this.meta.linkBlobs(name, blobs.map((b) => [b.digest, { size: b.size, createdAt: at }] as const));
  }

  /** Links a stored blob into a repository, under the write gate (GC never runs in between). */
  link(name: RepoName, blob: BlobView): Promise<void> {
    return this.gate.shared(() => this.linkStored(name, [blob]));
  }

  /**
   * Cross-repository mount: links a blob `from` holds into `to` (the caller may read
   * `from`). False when `from` does not hold it (the client then uploads it).
   */
  async mount(to: RepoName, from: RepoName, digest: Digest): Promise<BlobView | null> {
    return this.gate.shared(async () => {
      if (!(await this.meta.getBlobLink(from, digest))) return null;
      const info = await this.blobs.stat(digest);
      if (!info) return null;
      const blob = { digest, size: info.size };
      await this.linkStored(to, [blob]);
      return blob;
    });
  }

  /** DELETE /v2/<name>/blobs/<digest>: the repository lets go of the blob (GC frees the bytes). */
  async unlink(name: RepoName, digest: Digest): Promise<void> {
    if (!(await this.meta.unlinkBlob(name, digest))) throw unknownBlob(digest);
  }
}

export function unknownBlob(digest: string): RegistryError {
  return new RegistryError('BLOB_UNKNOWN', `Blob unknown to the repository: ${digest}`, { digest });
}
