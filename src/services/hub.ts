/**
 * The Docker Hub REST API double (hub.docker.com/v2): Hub's views of the accounts,
 * repositories and tags the v1 registry holds, Hub's pagination and ordering, JWT logins,
 * and the pull statistics Hub shows (pull_count, tag_last_pulled).
 *
 * Permissions are access.ts's: a repository is readable by whoever may pull it, changed
 * (descriptions, privacy) by whoever has admin on it, deleted by whoever may delete it.
 *
 * Pulls (counted by the v1 routes through the PullRecorder methods below):
 * - GET /v1/repositories/:ns/:repo/images (pull start, answered 200) is one pull of the
 *   repository: pull_count + 1, last pulled now.
 * - GET …/tags/:tag (answered 200) marks that tag pulled now: it is how a client that names
 *   the tag it pulls resolves it.
 * - GET …/tags (answered 200) marks every tag it listed pulled now: clients that resolve
 *   tags from the full list (docker 1.x without a tag pulled them all) leave no trace of
 *   which one they then download, so every listed tag counts.
 */
import { createHash } from 'node:crypto';
import { invalidInput, notFound, RegistryError } from '../domain/errors.js';
import { DEFAULT_NAMESPACE, nameOfRepo, parseNamespace, parseRepoName, parseTag, type ImageId, type RepoName, type Tag } from '../domain/names.js';
import { parseManifest } from '../domain/manifest.js';
import type { RepoRecord, TagRecord, UserRecord } from '../domain/records.js';
import type {
  AccountStore,
  ImageStore,
  ManifestStore,
  PullStatsStore,
  RepositoryStore,
  TagStats,
  TagStore,
} from '../store/metadata/ports.js';
import { userOf, type AccessService, type Principal } from './access.js';
import type { RegistryEvent } from './events.js';
import { numericId, type JwtService } from './jwt.js';
import { PullCounter } from './pull-counter.js';
import type { RepositoryService } from './repositories.js';
import { profileOf, type UserService } from './users.js';

export const DEFAULT_PAGE_SIZE = 10;
/** Larger page sizes are clamped to this. */
export const MAX_PAGE_SIZE = 1000;
/** Hub's limits on the short and the full description. */
export const MAX_DESCRIPTION = 100;
export const MAX_FULL_DESCRIPTION = 25_000;

export type TagOrdering = 'last_updated' | '-last_updated' | 'name' | '-name';
const ORDERINGS = new Set<string>(['last_updated', '-last_updated', 'name', '-name']);
/** Hub lists tags newest first unless asked otherwise. */
const DEFAULT_TAG_ORDERING: TagOrdering = '-last_updated';
const DEFAULT_REPO_ORDERING: TagOrdering = 'name';

export interface PageQuery {
  page?: string;
  page_size?: string;
  ordering?: string;
}

export interface Page<T> {
  count: number;
  next: string | null;
  previous: string | null;
  results: T[];
}

export interface HubImageView {
  architecture: string;
  features: string;
  variant: null;
  digest: string;
  os: string;
  os_features: string;
  os_version: null;
  size: number;
  status: 'active';
  last_pulled: string | null;
  last_pushed: string | null;
}

export interface HubTagView {
  id: number;
  name: string;
  last_updated: string | null;
  last_updater: number;
  last_updater_username: string;
  creator: number;
  repository: number;
  full_size: number;
  digest: string;
  media_type: string;
  content_type: 'image';
  tag_status: 'active';
  tag_last_pulled: string | null;
  tag_last_pushed: string | null;
  images: HubImageView[];
}

export interface HubRepositoryView {
  user: string;
  name: string;
  namespace: string;
  repository_type: 'image';
  status: 1;
  status_description: 'active';
  description: string;
  is_private: boolean;
  is_automated: false;
  star_count: 0;
  pull_count: number;
  last_updated: string | null;
  date_registered: string;
  affiliation: null;
  media_types: string[];
  content_types: string[];
  categories: never[];
  /** Only in the single-repository view. */
  full_description?: string;
  collaborator_count?: number;
  has_starred?: false;
  hub_user?: string;
  can_edit?: boolean;
  permissions?: { read: boolean; write: boolean; admin: boolean };
}

