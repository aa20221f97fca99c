/**
 * The catalog: what a person browsing the registry sees (the web UI's pages), and what a
 * repository's owners change there. Everything is read and written through the stores and
 * services the APIs use; every decision about who may see or do what is access.ts's.
 *
 * - A repository the caller may not read does not exist for them: NOT_FOUND, never 401/403
 *   (access.visibleRepo), in lists, pages and forms alike.
 * - Sizes are layer bytes. An image's size is the sum of its ancestry's layers (what a pull
 *   downloads, Hub's full_size); a repository's size is the sum of the distinct layer blobs
 *   of the complete images it holds (its image list), counted once however many tags share
 *   them; the storage report counts each repository that way (a layer shared by two
 *   repositories counts in both) beside the bytes the blob store really holds.
 */
import { invalidInput, isRegistryError } from '../domain/errors.js';
import { layerHistory } from '../domain/image-history.js';
import { Lru } from '../domain/lru.js';
import { nameOfRepo, parseTag, parseUsername, type ImageId, type RepoName, type Tag } from '../domain/names.js';
import type { Permission, RepoImageEntry, RepoRecord } from '../domain/records.js';
import type { BlobStore } from '../store/blobs/blob-store.js';
import type { PullStatsStore, RepositoryStore, TagStore } from '../store/metadata/ports.js';
import { userOf, type AccessService, type Principal } from './access.js';
import type { ImageService } from './images.js';
import type { RepositoryService } from './repositories.js';
import type { SearchService } from './search.js';

export interface RepoSummary {
  name: RepoName;
  description: string;
  isPrivate: boolean;
  tagCount: number;
  /** Bytes of the distinct layers of the complete images the repository holds. */
  size: number;
  pulls: number;
  /** ISO time of the last push, else of the repository's creation. */
  updatedAt: string;
}

export interface RepoListing {
  query: string;
  page: number;
  pageSize: number;
  total: number;
  pages: number;
  items: RepoSummary[];
}

export interface TagRow {
  tag: Tag;
  /** The v1 image the tag names (null: a v2 manifest v1 cannot show, an index or an artifact). */
  imageId: ImageId | null;
  /** The manifest digest, when the tag was set over the Registry API v2. */
  manifest: string | null;
  /** Bytes of the image's layers and its ancestors' (null: unknown, or the image is missing, see fsck). */
  size: number | null;
  /** ISO time of the push that set the tag (null: not recorded). */
  pushedAt: string | null;
  /** Who set the tag (null: not recorded, e.g. a push before pushers were kept). */
  pushedBy: string | null;
}

export interface RepoView {
  summary: RepoSummary;
  /** Newest push first; the same time: by name. */
  tags: TagRow[];
  /** What the caller may do here (access.ts decides; the page only shows the controls). */
  can: { untag: boolean; admin: boolean; delete: boolean };
  /** Only for callers with admin on the repository. */
  collaborators: Array<{ user: string; permission: Permission }> | null;
}

export interface LayerRow {
  id: ImageId;
  createdBy: string;
  created: string | null;
  /** Bytes of this image's own layer (null: no layer recorded). */
  size: number | null;
}

export interface ImageHistoryView {
  name: RepoName;
  tag: Tag;
  imageId: ImageId;
  size: number;
  /** The tagged image first, then its parent, down to the base. */
  layers: LayerRow[];
}

export interface StorageView {
  /** Largest first. */
  repositories: Array<{ name: RepoName; size: number; tagCount: number }>;
  /** Bytes of the distinct layers every repository holds together (shared layers once). */
  referencedBytes: number;
  /** What the blob store holds (layers of untagged images and garbage included). */
  blobs: { count: number; bytes: number };
}

export const DEFAULT_LIST_PAGE_SIZE = 50;
const MAX_LIST_PAGE_SIZE = 200;
/** The same bound as PUT …/properties. */
export const MAX_DESCRIPTION = 4096;

export class CatalogService {
  /** Complete images never change: their ancestry's byte count is kept once known. */
  private readonly imageSizes = new Lru<ImageId, number>(20_000);
  /** A repository's size per image list answer (a new list means new contents). */
  private readonly repoSizes = new WeakMap<readonly RepoImageEntry[], { size: number; digests: ReadonlySet<string> }>();

