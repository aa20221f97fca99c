/**
 * Repositories: tags, repository facts and properties, the Index image list, delete.
 * A tag only ever points at a complete image; the image list served to a pull only
 * contains complete images.
 */
import { clientInfoFromUserAgent, DEFAULT_CLIENT_INFO } from '../domain/client-info.js';
import { KeyedQueue } from '../domain/keyed-queue.js';
import { invalidInput, notFound, RegistryError } from '../domain/errors.js';
import { isImageId, type ImageId, type RepoName, type Tag } from '../domain/names.js';
import type { ClientInfo, Permission, RepoAccess, RepoImageEntry, RepoRecord, TagRecord } from '../domain/records.js';
import type { AccountStore, ImageListStore, ImageStore, RepositoryStore, TagStore } from '../store/metadata/ports.js';
import type { EventBus } from './events.js';
import type { Locks } from '../store/locks/locks.js';
import type { ImageService } from './images.js';

/** How long a tag write waits for another node's writes of the same repository's tags. */
const TAG_LOCK_WAIT_MS = 30_000;

export class RepositoryService {
  constructor(
    private readonly meta: ImageStore & RepositoryStore & TagStore & ImageListStore & AccountStore,
    private readonly images: ImageService,
    private readonly locks: Locks,
    private readonly events: EventBus,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Tag writes and deletes of one repository, one at a time in this process (see inTagOrder). */
  private readonly tagWrites = new KeyedQueue();

  /**
   * Answers derived from the store's shared, frozen lists, keyed on those lists: the store
   * hands out a new list whenever a write changed it (listTags, getRepoImages), so an
   * answer lives exactly as long as what it was built from.
   */
  private readonly tagMaps = new WeakMap<object, Readonly<Record<string, ImageId>>>();
  private readonly imageLists = new WeakMap<object, ImageListAnswer>();

  async get(name: RepoName): Promise<RepoRecord> {
    const repo = await this.meta.getRepo(name);
    if (!repo) throw notFound('Repository not found');
    return repo;
  }

  /** The repository record, created (public, empty) when it does not exist yet. */
  async ensure(name: RepoName): Promise<RepoRecord> {
    const existing = await this.meta.getRepo(name);
    if (existing) return existing;
    const repo = this.newRecord(name);
    await this.meta.putRepo(name, repo);
    return repo;
  }

  /** Tag → image id. Frozen and shared while the tags do not change (see tagMaps). */
  async listTags(name: RepoName): Promise<Readonly<Record<string, ImageId>>> {
    await this.get(name);
    const tags = await this.meta.listTags(name);
    let out = this.tagMaps.get(tags);
    if (!out) {
      const map: Record<string, ImageId> = {};
      // Tags of v2 manifests v1 cannot show (indexes without a linux/amd64 image, artifacts) are left out.
      for (const [tag, record] of tags) if (record.imageId) map[tag] = record.imageId;
      out = Object.freeze(map);
      this.tagMaps.set(tags, out);
    }
    return out;
  }

  async getTag(name: RepoName, tag: Tag): Promise<ImageId> {
    const record = await this.meta.getTag(name, tag);
    if (!record) throw notFound('Tag not found');
    if (!record.imageId) throw notFound(`Tag ${tag} names a v2 manifest that has no v1 image (an index or an artifact): pull it over the Registry API v2`);
    return record.imageId;
  }

  /** PUT …/tags/:tag with a JSON string body (the image id); `actor` is who pushed. */
  async putTag(name: RepoName, tag: Tag, body: unknown, userAgent: string | undefined, actor: string | null = null): Promise<void> {
    if (typeof body !== 'string' || body === '') throw invalidInput('Invalid data');
    if (!isImageId(body)) throw invalidInput('Invalid data: not an image id');
    await this.writeTag(name, tag, { imageId: body }, userAgent, actor);
  }

  /**
   * A tag set over v2 (manifest PUT): the manifest, and the top image of its v1 face when
   * it has one (complete: derived before the tag is written).
   */
  async putManifestTag(name: RepoName, tag: Tag, manifest: string, imageId: ImageId | null, userAgent: string | undefined, actor: string | null): Promise<void> {
    await this.writeTag(name, tag, { imageId, manifest }, userAgent, actor);
  }

  private async writeTag(name: RepoName, tag: Tag, target: { imageId: ImageId | null; manifest?: string }, userAgent: string | undefined, actor: string | null): Promise<void> {
    const { imageId } = target;
    await this.inTagOrder(name, async () => {
      if (imageId) {
        // Under the tag lock and the write gate: GC cannot delete it before the tag is written.
        const image = await this.images.find(imageId);
        if (!image) throw notFound('Image not found');
        if (image.status !== 'complete') throw new RegistryError('IMAGE_INCOMPLETE', 'Image is being uploaded, retry later');
      }
      const info = clientInfoFromUserAgent(userAgent, this.now());
      const repo = (await this.meta.getRepo(name)) ?? this.newRecord(name);
      // The tagged image and its ancestors join the repository's image list.
      const ancestry = imageId ? await this.images.getAncestry(imageId) : [];
      const record = target.manifest ? { imageId, manifest: target.manifest, info } : { imageId, info };
      await this.meta.putTag(name, tag, record, { ...repo, lastTagInfo: info }, ancestry);
    });
    this.events.emit({ type: 'push', repo: name, tag, imageId, manifest: target.manifest, actor, at: this.now() });
  }

  /**
   * Runs `fn` under the write gate, alone among the tag writes and deletes of `name` on
   * every node: in this process a queue (so the repository's keyed lock, `tags:<name>`, is
   * free whenever this process asks for it, and costs a Set lookup), across nodes that
   * keyed lock, asked again while another node holds it (tag writes are short).
   */
  private inTagOrder<T>(name: RepoName, fn: () => Promise<T>): Promise<T> {
    return this.tagWrites.run(name.full, async () => {
      const deadline = this.now().getTime() + TAG_LOCK_WAIT_MS;
      for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
        const held = await this.locks.keyed(`tags:${name.full}`, () => this.locks.shared(fn));
        if (held.acquired) return held.value;
        if (this.now().getTime() > deadline) throw new RegistryError('UNAVAILABLE', 'The repository\'s tags are being written by another node; retry later', { retryAfter: 1 });
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    });
  }

  /** The tag's record (v1 image and/or v2 manifest), or null. */
  findTag(name: RepoName, tag: Tag): Promise<TagRecord | null> {
    return this.meta.getTag(name, tag);
  }

  /**
   * Deletes a tag, then drops from the image list the complete images no remaining tag of
   * the repository reaches, so that garbage collection can free them. Images of a push in
   * progress (pending, or listed but not uploaded yet) stay listed.
   */
  async deleteTag(name: RepoName, tag: Tag, actor: string | null = null): Promise<void> {
    // In the same queue as tag writes: a tag set while this one goes must not have its
    // images unlinked by the pruning below.
    await this.inTagOrder(name, async () => {
      if (!(await this.meta.deleteTag(name, tag))) throw notFound(`Tag not found: ${tag}`);
      const reached = new Set<ImageId>();
      for (const [, record] of await this.meta.listTags(name)) {
        if (!record.imageId) continue;
        for (const id of (await this.meta.getAncestry(record.imageId)) ?? [record.imageId]) reached.add(id);
      }
      const unreached: ImageId[] = [];
      for (const entry of await this.meta.getRepoImages(name)) {
        if (reached.has(entry.id)) continue;
        if ((await this.images.find(entry.id))?.status === 'complete') unreached.push(entry.id);
      }
      if (unreached.length > 0) await this.meta.unlinkRepoImages(name, unreached);
    });
    this.events.emit({ type: 'tag_delete', repo: name, tag, actor, at: this.now() });
  }

  /** GET …/tags/:tag/json: what the client told us when it set the tag. */
  async tagInfo(name: RepoName, tag: Tag): Promise<ClientInfo> {
    return (await this.meta.getTag(name, tag))?.info ?? DEFAULT_CLIENT_INFO;
  }

  /** GET …/json: what the client told us on the repository's last tag PUT. */
  async repoInfo(name: RepoName): Promise<ClientInfo> {
    return (await this.meta.getRepo(name))?.lastTagInfo ?? DEFAULT_CLIENT_INFO;
  }

  async getAccess(name: RepoName): Promise<RepoAccess> {
    return (await this.get(name)).access;
  }

  /** Deletes the repository with its tags and image list; its images become garbage. */
  async delete(name: RepoName, actor: string | null = null): Promise<void> {
    // Read first: the event describes what was deleted (visibility, description, age).
    const record = await this.meta.getRepo(name);
    if (!record || !(await this.meta.deleteRepo(name))) throw notFound('Repository not found');
    this.events.emit({ type: 'repo_delete', repo: name, actor, at: this.now(), record });
  }

  /**
   * PUT …/images (push end) and the body of PUT …/ (push start): merges into the list.
   * `authorize` sees the listed ids first (a listed image becomes readable through the
   * repository, so the caller must be allowed to claim it).
   */
  async mergeImages(name: RepoName, body: unknown, authorize?: (ids: ImageId[]) => Promise<void>): Promise<void> {
    const entries = parseImageList(body);
    if (authorize) await authorize(entries.map((e) => e.id));
    await this.addToImageList(name, entries);
  }

  /**
   * Adds entries to the repository's image list (created if needed), keeping the checksums
   * already recorded: what push start and push end declare, and an image written through
   * the repository's write token without being declared (see AccessService.authorizeImage).
   */
  async addToImageList(name: RepoName, entries: RepoImageEntry[]): Promise<void> {
    await this.locks.shared(async () => {
      await this.ensure(name);
      await this.meta.mergeRepoImages(name, entries);
    });
  }

  /**
   * GET …/images (pull start): the repository's image list (what the Index was told, and
   * every image a tag reaches), restricted to complete images.
   */
  async listImages(name: RepoName): Promise<readonly RepoImageEntry[]> {
    await this.get(name);
    const entries = await this.meta.getRepoImages(name);
    // Reused while the store's list is the same and no listed image changed state: one that
    // was not complete may have completed since (completions), any may have been deleted
    // or repaired (forgets). Complete images never change otherwise. The counters only see
    // this node, which is enough: only a store that is the one writer of its lists (LevelDB,
    // memory) hands out the same list twice; PostgreSQL's is new on every read.
    const changes = this.images.stateChanges;
    const cached = this.imageLists.get(entries);
    if (cached && cached.forgets === changes.forgets && (cached.incomplete === 0 || cached.completions === changes.completions)) {
      return cached.list;
    }
    const out: RepoImageEntry[] = [];
    let incomplete = 0;
    for (const entry of entries) {
      const image = await this.images.find(entry.id);
      if (image?.status !== 'complete') {
        incomplete += 1;
        continue;
      }
      const checksum = entry.checksum ?? image.layer?.payloadChecksum;
      out.push(Object.freeze(checksum ? { id: entry.id, checksum } : { id: entry.id }));
    }
    const list = Object.freeze(out);
    // The counters read before the images were: a change while reading leaves it stale.
    this.imageLists.set(entries, { list, incomplete, ...changes });
    return list;
  }

  /** PUT …/properties: `access` and/or `description`; creates the repository if needed. */
  async setProperties(name: RepoName, body: unknown): Promise<void> {
    const props = (body ?? {}) as { access?: unknown; description?: unknown };
    if (typeof props !== 'object' || Array.isArray(props) || (props.access === undefined && props.description === undefined)) {
      throw invalidInput('Invalid data: expected {"access": "public"|"private"} and/or {"description": "..."}');
    }
    if (props.access !== undefined && props.access !== 'public' && props.access !== 'private') {
      throw invalidInput('Invalid data: access must be "public" or "private"');
    }
    if (props.description !== undefined && (typeof props.description !== 'string' || props.description.length > 4096)) {
      throw invalidInput('Invalid data: description must be a string of at most 4096 characters');
    }
    const repo = await this.ensure(name);
    await this.meta.putRepo(name, {
      ...repo,
      ...(props.access !== undefined ? { access: props.access as RepoAccess } : {}),
      ...(props.description !== undefined ? { description: props.description as string } : {}),
    });
  }

  async collaborators(name: RepoName): Promise<Record<string, Permission>> {
    return { ...((await this.get(name)).collaborators ?? {}) };
  }

  /** Grants `permission` to an existing user, or revokes it (null). */
  async setCollaborator(name: RepoName, user: string, permission: unknown): Promise<void> {
    if (permission !== null && permission !== 'read' && permission !== 'write' && permission !== 'admin') {
      throw invalidInput('Invalid data: permission must be "read", "write" or "admin"');
    }
    const repo = await this.get(name);
    const collaborators = { ...(repo.collaborators ?? {}) };
    if (permission === null) {
      if (!(user in collaborators)) throw notFound('Collaborator not found');
      delete collaborators[user];
    } else {
      if (!(await this.meta.getUser(user))) throw notFound('User not found');
      collaborators[user] = permission;
    }
    await this.meta.putRepo(name, { ...repo, collaborators });
  }

  private newRecord(name: RepoName): RepoRecord {
    return {
      namespace: name.namespace,
      repository: name.repository,
      access: 'public',
      description: '',
      createdAt: this.now().toISOString(),
      lastTagInfo: null,
    };
  }
}

interface ImageListAnswer {
  list: readonly RepoImageEntry[];
  /** Listed images that were not complete (not in `list`) when it was built. */
  incomplete: number;
  completions: number;
  forgets: number;
}

function parseImageList(body: unknown): RepoImageEntry[] {
  if (body === undefined || body === null || body === '') return [];
  if (!Array.isArray(body)) throw invalidInput('Invalid data: expected a JSON list of images');
  return body.map((item) => {
    const id = (item as { id?: unknown } | null)?.id;
    if (!isImageId(id)) throw invalidInput('Invalid data: every image needs a valid "id"');
    const checksum = (item as { checksum?: unknown }).checksum;
    if (checksum !== undefined && (typeof checksum !== 'string' || checksum.length > 200)) {
      throw invalidInput('Invalid data: "checksum" must be a string');
    }
    return checksum ? { id, checksum } : { id };
  });
}
