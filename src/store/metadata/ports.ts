/**
 * The metadata ports: every record the registry keeps besides layer bytes, cut by aggregate
 * (images, repositories, tags, image lists, accounts, the webhook queue, pull statistics,
 * OAuth, and what the Registry API v2 adds). A service takes only the ports it uses, so its
 * constructor shows its reach. Methods are domain operations, so each backend decides how
 * to make them atomic; one backend implements them all (MetadataStore, metadata-store.ts),
 * and a few operations span aggregates on purpose (putTag writes the repository record and
 * the image list; deleteRepo drops tags, image list, manifest and blob links).
 * test/store/metadata-store.contract.ts and test/store/oauth-store.contract.ts are the
 * behaviour every implementation must pass.
 */
import type { ImageId, RepoName, Tag } from '../../domain/names.js';
import type {
  BlobLink,
  ImageRecord,
  LayerFacts,
  ManifestLink,
  OAuthClientRecord,
  OAuthCodeRecord,
  OAuthGrantRecord,
  OAuthTokenRecord,
  RepoImageEntry,
  RepoRecord,
  TagRecord,
  UploadRecord,
  UserRecord,
  WebhookDelivery,
} from '../../domain/records.js';

/** Opening, closing and the liveness check of the backend behind every port. */
export interface StoreLifecycle {
  open(): Promise<void>;
  close(): Promise<void>;
  /** Cheap liveness check (a read). */
  ping(): Promise<void>;
}

/** v1 images: the record, the JSON bytes as uploaded and the ancestry. */
export interface ImageStore {
  getImage(id: ImageId): Promise<ImageRecord | null>;
  /** The image JSON bytes exactly as uploaded. */
  getImageJson(id: ImageId): Promise<Buffer | null>;
  getAncestry(id: ImageId): Promise<ImageId[] | null>;
  /** Writes the record, its JSON bytes and its ancestry atomically (PUT json). */
  putImage(record: ImageRecord, json: Buffer, ancestry: ImageId[]): Promise<void>;
  /** Replaces the record only (layer uploaded, image completed). */
  updateImage(record: ImageRecord): Promise<void>;
  listImages(): AsyncIterable<ImageRecord>;
  /** Removes an image's record, JSON and ancestry atomically (garbage collection). */
  deleteImage(id: ImageId): Promise<void>;
}

/** Repository records. */
export interface RepositoryStore {
  getRepo(name: RepoName): Promise<RepoRecord | null>;
  putRepo(name: RepoName, record: RepoRecord): Promise<void>;
  /**
   * Removes the repository, all its tags and its image list (and its manifest links,
   * referrer entries and blob links) atomically; false if absent.
   */
  deleteRepo(name: RepoName): Promise<boolean>;
  listRepos(): AsyncIterable<RepoRecord>;
  /**
   * Every repository in name order, at once. Frozen and shared: the same array comes back
   * until a repository is written, so callers may key caches on its identity.
   */
  allRepos(): Promise<readonly RepoRecord[]>;
  /** The repositories of one namespace, sorted by repository name (the Docker Hub API double). */
  listReposInNamespace(namespace: string): AsyncIterable<RepoRecord>;
}

/** Tags of a repository. */
export interface TagStore {
  getTag(name: RepoName, tag: Tag): Promise<TagRecord | null>;
  /**
   * All tags of a repository, sorted by tag name. Frozen and shared: the same array may
   * come back until the repository's tags change (never after), so callers may key caches
   * on its identity.
   */
  listTags(name: RepoName): Promise<ReadonlyArray<readonly [Tag, TagRecord]>>;
  /**
   * Sets a tag, writes its repository record and adds `link` (the tagged image's ancestry)
   * to the repository's image list, atomically.
   */
  putTag(name: RepoName, tag: Tag, record: TagRecord, repo: RepoRecord, link?: readonly ImageId[]): Promise<void>;
  /** False when the tag did not exist. */
  deleteTag(name: RepoName, tag: Tag): Promise<boolean>;
}

