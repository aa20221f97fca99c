/**
 * MetadataStore on LevelDB (`level`). LevelDB allows one process per database: the
 * registry must be the only process using a storage root.
 */
import { Level } from 'level';
import { KeyedQueue } from '../../domain/keyed-queue.js';
import { parseStoredName, type ImageId, type RepoName, type Tag } from '../../domain/names.js';
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
import { keys, lastPart, ranges, SCHEMA_VERSION } from './keys.js';
import { ListCache } from './list-cache.js';
import type { MetadataStore } from './metadata-store.js';
import type { ManifestFlavor, RepoPullStats, TagStats } from './ports.js';

type Json = unknown;
type TagList = ReadonlyArray<readonly [Tag, TagRecord]>;

/** The in-process queue key of the webhook queue's claims (never a repository name: no '/'). */
const WEBHOOK_QUEUE = '\0webhooks';
/** Cached tag lists and image lists: at most this many tags / image-list entries in all. */
const CACHED_TAGS = 50_000;
const CACHED_REPO_IMAGES = 50_000;
type Op =
  | { type: 'put'; key: string; value: Json | Buffer; valueEncoding?: 'json' | 'buffer' }
  | { type: 'del'; key: string };

export class LevelMetadataStore implements MetadataStore {
  private readonly db: Level<string, Json>;
  private readonly queue = new KeyedQueue();

  /**
   * Every repository record, kept in memory (write-through): search and listings scan all
   * repositories, and one process owns the database, so the map is always current.
   */
  private readonly repos = new Map<string, RepoRecord>();
  /** The same records in key order; replaced (copy on write), never changed in place. */
  private sortedRepos: readonly RepoRecord[] = Object.freeze([]);
  /**
   * Tag lists and image lists of recently read repositories (see list-cache.ts): every
   * method below that writes tags or image-list entries drops the repository's entry once
   * its write has committed.
   */
  private readonly tagLists = new ListCache<TagList>(CACHED_TAGS);
  private readonly repoImageLists = new ListCache<readonly RepoImageEntry[]>(CACHED_REPO_IMAGES);

  constructor(location: string) {
    this.db = new Level<string, Json>(location, { keyEncoding: 'utf8', valueEncoding: 'json' });
  }

  async open(): Promise<void> {
    await this.db.open();
    const version = await this.db.get(keys.schema());
    if (version === undefined) await this.db.put(keys.schema(), SCHEMA_VERSION);
    else if (version !== SCHEMA_VERSION) {
      // Release the database: a refused open must not keep LevelDB's lock held.
      await this.db.close();
      throw new Error(`metadata schema version ${JSON.stringify(version)} is not supported (expected ${SCHEMA_VERSION})`);
    }
    this.repos.clear();
    this.tagLists.clear();
    this.repoImageLists.clear();
    const sorted: RepoRecord[] = [];
    // The scan comes in key order already.
    for await (const value of this.db.values(ranges.repos())) {
      const repo = Object.freeze(value as RepoRecord);
      this.repos.set(repoKey(repo), repo);
      sorted.push(repo);
    }
    this.sortedRepos = Object.freeze(sorted);
  }

