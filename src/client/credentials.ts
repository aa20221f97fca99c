/**
 * Credentials for the client, per registry host.
 *
 * - `V1_REGISTRY_USERNAME` + `V1_REGISTRY_PASSWORD` in the environment: used for every host,
 *   they win over the file (for CI; nothing is written).
 * - The auth file: `V1_REGISTRY_AUTH_FILE`, else `$XDG_CONFIG_HOME/v1-registry/auth.json`,
 *   else `~/.config/v1-registry/auth.json`. Docker's shape:
 *   `{"auths": {"host:port": {"auth": base64("user:password")}}}`. Written atomically
 *   (temp file + rename) with mode 0600, its directory 0700.
 *
 * The variables are deliberately not `REGISTRY_*`: the server's config loader rejects
 * unknown `REGISTRY_*` variables at start-up.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface Credentials {
  username: string;
  password: string;
}

interface AuthFile {
  auths?: Record<string, { auth?: string; email?: string }>;
  [key: string]: unknown;
}

export function authFilePath(env: NodeJS.ProcessEnv): string {
  if (env.V1_REGISTRY_AUTH_FILE) return env.V1_REGISTRY_AUTH_FILE;
  const base = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
  return path.join(base, 'v1-registry', 'auth.json');
}

async function readAuthFile(file: string): Promise<AuthFile> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  try {
    const doc = JSON.parse(text) as unknown;
    if (doc && typeof doc === 'object' && !Array.isArray(doc)) return doc as AuthFile;
  } catch {
    // fall through
  }
  throw new Error(`${file}: not a JSON object; fix or remove it`);
}

async function writeAuthFile(file: string, doc: AuthFile): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await fs.writeFile(tmp, JSON.stringify(doc, null, 2) + '\n', { mode: 0o600 });
    await fs.chmod(tmp, 0o600); // in case the umask or an existing file had other bits
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

function decode(auth: string | undefined): Credentials | null {
  if (!auth) return null;
  const text = Buffer.from(auth, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0) return null;
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** Credentials from the environment, if both variables are set. */
export function envCredentials(env: NodeJS.ProcessEnv): Credentials | null {
  const username = env.V1_REGISTRY_USERNAME;
  const password = env.V1_REGISTRY_PASSWORD;
  return username && password ? { username, password } : null;
}

/** The credentials to use for `host`: environment first, then the auth file, else null. */
export async function credentialsFor(host: string, env: NodeJS.ProcessEnv): Promise<Credentials | null> {
  const fromEnv = envCredentials(env);
  if (fromEnv) return fromEnv;
  const doc = await readAuthFile(authFilePath(env));
  return decode(doc.auths?.[host.toLowerCase()]?.auth);
}

export async function saveCredentials(host: string, credentials: Credentials, env: NodeJS.ProcessEnv): Promise<string> {
  const file = authFilePath(env);
  const doc = await readAuthFile(file);
  const auths = { ...(doc.auths ?? {}) };
  auths[host.toLowerCase()] = { auth: Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64') };
  await writeAuthFile(file, { ...doc, auths });
  return file;
}

/** Removes `host` from the auth file; false when it was not there. */
export async function removeCredentials(host: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  const file = authFilePath(env);
  const doc = await readAuthFile(file);
  const key = host.toLowerCase();
  if (!doc.auths || !(key in doc.auths)) return false;
  const auths = { ...doc.auths };
  delete auths[key];
  await writeAuthFile(file, { ...doc, auths });
  return true;
}