/** The Index image list of each repository, and its reverse (which repositories hold an image). */
export interface ImageListStore {
  /**
   * The Index image list, sorted by id. Frozen and shared like listTags: the same array
   * may come back until the list changes (never after).
   */
  getRepoImages(name: RepoName): Promise<readonly RepoImageEntry[]>;
  /**
   * Merges entries by id into the image list: an entry's checksum replaces the old one, an
   * entry without one keeps it (an id repeated in `entries`: its last checksum wins).
   * Concurrent merges and tag links never lose an entry or a checksum.
   */
  mergeRepoImages(name: RepoName, entries: RepoImageEntry[]): Promise<void>;
  /** Removes images from a repository's image list (and their reverse links), atomically. */
  unlinkRepoImages(name: RepoName, ids: ImageId[]): Promise<void>;
  /** The repositories whose image list holds `id` (reverse of the image lists). */
  reposOfImage(id: ImageId): Promise<RepoName[]>;
}

/** User accounts and their e-mail index. */
export interface AccountStore {
  getUser(name: string): Promise<UserRecord | null>;
  getUserNameByEmail(email: string): Promise<string | null>;
  /** Writes the user and its e-mail index; `previousEmail` is released if it changed. */
  putUser(user: UserRecord, previousEmail?: string): Promise<void>;
  listUsers(): AsyncIterable<UserRecord>;
}

/** The persistent webhook queue. */
export interface WebhookQueue {
  /** Adds deliveries to the persistent webhook queue, atomically. */
  enqueueWebhooks(deliveries: WebhookDelivery[]): Promise<void>;
  /** Deliveries due at or before `now`, oldest due first, at most `limit`. */
  dueWebhooks(now: number, limit: number): Promise<WebhookDelivery[]>;
  /**
   * Takes the deliveries due at or before `now` (oldest due first, at most `limit`) for one
   * deliverer: each is moved to `now + leaseMs` in the same atomic step, so no other claim,
   * from this process or another node, gets it until then. Returns them as they are queued
   * now (`dueAt`: the lease's end, which removeWebhook and rescheduleWebhook go by). A
   * deliverer that dies leaves them to be claimed again once the lease ends.
   */
  claimWebhooks(now: number, limit: number, leaseMs: number): Promise<WebhookDelivery[]>;
  /**
   * Replaces a queued delivery (its `dueAt` may change) atomically; nothing when `previous`
   * is no longer queued as it was (its lease ended and another claim took it).
   */
  rescheduleWebhook(previous: WebhookDelivery, next: WebhookDelivery): Promise<void>;
  removeWebhook(delivery: WebhookDelivery): Promise<void>;
  /** Every queued delivery (for status and tests). */
  listWebhooks(): AsyncIterable<WebhookDelivery>;
}

/** Pull statistics and pushers (the Docker Hub API double). */
export interface PullStatsStore {
  getRepoPulls(name: RepoName): Promise<RepoPullStats | null>;
  /** Counts `count` (default 1) pulls of the repository, the last at `at` (ISO time); concurrent calls are never lost. */
  addRepoPull(name: RepoName, at: string, count?: number): Promise<void>;
  /** Marks tags pulled at `at` (ISO time), atomically. */
  setTagsPulled(name: RepoName, tags: Tag[], at: string): Promise<void>;
  setTagPusher(name: RepoName, tag: Tag, user: string): Promise<void>;
  /** For each of `tags`, in order: when it was last pulled and who last pushed it (null: unknown). */
  getTagStats(name: RepoName, tags: Tag[]): Promise<TagStats[]>;
  /** Forgets a tag's pull time and pusher. */
  deleteTagStats(name: RepoName, tag: Tag): Promise<void>;
  /** Forgets a repository's pull count and every tag's pull time and pusher, atomically. */
  deleteRepoStats(name: RepoName): Promise<void>;
}

/** A tag's pull time and pusher (Docker Hub API double). */
export interface TagStats {
  /** ISO time of the last pull. */
  lastPulledAt: string | null;
  /** The user who last pushed the tag. */
  pusher: string | null;
}

/** How often and when a repository was pulled (v1 pull starts, see HubService). */
export interface RepoPullStats {
  count: number;
  /** ISO time of the last pull. */
  lastPulledAt: string | null;
}

// ── What the Registry API v2 adds ───────────────────────────────────────────────────────
// Manifests (bytes stored once per digest, linked into the repositories that hold them),
// blob links, upload sessions, layer facts (diff ids), and the manifests that show v1
// images over v2. Digests are `sha256:<hex>`, validated by the caller.