  private rememberRepo(name: RepoName, record: RepoRecord | null): void {
    // Frozen: a record is replaced on every write, never changed in place (callers may key
    // caches on the object).
    if (record) this.repos.set(name.full, Object.freeze(record));
    else if (!this.repos.delete(name.full)) return;
    // The sorted list is copied and patched, not re-sorted: one write costs one copy.
    const list = this.sortedRepos;
    const lo = lowerBound(list, name.full, repoKey);
    const found = lo < list.length && repoKey(list[lo]) === name.full;
    const next = list.slice();
    if (record) next.splice(lo, found ? 1 : 0, record);
    else if (found) next.splice(lo, 1);
    this.sortedRepos = Object.freeze(next);
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  async ping(): Promise<void> {
    await this.db.get(keys.schema());
  }

  private async get<T>(key: string): Promise<T | null> {
    const value = await this.db.get(key);
    return value === undefined ? null : (value as T);
  }

  /**
   * Runs read-modify-write sequences on one repository's image list one at a time (merge,
   * tag links, delete), so concurrent requests never overwrite each other's entries or
   * checksums. LevelDB has one process per database, so an in-process queue is enough.
   */
  private exclusive<T>(name: RepoName, fn: () => Promise<T>): Promise<T> {
    return this.queue.run(name.full, fn);
  }

  private async batch(ops: Op[]): Promise<void> {
    // `level` accepts a per-operation valueEncoding; its typings do not model that mix.
    await this.db.batch(ops as never);
  }

  /**
   * Applies `ops`, then drops the cached `lists` of `name` they change; also when the write
   * failed, since it may have reached the database.
   */
  private async batchDropping(name: RepoName, ops: Op[], ...lists: Array<Pick<ListCache<readonly unknown[]>, 'invalidate'>>): Promise<void> {
    try {
      await this.batch(ops);
    } finally {
      for (const list of lists) list.invalidate(name.full);
    }
  }

  getImage(id: ImageId): Promise<ImageRecord | null> {
    return this.get<ImageRecord>(keys.image(id));
  }

  async getImageJson(id: ImageId): Promise<Buffer | null> {
    const value = await this.db.get<string, Buffer>(keys.imageJson(id), { valueEncoding: 'buffer' });
    return value ?? null;
  }

  getAncestry(id: ImageId): Promise<ImageId[] | null> {
    return this.get<ImageId[]>(keys.ancestry(id));
  }

  async putImage(record: ImageRecord, json: Buffer, ancestry: ImageId[]): Promise<void> {
    await this.batch([
      { type: 'put', key: keys.image(record.id), value: record },
      { type: 'put', key: keys.imageJson(record.id), value: json, valueEncoding: 'buffer' },
      { type: 'put', key: keys.ancestry(record.id), value: ancestry },
    ]);
  }

  async updateImage(record: ImageRecord): Promise<void> {
    await this.db.put(keys.image(record.id), record);
  }

  async *listImages(): AsyncIterable<ImageRecord> {
    for await (const value of this.db.values(ranges.images())) yield value as ImageRecord;
  }

  async deleteImage(id: ImageId): Promise<void> {
    await this.batch([
      { type: 'del', key: keys.image(id) },
      { type: 'del', key: keys.imageJson(id) },
      { type: 'del', key: keys.ancestry(id) },
    ]);
  }

  async getRepo(name: RepoName): Promise<RepoRecord | null> {
    return this.repos.get(name.full) ?? null;
  }

  async putRepo(name: RepoName, record: RepoRecord): Promise<void> {
    await this.db.put(keys.repo(name), record);
    this.rememberRepo(name, record);
  }

  deleteRepo(name: RepoName): Promise<boolean> {
    return this.exclusive(name, async () => {
      if ((await this.getRepo(name)) === null) return false;
      const ops: Op[] = [{ type: 'del', key: keys.repo(name) }];
      for await (const key of this.db.keys(ranges.tags(name))) ops.push({ type: 'del', key });
      for await (const key of this.db.keys(ranges.repoImages(name))) {
        ops.push({ type: 'del', key }, { type: 'del', key: keys.imageRepo(lastPart(key) as ImageId, name) });
      }
      for (const range of [ranges.manifestLinks(name), ranges.allReferrers(name), ranges.blobLinks(name)]) {
        for await (const key of this.db.keys(range)) ops.push({ type: 'del', key });
      }
      await this.batchDropping(name, ops, this.tagLists, this.repoImageLists);
      this.rememberRepo(name, null);
      return true;
    });
  }

  async *listRepos(): AsyncIterable<RepoRecord> {
    yield* this.sortedRepos;
  }

  async allRepos(): Promise<readonly RepoRecord[]> {
    return this.sortedRepos;
  }

  async getTag(name: RepoName, tag: Tag): Promise<TagRecord | null> {
    const cached = this.tagLists.peek(name.full);
    if (cached) {
      // Sorted by tag name (key order).
      const lo = lowerBound(cached, tag, ([name]) => name);
      return lo < cached.length && cached[lo][0] === tag ? cached[lo][1] : null;
    }
    return this.get<TagRecord>(keys.tag(name, tag));
  }

  listTags(name: RepoName): Promise<TagList> {
    return this.tagLists.get(name.full, async () => {
      const out: Array<readonly [Tag, TagRecord]> = [];
      for await (const [key, value] of this.db.iterator(ranges.tags(name))) {
        const record = value as TagRecord;
        Object.freeze(record.info);
        out.push(Object.freeze([lastPart(key) as Tag, Object.freeze(record)] as const));
      }
      return out;
    });
  }

  putTag(name: RepoName, tag: Tag, record: TagRecord, repo: RepoRecord, link: readonly ImageId[] = []): Promise<void> {
    return this.exclusive(name, async () => {
      const ops: Op[] = [
        { type: 'put', key: keys.tag(name, tag), value: record },
        { type: 'put', key: keys.repo(name), value: repo },
      ];
      for (const id of new Set(link)) {
        // Keep an entry that exists (it may carry a checksum from the Index image list).
        if ((await this.db.get(keys.repoImage(name, id))) === undefined) ops.push(...this.linkOps(name, { id }));
      }
      await this.batchDropping(name, ops, this.tagLists, this.repoImageLists);
      this.rememberRepo(name, repo);
    });
  }

  async deleteTag(name: RepoName, tag: Tag): Promise<boolean> {
    const key = keys.tag(name, tag);
    if ((await this.db.get(key)) === undefined) return false;
    await this.batchDropping(name, [{ type: 'del', key }], this.tagLists);
    return true;
  }

  getRepoImages(name: RepoName): Promise<readonly RepoImageEntry[]> {
    return this.repoImageLists.get(name.full, async () => {
      const out: RepoImageEntry[] = [];
      for await (const value of this.db.values(ranges.repoImages(name))) out.push(Object.freeze(value as RepoImageEntry));
      return out;
    });
  }

  async mergeRepoImages(name: RepoName, entries: RepoImageEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await this.exclusive(name, async () => {
      // Fold the batch by id first: an id listed twice keeps the last checksum it was given.
      const merged = new Map<ImageId, string | undefined>();
      for (const entry of entries) merged.set(entry.id, entry.checksum || merged.get(entry.id));
      const ops: Op[] = [];
      for (const [id, given] of merged) {
        const checksum = given ?? (await this.get<RepoImageEntry>(keys.repoImage(name, id)))?.checksum;
        ops.push(...this.linkOps(name, checksum ? { id, checksum } : { id }));
      }
      await this.batchDropping(name, ops, this.repoImageLists);
    });
  }

  /** An image-list entry and its reverse link. */
  private linkOps(name: RepoName, entry: RepoImageEntry): Op[] {
    return [
      { type: 'put', key: keys.repoImage(name, entry.id), value: entry },
      { type: 'put', key: keys.imageRepo(entry.id, name), value: true },
    ];
  }

  unlinkRepoImages(name: RepoName, ids: ImageId[]): Promise<void> {
    return this.exclusive(name, async () => {
      const ops = ids.flatMap((id): Op[] => [
        { type: 'del', key: keys.repoImage(name, id) },
        { type: 'del', key: keys.imageRepo(id, name) },
      ]);
      await this.batchDropping(name, ops, this.repoImageLists);
    });
  }

  async reposOfImage(id: ImageId): Promise<RepoName[]> {
    const out: RepoName[] = [];
    for await (const key of this.db.keys(ranges.imageRepos(id))) out.push(parseStoredName(lastPart(key)));
    return out;
  }

  getUser(name: string): Promise<UserRecord | null> {
    return this.get<UserRecord>(keys.user(name));
  }

  getUserNameByEmail(email: string): Promise<string | null> {
    return this.get<string>(keys.email(email));
  }

  async putUser(user: UserRecord, previousEmail?: string): Promise<void> {
    const ops: Op[] = [
      { type: 'put', key: keys.user(user.name), value: user },
      { type: 'put', key: keys.email(user.email), value: user.name },
    ];
    if (previousEmail && previousEmail !== user.email) ops.push({ type: 'del', key: keys.email(previousEmail) });
    await this.batch(ops);
  }

  async *listUsers(): AsyncIterable<UserRecord> {
    for await (const value of this.db.values(ranges.users())) yield value as UserRecord;
  }

  async enqueueWebhooks(deliveries: WebhookDelivery[]): Promise<void> {
    if (deliveries.length === 0) return;
    await this.batch(deliveries.map((d) => ({ type: 'put', key: keys.webhook(d.dueAt, d.id), value: d })));
  }

  async dueWebhooks(now: number, limit: number): Promise<WebhookDelivery[]> {
    const out: WebhookDelivery[] = [];
    for await (const value of this.db.values({ ...ranges.webhooksDue(now), limit })) out.push(value as WebhookDelivery);
    return out;
  }

  /** Claims and reschedules run one at a time (the queue's key is no repository name). */
  private webhookQueue<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(WEBHOOK_QUEUE, fn);
  }

