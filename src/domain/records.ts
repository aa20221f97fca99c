/**
 * The records kept in the metadata store. Plain JSON-serialisable data, no behaviour.
 */
import type { ImageId } from './names.js';

export type ImageStatus = 'pending' | 'complete';

/** What the layer upload produced: bytes are content-addressed by `digest`. */
export interface LayerRecord {
  /** `sha256:<hex>` of the layer bytes; the blob's address. */
  digest: string;
  size: number;
  /**
   * `sha256:<hex>` of json bytes + "\n" + layer bytes (X-Docker-Checksum-Payload); null for
   * images derived from a manifest pushed over v2 (not computed: it would mean reading
   * every layer again, and no client needs it to pull).
   */
  payloadChecksum: string | null;
  /** Tarsum computed while the layer streamed, when the client announced one. */
  tarsum: string | null;
}

export interface ImageRecord {
  id: ImageId;
  parent: ImageId | null;
  /** `pending` until PUT checksum verified the layer; only `complete` images are served. */
  status: ImageStatus;
  /** Byte length of the image JSON as uploaded (kept byte-exact under its own key). */
  jsonSize: number;
  /** X-Docker-Checksum the client announced (tarsum or sha256), verified against the layer. */
  claimedChecksum: string | null;
  layer: LayerRecord | null;
  createdAt: string;
  completedAt: string | null;
}

/** Client facts recorded on every tag PUT (the `…/json` routes serve them). */
export interface ClientInfo {
  last_update: number | null;
  docker_version: string | null;
  docker_go_version: string | null;
  arch: string;
  os: string;
  kernel: string | null;
}

/**
 * One tag, shared by both faces. A v1 tag names an image (`imageId`); a tag set over v2 names
 * a manifest (`manifest`) and, when that manifest is an image the v1 face can show, the top
 * image derived from it. A v2 tag of something v1 cannot show (an index without a
 * linux/amd64 image, an artifact) has `imageId: null` and is invisible to v1.
 */
export interface TagRecord {
  imageId: ImageId | null;
  /** The manifest digest, when the tag was set over v2. */
  manifest?: string;
  info: ClientInfo;
}

// ── Registry API v2 ────────────────────────────────────────────────────────────────────

/** A manifest as one repository holds it (the bytes are stored once, by digest). */
export interface ManifestLink {
  mediaType: string;
  size: number;
  createdAt: string;
  /** The `subject` digest (referrers API). */
  subject?: string;
  /** What the referrers API lists as artifactType. */
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** A blob a repository holds (uploaded, mounted, or used by a manifest it holds). */
export interface BlobLink {
  size: number;
  createdAt: string;
}

/** A v2 upload session (its bytes are in the blob store's upload area). */
export interface UploadRecord {
  id: string;
  /** The repository (full name) it was started in. */
  repo: string;
  /** Bytes received and made durable so far. */
  offset: number;
  startedAt: string;
  updatedAt: string;
}

export type LayerCompression = 'none' | 'gzip' | 'zstd' | 'bzip2' | 'xz';

/** Facts of a layer blob, computed once (the diff_id needs a full decompression). */
export interface LayerFacts {
  compression: LayerCompression;
  /** `sha256:` of the uncompressed bytes. */
  diffId: string;
}

export type RepoAccess = 'public' | 'private';

/** What a collaborator may do on a repository (owners and admins may do everything). */
export type Permission = 'read' | 'write' | 'admin';

export interface RepoRecord {
  namespace: string;
  repository: string;
  access: RepoAccess;
  description: string;
  createdAt: string;
  /** Client facts of the most recent tag PUT in this repository. */
  lastTagInfo: ClientInfo | null;
  /** Users given access besides the namespace owner and the admins. */
  collaborators?: Record<string, Permission>;
  /** The long (Markdown) description; Docker Hub API double's `full_description`. */
  fullDescription?: string;
}

export interface UserRecord {
  name: string;
  email: string;
  /** bcrypt hash of the password. */
  passwordHash: string;
  active: boolean;
  admin: boolean;
  createdAt: string;
  /** Public profile fields (Accounts API, Hub): absent or empty when never set. */
  profile?: UserProfile;
}

/** What a user tells about themselves (PATCH /api/v1.1/users/:name/ with `profile_write`). */
export interface UserProfile {
  fullName?: string;
  location?: string;
  company?: string;
  url?: string;
}

/** One entry of a repository's image list (Index API). */
export interface RepoImageEntry {
  id: ImageId;
  checksum?: string;
}

/** One webhook notification on its way to one endpoint (kept in the metadata store). */
export interface WebhookDelivery {
  id: string;
  url: string;
  /** The JSON body, as it will be POSTed. */
  payload: unknown;
  attempts: number;
  /** When the next attempt is due (ms since the epoch). */
  dueAt: number;
  createdAt: string;
  lastError: string | null;
}

// ── OAuth 2 (src/services/oauth.ts): secrets, codes and tokens are kept as SHA-256 hashes ──

/** What an OAuth token may do for its user (never more than the user may). */
export type OAuthScope = 'profile_read' | 'profile_write' | 'repo_read' | 'repo_write';

/** A third-party application an admin registered. */
export interface OAuthClientRecord {
  /** `client_id`: random, public. */
  id: string;
  name: string;
  /** hex SHA-256 of the client secret (shown once, when the client is added). */
  secretHash: string;
  /** Where codes may be sent: `redirect_uri` must equal one of these exactly. */
  redirectUris: string[];
  createdAt: string;
}

/** An authorization code, from the consent until it is exchanged (single use). */
export interface OAuthCodeRecord {
  /** hex SHA-256 of the code (its key). */
  hash: string;
  clientId: string;
  user: string;
  redirectUri: string;
  scopes: OAuthScope[];
  expiresAt: string;
  /** PKCE (RFC 7636), when the client sent a challenge. */
  codeChallenge: string | null;
  codeChallengeMethod: string | null;
  /** The grant the exchange creates: a reused code revokes it. */
  grantId: string;
  /** When it was exchanged (null: not yet). */
  usedAt: string | null;
}

/** One authorization of one client by one user: the family of tokens a code started. */
export interface OAuthGrantRecord {
  id: string;
  user: string;
  clientId: string;
  scopes: OAuthScope[];
  createdAt: string;
  /** When it was revoked (its tokens are then gone); null while live. */
  revokedAt: string | null;
}

/** An access or refresh token of a grant. */
export interface OAuthTokenRecord {
  /** hex SHA-256 of the token (its key). */
  hash: string;
  kind: 'access' | 'refresh';
  grantId: string;
  clientId: string;
  user: string;
  scopes: OAuthScope[];
  expiresAt: string;
  /** A refresh token that was exchanged for a new pair (kept to detect its reuse); null while usable. */
  rotatedAt: string | null;
}