  constructor(
    private readonly meta: RepositoryStore & TagStore & PullStatsStore,
    private readonly blobs: BlobStore,
    private readonly images: ImageService,
    private readonly repos: RepositoryService,
    private readonly access: AccessService,
    private readonly search: SearchService,
  ) {}

  // ── reading ───────────────────────────────────────────────────────────────────────

  /** The repositories the caller may read that match `query` (/v1/search's matching), newest first. */
  async list(principal: Principal, query: string, page: number, pageSize = DEFAULT_LIST_PAGE_SIZE): Promise<RepoListing> {
    if (!Number.isSafeInteger(page) || page < 1) throw invalidInput('Invalid page: expected a positive integer');
    const size = Math.min(Math.max(1, pageSize), MAX_LIST_PAGE_SIZE);
    const found = await this.search.matching(principal, query, 'newest', (page - 1) * size, size);
    const items: RepoSummary[] = [];
    for (const { name, record } of found.items) items.push(await this.summary(name, record));
    return { query, page, pageSize: size, total: found.total, pages: Math.max(1, Math.ceil(found.total / size)), items };
  }

  /** A repository's page: its summary, tags, and what the caller may change. */
  async repository(principal: Principal, name: RepoName): Promise<RepoView> {
    const record = await this.access.visibleRepo(principal, name);
    const summary = await this.summary(name, record);
    const tags = await this.meta.listTags(name);
    const stats = await this.meta.getTagStats(name, tags.map(([tag]) => tag));
    const rows: TagRow[] = [];
    for (let i = 0; i < tags.length; i++) {
      const [tag, tagRecord] = tags[i];
      const seconds = tagRecord.info.last_update;
      rows.push({
        tag,
        imageId: tagRecord.imageId,
        manifest: tagRecord.manifest ?? null,
        size: tagRecord.imageId ? await this.imageSize(tagRecord.imageId) : null,
        pushedAt: typeof seconds === 'number' ? new Date(seconds * 1000).toISOString() : null,
        pushedBy: stats[i]?.pusher ?? null,
      });
    }
    // Newest first; ISO times of the same precision sort as strings; unknown times last.
    rows.sort((a, b) => (a.pushedAt === b.pushedAt ? 0 : (b.pushedAt ?? '') > (a.pushedAt ?? '') ? 1 : -1));
    const admin = this.access.may(principal, name, record, 'admin');
    return {
      summary,
      tags: rows,
      can: { untag: this.access.may(principal, name, record, 'untag'), admin, delete: this.access.may(principal, name, record, 'delete') },
      collaborators: admin
        ? Object.entries(record.collaborators ?? {})
            .sort(([a], [b]) => (a < b ? -1 : 1))
            .map(([user, permission]) => ({ user, permission }))
        : null,
    };
  }

  /** The history of a tag's image: one row per layer, the tagged image first. */
  async history(principal: Principal, name: RepoName, tagName: string): Promise<ImageHistoryView> {
    const tag = parseTag(tagName);
    await this.access.visibleRepo(principal, name);
    const imageId = await this.repos.getTag(name, tag);
    const ancestry = await this.images.getAncestry(imageId);
    const docs: Array<Record<string, unknown>> = [];
    const layers: LayerRow[] = [];
    for (const id of ancestry) {
      const { json, layerSize } = await this.images.getJson(id);
      docs.push(parseObject(json));
      layers.push({ id, createdBy: '', created: null, size: layerSize });
    }
    layerHistory(docs).forEach((entry, i) => {
      layers[i].createdBy = entry.createdBy;
      layers[i].created = entry.created;
    });
    return { name, tag, imageId, size: layers.reduce((sum, layer) => sum + (layer.size ?? 0), 0), layers };
  }

  /** Bytes per repository, largest first, and what the blob store holds (admins only). */
  async storage(principal: Principal): Promise<StorageView> {
    this.access.authorizeAdmin(principal);
    const repositories: StorageView['repositories'] = [];
    const referenced = new Map<string, number>();
    for (const record of await this.meta.allRepos()) {
      const name = nameOfRepo(record);
      const { size, digests } = await this.repoSize(name);
      for (const digest of digests) if (!referenced.has(digest)) referenced.set(digest, (await this.blobs.stat(digest))?.size ?? 0);
      repositories.push({ name, size, tagCount: (await this.meta.listTags(name)).length });
    }
    repositories.sort((a, b) => b.size - a.size || (a.name.full < b.name.full ? -1 : 1));
    let count = 0;
    let bytes = 0;
    for await (const digest of this.blobs.list()) {
      const info = await this.blobs.stat(digest);
      if (!info) continue;
      count += 1;
      bytes += info.size;
    }
    return { repositories, referencedBytes: [...referenced.values()].reduce((a, b) => a + b, 0), blobs: { count, bytes } };
  }

