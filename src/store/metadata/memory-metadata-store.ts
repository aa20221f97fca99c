/**
 * MetadataStore in memory, for the test double (src/testing/): the same contract as the
 * LevelDB store (test/store/metadata-store.contract.ts), nothing on disk.
 *
 * Records are kept serialized (JSON text, image JSON as bytes), as LevelDB keeps them, so a
 * caller never shares an object with the store: what it reads back is a fresh copy, or one
 * of the frozen, shared lists the interface allows. Every method does its whole
 * read-modify-write without awaiting, so each one is atomic on its own (JavaScript runs one
 * at a time), which the LevelDB store gets from batches and its per-repository queue.
 *
 * The data lives in a MemoryMetadataData, the store's "disk": a store closed and opened again
 * on the same data sees everything that was written (the contract's reopen).
 *
 *   images        id → ImageRecord             imageJson   id → the JSON bytes as uploaded
 *   ancestry      id → [id, parent, …]
 *   repos         ns/repo → RepoRecord          tags        ns/repo → tag → TagRecord
 *   repoImages    ns/repo → id → RepoImageEntry (the image list)
 *   imageRepos    id → {ns/repo}               (reverse of repoImages, kept with it)
 *   users         name → UserRecord             emails      e-mail → name
 *   webhooks      "<due ms>!<id>" → WebhookDelivery
 *   repoPulls     ns/repo → RepoPullStats       tagPulls, tagPushers   ns/repo → tag → value
 *   oauthClients  id → OAuthClientRecord        oauthCodes  sha256 → OAuthCodeRecord
 *   oauthGrants   "<user>!<id>" → OAuthGrantRecord
 *   oauthTokens   sha256 → OAuthTokenRecord     (a grant's tokens: those whose grantId is it)
 *   manifests     digest → the manifest bytes   manifestLinks  ns/repo → digest → ManifestLink
 *   blobLinks     ns/repo → digest → BlobLink   (referrers: the links whose subject is asked)
 *   uploads       uuid → UploadRecord           layerFacts     digest → LayerFacts
 *   imageManifests "<id>!<flavor>" → manifest digest
 */
import { parseStoredName, type ImageId, type RepoName, type Tag } from '../../domain/names.js';
import type {
  BlobLink,
  LayerFacts,
  ManifestLink,
  UploadRecord,
  ImageRecord,
  OAuthClientRecord,
  OAuthCodeRecord,
  OAuthGrantRecord,
  OAuthTokenRecord,
  RepoImageEntry,
  RepoRecord,
  TagRecord,
  UserRecord,
  WebhookDelivery,
} from '../../domain/records.js';
import type { MetadataStore } from './metadata-store.js';
import type { ManifestFlavor, RepoPullStats, TagStats } from './ports.js';

type TagList = ReadonlyArray<readonly [Tag, TagRecord]>;
/** Serialized records of one repository, by tag or image id. */
type PerRepo<K extends string> = Map<string, Map<K, string>>;

/** What a MemoryMetadataStore keeps; survives the store's close() and open(). */
export class MemoryMetadataData {
  readonly images = new Map<ImageId, string>();
  readonly imageJson = new Map<ImageId, Buffer>();
  readonly ancestry = new Map<ImageId, string>();
  readonly repos = new Map<string, string>();
  readonly tags: PerRepo<Tag> = new Map();
  readonly repoImages: PerRepo<ImageId> = new Map();
  readonly imageRepos = new Map<ImageId, Set<string>>();
  readonly users = new Map<string, string>();
  readonly emails = new Map<string, string>();
  readonly webhooks = new Map<string, string>();
  readonly repoPulls = new Map<string, string>();
  readonly tagPulls: PerRepo<Tag> = new Map();
  readonly tagPushers: PerRepo<Tag> = new Map();
  readonly oauthClients = new Map<string, string>();
  readonly oauthCodes = new Map<string, string>();
  readonly oauthGrants = new Map<string, string>();
  readonly oauthTokens = new Map<string, string>();
  readonly manifests = new Map<string, Buffer>();
  readonly manifestLinks: PerRepo<string> = new Map();
  readonly blobLinks: PerRepo<string> = new Map();
  readonly uploads = new Map<string, string>();
  readonly layerFacts = new Map<string, string>();
  readonly imageManifests = new Map<string, string>();
}

