/**
 * All validation of names lives here: image ids, namespaces, repository names, tags.
 * Nothing reaches a LevelDB key or a file path without passing one of these checks, and
 * the checked values are branded so the type system keeps it that way.
 */
import { invalidName } from './errors.js';

export type ImageId = string & { readonly __brand: 'ImageId' };
export type Tag = string & { readonly __brand: 'Tag' };

/** A validated repository: namespace + name. `library` is the namespace of single names. */
export interface RepoName {
  readonly namespace: string;
  readonly repository: string;
  /** `namespace/repository`, the canonical form used in keys and messages. */
  readonly full: string;
}

export const DEFAULT_NAMESPACE = 'library';

const IMAGE_ID = /^[a-f0-9]{16,64}$/;
const NAMESPACE = /^[a-z0-9_-]{2,255}$/;
const REPOSITORY = /^[a-z0-9_.-]{1,255}$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const USERNAME = /^[a-z0-9_]{4,30}$/;

export function isImageId(value: unknown): value is ImageId {
  return typeof value === 'string' && IMAGE_ID.test(value);
}

export function parseImageId(value: unknown): ImageId {
  if (!isImageId(value)) throw invalidName('Invalid image id: expected 16 to 64 lowercase hex characters');
  return value;
}

export function parseTag(value: unknown): Tag {
  if (typeof value !== 'string' || !TAG.test(value)) {
    throw invalidName('Invalid tag name: expected [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}');
  }
  return value as Tag;
}

export function parseNamespace(value: unknown): string {
  if (typeof value !== 'string' || !NAMESPACE.test(value)) {
    throw invalidName('Invalid namespace name: expected 2 to 255 characters of [a-z0-9_-]');
  }
  return value;
}

export function parseRepoName(namespace: string | undefined, repository: unknown): RepoName {
  const ns = parseNamespace(namespace ?? DEFAULT_NAMESPACE);
  // `.` and `..` would be path segments; a repository is a name, never a path.
  if (typeof repository !== 'string' || !REPOSITORY.test(repository) || /^\.+$/.test(repository)) {
    throw invalidName('Invalid repository name: expected 1 to 255 characters of [a-z0-9_.-]');
  }
  return { namespace: ns, repository, full: `${ns}/${repository}` };
}

/** Parses `ns/repo` or `repo` (= `library/repo`). */
export function parseRepoPath(path: string): RepoName {
  const parts = path.split('/');
  if (parts.length === 1) return parseRepoName(undefined, parts[0]);
  if (parts.length === 2) return parseRepoName(parts[0], parts[1]);
  throw invalidName('Invalid repository name: expected "namespace/repository" or "repository"');
}

/**
 * Parses a stored full name (a key, a record): a v1 name (`ns/repo`), else a Registry API v2
 * name, which may be deeper (`a/b/c`) or spelled in a way v1 does not allow.
 */
export function parseStoredName(full: string): RepoName {
  try {
    return parseRepoPath(full);
  } catch (err) {
    if (!V2_NAME.test(full)) throw err;
    return parseV2Name(full);
  }
}

/** The name of a stored repository record (v1 names, and v2 names such as `a/b/c`). */
export function nameOfRepo(record: { readonly namespace: string; readonly repository: string }): RepoName {
  return parseStoredName(`${record.namespace}/${record.repository}`);
}

// ── Registry API v2 names ────────────────────────────────────────────────────────────
/** One path component of a v2 name (the OCI distribution spec's grammar). */
const V2_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const V2_NAME = new RegExp(`^${V2_COMPONENT}(?:/${V2_COMPONENT})*$`);
/** Longest v2 name (docker's limit on the name without the registry host). */
export const MAX_V2_NAME = 255;
/**
 * First components the Docker Hub API double owns on the same port (`/v2/users/…`,
 * `/v2/user/…`, `/v2/repositories/…`): a v2 repository cannot be named with them.
 */
export const RESERVED_V2_FIRST = new Set(['users', 'user', 'repositories']);

export function isV2Name(value: string): boolean {
  return value.length <= MAX_V2_NAME && V2_NAME.test(value);
}

/**
 * A Registry API v2 repository name: `app` is `library/app` (the v1 single name), `ns/app`
 * is `ns/app`, deeper names (`a/b/c`) exist only on v2. The namespace (whose owner may
 * write) is the first component; the repository is the rest.
 */
export function parseV2Name(value: unknown): RepoName {
  if (typeof value !== 'string' || !isV2Name(value)) {
    throw invalidName('Invalid repository name: expected lowercase path components of [a-z0-9] separated by ".", "_", "__" or "-", joined by "/", at most 255 characters');
  }
  const slash = value.indexOf('/');
  const first = slash === -1 ? value : value.slice(0, slash);
  if (RESERVED_V2_FIRST.has(first)) {
    throw invalidName(`Invalid repository name: "${first}/…" belongs to the Docker Hub API on this port`);
  }
  if (slash === -1) return { namespace: DEFAULT_NAMESPACE, repository: value, full: `${DEFAULT_NAMESPACE}/${value}` };
  return { namespace: first, repository: value.slice(slash + 1), full: value };
}

export function parseUsername(value: unknown): string {
  if (typeof value !== 'string' || !USERNAME.test(value)) {
    throw invalidName('Invalid username: expected 4 to 30 characters of [a-z0-9_]');
  }
  return value;
}
