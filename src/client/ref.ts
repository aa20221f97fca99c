/**
 * Image references for the client: `host[:port]/ns/repo[:tag]`, `host[:port]/repo[:tag]`
 * (= `library/repo`), optionally prefixed by `http://` or `https://`.
 *
 * The first path component is a registry host when it contains a `.` or a `:`, is
 * `localhost`, or is a bracketed IPv6 address (docker's rule). Without a host the default
 * registry applies (`--registry` / `V1_REGISTRY_HOST`), else the reference is refused: a
 * v1 client has no implicit Docker Hub to fall back to.
 *
 * Scheme: `https://` / `http://` prefix, else `--scheme`, else http for loopback and
 * private-network hosts (localhost, 127/8, ::1, 10/8, 172.16/12, 192.168/16, 169.254/16,
 * fc00::/7, fe80::/10, single-label names, *.local, *.localhost) and https for the rest.
 */
import { parseRepoName, parseTag } from '../domain/names.js';

export type Scheme = 'http' | 'https';

export class RefError extends Error {
  override name = 'RefError';
}

export interface RegistryHost {
  scheme: Scheme;
  /** `host` or `host:port`, lowercased; the key credentials are stored under. */
  host: string;
  /** `scheme://host[:port]`, no trailing slash. */
  base: string;
}

export interface RepoRef extends RegistryHost {
  namespace: string;
  repository: string;
  /** `ns/repo`, always with the namespace. */
  name: string;
  /** `host/ns/repo`, or `host/repo` when the user left out `library/`. */
  display: string;
  tag: string;
  /** True when the input named a tag (`:tag`); otherwise `tag` is `latest`. */
  tagGiven: boolean;
}

export interface RefOptions {
  /** Registry host used when the reference names none. */
  defaultHost?: string;
  /** Scheme forced by --scheme (an explicit `http(s)://` prefix still wins). */
  scheme?: Scheme;
}

const HOSTLIKE = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/;

function isHostComponent(part: string): boolean {
  return part.includes('.') || part.includes(':') || part === 'localhost' || part.startsWith('[');
}

/** http for loopback and private-network hosts, https otherwise. */
export function defaultScheme(host: string): Scheme {
  let name = host.toLowerCase();
  if (name.startsWith('[')) name = name.slice(1, name.indexOf(']'));
  else name = name.replace(/:\d+$/, '');
  if (name === 'localhost' || name.endsWith('.localhost') || name.endsWith('.local')) return 'http';
  if (!name.includes('.') && !name.includes(':')) return 'http'; // single-label LAN name
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(name);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    if (a === 127 || a === 10) return 'http';
    if (a === 172 && b >= 16 && b <= 31) return 'http';
    if (a === 192 && b === 168) return 'http';
    if (a === 169 && b === 254) return 'http';
    return 'https';
  }
  if (name.includes(':')) {
    if (name === '::1') return 'http';
    if (/^f[cd][0-9a-f]{0,2}:/.test(name) || /^fe[89ab][0-9a-f]?:/.test(name)) return 'http';
  }
  return 'https';
}

/** Parses `HOST`, `HOST:PORT`, `http(s)://HOST[:PORT][/]`. */
export function parseHost(input: string, options: RefOptions = {}): RegistryHost {
  let rest = input.trim();
  let scheme: Scheme | undefined;
  const m = /^(https?):\/\//i.exec(rest);
  if (m) {
    scheme = m[1].toLowerCase() as Scheme;
    rest = rest.slice(m[0].length);
  }
  rest = rest.replace(/\/+$/, '');
  if (!rest || !HOSTLIKE.test(rest)) throw new RefError(`invalid registry host "${input}": expected host[:port]`);
  const host = rest.toLowerCase();
  const chosen = scheme ?? options.scheme ?? defaultScheme(host);
  return { scheme: chosen, host, base: `${chosen}://${host}` };
}

/**
 * Parses an image reference. Without a host in the input or a default, the reference is
 * refused with a message saying how to write one.
 */
export function parseRef(input: string, options: RefOptions = {}): RepoRef {
  let rest = input.trim();
  let prefix = '';
  const m = /^(https?):\/\//i.exec(rest);
  if (m) {
    prefix = m[0];
    rest = rest.slice(m[0].length);
  }
  if (rest.includes('@')) throw new RefError(`"${input}": digest references are not part of the v1 protocol; use a tag`);
  const parts = rest.split('/');
  let hostInput: string;
  if (parts.length >= 2 && (prefix || isHostComponent(parts[0]))) {
    hostInput = prefix + (parts.shift() as string);
  } else if (options.defaultHost) {
    hostInput = options.defaultHost;
  } else {
    throw new RefError(`"${input}" names no registry: write host:port/ns/repo:tag (or set --registry / V1_REGISTRY_HOST)`);
  }
  const host = parseHost(hostInput, options);
  if (parts.length < 1 || parts.length > 2 || parts.some((p) => p === '')) {
    throw new RefError(`invalid image reference "${input}": expected host:port/ns/repo:tag or host:port/repo:tag`);
  }
  let last = parts[parts.length - 1];
  let tag = 'latest';
  let tagGiven = false;
  const colon = last.lastIndexOf(':');
  if (colon !== -1) {
    tag = last.slice(colon + 1);
    last = last.slice(0, colon);
    tagGiven = true;
  }
  parts[parts.length - 1] = last;
  const explicitNs = parts.length === 2;
  try {
    parseTag(tag);
    const repo = parseRepoName(explicitNs ? parts[0] : undefined, last);
    return {
      ...host,
      namespace: repo.namespace,
      repository: repo.repository,
      name: repo.full,
      display: `${host.host}/${explicitNs ? repo.full : repo.repository}`,
      tag,
      tagGiven,
    };
  } catch (err) {
    throw new RefError(`invalid image reference "${input}": ${(err as Error).message}`);
  }
}

/** `host/ns/repo:tag` as shown to users and written into RepoTags. */
export function refString(ref: RepoRef): string {
  return `${ref.display}:${ref.tag}`;
}