/** Which kind of manifest shows a v1 image over v2 (Docker schema 2, or OCI for OCI-only clients). */
export type ManifestFlavor = 'docker' | 'oci';

/** v2 manifests: bytes stored once per digest, repository links, the referrers index. */
export interface ManifestStore {
  /** The bytes of a stored manifest, exactly as pushed; null when not stored. */
  getManifest(digest: string): Promise<Buffer | null>;
  /** The repository's link to a manifest; null when the repository does not hold it. */
  getManifestLink(name: RepoName, digest: string): Promise<ManifestLink | null>;
  /** Every manifest the repository holds, sorted by digest. */
  listManifestLinks(name: RepoName): Promise<Array<[string, ManifestLink]>>;
  /**
   * Stores the bytes (kept as they are if already stored), links them into the repository
   * and indexes `link.subject` for the referrers API, atomically.
   */
  putManifest(name: RepoName, digest: string, bytes: Buffer, link: ManifestLink): Promise<void>;
  /** Removes a repository's link to a manifest and its referrer entry; false if it had none. */
  unlinkManifest(name: RepoName, digest: string): Promise<boolean>;
  /** The manifests of the repository whose `subject` is `subject`, sorted by digest. */
  listReferrers(name: RepoName, subject: string): Promise<Array<[string, ManifestLink]>>;
  /** Every stored manifest digest. */
  listManifests(): AsyncIterable<string>;
  /** Removes stored manifest bytes (garbage collection). */
  deleteManifest(digest: string): Promise<void>;
}

/** Which blobs each repository holds (v2 links; the bytes live in the BlobStore). */
export interface BlobLinkStore {
  getBlobLink(name: RepoName, digest: string): Promise<BlobLink | null>;
  /** Links blobs into a repository; a link that exists is kept as it is. */
  linkBlobs(name: RepoName, blobs: ReadonlyArray<readonly [string, BlobLink]>): Promise<void>;
  /** False when the repository had no such link. */
  unlinkBlob(name: RepoName, digest: string): Promise<boolean>;
  /** Every blob the repository holds, sorted by digest. */
  listBlobLinks(name: RepoName): Promise<Array<[string, BlobLink]>>;
}

/** v2 upload sessions. */
export interface UploadSessionStore {
  getUpload(id: string): Promise<UploadRecord | null>;
  putUpload(record: UploadRecord): Promise<void>;
  deleteUpload(id: string): Promise<void>;
  listUploads(): AsyncIterable<UploadRecord>;
}

/** What a layer's bytes are (compression, diff id: the sha256 of the uncompressed bytes), by layer digest. */
export interface LayerFactsStore {
  getLayerFacts(digest: string): Promise<LayerFacts | null>;
  putLayerFacts(digest: string, facts: LayerFacts): Promise<void>;
  deleteLayerFacts(digest: string): Promise<void>;
}

/** The manifests that show v1 images over v2 (see ImageBridge). */
export interface ImageManifestStore {
  /** The manifest that shows a v1 image over v2, or null. */
  getImageManifest(id: ImageId, flavor: ManifestFlavor): Promise<string | null>;
  /** Records it unless one is recorded already (the first one stays: same bytes every time). */
  putImageManifest(id: ImageId, flavor: ManifestFlavor, digest: string): Promise<void>;
  listImageManifests(): AsyncIterable<{ id: ImageId; flavor: ManifestFlavor; digest: string }>;
  deleteImageManifest(id: ImageId, flavor: ManifestFlavor): Promise<void>;
}

/**
 * OAuth 2 clients, authorization codes, grants and tokens (src/services/oauth.ts). Codes
 * and tokens are addressed by the SHA-256 of their value; the store never sees a secret.
 * The check-and-set methods (useOAuthCode, rotateOAuthToken, issueOAuthTokens,
 * revokeOAuthGrant) are atomic against each other: two exchanges of one code, two
 * refreshes with one refresh token, or a refresh racing a revocation have one winner.
 * test/store/oauth-store.contract.ts is the behaviour every implementation must pass.
 */