  claimWebhooks(now: number, limit: number, leaseMs: number): Promise<WebhookDelivery[]> {
    return this.webhookQueue(async () => {
      const due = await this.dueWebhooks(now, limit);
      const claimed = due.map((delivery) => ({ ...delivery, dueAt: Math.max(0, Math.floor(now + leaseMs)) }));
      await this.batch(
        due.flatMap((delivery, i): Op[] => [
          { type: 'del', key: keys.webhook(delivery.dueAt, delivery.id) },
          { type: 'put', key: keys.webhook(claimed[i].dueAt, delivery.id), value: claimed[i] },
        ]),
      );
      return claimed;
    });
  }

  rescheduleWebhook(previous: WebhookDelivery, next: WebhookDelivery): Promise<void> {
    return this.webhookQueue(async () => {
      // Gone (its lease ended and a claim took it): the claimer decides now.
      if ((await this.get(keys.webhook(previous.dueAt, previous.id))) === null) return;
      await this.batch([
        { type: 'del', key: keys.webhook(previous.dueAt, previous.id) },
        { type: 'put', key: keys.webhook(next.dueAt, next.id), value: next },
      ]);
    });
  }

  removeWebhook(delivery: WebhookDelivery): Promise<void> {
    return this.webhookQueue(() => this.db.del(keys.webhook(delivery.dueAt, delivery.id)));
  }