export interface HubUserView {
  id: number;
  uuid: string;
  username: string;
  full_name: string;
  location: string;
  company: string;
  profile_url: string;
  date_joined: string;
  gravatar_url: string;
  gravatar_email: string;
  type: 'User';
  /** Only for the caller (GET /v2/user/). */
  is_staff?: boolean;
  is_admin?: boolean;
}

export interface HubOrgView {
  id: number;
  uuid: string;
  orgname: string;
  full_name: string;
  location: string;
  company: string;
  profile_url: string;
  date_joined: string | null;
  gravatar_url: string;
  gravatar_email: string;
  type: 'Organization';
}

export interface LoginResult {
  token: string;
  refresh_token?: string;
}

/** What the v1 pull routes report (see the header comment for what counts as a pull). */
export interface PullRecorder {
  repositoryPulled(name: RepoName): Promise<void>;
  tagPulled(name: RepoName, tag: Tag): Promise<void>;
  tagsListed(name: RepoName): Promise<void>;
}

const IMAGE_MEDIA_TYPE = 'application/vnd.docker.container.image.v1+json';
/**
 * Sorted tag lists are kept per list the store returned (walking 2,500 tags one per page
 * must not sort them 2,500 times): a store that caches (one node, LevelDB) returns the same
 * frozen list until the tags change, so the sort is reused; a shared store (PostgreSQL)
 * returns a new list on every read, so another node's change shows at once.
 */
const RANK = { none: 0, read: 1, write: 2, admin: 3 } as const;

type TagList = ReadonlyArray<readonly [Tag, TagRecord]>;

/** What the Docker Hub API double reads and writes besides what it asks other services. */
export type HubStores = ImageStore & RepositoryStore & TagStore & AccountStore & ManifestStore & PullStatsStore;

export class HubService implements PullRecorder {
  /** The store's tag list → its sorts, by ordering. */
  private readonly sortedLists = new WeakMap<TagList, Map<TagOrdering, TagList>>();
  /** Pull statistics, counted in memory and written in batches (pull-counter.ts). */
  private readonly pulls: PullCounter;

  constructor(
    private readonly meta: HubStores,
    private readonly repos: RepositoryService,
    private readonly access: AccessService,
    private readonly users: UserService,
    private readonly jwt: JwtService,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.pulls = new PullCounter(meta);
  }

  // ── accounts and tokens ─────────────────────────────────────────────────────────────

