/**
 * Where the admin commands (`user …`, `gc`, `fsck`, `oauth-client …`) do their work:
 *
 * - **local**: the CLI opens the stores itself (a stopped registry);
 * - **remote**: a running registry holds the store (LevelDB allows one process), so the
 *   CLI goes through that registry's admin API (`/_admin/…`, src/http/v1/admin.ts) at
 *   `--url` (default: the configured host and port), and says so on stderr. Admin
 *   credentials: `V1_REGISTRY_USERNAME` + `V1_REGISTRY_PASSWORD`, else what `registry login`
 *   saved for that host, else a prompt when stdin is a terminal.
 *
 * `--url` always means remote. Both backends run the same service code (the routes call the
 * services the local backend calls), so a command answers the same either way.
 */
import type { Config } from '../config/schema.js';
import { credentialsFor, type Credentials } from '../client/credentials.js';
import { createLogger } from '../logger.js';
import { openLocalServices, StoreInUseError } from '../compose.js';
import type { FsckReport } from '../services/fsck.js';
import type { GcReport } from '../services/gc.js';
import type { OAuthClientView } from '../services/oauth.js';

export interface AccountRow {
  name: string;
  email: string;
  admin: boolean;
  active: boolean;
  createdAt: string;
}

export interface SetAccount {
  username: string;
  password: string;
  email?: string;
  admin?: boolean;
  mustExist?: boolean;
}

/** The admin operations, wherever the store is. */
export interface AdminBackend {
  setAccount(input: SetAccount): Promise<{ result: 'created' | 'updated'; admin: boolean }>;
  setActive(name: string, active: boolean): Promise<void>;
  listUsers(): Promise<AccountRow[]>;
  importHtpasswd(text: string): Promise<{ imported: string[]; skipped: Array<{ line: number; reason: string }> }>;
  gc(options: { dryRun: boolean; graceSeconds: number }): Promise<GcReport>;
  fsck(repair: boolean): Promise<FsckReport>;
  addOAuthClient(name: string, redirectUris: string[]): Promise<OAuthClientView & { client_secret: string }>;
  listOAuthClients(): Promise<OAuthClientView[]>;
  removeOAuthClient(id: string): Promise<void>;
  close(): Promise<void>;
}

export interface AdminIO {
  env: NodeJS.ProcessEnv;
  stderr: NodeJS.WritableStream;
  /** Asks a terminal (null: there is none to ask). */
  prompt: ((question: string, secret: boolean) => Promise<string>) | null;
}

/** A failure of the admin API: the registry's message, its status and the request. */
export class AdminApiError extends Error {
  constructor(
    message: string,
    readonly status: number | null = null,
  ) {
    super(message);
  }

  /** The registry refused the input (a 4xx other than a credentials problem). */
  get refusedInput(): boolean {
    return this.status !== null && this.status >= 400 && this.status < 500 && this.status !== 401 && this.status !== 403;
  }
}

/** The stores opened here; StoreInUseError when a running registry holds them. */
export async function localBackend(config: Config): Promise<AdminBackend> {
  const { users, oauth, gc, fsck, close } = await openLocalServices(config, createLogger('warn'));
  return {
    setAccount: (input) => users.setAccount(input),
    setActive: (name, active) => users.setActive(name, active),
    async listUsers() {
      const rows: AccountRow[] = [];
      for await (const u of users.list()) rows.push({ name: u.name, email: u.email, admin: u.admin, active: u.active, createdAt: u.createdAt });
      return rows;
    },
    importHtpasswd: (text) => users.importHtpasswd(text),
    gc: ({ dryRun, graceSeconds }) => gc.run({ dryRun, graceMs: graceSeconds * 1000 }),
    fsck: (repair) => fsck.run(repair),
    addOAuthClient: (name, uris) => oauth.addClient(name, uris),
    listOAuthClients: () => oauth.listClients(),
    removeOAuthClient: (id) => oauth.removeClient(id),
    close,
  };
}

/** The admin API of the registry at `url`, as `credentials` (an admin). */
export function remoteBackend(url: string, credentials: Credentials): AdminBackend {
  const base = url.replace(/\/+$/, '');
  const auth = 'Basic ' + Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64');
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const headers: Record<string, string> = { Authorization: auth, Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      throw new AdminApiError(`cannot reach the registry at ${base} (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message})`);
    }
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: reported below
    }
    if (!res.ok) {
      const message = (parsed as { error?: unknown } | undefined)?.error;
      const hint = res.status === 401 || res.status === 403 ? ' (admin credentials: V1_REGISTRY_USERNAME and V1_REGISTRY_PASSWORD, or registry login)' : '';
      throw new AdminApiError(`${typeof message === 'string' ? message : text.slice(0, 200) || res.statusText}${hint} (HTTP ${res.status} on ${method} ${path})`, res.status);
    }
    return parsed as T;
  };
  const user = (name: string) => `/_admin/users/${encodeURIComponent(name)}`;
  return {
    setAccount: (input) =>
      call('PUT', user(input.username), { password: input.password, email: input.email, admin: input.admin, must_exist: input.mustExist === true }),
    setActive: async (name, active) => {
      await call('PATCH', user(name), { active });
    },
    listUsers: () => call('GET', '/_admin/users'),
    importHtpasswd: (text) => call('POST', '/_admin/users/import-htpasswd', { htpasswd: text }),
    gc: ({ dryRun, graceSeconds }) => call('POST', `/_admin/gc?grace_seconds=${graceSeconds}${dryRun ? '&dry_run=true' : ''}`),
    fsck: (repair) => call('POST', `/_admin/fsck${repair ? '?repair=true' : ''}`),
    addOAuthClient: (name, uris) => call('POST', '/_admin/oauth/clients', { name, redirect_uris: uris }),
    listOAuthClients: () => call('GET', '/_admin/oauth/clients'),
    removeOAuthClient: async (id) => {
      await call('DELETE', `/_admin/oauth/clients/${encodeURIComponent(id)}`);
    },
    close: async () => undefined,
  };
}

/** The registry's own URL from its configuration (what `--url` defaults to). */
export function configuredUrl(config: Config): string {
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host === '::' ? '::1' : config.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.port}`;
}

/**
 * The backend for one admin command: remote with `url`; else local, or remote when a
 * running registry holds the store (said on stderr).
 */
export async function openAdmin(config: Config, url: string | undefined, io: AdminIO): Promise<AdminBackend> {
  if (url) return remoteBackend(url, await adminCredentials(url, io));
  try {
    return await localBackend(config);
  } catch (err) {
    if (!(err instanceof StoreInUseError)) throw err;
    const target = configuredUrl(config);
    io.stderr.write(`registry: ${err.location} is held by a running registry; going through its admin API at ${target} (--url to choose another)\n`);
    return remoteBackend(target, await adminCredentials(target, io));
  }
}

async function adminCredentials(url: string, io: AdminIO): Promise<Credentials> {
  let host: string;
  try {
    host = new URL(url).host;
  } catch {
    throw new AdminApiError(`--url: not a URL: ${url}`);
  }
  const known = await credentialsFor(host, io.env);
  if (known) return known;
  if (!io.prompt) {
    throw new AdminApiError(`admin credentials for ${host} are needed: set V1_REGISTRY_USERNAME and V1_REGISTRY_PASSWORD, or run registry login ${host}`);
  }
  const username = (await io.prompt(`Admin username for ${host}: `, false)).trim();
  const password = await io.prompt('Admin password: ', true);
  if (!username || !password) throw new AdminApiError('admin username and password must not be empty');
  return { username, password };
}