  async *listWebhooks(): AsyncIterable<WebhookDelivery> {
    for await (const value of this.db.values(ranges.webhooks())) yield value as WebhookDelivery;
  }

  // ── pull statistics and pushers (the Docker Hub API double) ───────────────────────

  async *listReposInNamespace(namespace: string): AsyncIterable<RepoRecord> {
    for (const repo of this.sortedRepos) if (repo.namespace === namespace) yield repo;
  }

  getRepoPulls(name: RepoName): Promise<RepoPullStats | null> {
    return this.get<RepoPullStats>(keys.repoPulls(name));
  }

  addRepoPull(name: RepoName, at: string, count = 1): Promise<void> {
    // Read-modify-write, queued per repository so that concurrent pulls all count.
    return this.exclusive(name, async () => {
      const previous = await this.get<RepoPullStats>(keys.repoPulls(name));
      const next: RepoPullStats = { count: (previous?.count ?? 0) + count, lastPulledAt: at };
      await this.db.put(keys.repoPulls(name), next);
    });
  }

  async setTagsPulled(name: RepoName, tags: Tag[], at: string): Promise<void> {
    if (tags.length === 0) return;
    await this.batch(tags.map((tag): Op => ({ type: 'put', key: keys.tagPull(name, tag), value: at })));
  }

  async setTagPusher(name: RepoName, tag: Tag, user: string): Promise<void> {
    await this.db.put(keys.tagPusher(name, tag), user);
  }

  async getTagStats(name: RepoName, tags: Tag[]): Promise<TagStats[]> {
    if (tags.length === 0) return [];
    const values = await this.db.getMany([...tags.map((tag) => keys.tagPull(name, tag)), ...tags.map((tag) => keys.tagPusher(name, tag))]);
    return tags.map((_, i) => ({
      lastPulledAt: (values[i] as string | undefined) ?? null,
      pusher: (values[tags.length + i] as string | undefined) ?? null,
    }));
  }

  async deleteTagStats(name: RepoName, tag: Tag): Promise<void> {
    await this.batch([
      { type: 'del', key: keys.tagPull(name, tag) },
      { type: 'del', key: keys.tagPusher(name, tag) },
    ]);
  }