  /**
   * POST /v2/users/login: {username, password} (the username may be the account's e-mail,
   * as on Hub), or {refresh_token} (an extension: a new access token for a refresh token).
   * `withRefresh` (?refresh_token=true) adds a refresh token to the answer.
   */
  async login(body: unknown, withRefresh: boolean, address?: string): Promise<LoginResult> {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw invalidInput('Expected a JSON object {"username": …, "password": …}.');
    }
    const { username, password, refresh_token: refresh } = body as Record<string, unknown>;
    let user: UserRecord;
    if (typeof refresh === 'string' && username === undefined && password === undefined) {
      user = await this.userOfToken(refresh, 'refresh');
    } else {
      if (typeof username !== 'string' || username === '' || typeof password !== 'string' || password === '') {
        throw invalidInput('Both username and password are required.');
      }
      let name = username.trim().toLowerCase();
      if (name.includes('@')) name = (await this.meta.getUserNameByEmail(name)) ?? name;
      try {
        user = await this.users.authenticate(name, password, address);
      } catch (err) {
        if (err instanceof RegistryError && err.code === 'UNAUTHORIZED') {
          throw new RegistryError('UNAUTHORIZED', 'Incorrect authentication credentials.');
        }
        throw err;
      }
    }
    const out: LoginResult = { token: this.jwt.issue(user, 'access') };
    if (withRefresh) out.refresh_token = this.jwt.issue(user, 'refresh');
    return out;
  }

  /** The account behind a Hub token: signature, expiry, and the account still active. */
  userOfToken(token: string, kind: 'access' | 'refresh' = 'access'): Promise<UserRecord> {
    return this.jwt.userOf(token, kind, this.users);
  }

  /** GET /v2/user/: the caller. */
  self(principal: Principal): HubUserView {
    const user = requireUser(principal);
    return { ...userView(user), is_staff: user.admin, is_admin: user.admin };
  }

  /** GET /v2/users/:name/: anyone's public profile. */
  async user(name: string): Promise<HubUserView> {
    const user = /^[a-z0-9_]{4,30}$/.test(name) ? await this.users.get(name) : null;
    if (!user) throw notFound('Not found.');
    return userView(user);
  }

  /**
   * GET /v2/user/orgs/: we have no organizations. An administrator administers `library`
   * and every namespace that holds repositories and is not an account's own: those are
   * listed as the caller's organizations. Anyone else: an empty list.
   */
  async orgs(principal: Principal, query: PageQuery, self: URL): Promise<Page<HubOrgView>> {
    const user = requireUser(principal);
    const { page, pageSize } = paging(query);
    const names = new Set<string>();
    if (user.admin) {
      names.add(DEFAULT_NAMESPACE);
      for await (const repo of this.meta.listRepos()) {
        if (!names.has(repo.namespace) && repo.namespace !== user.name && !(await this.users.get(repo.namespace))) names.add(repo.namespace);
      }
    }
    const orgs = [...names].sort(byString).map(orgView);
    return paginate(orgs, page, pageSize, self, (x) => x);
  }

  // ── repositories ────────────────────────────────────────────────────────────────────

  /** GET /v2/repositories/:ns/ (and /v2/users/:ns/repositories/): what the caller may read. */
  async listRepositories(principal: Principal, namespace: string, query: PageQuery, self: URL): Promise<Page<HubRepositoryView>> {
    const ns = parseNamespace(namespace);
    const { page, pageSize } = paging(query);
    const ordering = orderingOf(query, DEFAULT_REPO_ORDERING);
    const visible: RepoRecord[] = [];
    let any = false;
    for await (const record of this.meta.listReposInNamespace(ns)) {
      any = true;
      if (this.access.canRead(principal, nameOfRepo(record), record)) visible.push(record);
    }
    if (!any && ns !== DEFAULT_NAMESPACE && !(await this.users.get(ns))) throw notFound('Object not found.');
    const lastUpdated = (r: RepoRecord) => r.lastTagInfo?.last_update ?? Date.parse(r.createdAt) / 1000;
    visible.sort(comparator(ordering, (r) => r.repository, lastUpdated));
    return paginate(visible, page, pageSize, self, async (record) =>
      this.repositoryView(principal, nameOfRepo(record), record, false),
    );
  }

  /** GET /v2/repositories/:ns/:repo/. */
  async repository(principal: Principal, name: RepoName): Promise<HubRepositoryView> {
    await this.access.authorizeRepo(principal, name, 'read');
    return this.repositoryView(principal, name, await this.repos.get(name), true);
  }

  /** POST /v2/repositories/: {namespace, name, description?, full_description?, is_private?}. */
  async createRepository(principal: Principal, body: unknown): Promise<HubRepositoryView> {
    const input = objectBody(body);
    if (typeof input.namespace !== 'string' || typeof input.name !== 'string') {
      throw invalidInput('"namespace" and "name" are required.');
    }
    const name = parseRepoName(input.namespace, input.name);
    const changes = descriptionChanges(input);
    if (input.is_private !== undefined && typeof input.is_private !== 'boolean') throw invalidInput('"is_private" must be a boolean.');
    await this.access.authorizeRepo(principal, name, 'admin');
    if (await this.meta.getRepo(name)) throw invalidInput('Repository with this Name and Namespace already exists.');
    const record: RepoRecord = {
      namespace: name.namespace,
      repository: name.repository,
      access: input.is_private === true ? 'private' : 'public',
      description: changes.description ?? '',
      createdAt: this.now().toISOString(),
      lastTagInfo: null,
      ...(changes.fullDescription !== undefined ? { fullDescription: changes.fullDescription } : {}),
    };
    await this.meta.putRepo(name, record);
    return this.repositoryView(principal, name, record, true);
  }

  /** PATCH /v2/repositories/:ns/:repo/: description and/or full_description (admin). */
  async updateRepository(principal: Principal, name: RepoName, body: unknown): Promise<HubRepositoryView> {
    const changes = descriptionChanges(objectBody(body));
    await this.access.authorizeRepo(principal, name, 'admin');
    const record = await this.repos.get(name);
    const next: RepoRecord = {
      ...record,
      ...(changes.description !== undefined ? { description: changes.description } : {}),
      ...(changes.fullDescription !== undefined ? { fullDescription: changes.fullDescription } : {}),
    };
    await this.meta.putRepo(name, next);
    return this.repositoryView(principal, name, next, true);
  }

  /** POST /v2/repositories/:ns/:repo/privacy/: {is_private} (admin). */
  async setPrivacy(principal: Principal, name: RepoName, body: unknown): Promise<HubRepositoryView> {
    const input = objectBody(body);
    if (typeof input.is_private !== 'boolean') throw invalidInput('"is_private" must be a boolean.');
    await this.access.authorizeRepo(principal, name, 'admin');
    await this.repos.get(name);
    await this.repos.setProperties(name, { access: input.is_private ? 'private' : 'public' });
    return this.repositoryView(principal, name, await this.repos.get(name), true);
  }

  /** DELETE /v2/repositories/:ns/:repo/: the repository, its tags and its image list. */
  async deleteRepository(principal: Principal, name: RepoName): Promise<void> {
    await this.access.authorizeRepo(principal, name, 'delete');
    await this.repos.delete(name, userOf(principal)?.name ?? null);
  }

  // ── tags ────────────────────────────────────────────────────────────────────────────

  /** GET /v2/repositories/:ns/:repo/tags/: page, page_size, ordering. */
  async listTags(principal: Principal, name: RepoName, query: PageQuery, self: URL): Promise<Page<HubTagView>> {
    const { page, pageSize } = paging(query);
    const ordering = orderingOf(query, DEFAULT_TAG_ORDERING);
    await this.access.authorizeRepo(principal, name, 'read');
    const repo = await this.repos.get(name);
    const tags = await this.sortedTags(name, ordering);
    const start = (page - 1) * pageSize;
    const context = await this.tagContext(name, repo, tags.slice(start, start + pageSize).map(([tag]) => tag));
    return paginate(tags, page, pageSize, self, ([tag, record]) => this.tagView(context, tag, record));
  }

  /** GET /v2/repositories/:ns/:repo/tags/:tag/. */
  async tag(principal: Principal, name: RepoName, tagName: string): Promise<HubTagView> {
    const tag = parseTag(tagName);
    await this.access.authorizeRepo(principal, name, 'read');
    const repo = await this.repos.get(name);
    const record = await this.meta.getTag(name, tag);
    if (!record) throw notFound('Tag not found.');
    return this.tagView(await this.tagContext(name, repo, [tag]), tag, record);
  }

  /** DELETE /v2/repositories/:ns/:repo/tags/:tag/ (needs write on the repository). */
  async deleteTag(principal: Principal, name: RepoName, tagName: string): Promise<void> {
    const tag = parseTag(tagName);
    await this.access.authorizeRepo(principal, name, 'untag');
    await this.repos.get(name);
    await this.repos.deleteTag(name, tag, userOf(principal)?.name ?? null);
  }

  // ── pulls and events ────────────────────────────────────────────────────────────────

  async repositoryPulled(name: RepoName): Promise<void> {
    this.pulls.repositoryPulled(name, this.now().toISOString());
  }

  async tagPulled(name: RepoName, tag: Tag): Promise<void> {
    this.pulls.tagsPulled(name, [tag], this.now().toISOString());
  }

  async tagsListed(name: RepoName): Promise<void> {
    // Any order will do here: the store's (cached) list, unsorted.
    const tags = (await this.meta.listTags(name)).map(([tag]) => tag);
    this.pulls.tagsPulled(name, tags, this.now().toISOString());
  }

  /** Writes the pull statistics counted in memory (at close, and for tests). */
  flushPulls(): Promise<void> {
    return this.pulls.flush();
  }

  /** Keeps who pushed each tag, forgets statistics of what was deleted. */
  async onEvent(event: RegistryEvent): Promise<void> {
    if (event.type === 'push' && event.actor) await this.meta.setTagPusher(event.repo, event.tag, event.actor);
    else if (event.type === 'tag_delete') {
      await this.pulls.forgetTag(event.repo, event.tag);
      await this.meta.deleteTagStats(event.repo, event.tag);
    } else if (event.type === 'repo_delete') {
      await this.pulls.forgetRepo(event.repo);
      await this.meta.deleteRepoStats(event.repo);
    }
  }

  /** The repository's tags in `ordering` (sorted once per list the store returns). */
  private async sortedTags(name: RepoName, ordering: TagOrdering): Promise<TagList> {
    const tags = await this.meta.listTags(name);
    let index = this.sortedLists.get(tags);
    if (!index) this.sortedLists.set(tags, (index = new Map()));
    let sorted = index.get(ordering);
    if (!sorted) {
      sorted = [...tags].sort(comparator(ordering, ([tag]) => tag, ([, record]) => record.info.last_update ?? 0));
      index.set(ordering, sorted);
    }
    return sorted;
  }

  // ── views ───────────────────────────────────────────────────────────────────────────

  private async repositoryView(principal: Principal, name: RepoName, record: RepoRecord, full: boolean): Promise<HubRepositoryView> {
    const pulls = await this.pulls.repoPulls(name);
    const lastUpdate = record.lastTagInfo?.last_update;
    const view: HubRepositoryView = {
      user: name.namespace,
      name: name.repository,
      namespace: name.namespace,
      repository_type: 'image',
      status: 1,
      status_description: 'active',
      description: record.description,
      is_private: record.access === 'private',
      is_automated: false,
      star_count: 0,
      pull_count: pulls?.count ?? 0,
      last_updated: typeof lastUpdate === 'number' ? isoOfSeconds(lastUpdate) : null,
      date_registered: record.createdAt,
      affiliation: null,
      media_types: lastUpdate ? [IMAGE_MEDIA_TYPE] : [],
      content_types: lastUpdate ? ['image'] : [],
      categories: [],
    };
    if (!full) return view;
    const permission = RANK[this.access.permissionOf(userOf(principal), name, record)];
    return {
      ...view,
      full_description: record.fullDescription ?? '',
      collaborator_count: Object.keys(record.collaborators ?? {}).length,
      has_starred: false,
      hub_user: name.namespace,
      can_edit: permission >= RANK.admin,
      permissions: { read: permission >= RANK.read, write: permission >= RANK.write, admin: permission >= RANK.admin },
    };
  }

  /** What the views of `tags` (one page) share: their pull times and pushers, image facts. */
  private async tagContext(name: RepoName, repo: RepoRecord, tags: Tag[]): Promise<TagContext> {
    const stats = await this.pulls.tagStats(name, tags);
    return {
      name,
      repo,
      repoId: numericId(`repo:${name.full}`),
      stats: new Map(tags.map((tag, i) => [tag, stats[i]])),
      images: new Map(),
    };
  }

  private async tagView(context: TagContext, tag: Tag, record: TagRecord): Promise<HubTagView> {
    const image = await this.imageFacts(context, record);
    const pushed = typeof record.info.last_update === 'number' ? isoOfSeconds(record.info.last_update) : context.repo.createdAt;
    const stats = context.stats.get(tag);
    const pulled = stats?.lastPulledAt ?? null;
    const pusher = stats?.pusher ?? context.name.namespace;
    return {
      id: numericId(`tag:${context.name.full}:${tag}`),
      name: tag,
      last_updated: pushed,
      last_updater: numericId(`user:${pusher}`),
      last_updater_username: pusher,
      creator: numericId(`user:${pusher}`),
      repository: context.repoId,
      full_size: image.size,
      digest: image.digest,
      media_type: IMAGE_MEDIA_TYPE,
      content_type: 'image',
      tag_status: 'active',
      tag_last_pulled: pulled,
      tag_last_pushed: pushed,
      images: [
        {
          architecture: image.architecture ?? record.info.arch,
          features: '',
          variant: null,
          digest: image.digest,
          os: image.os ?? record.info.os,
          os_features: '',
          os_version: null,
          size: image.size,
          status: 'active',
          last_pulled: pulled,
          last_pushed: pushed,
        },
      ],
    };
  }

  /**
   * The tagged image as Hub describes it. A tag set over v2: `digest` is the manifest digest
   * (as on Hub), `size` the sum of its config and layers. A v1 tag: `digest` is sha256 of the
   * image JSON bytes (the v1 image's content address), `size` the sum of the layers of its
   * ancestry. Arch and os from the image JSON (else from the client that set the tag).
   */
  private async imageFacts(context: TagContext, record: TagRecord): Promise<ImageFacts> {
    const key = record.manifest ?? (record.imageId as string);
    const cached = context.images.get(key);
    if (cached) return cached;
    let doc: { architecture?: unknown; os?: unknown } = {};
    let size = 0;
    let digest: string | null = null;
    if (record.imageId) {
      const json = await this.meta.getImageJson(record.imageId);
      for (const id of (await this.meta.getAncestry(record.imageId)) ?? [record.imageId]) {
        size += (await this.meta.getImage(id as ImageId))?.layer?.size ?? 0;
      }
      try {
        if (json) doc = JSON.parse(json.toString('utf8')) as typeof doc;
      } catch {
        doc = {};
      }
      digest = 'sha256:' + createHash('sha256').update(json ?? Buffer.from(record.imageId)).digest('hex');
    }
    if (record.manifest) {
      digest = record.manifest;
      size = manifestSize(await this.meta.getManifest(record.manifest)) ?? size;
    }
    const facts: ImageFacts = {
      digest: digest ?? key,
      size,
      architecture: typeof doc.architecture === 'string' && doc.architecture ? doc.architecture : null,
      os: typeof doc.os === 'string' && doc.os ? doc.os : null,
    };
    context.images.set(key, facts);
    return facts;
  }
}