const parse = <T>(text: string | undefined): T | null => (text === undefined ? null : (JSON.parse(text) as T));
const text = (value: unknown): string => JSON.stringify(value);

function inner<K extends string>(outer: PerRepo<K>, name: RepoName): Map<K, string> {
  let map = outer.get(name.full);
  if (!map) outer.set(name.full, (map = new Map()));
  return map;
}

/** Map entries sorted by key (the order of LevelDB's key scans). */
function sorted<K extends string, V>(map: Map<K, V> | undefined): Array<[K, V]> {
  return map ? [...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) : [];
}

/** LevelDB keys a delivery by its due time in whole milliseconds and its id. */
const dueOf = (delivery: WebhookDelivery) => Math.max(0, Math.floor(delivery.dueAt));
const webhookKey = (delivery: WebhookDelivery) => `${dueOf(delivery)}!${delivery.id}`;

export class MemoryMetadataStore implements MetadataStore {
  private opened = false;
  /** Frozen answers handed out until what they were built from changes (see the interface). */
  private sortedRepos: readonly RepoRecord[] | null = null;
  private readonly repoRecords = new Map<string, RepoRecord>();
  private readonly tagLists = new Map<string, TagList>();
  private readonly imageLists = new Map<string, readonly RepoImageEntry[]>();

  constructor(private readonly data: MemoryMetadataData = new MemoryMetadataData()) {}

  async open(): Promise<void> {
    this.opened = true;
  }

  async close(): Promise<void> {
    this.opened = false;
    this.sortedRepos = null;
    this.repoRecords.clear();
    this.tagLists.clear();
    this.imageLists.clear();
  }

  async ping(): Promise<void> {
    this.d();
  }

  /** The data, once the store is open (LevelDB refuses calls on a closed database too). */
  private d(): MemoryMetadataData {
    if (!this.opened) throw new Error('the metadata store is not open');
    return this.data;
  }

  async getImage(id: ImageId): Promise<ImageRecord | null> {
    return parse(this.d().images.get(id));
  }

  async getImageJson(id: ImageId): Promise<Buffer | null> {
    const json = this.d().imageJson.get(id);
    return json ? Buffer.from(json) : null;
  }

  async getAncestry(id: ImageId): Promise<ImageId[] | null> {
    return parse(this.d().ancestry.get(id));
  }

  async putImage(record: ImageRecord, json: Buffer, ancestry: ImageId[]): Promise<void> {
    const d = this.d();
    d.images.set(record.id, text(record));
    d.imageJson.set(record.id, Buffer.from(json));
    d.ancestry.set(record.id, text(ancestry));
  }

  async updateImage(record: ImageRecord): Promise<void> {
    this.d().images.set(record.id, text(record));
  }

  async *listImages(): AsyncIterable<ImageRecord> {
    for (const [, record] of sorted(this.d().images)) yield JSON.parse(record) as ImageRecord;
  }

  async deleteImage(id: ImageId): Promise<void> {
    const d = this.d();
    d.images.delete(id);
    d.imageJson.delete(id);
    d.ancestry.delete(id);
  }

  async getRepo(name: RepoName): Promise<RepoRecord | null> {
    return this.repoRecord(name.full);
  }

  private repoRecord(full: string): RepoRecord | null {
    let record = this.repoRecords.get(full);
    if (!record) {
      const stored = parse<RepoRecord>(this.d().repos.get(full));
      if (!stored) return null;
      this.repoRecords.set(full, (record = Object.freeze(stored)));
    }
    return record;
  }

  async putRepo(name: RepoName, record: RepoRecord): Promise<void> {
    this.writeRepo(name, record);
  }

  private writeRepo(name: RepoName, record: RepoRecord | null): void {
    const d = this.d();
    if (record) d.repos.set(name.full, text(record));
    else d.repos.delete(name.full);
    this.repoRecords.delete(name.full);
    this.sortedRepos = null;
  }

  async deleteRepo(name: RepoName): Promise<boolean> {
    const d = this.d();
    if (!d.repos.has(name.full)) return false;
    this.writeRepo(name, null);
    d.tags.delete(name.full);
    d.manifestLinks.delete(name.full);
    d.blobLinks.delete(name.full);
    for (const id of d.repoImages.get(name.full)?.keys() ?? []) this.unlinkReverse(id, name);
    d.repoImages.delete(name.full);
    this.tagLists.delete(name.full);
    this.imageLists.delete(name.full);
    return true;
  }