export interface OAuthStore {
  getOAuthClient(id: string): Promise<OAuthClientRecord | null>;
  putOAuthClient(client: OAuthClientRecord): Promise<void>;
  /** False when there was no such client. Its grants and tokens stay (and stop working). */
  deleteOAuthClient(id: string): Promise<boolean>;
  /** Every client, by id. */
  listOAuthClients(): AsyncIterable<OAuthClientRecord>;

  putOAuthCode(code: OAuthCodeRecord): Promise<void>;
  getOAuthCode(hash: string): Promise<OAuthCodeRecord | null>;
  /**
   * Marks a code used at `at` (ISO time). Returns the record as it was before: `usedAt`
   * null means this call used it; set means it had been used already (nothing changed).
   * Null for an unknown code.
   */
  useOAuthCode(hash: string, at: string): Promise<OAuthCodeRecord | null>;

  getOAuthGrant(user: string, id: string): Promise<OAuthGrantRecord | null>;
  /** The grants of one user (revoked ones included), by grant id. */
  listOAuthGrants(user: string): AsyncIterable<OAuthGrantRecord>;
  /**
   * Writes `grant` and `tokens` (of that grant) atomically. False, and nothing written,
   * when the grant exists and is revoked: a revoked grant never gets tokens again.
   */
  issueOAuthTokens(grant: OAuthGrantRecord, tokens: OAuthTokenRecord[]): Promise<boolean>;
  getOAuthToken(hash: string): Promise<OAuthTokenRecord | null>;
  /**
   * Marks a live refresh token rotated at `at` (it is kept, so that a reuse can be
   * recognised). False when it is unknown or was rotated already.
   */
  rotateOAuthToken(hash: string, at: string): Promise<boolean>;
  /** Deletes one token; false when it was not there. */
  deleteOAuthToken(hash: string): Promise<boolean>;
  /**
   * Marks a grant revoked at `at` and deletes all its tokens, atomically; true when this
   * call revoked it. An unknown grant is written as revoked (scopes empty), so that tokens
   * a code exchange still in flight would give it are refused: false, as for a grant that
   * was revoked already.
   */
  revokeOAuthGrant(grant: Pick<OAuthGrantRecord, 'id' | 'user' | 'clientId'>, at: string): Promise<boolean>;
  /**
   * Deletes codes and tokens that expired before `before` (ISO time); returns how many.
   * Grants stay (revoked ones as tombstones, live ones until the user revokes them).
   */
  pruneOAuth(before: string): Promise<number>;
}

/**
 * Failed logins, counted per key (`user:<name>` or `addr:<address>`) for the login throttle
 * (services/throttle.ts). Times are milliseconds (the caller's clock); a key's failures are
 * kept newest first up to the `keep` the caller gives, older ones cannot matter to it.
 * InMemoryLoginFailures (store/login-failures.ts) for one process; PostgresMetadataStore
 * (table login_failures) for every node of a registry.
 * test/store/node-state.contract.ts is the behaviour both pass.
 */
export interface LoginFailureStore {
  /** The failures of `key` after `since`, the newest `limit` of them, oldest first. */
  recentFailures(key: string, since: number, limit: number): Promise<number[]>;
  /** Counts a failure of `key` at `at`, keeping at most its `keep` newest failures. */
  addFailure(key: string, at: number, keep: number): Promise<void>;
  /** Forgets every failure of `key` (a successful login of an account). */
  clearFailures(key: string): Promise<void>;
  /** Forgets every failure at or before `before`, of every key; returns how many. */
  pruneFailures(before: number): Promise<number>;
}

/**
 * Web UI sessions a logout ended (services/sessions.ts), remembered by id until the cookie
 * would have expired anyway. InMemoryEndedSessions (store/ended-sessions.ts) for one
 * process; PostgresMetadataStore (table ended_sessions) for every node of a registry.
 */
export interface EndedSessionStore {
  /** Remembers that session `id` ended; `expiresAt` (unix s): when it would have expired. */
  endSession(id: string, expiresAt: number): Promise<void>;
  /** Whether a logout ended session `id` (and it has not expired since `now`, unix s). */
  isSessionEnded(id: string, now: number): Promise<boolean>;
  /** Forgets sessions that expired at or before `now` (unix s); returns how many. */
  pruneEndedSessions(now: number): Promise<number>;
}