interface ImageFacts {
  digest: string;
  size: number;
  architecture: string | null;
  os: string | null;
}

interface TagContext {
  name: RepoName;
  repo: RepoRecord;
  repoId: number;
  stats: Map<Tag, TagStats>;
  images: Map<string, ImageFacts>;
}

/** Config + layers of an image manifest (null: not an image manifest, or unreadable). */
function manifestSize(bytes: Buffer | null): number | null {
  if (!bytes) return null;
  try {
    const parsed = parseManifest(bytes, undefined);
    if (parsed.kind !== 'image' || !parsed.config) return null;
    return parsed.layers.reduce((sum, layer) => sum + layer.size, parsed.config.size);
  } catch {
    return null;
  }
}

// ── pagination ────────────────────────────────────────────────────────────────────────

/**
 * page (default 1) and page_size (default 10, clamped to MAX_PAGE_SIZE): each a positive
 * integer, anything else is INVALID_INPUT (400).
 */
export function paging(query: PageQuery): { page: number; pageSize: number } {
  const page = positiveInt(query.page, 1, 'page');
  const pageSize = Math.min(positiveInt(query.page_size, DEFAULT_PAGE_SIZE, 'page_size'), MAX_PAGE_SIZE);
  return { page, pageSize };
}

/**
 * One page of `items`, Hub's envelope: `next` and `previous` are `self` (the absolute URL
 * of the request, every parameter kept) with `page` changed; null at the ends. A page past
 * the last is NOT_FOUND ("Invalid page."), except page 1 of an empty list.
 */
