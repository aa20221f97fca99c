/**
 * The one file that owns the on-disk layout of the storage root. Nothing else builds a
 * path under it.
 *
 *   <root>/
 *   ├── db/                         LevelDB: all metadata (see store/metadata/keys.ts)
 *   ├── blobs/
 *   │   └── sha256/
 *   │       └── <hex[0:2]>/
 *   │           └── <hex>           layer bytes, addressed by sha256(bytes); immutable
 *   ├── tmp/
 *   │   └── <random>.upload         one-request uploads in progress (v1 layer PUT, v2
 *   │                               monolithic); linked into blobs/ once verified, removed
 *   │                               on failure and at start-up
 *   └── uploads/
 *       └── <uuid>                  resumable Registry API v2 upload sessions (chunked
 *                                   PATCHes); kept across restarts, linked into blobs/ by
 *                                   the closing PUT, reclaimed by GC when abandoned
 *
 * blobs/, tmp/ and uploads/ must be on the same filesystem so that the link is atomic: a
 * blob path either does not exist or holds the complete, fsynced, verified bytes.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { assertUploadId, digestHex } from './blob-store.js';

export class BlobPaths {
  readonly root: string;
  readonly db: string;
  readonly blobs: string;
  readonly tmp: string;
  readonly uploads: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.db = path.join(this.root, 'db');
    this.blobs = path.join(this.root, 'blobs', 'sha256');
    this.tmp = path.join(this.root, 'tmp');
    this.uploads = path.join(this.root, 'uploads');
  }

  /** The file of a resumable upload; the id is validated here, before it can become a path. */
  upload(id: string): string {
    assertUploadId(id);
    return path.join(this.uploads, id);
  }

  /** The path of a blob; the digest is validated here, before it can become a path. */
  blob(digest: string): string {
    const hex = digestHex(digest);
    return path.join(this.blobs, hex.slice(0, 2), hex);
  }

  /** A fresh, unpredictable temp file path for an upload. */
  newTemp(): string {
    return path.join(this.tmp, `${randomBytes(12).toString('hex')}.upload`);
  }

  /** Turns a path found under blobs/ back into its digest, or null if it is not a blob. */
  digestOf(dir: string, name: string): string | null {
    if (!/^[a-f0-9]{64}$/.test(name) || name.slice(0, 2) !== dir) return null;
    return `sha256:${name}`;
  }
}
