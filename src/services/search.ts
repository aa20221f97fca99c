/**
 * GET /v1/search: repository names and descriptions, case-insensitive substring match on
 * every word of the query; an empty query lists everything the caller may read. Private
 * repositories appear only for callers who may read them. The web UI's repository list
 * and its search field use the same matching (`matching`), newest first.
 */
import { invalidInput } from '../domain/errors.js';
import { Lru } from '../domain/lru.js';
import { nameOfRepo, type RepoName } from '../domain/names.js';
import type { RepoRecord } from '../domain/records.js';
import type { RepositoryStore } from '../store/metadata/ports.js';
import type { AccessService, Principal } from './access.js';

export interface SearchResult {
  name: string;
  description: string;
  star_count: number;
  is_official: boolean;
  is_automated: boolean;
  is_trusted: boolean;
}

export interface SearchPage {
  query: string;
  num_results: number;
  num_pages: number;
  page: number;
  page_size: number;
  results: SearchResult[];
}

export const DEFAULT_PAGE_SIZE = 25;
export const MAX_PAGE_SIZE = 100;

/** One repository as search sees it. */
interface Entry {
  record: RepoRecord;
  name: RepoName;
  /** Name and description, lower-cased: what the terms are matched against. */
  text: string;
  result: SearchResult;
  /** Last push (else creation), unix seconds: the newest-first order. */
  updated: number;
}

/** The entries matching one term list, in name order and (made on first use) newest first. */
interface Matches {
  byName: Entry[];
  byNewest?: Entry[];
}

export type SearchOrder = 'name' | 'newest';

/** Term lists whose matches are kept per repository snapshot. */
const CACHED_QUERIES = 32;

export class SearchService {
  constructor(
    private readonly meta: RepositoryStore,
    private readonly access: AccessService,
  ) {}

  /**
   * Built from the store's repository snapshot and kept while the store hands out the same
   * one (it is replaced on every repository write): entries in name order, and the entries
   * matching recent term lists. Who may read them is decided per request.
   */
  private index: { repos: readonly RepoRecord[]; entries: Entry[]; matches: Lru<string, Matches> } | null = null;

  private async indexNow(): Promise<{ entries: Entry[]; matches: Lru<string, Matches> }> {
    const repos = await this.meta.allRepos();
    if (this.index?.repos === repos) return this.index;
    // Records are replaced, never changed, on every write: reuse the unchanged ones' entries.
    const previous = new Map<RepoRecord, Entry>();
    for (const entry of this.index?.entries ?? []) previous.set(entry.record, entry);
    const entries = repos.map((record) => previous.get(record) ?? entryOf(record));
    this.index = { repos, entries, matches: new Lru(CACHED_QUERIES) };
    return this.index;
  }

  /** The entries matching every term of `q`, in `order` (cached per term list). */
  private async candidates(q: string, order: SearchOrder): Promise<Entry[]> {
    const terms = q.toLowerCase().split(/\s+/).filter(Boolean).slice(0, 16);
    const index = await this.indexNow();
    const key = terms.join(' ');
    let matches = index.matches.get(key);
    if (!matches) {
      matches = { byName: terms.length === 0 ? index.entries : index.entries.filter((e) => terms.every((t) => e.text.includes(t))) };
      index.matches.set(key, matches);
    }
    if (order === 'name') return matches.byName;
    // Newest first; the same time: by name (the sort is stable over the name order).
    matches.byNewest ??= [...matches.byName].sort((a, b) => b.updated - a.updated);
    return matches.byNewest;
  }

  /**
   * The repositories matching `q` that the caller may read, in `order`: how many (`total`)
   * and `limit` of them from the `offset`-th on (the web UI's list).
   */
  async matching(
    principal: Principal,
    q: string,
    order: SearchOrder,
    offset: number,
    limit: number,
  ): Promise<{ total: number; items: Array<{ name: RepoName; record: RepoRecord }> }> {
    const items: Array<{ name: RepoName; record: RepoRecord }> = [];
    let total = 0;
    for (const entry of await this.candidates(q, order)) {
      if (!this.access.canRead(principal, entry.name, entry.record)) continue;
      if (total >= offset && items.length < limit) items.push({ name: entry.name, record: entry.record });
      total += 1;
    }
    return { total, items };
  }

  async search(principal: Principal, q: string, n: string | undefined, page: string | undefined): Promise<SearchPage> {
    const pageSize = Math.min(positiveInt(n, DEFAULT_PAGE_SIZE, 'n'), MAX_PAGE_SIZE);
    const pageNo = positiveInt(page, 1, 'page');
    const candidates = await this.candidates(q, 'name');
    const start = (pageNo - 1) * pageSize;
    const results: SearchResult[] = [];
    let count = 0;
    for (const entry of candidates) {
      if (!this.access.canRead(principal, entry.name, entry.record)) continue;
      if (count >= start && results.length < pageSize) results.push(entry.result);
      count += 1;
    }
    return {
      query: q,
      num_results: count,
      num_pages: Math.max(1, Math.ceil(count / pageSize)),
      page: pageNo,
      page_size: pageSize,
      results,
    };
  }
}

function entryOf(record: RepoRecord): Entry {
  const name = nameOfRepo(record);
  const updated = record.lastTagInfo?.last_update ?? Date.parse(record.createdAt) / 1000;
  return {
    record,
    name,
    text: `${name.full} ${record.description}`.toLowerCase(),
    result: Object.freeze(toResult(record)),
    updated: Number.isFinite(updated) ? updated : 0,
  };
}

function toResult(repo: RepoRecord): SearchResult {
  const official = repo.namespace === 'library';
  return {
    name: official ? repo.repository : `${repo.namespace}/${repo.repository}`,
    description: repo.description,
    star_count: 0,
    is_official: official,
    is_automated: false,
    is_trusted: false,
  };
}

function positiveInt(value: string | undefined, fallback: number, what: string): number {
  if (value === undefined || value === '') return fallback;
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1) throw invalidInput(`Invalid ${what}: expected a positive integer`);
  return Number(value);
}