  async *listRepos(): AsyncIterable<RepoRecord> {
    yield* await this.allRepos();
  }

  async allRepos(): Promise<readonly RepoRecord[]> {
    this.sortedRepos ??= Object.freeze(sorted(this.d().repos).map(([full]) => this.repoRecord(full) as RepoRecord));
    return this.sortedRepos;
  }

  async getTag(name: RepoName, tag: Tag): Promise<TagRecord | null> {
    return parse(this.d().tags.get(name.full)?.get(tag));
  }

  async listTags(name: RepoName): Promise<TagList> {
    let list = this.tagLists.get(name.full);
    if (!list) {
      list = Object.freeze(
        sorted(this.d().tags.get(name.full)).map(([tag, record]) => {
          const parsed = JSON.parse(record) as TagRecord;
          Object.freeze(parsed.info);
          return Object.freeze([tag, Object.freeze(parsed)] as const);
        }),
      );
      this.tagLists.set(name.full, list);
    }
    return list;
  }

  async putTag(name: RepoName, tag: Tag, record: TagRecord, repo: RepoRecord, link: readonly ImageId[] = []): Promise<void> {
    inner(this.d().tags, name).set(tag, text(record));
    this.writeRepo(name, repo);
    this.tagLists.delete(name.full);
    // Keep an entry that exists (it may carry a checksum from the Index image list).
    const entries = link.filter((id) => !this.data.repoImages.get(name.full)?.has(id)).map((id) => ({ id }));
    if (entries.length > 0) this.link(name, entries);
  }

  async deleteTag(name: RepoName, tag: Tag): Promise<boolean> {
    if (!this.d().tags.get(name.full)?.delete(tag)) return false;
    this.tagLists.delete(name.full);
    return true;
  }

  async getRepoImages(name: RepoName): Promise<readonly RepoImageEntry[]> {
    let list = this.imageLists.get(name.full);
    if (!list) {
      list = Object.freeze(sorted(this.d().repoImages.get(name.full)).map(([, entry]) => Object.freeze(JSON.parse(entry) as RepoImageEntry)));
      this.imageLists.set(name.full, list);
    }
    return list;
  }

  async mergeRepoImages(name: RepoName, entries: RepoImageEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const existing = this.d().repoImages.get(name.full);
    // Fold the batch by id first: an id listed twice keeps the last checksum it was given.
    const merged = new Map<ImageId, string | undefined>();
    for (const entry of entries) merged.set(entry.id, entry.checksum || merged.get(entry.id));
    this.link(
      name,
      [...merged].map(([id, given]) => {
        const checksum = given ?? parse<RepoImageEntry>(existing?.get(id))?.checksum;
        return checksum ? { id, checksum } : { id };
      }),
    );
  }

  /** Writes image-list entries and their reverse links. */
  private link(name: RepoName, entries: RepoImageEntry[]): void {
    const list = inner(this.d().repoImages, name);
    for (const entry of entries) {
      list.set(entry.id, text(entry));
      let repos = this.data.imageRepos.get(entry.id);
      if (!repos) this.data.imageRepos.set(entry.id, (repos = new Set()));
      repos.add(name.full);
    }
    this.imageLists.delete(name.full);
  }

  private unlinkReverse(id: ImageId, name: RepoName): void {
    const repos = this.data.imageRepos.get(id);
    if (repos?.delete(name.full) && repos.size === 0) this.data.imageRepos.delete(id);
  }

  async unlinkRepoImages(name: RepoName, ids: ImageId[]): Promise<void> {
    const list = this.d().repoImages.get(name.full);
    for (const id of ids) {
      list?.delete(id);
      this.unlinkReverse(id, name);
    }
    this.imageLists.delete(name.full);
  }

  async reposOfImage(id: ImageId): Promise<RepoName[]> {
    return [...(this.d().imageRepos.get(id) ?? [])].sort().map(parseStoredName);
  }

  async getUser(name: string): Promise<UserRecord | null> {
    return parse(this.d().users.get(name));
  }

  async getUserNameByEmail(email: string): Promise<string | null> {
    return this.d().emails.get(email) ?? null;
  }