  deleteRepoStats(name: RepoName): Promise<void> {
    return this.exclusive(name, async () => {
      const ops: Op[] = [{ type: 'del', key: keys.repoPulls(name) }];
      for await (const key of this.db.keys(ranges.tagPulls(name))) ops.push({ type: 'del', key });
      for await (const key of this.db.keys(ranges.tagPushers(name))) ops.push({ type: 'del', key });
      await this.batch(ops);
    });
  }
  // ── Registry API v2 (see ports.ts) ──────────────────────────────────────────

  async getManifest(digest: string): Promise<Buffer | null> {
    const value = await this.db.get<string, Buffer>(keys.manifest(digest), { valueEncoding: 'buffer' });
    return value ?? null;
  }

  getManifestLink(name: RepoName, digest: string): Promise<ManifestLink | null> {
    return this.get<ManifestLink>(keys.manifestLink(name, digest));
  }

  listManifestLinks(name: RepoName): Promise<Array<[string, ManifestLink]>> {
    return this.entries<ManifestLink>(ranges.manifestLinks(name));
  }

  async putManifest(name: RepoName, digest: string, bytes: Buffer, link: ManifestLink): Promise<void> {
    const ops: Op[] = [{ type: 'put', key: keys.manifestLink(name, digest), value: link }];
    // Content-addressed: the same digest is the same bytes; stored ones are not rewritten.
    if ((await this.db.get(keys.manifest(digest), { valueEncoding: 'buffer' })) === undefined) {
      ops.push({ type: 'put', key: keys.manifest(digest), value: bytes, valueEncoding: 'buffer' });
    }
    if (link.subject) ops.push({ type: 'put', key: keys.referrer(name, link.subject, digest), value: true });
    await this.batch(ops);
  }

  async unlinkManifest(name: RepoName, digest: string): Promise<boolean> {
    const link = await this.getManifestLink(name, digest);
    if (!link) return false;
    const ops: Op[] = [{ type: 'del', key: keys.manifestLink(name, digest) }];
    if (link.subject) ops.push({ type: 'del', key: keys.referrer(name, link.subject, digest) });
    await this.batch(ops);
    return true;
  }

  async listReferrers(name: RepoName, subject: string): Promise<Array<[string, ManifestLink]>> {
    const out: Array<[string, ManifestLink]> = [];
    for await (const key of this.db.keys(ranges.referrers(name, subject))) {
      const digest = lastPart(key);
      const link = await this.getManifestLink(name, digest);
      if (link) out.push([digest, link]);
    }
    return out;
  }

  async *listManifests(): AsyncIterable<string> {
    for await (const key of this.db.keys(ranges.manifests())) yield lastPart(key);
  }

  async deleteManifest(digest: string): Promise<void> {
    await this.db.del(keys.manifest(digest));
  }

  getBlobLink(name: RepoName, digest: string): Promise<BlobLink | null> {
    return this.get<BlobLink>(keys.blobLink(name, digest));
  }

  async linkBlobs(name: RepoName, blobs: ReadonlyArray<readonly [string, BlobLink]>): Promise<void> {
    if (blobs.length === 0) return;
    const existing = await this.db.getMany(blobs.map(([digest]) => keys.blobLink(name, digest)));
    const ops: Op[] = [];
    blobs.forEach(([digest, link], i) => {
      if (existing[i] === undefined) ops.push({ type: 'put', key: keys.blobLink(name, digest), value: link });
    });
    if (ops.length > 0) await this.batch(ops);
  }

  async unlinkBlob(name: RepoName, digest: string): Promise<boolean> {
    const key = keys.blobLink(name, digest);
    if ((await this.db.get(key)) === undefined) return false;
    await this.db.del(key);
    return true;
  }

  listBlobLinks(name: RepoName): Promise<Array<[string, BlobLink]>> {
    return this.entries<BlobLink>(ranges.blobLinks(name));
  }

  getUpload(id: string): Promise<UploadRecord | null> {
    return this.get<UploadRecord>(keys.upload(id));
  }