export async function paginate<T, V>(
  items: readonly T[],
  page: number,
  pageSize: number,
  self: URL,
  view: (item: T) => V | Promise<V>,
): Promise<Page<V>> {
  const start = (page - 1) * pageSize;
  if (page > 1 && start >= items.length) throw notFound('Invalid page.');
  const link = (to: number) => {
    const url = new URL(self.href);
    url.searchParams.set('page', String(to));
    return url.href;
  };
  const results: V[] = [];
  for (const item of items.slice(start, start + pageSize)) results.push(await view(item));
  return {
    count: items.length,
    next: start + pageSize < items.length ? link(page + 1) : null,
    previous: page > 1 ? link(page - 1) : null,
    results,
  };
}

/** `ordering`: last_updated, -last_updated, name, -name; absent or unknown: the default (as Hub ignores unknown fields). */
export function orderingOf(query: PageQuery, fallback: TagOrdering): TagOrdering {
  return query.ordering && ORDERINGS.has(query.ordering) ? (query.ordering as TagOrdering) : fallback;
}

/** Sorts by the ordering's key; ties (same time) by name, ascending. Names compare by code unit. */
export function comparator<T>(ordering: TagOrdering, nameOf: (item: T) => string, timeOf: (item: T) => number) {
  const sign = ordering.startsWith('-') ? -1 : 1;
  return (a: T, b: T): number => {
    if (ordering.endsWith('last_updated')) {
      const diff = timeOf(a) - timeOf(b);
      if (diff !== 0) return sign * Math.sign(diff);
      return byString(nameOf(a), nameOf(b));
    }
    return sign * byString(nameOf(a), nameOf(b));
  };
}