  async putUser(user: UserRecord, previousEmail?: string): Promise<void> {
    const d = this.d();
    if (previousEmail && previousEmail !== user.email) d.emails.delete(previousEmail);
    d.users.set(user.name, text(user));
    d.emails.set(user.email, user.name);
  }

  async *listUsers(): AsyncIterable<UserRecord> {
    for (const [, user] of sorted(this.d().users)) yield JSON.parse(user) as UserRecord;
  }

  async enqueueWebhooks(deliveries: WebhookDelivery[]): Promise<void> {
    const queue = this.d().webhooks;
    for (const delivery of deliveries) queue.set(webhookKey(delivery), text(delivery));
  }

  async dueWebhooks(now: number, limit: number): Promise<WebhookDelivery[]> {
    return this.dueNow(now, limit);
  }

  private dueNow(now: number, limit: number): WebhookDelivery[] {
    const due = Math.floor(now);
    return this.queued()
      .filter((delivery) => dueOf(delivery) <= due)
      .slice(0, limit);
  }

  /** Every queued delivery, oldest due first (then by id, as LevelDB's keys sort). */
  private queued(): WebhookDelivery[] {
    return [...this.d().webhooks.values()]
      .map((delivery) => JSON.parse(delivery) as WebhookDelivery)
      .sort((a, b) => dueOf(a) - dueOf(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async claimWebhooks(now: number, limit: number, leaseMs: number): Promise<WebhookDelivery[]> {
    const queue = this.d().webhooks;
    // No await between reading and moving: claims never interleave.
    return this.dueNow(now, limit).map((delivery) => {
      const claimed = { ...delivery, dueAt: Math.max(0, Math.floor(now + leaseMs)) };
      queue.delete(webhookKey(delivery));
      queue.set(webhookKey(claimed), text(claimed));
      return claimed;
    });
  }

  async rescheduleWebhook(previous: WebhookDelivery, next: WebhookDelivery): Promise<void> {
    const queue = this.d().webhooks;
    // Gone (its lease ended and a claim took it): the claimer decides now.
    if (!queue.delete(webhookKey(previous))) return;
    queue.set(webhookKey(next), text(next));
  }

  async removeWebhook(delivery: WebhookDelivery): Promise<void> {
    this.d().webhooks.delete(webhookKey(delivery));
  }

  async *listWebhooks(): AsyncIterable<WebhookDelivery> {
    yield* this.queued();
  }

  // ── pull statistics and pushers (the Docker Hub API double) ───────────────────────

  async *listReposInNamespace(namespace: string): AsyncIterable<RepoRecord> {
    for (const repo of await this.allRepos()) if (repo.namespace === namespace) yield repo;
  }

  async getRepoPulls(name: RepoName): Promise<RepoPullStats | null> {
    return parse(this.d().repoPulls.get(name.full));
  }

  async addRepoPull(name: RepoName, at: string, count = 1): Promise<void> {
    const pulls = this.d().repoPulls;
    const previous = parse<RepoPullStats>(pulls.get(name.full));
    pulls.set(name.full, text({ count: (previous?.count ?? 0) + count, lastPulledAt: at }));
  }

  async setTagsPulled(name: RepoName, tags: Tag[], at: string): Promise<void> {
    if (tags.length === 0) return;
    const pulled = inner(this.d().tagPulls, name);
    for (const tag of tags) pulled.set(tag, at);
  }

  async setTagPusher(name: RepoName, tag: Tag, user: string): Promise<void> {
    inner(this.d().tagPushers, name).set(tag, user);
  }

  async getTagStats(name: RepoName, tags: Tag[]): Promise<TagStats[]> {
    const pulled = this.d().tagPulls.get(name.full);
    const pushers = this.data.tagPushers.get(name.full);
    return tags.map((tag) => ({ lastPulledAt: pulled?.get(tag) ?? null, pusher: pushers?.get(tag) ?? null }));
  }

  async deleteTagStats(name: RepoName, tag: Tag): Promise<void> {
    this.d().tagPulls.get(name.full)?.delete(tag);
    this.data.tagPushers.get(name.full)?.delete(tag);
  }

  async deleteRepoStats(name: RepoName): Promise<void> {
    const d = this.d();
    d.repoPulls.delete(name.full);
    d.tagPulls.delete(name.full);
    d.tagPushers.delete(name.full);
  }

  // ── OAuth 2 ───────────────────────────────────────────────────────────────────────
  // Each check-and-set runs without awaiting in between: atomic on its own.

  async getOAuthClient(id: string): Promise<OAuthClientRecord | null> {
    return parse(this.d().oauthClients.get(id));
  }

  async putOAuthClient(client: OAuthClientRecord): Promise<void> {
    this.d().oauthClients.set(client.id, text(client));
  }

  async deleteOAuthClient(id: string): Promise<boolean> {
    return this.d().oauthClients.delete(id);
  }

  async *listOAuthClients(): AsyncIterable<OAuthClientRecord> {
    for (const [, value] of sorted(this.d().oauthClients)) yield JSON.parse(value) as OAuthClientRecord;
  }

  async putOAuthCode(code: OAuthCodeRecord): Promise<void> {
    this.d().oauthCodes.set(code.hash, text(code));
  }

  async getOAuthCode(hash: string): Promise<OAuthCodeRecord | null> {
    return parse(this.d().oauthCodes.get(hash));
  }

  async useOAuthCode(hash: string, at: string): Promise<OAuthCodeRecord | null> {
    const d = this.d();
    const code = parse<OAuthCodeRecord>(d.oauthCodes.get(hash));
    if (code && code.usedAt === null) d.oauthCodes.set(hash, text({ ...code, usedAt: at }));
    return code;
  }

  async getOAuthGrant(user: string, id: string): Promise<OAuthGrantRecord | null> {
    return parse(this.d().oauthGrants.get(`${user}!${id}`));
  }

  async *listOAuthGrants(user: string): AsyncIterable<OAuthGrantRecord> {
    const prefix = `${user}!`;
    for (const [key, value] of sorted(this.d().oauthGrants)) if (key.startsWith(prefix)) yield JSON.parse(value) as OAuthGrantRecord;
  }

  async issueOAuthTokens(grant: OAuthGrantRecord, tokens: OAuthTokenRecord[]): Promise<boolean> {
    const d = this.d();
    if (parse<OAuthGrantRecord>(d.oauthGrants.get(`${grant.user}!${grant.id}`))?.revokedAt) return false;
    d.oauthGrants.set(`${grant.user}!${grant.id}`, text(grant));
    for (const token of tokens) d.oauthTokens.set(token.hash, text(token));
    return true;
  }

  async getOAuthToken(hash: string): Promise<OAuthTokenRecord | null> {
    return parse(this.d().oauthTokens.get(hash));
  }

  async rotateOAuthToken(hash: string, at: string): Promise<boolean> {
    const d = this.d();
    const token = parse<OAuthTokenRecord>(d.oauthTokens.get(hash));
    if (!token || token.kind !== 'refresh' || token.rotatedAt) return false;
    d.oauthTokens.set(hash, text({ ...token, rotatedAt: at }));
    return true;
  }

  async deleteOAuthToken(hash: string): Promise<boolean> {
    return this.d().oauthTokens.delete(hash);
  }

  async revokeOAuthGrant(ref: Pick<OAuthGrantRecord, 'id' | 'user' | 'clientId'>, at: string): Promise<boolean> {
    const d = this.d();
    const key = `${ref.user}!${ref.id}`;
    const grant = parse<OAuthGrantRecord>(d.oauthGrants.get(key));
    if (grant?.revokedAt) return false;
    d.oauthGrants.set(key, text(grant ? { ...grant, revokedAt: at } : { id: ref.id, user: ref.user, clientId: ref.clientId, scopes: [], createdAt: at, revokedAt: at }));
    for (const [hash, value] of d.oauthTokens) if ((JSON.parse(value) as OAuthTokenRecord).grantId === ref.id) d.oauthTokens.delete(hash);
    return grant !== null;
  }

  async pruneOAuth(before: string): Promise<number> {
    const d = this.d();
    let pruned = 0;
    for (const map of [d.oauthCodes, d.oauthTokens]) {
      for (const [hash, value] of map) {
        if ((JSON.parse(value) as { expiresAt: string }).expiresAt >= before) continue;
        map.delete(hash);
        pruned += 1;
      }
    }
    return pruned;
  }

  // ── Registry API v2 ───────────────────────────────────────────────────────────────

  async getManifest(digest: string): Promise<Buffer | null> {
    const bytes = this.d().manifests.get(digest);
    return bytes ? Buffer.from(bytes) : null;
  }

  async getManifestLink(name: RepoName, digest: string): Promise<ManifestLink | null> {
    return parse(this.d().manifestLinks.get(name.full)?.get(digest));
  }

  async listManifestLinks(name: RepoName): Promise<Array<[string, ManifestLink]>> {
    return sorted(this.d().manifestLinks.get(name.full)).map(([digest, link]) => [digest, JSON.parse(link) as ManifestLink]);
  }

  async putManifest(name: RepoName, digest: string, bytes: Buffer, link: ManifestLink): Promise<void> {
    const d = this.d();
    if (!d.manifests.has(digest)) d.manifests.set(digest, Buffer.from(bytes));
    inner(d.manifestLinks, name).set(digest, text(link));
  }

  async unlinkManifest(name: RepoName, digest: string): Promise<boolean> {
    return this.d().manifestLinks.get(name.full)?.delete(digest) ?? false;
  }

  async listReferrers(name: RepoName, subject: string): Promise<Array<[string, ManifestLink]>> {
    return (await this.listManifestLinks(name)).filter(([, link]) => link.subject === subject);
  }

  async *listManifests(): AsyncIterable<string> {
    yield* [...this.d().manifests.keys()].sort();
  }

  async deleteManifest(digest: string): Promise<void> {
    this.d().manifests.delete(digest);
  }

  async getBlobLink(name: RepoName, digest: string): Promise<BlobLink | null> {
    return parse(this.d().blobLinks.get(name.full)?.get(digest));
  }

  async linkBlobs(name: RepoName, blobs: ReadonlyArray<readonly [string, BlobLink]>): Promise<void> {
    if (blobs.length === 0) return;
    const links = inner(this.d().blobLinks, name);
    for (const [digest, link] of blobs) if (!links.has(digest)) links.set(digest, text(link));
  }

  async unlinkBlob(name: RepoName, digest: string): Promise<boolean> {
    return this.d().blobLinks.get(name.full)?.delete(digest) ?? false;
  }

  async listBlobLinks(name: RepoName): Promise<Array<[string, BlobLink]>> {
    return sorted(this.d().blobLinks.get(name.full)).map(([digest, link]) => [digest, JSON.parse(link) as BlobLink]);
  }

  async getUpload(id: string): Promise<UploadRecord | null> {
    return parse(this.d().uploads.get(id));
  }

  async putUpload(record: UploadRecord): Promise<void> {
    this.d().uploads.set(record.id, text(record));
  }

  async deleteUpload(id: string): Promise<void> {
    this.d().uploads.delete(id);
  }

  async *listUploads(): AsyncIterable<UploadRecord> {
    for (const [, record] of sorted(this.d().uploads)) yield JSON.parse(record) as UploadRecord;
  }

  async getLayerFacts(digest: string): Promise<LayerFacts | null> {
    return parse(this.d().layerFacts.get(digest));
  }

  async putLayerFacts(digest: string, facts: LayerFacts): Promise<void> {
    this.d().layerFacts.set(digest, text(facts));
  }

  async deleteLayerFacts(digest: string): Promise<void> {
    this.d().layerFacts.delete(digest);
  }

  async getImageManifest(id: ImageId, flavor: ManifestFlavor): Promise<string | null> {
    return this.d().imageManifests.get(`${id}!${flavor}`) ?? null;
  }

  async putImageManifest(id: ImageId, flavor: ManifestFlavor, digest: string): Promise<void> {
    const map = this.d().imageManifests;
    if (!map.has(`${id}!${flavor}`)) map.set(`${id}!${flavor}`, digest);
  }

  async *listImageManifests(): AsyncIterable<{ id: ImageId; flavor: ManifestFlavor; digest: string }> {
    for (const [key, digest] of sorted(this.d().imageManifests)) {
      const [id, flavor] = key.split('!');
      yield { id: id as ImageId, flavor: flavor as ManifestFlavor, digest };
    }
  }

  async deleteImageManifest(id: ImageId, flavor: ManifestFlavor): Promise<void> {
    this.d().imageManifests.delete(`${id}!${flavor}`);
  }
}