  async putUpload(record: UploadRecord): Promise<void> {
    await this.db.put(keys.upload(record.id), record);
  }

  async deleteUpload(id: string): Promise<void> {
    await this.db.del(keys.upload(id));
  }

  async *listUploads(): AsyncIterable<UploadRecord> {
    for await (const value of this.db.values(ranges.uploads())) yield value as UploadRecord;
  }

  getLayerFacts(digest: string): Promise<LayerFacts | null> {
    return this.get<LayerFacts>(keys.layerFacts(digest));
  }

  async putLayerFacts(digest: string, facts: LayerFacts): Promise<void> {
    await this.db.put(keys.layerFacts(digest), facts);
  }

  async deleteLayerFacts(digest: string): Promise<void> {
    await this.db.del(keys.layerFacts(digest));
  }

  getImageManifest(id: ImageId, flavor: ManifestFlavor): Promise<string | null> {
    return this.get<string>(keys.imageManifest(id, flavor));
  }

  async putImageManifest(id: ImageId, flavor: ManifestFlavor, digest: string): Promise<void> {
    const key = keys.imageManifest(id, flavor);
    // One writer at a time per image, so the first manifest recorded stays.
    await this.queue.run(key, async () => {
      if ((await this.db.get(key)) === undefined) await this.db.put(key, digest);
    });
  }

  async *listImageManifests(): AsyncIterable<{ id: ImageId; flavor: ManifestFlavor; digest: string }> {
    for await (const [key, value] of this.db.iterator(ranges.imageManifests())) {
      const [, id, flavor] = key.split('!');
      yield { id: id as ImageId, flavor: flavor as ManifestFlavor, digest: value as string };
    }
  }

  async deleteImageManifest(id: ImageId, flavor: ManifestFlavor): Promise<void> {
    await this.db.del(keys.imageManifest(id, flavor));
  }

  /** [last key part, value] of every key in `range`, in key order. */
  private async entries<T>(range: { gt: string; lt: string }): Promise<Array<[string, T]>> {
    const out: Array<[string, T]> = [];
    for await (const [key, value] of this.db.iterator(range)) out.push([lastPart(key), value as T]);
    return out;
  }

  // ── OAuth 2 ───────────────────────────────────────────────────────────────────────
  // Check-and-set sequences run in the queue of their grant (or code), like the image
  // lists: ids are hex, so `oauth…:` keys never meet a repository name.

  getOAuthClient(id: string): Promise<OAuthClientRecord | null> {
    return this.get<OAuthClientRecord>(keys.oauthClient(id));
  }

  async putOAuthClient(client: OAuthClientRecord): Promise<void> {
    await this.db.put(keys.oauthClient(client.id), client);
  }

  async deleteOAuthClient(id: string): Promise<boolean> {
    return this.queue.run(`oauthclient:${id}`, async () => {
      if ((await this.db.get(keys.oauthClient(id))) === undefined) return false;
      await this.db.del(keys.oauthClient(id));
      return true;
    });
  }

  async *listOAuthClients(): AsyncIterable<OAuthClientRecord> {
    for await (const value of this.db.values(ranges.oauthClients())) yield value as OAuthClientRecord;
  }

  async putOAuthCode(code: OAuthCodeRecord): Promise<void> {
    await this.db.put(keys.oauthCode(code.hash), code);
  }

  getOAuthCode(hash: string): Promise<OAuthCodeRecord | null> {
    return this.get<OAuthCodeRecord>(keys.oauthCode(hash));
  }

  useOAuthCode(hash: string, at: string): Promise<OAuthCodeRecord | null> {
    return this.queue.run(`oauthcode:${hash}`, async () => {
      const code = await this.get<OAuthCodeRecord>(keys.oauthCode(hash));
      if (code && code.usedAt === null) await this.db.put(keys.oauthCode(hash), { ...code, usedAt: at });
      return code;
    });
  }

  getOAuthGrant(user: string, id: string): Promise<OAuthGrantRecord | null> {
    return this.get<OAuthGrantRecord>(keys.oauthGrant(user, id));
  }

  async *listOAuthGrants(user: string): AsyncIterable<OAuthGrantRecord> {
    for await (const value of this.db.values(ranges.oauthGrants(user))) yield value as OAuthGrantRecord;
  }