  // ── owners' changes ───────────────────────────────────────────────────────────────

  async setDescription(principal: Principal, name: RepoName, description: string): Promise<void> {
    if (description.length > MAX_DESCRIPTION) throw invalidInput(`The description is longer than ${MAX_DESCRIPTION} characters`);
    await this.authorize(principal, name, 'admin');
    await this.repos.setProperties(name, { description });
  }

  async setPrivate(principal: Principal, name: RepoName, isPrivate: boolean): Promise<void> {
    await this.authorize(principal, name, 'admin');
    await this.repos.setProperties(name, { access: isPrivate ? 'private' : 'public' });
  }

  /** Grants `permission` to an existing account, or takes the grant away (null). */
  async setCollaborator(principal: Principal, name: RepoName, user: string, permission: Permission | null): Promise<void> {
    let account: string;
    try {
      account = parseUsername(user.trim().toLowerCase());
    } catch {
      throw invalidInput('No such user: a user name is 4 to 30 characters of a-z, 0-9 and _');
    }
    await this.authorize(principal, name, 'admin');
    await this.repos.setCollaborator(name, account, permission);
  }

  async deleteTag(principal: Principal, name: RepoName, tagName: string): Promise<void> {
    const tag = parseTag(tagName);
    await this.authorize(principal, name, 'untag');
    await this.repos.deleteTag(name, tag, userOf(principal)?.name ?? null);
  }

  async deleteRepository(principal: Principal, name: RepoName): Promise<void> {
    await this.authorize(principal, name, 'delete');
    await this.repos.delete(name, userOf(principal)?.name ?? null);
  }

  // ── helpers ───────────────────────────────────────────────────────────────────────

  /** NOT_FOUND when the caller may not even see the repository, else access.ts's answer. */
  private async authorize(principal: Principal, name: RepoName, action: 'admin' | 'untag' | 'delete'): Promise<void> {
    await this.access.visibleRepo(principal, name);
    await this.access.authorizeRepo(principal, name, action);
  }

  private async summary(name: RepoName, record: RepoRecord): Promise<RepoSummary> {
    const seconds = record.lastTagInfo?.last_update;
    return {
      name,
      description: record.description,
      isPrivate: record.access === 'private',
      tagCount: (await this.meta.listTags(name)).length,
      size: (await this.repoSize(name)).size,
      pulls: (await this.meta.getRepoPulls(name))?.count ?? 0,
      updatedAt: typeof seconds === 'number' ? new Date(seconds * 1000).toISOString() : record.createdAt,
    };
  }

  private async repoSize(name: RepoName): Promise<{ size: number; digests: ReadonlySet<string> }> {
    const list = await this.repos.listImages(name);
    let known = this.repoSizes.get(list);
    if (!known) {
      const digests = new Set<string>();
      let size = 0;
      for (const { id } of list) {
        const layer = (await this.images.find(id))?.layer;
        if (!layer || digests.has(layer.digest)) continue;
        digests.add(layer.digest);
        size += layer.size;
      }
      known = { size, digests };
      this.repoSizes.set(list, known);
    }
    return known;
  }

  /** null when the image is not there (a tag fsck would call dangling): the page still shows. */
  private async imageSize(id: ImageId): Promise<number | null> {
    let size = this.imageSizes.get(id);
    if (size === undefined) {
      let ancestry: readonly ImageId[];
      try {
        ancestry = await this.images.getAncestry(id);
      } catch (err) {
        if (isRegistryError(err, 'NOT_FOUND') || isRegistryError(err, 'IMAGE_INCOMPLETE')) return null;
        throw err;
      }
      size = 0;
      for (const ancestor of ancestry) size += (await this.images.find(ancestor))?.layer?.size ?? 0;
      this.imageSizes.set(id, size);
    }
    return size;
  }
}

function parseObject(json: Buffer): Record<string, unknown> {
  try {
    const doc: unknown = JSON.parse(json.toString('utf8'));
    return doc !== null && typeof doc === 'object' && !Array.isArray(doc) ? (doc as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
