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

export function parseUsername(value: unknown): string {
  if (typeof value !== 'string' || !USERNAME.test(value)) {
    throw invalidName('Invalid username: expected 4 to 30 characters of [a-z0-9_]');
  }
  return value;
}