  issueOAuthTokens(grant: OAuthGrantRecord, tokens: OAuthTokenRecord[]): Promise<boolean> {
    return this.queue.run(`oauthgrant:${grant.id}`, async () => {
      const existing = await this.get<OAuthGrantRecord>(keys.oauthGrant(grant.user, grant.id));
      if (existing?.revokedAt) return false;
      const ops: Op[] = [{ type: 'put', key: keys.oauthGrant(grant.user, grant.id), value: grant }];
      for (const token of tokens) {
        ops.push(
          { type: 'put', key: keys.oauthToken(token.hash), value: token },
          { type: 'put', key: keys.oauthGrantToken(grant.id, token.hash), value: true },
        );
      }
      await this.batch(ops);
      return true;
    });
  }

  getOAuthToken(hash: string): Promise<OAuthTokenRecord | null> {
    return this.get<OAuthTokenRecord>(keys.oauthToken(hash));
  }

  /** Runs `fn` on a token inside its grant's queue (false when the token is unknown). */
  private async withOAuthToken(hash: string, fn: (token: OAuthTokenRecord) => Promise<boolean>): Promise<boolean> {
    const token = await this.getOAuthToken(hash);
    if (!token) return false;
    return this.queue.run(`oauthgrant:${token.grantId}`, async () => {
      const current = await this.getOAuthToken(hash);
      return current ? fn(current) : false;
    });
  }

  rotateOAuthToken(hash: string, at: string): Promise<boolean> {
    return this.withOAuthToken(hash, async (token) => {
      if (token.kind !== 'refresh' || token.rotatedAt) return false;
      await this.db.put(keys.oauthToken(hash), { ...token, rotatedAt: at });
      return true;
    });
  }

  deleteOAuthToken(hash: string): Promise<boolean> {
    return this.withOAuthToken(hash, async (token) => {
      await this.batch([
        { type: 'del', key: keys.oauthToken(hash) },
        { type: 'del', key: keys.oauthGrantToken(token.grantId, hash) },
      ]);
      return true;
    });
  }

  revokeOAuthGrant(ref: Pick<OAuthGrantRecord, 'id' | 'user' | 'clientId'>, at: string): Promise<boolean> {
    const { id, user } = ref;
    return this.queue.run(`oauthgrant:${id}`, async () => {
      const grant = await this.get<OAuthGrantRecord>(keys.oauthGrant(user, id));
      if (grant?.revokedAt) return false;
      const revoked: OAuthGrantRecord = grant ? { ...grant, revokedAt: at } : { id, user, clientId: ref.clientId, scopes: [], createdAt: at, revokedAt: at };
      const ops: Op[] = [{ type: 'put', key: keys.oauthGrant(user, id), value: revoked }];
      for await (const key of this.db.keys(ranges.oauthGrantTokens(id))) {
        ops.push({ type: 'del', key }, { type: 'del', key: keys.oauthToken(lastPart(key)) });
      }
      await this.batch(ops);
      return grant !== null;
    });
  }

  async pruneOAuth(before: string): Promise<number> {
    const ops: Op[] = [];
    let pruned = 0;
    for await (const [key, value] of this.db.iterator(ranges.oauthCodes())) {
      if ((value as OAuthCodeRecord).expiresAt >= before) continue;
      ops.push({ type: 'del', key });
      pruned += 1;
    }
    for await (const [key, value] of this.db.iterator(ranges.oauthTokens())) {
      const token = value as OAuthTokenRecord;
      if (token.expiresAt >= before) continue;
      ops.push({ type: 'del', key }, { type: 'del', key: keys.oauthGrantToken(token.grantId, token.hash) });
      pruned += 1;
    }
    if (ops.length > 0) await this.batch(ops);
    return pruned;
  }
}

function repoKey(repo: RepoRecord): string {
  return `${repo.namespace}/${repo.repository}`;
}

/** The first index of `sorted` (ascending by `keyOf`) whose key is not below `key`. */
function lowerBound<T>(sorted: readonly T[], key: string, keyOf: (item: T) => string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keyOf(sorted[mid]) < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
