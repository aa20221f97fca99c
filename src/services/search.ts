/**
 * GET /v1/search: repository names and descriptions, case-insensitive substring match on
 * every word of the query; an empty query lists everything the caller may read. Private
 * repositories appear only for callers who may read them.
 */
import { invalidInput } from '../domain/errors.js';
import { parseRepoName, type RepoName } from '../domain/names.js';
import type { RepoRecord } from '../domain/records.js';
import type { MetadataStore } from '../store/metadata/metadata-store.js';
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

export class SearchService {
  constructor(
    private readonly meta: MetadataStore,
    private readonly access: AccessService,
  ) {}

  /**
   * Name and lower-cased search text per repository record. Records are replaced, never
   * changed, on every write, so a record object can key its own entry.
   */
  private readonly entries = new WeakMap<RepoRecord, { name: RepoName; text: string }>();

  private entryOf(repo: RepoRecord): { name: RepoName; text: string } {
    let entry = this.entries.get(repo);
    if (!entry) {
      const name = parseRepoName(repo.namespace, repo.repository);
      entry = { name, text: `${name.full} ${repo.description}`.toLowerCase() };
      this.entries.set(repo, entry);
    }
    return entry;
  }

  async search(principal: Principal, q: string, n: string | undefined, page: string | undefined): Promise<SearchPage> {
    const pageSize = Math.min(positiveInt(n, DEFAULT_PAGE_SIZE, 'n'), MAX_PAGE_SIZE);
    const pageNo = positiveInt(page, 1, 'page');
    const terms = q.toLowerCase().split(/\s+/).filter(Boolean).slice(0, 16);
    const matches: RepoRecord[] = [];
    for await (const repo of this.meta.listRepos()) {
      const entry = this.entryOf(repo);
      if (!terms.every((t) => entry.text.includes(t))) continue;
      if (!this.access.canRead(principal, entry.name, repo)) continue;
      matches.push(repo);
    }
    const start = (pageNo - 1) * pageSize;
    return {
      query: q,
      num_results: matches.length,
      num_pages: Math.max(1, Math.ceil(matches.length / pageSize)),
      page: pageNo,
      page_size: pageSize,
      results: matches.slice(start, start + pageSize).map(toResult),
    };
  }
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