function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function positiveInt(value: string | undefined, fallback: number, what: string): number {
  if (value === undefined || value === '') return fallback;
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1) throw invalidInput(`Invalid ${what}: expected a positive integer.`);
  return Number(value);
}

// ── helpers ───────────────────────────────────────────────────────────────────────────

function requireUser(principal: Principal): UserRecord {
  const user = userOf(principal);
  if (!user) throw new RegistryError('UNAUTHORIZED', 'Authentication credentials were not provided.');
  return user;
}

function userView(user: UserRecord): HubUserView {
  const profile = profileOf(user);
  return {
    id: numericId(`user:${user.name}`),
    uuid: uuidOf(`user:${user.name}`),
    username: user.name,
    full_name: profile.fullName,
    location: profile.location,
    company: profile.company,
    profile_url: profile.url,
    date_joined: user.createdAt,
    gravatar_url: '',
    gravatar_email: '',
    type: 'User',
  };
}

function orgView(name: string): HubOrgView {
  return {
    id: numericId(`org:${name}`),
    uuid: uuidOf(`org:${name}`),
    orgname: name,
    full_name: '',
    location: '',
    company: '',
    profile_url: '',
    date_joined: null,
    gravatar_url: '',
    gravatar_email: '',
    type: 'Organization',
  };
}

/** A stable UUID-shaped id (version 5 layout) for a name. */
function uuidOf(name: string): string {
  const h = createHash('sha1').update(name).digest('hex');
  const variant = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function isoOfSeconds(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

function objectBody(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalidInput('Expected a JSON object.');
  return body as Record<string, unknown>;
}

function descriptionChanges(input: Record<string, unknown>): { description?: string; fullDescription?: string } {
  const out: { description?: string; fullDescription?: string } = {};
  if (input.description !== undefined && input.description !== null) {
    if (typeof input.description !== 'string' || input.description.length > MAX_DESCRIPTION) {
      throw invalidInput(`"description" must be a string of at most ${MAX_DESCRIPTION} characters.`);
    }
    out.description = input.description;
  }
  if (input.full_description !== undefined && input.full_description !== null) {
    if (typeof input.full_description !== 'string' || input.full_description.length > MAX_FULL_DESCRIPTION) {
      throw invalidInput(`"full_description" must be a string of at most ${MAX_FULL_DESCRIPTION} characters.`);
    }
    out.fullDescription = input.full_description;
  }
  return out;
}

