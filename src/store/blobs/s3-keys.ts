/**
 * The one file that owns the object-key layout of S3BlobStore's bucket (as blob-paths.ts owns
 * the filesystem layout). Nothing else builds a key.
 *
 *   <bucket>/
 *   ├── blobs/sha256/<hex[0:2]>/<hex>   layer bytes, addressed by sha256(bytes); immutable;
 *   │                                   written only by a server-side copy of a verified
 *   │                                   upload, so a key either does not exist or holds
 *   │                                   the complete bytes
 *   ├── uploads/<random>                one upload: a multipart upload while bytes arrive,
 *   │                                   then the completed object until commit copies it
 *   │                                   under blobs/ and deletes it; abandoned ones are
 *   │                                   removed by init() and by garbage collection once
 *   │                                   idle for the abandon age / upload_expiry_seconds
 *   │                                   (other nodes' uploads in progress are younger)
 *   └── sessions/<uuid>/<start>         a resumable (Registry API v2) upload: one object per
 *                                       append, named by its first byte's offset (15
 *                                       digits); the session's bytes are the objects in
 *                                       order; commit writes them under blobs/ (a copy, or
 *                                       one multipart upload) and deletes them; GC reclaims
 *                                       abandoned sessions (init() leaves them), and the
 *                                       multipart uploads of appends cut short by a crash
 *
 * `list()` reads only blobs/: an upload is never visible as a blob.
 */
import { randomBytes } from 'node:crypto';
import { invalidInput } from '../../domain/errors.js';
import { assertUploadId } from './blob-store.js';

const DIGEST = /^sha256:([a-f0-9]{64})$/;
const BLOB_KEY = /^blobs\/sha256\/([a-f0-9]{2})\/([a-f0-9]{64})$/;

export const BLOBS_PREFIX = 'blobs/sha256/';
export const UPLOADS_PREFIX = 'uploads/';
export const SESSIONS_PREFIX = 'sessions/';
const SESSION_PART = /^sessions\/([a-f0-9-]{36})\/(\d{15})$/;

export const s3Keys = {
  /** The key of a blob; the digest is validated here, before it can become a key. */
  blob(digest: string): string {
    const m = typeof digest === 'string' ? DIGEST.exec(digest) : null;
    if (!m) throw invalidInput(`Invalid blob digest: ${JSON.stringify(String(digest)).slice(0, 80)}`);
    const hex = m[1];
    return `${BLOBS_PREFIX}${hex.slice(0, 2)}/${hex}`;
  },

  /** A fresh, unpredictable key for an upload. */
  newUpload(): string {
    return `${UPLOADS_PREFIX}${randomBytes(12).toString('hex')}`;
  },

  /** The prefix of a resumable session's objects; the id is validated here. */
  session(id: string): string {
    assertUploadId(id);
    return `${SESSIONS_PREFIX}${id}/`;
  },

  /** The object of a session's append that starts at byte `start`. */
  sessionPart(id: string, start: number): string {
    return `${this.session(id)}${String(start).padStart(15, '0')}`;
  },

  /** The session and first byte of a key listed under sessions/, or null. */
  sessionPartOf(key: string): { id: string; start: number } | null {
    const m = SESSION_PART.exec(key);
    return m ? { id: m[1], start: Number(m[2]) } : null;
  },

  /** The digest of a key listed under blobs/, or null if it is not a blob. */
  digestOf(key: string): string | null {
    const m = BLOB_KEY.exec(key);
    if (!m || m[2].slice(0, 2) !== m[1]) return null;
    return `sha256:${m[2]}`;
  },
};
