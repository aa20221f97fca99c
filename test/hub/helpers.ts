/**
 * Helpers for the Docker Hub API double tests: a server with authentication on, accounts,
 * a small HTTP client that returns status + parsed JSON, and fast seeding of images and
 * tags through the services (not HTTP), so a repository with thousands of tags costs
 * milliseconds.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { Readable } from 'node:stream';
import { parseRepoPath, parseTag, type ImageId, type RepoName } from '../../src/domain/names.js';
import type { ClientInfo } from '../../src/domain/records.js';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';

export { eventually } from '../helpers/eventually.js';

export const ADMIN = { username: 'hubadmin', password: 'admin-secret-1' };
export const ALICE = { username: 'alice', password: 'alice-secret-1' };
export const BOB = { username: 'bobby', password: 'bobby-secret-1' };

export async function startHubServer(): Promise<TestServer> {
  const srv = await startTestServer({
    overrides: { standalone: false, admin_username: ADMIN.username, admin_password: ADMIN.password },
  });
  for (const user of [ALICE, BOB]) {
    await srv.running.services.users.upsert({ ...user, email: `${user.username}@example.test`, admin: false });
  }
  return srv;
}

export interface JsonRes {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

export interface CallOptions {
  method?: string;
  /** `JWT <t>`, `Bearer <t>`, `Basic …`: the whole header value. */
  auth?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

/** Keep-alive connections: thousands of page requests cost half as much as with fetch. */
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

/** One request; `path` is relative to the server, or an absolute URL (a `next` link). */
export function call(srv: TestServer, path: string, options: CallOptions = {}): Promise<JsonRes> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.auth) headers.Authorization = options.auth;
  const body = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
  if (body) {
    headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = String(body.length);
  }
  const url = path.startsWith('http') ? path : srv.url + path;
  return new Promise<JsonRes>((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers, agent, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown = undefined;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          if (value !== undefined) responseHeaders.set(name, Array.isArray(value) ? value.join(', ') : value);
        }
        resolve({ status: res.statusCode ?? 0, headers: responseHeaders, text, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${options.method ?? 'GET'} ${url}`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** POST /v2/users/login/ → the token (asserts 200). */
export async function login(srv: TestServer, user: { username: string; password: string }): Promise<string> {
  const res = await call(srv, '/v2/users/login/', { method: 'POST', body: user });
  assert.equal(res.status, 200, res.text);
  assert.equal(typeof res.json.token, 'string');
  return res.json.token as string;
}

export function jwt(token: string): string {
  return `JWT ${token}`;
}

export function basic(user: { username: string; password: string }): string {
  return 'Basic ' + Buffer.from(`${user.username}:${user.password}`).toString('base64');
}

/** Asserts Hub's error shape: `{"detail": …, "message": …}` with `status`. */
export function assertHubError(res: JsonRes, status: number, what = ''): void {
  assert.equal(res.status, status, `${what}: ${res.text}`);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  assert.equal(typeof res.json?.detail, 'string', `${what}: detail in ${res.text}`);
  assert.equal(res.json.message, res.json.detail, `${what}: message in ${res.text}`);
  assert.equal(res.json.error, undefined, `${what}: no v1 "error" key in ${res.text}`);
}

export interface SeededImage {
  id: ImageId;
  layerSize: number;
  /** sha256 of the image JSON bytes: the tag's `digest`. */
  digest: string;
}

/** A complete image through the image service (json, layer, checksum). */
export async function seedImage(srv: TestServer, options: { parent?: SeededImage; layerSize?: number; arch?: string } = {}): Promise<SeededImage> {
  const images = srv.running.services.images;
  const id = newImageId() as ImageId;
  const layer = randomBytes(options.layerSize ?? 512);
  const doc: Record<string, unknown> = { id, created: '2015-02-10T10:10:10Z', os: 'linux', architecture: options.arch ?? 'amd64' };
  if (options.parent) doc.parent = options.parent.id;
  const json = Buffer.from(JSON.stringify(doc));
  await images.putJson(id, json, undefined);
  await images.putLayer(id, Readable.from([layer]));
  const payload = 'sha256:' + createHash('sha256').update(json).update('\n').update(layer).digest('hex');
  await images.putChecksum(id, payload, undefined);
  return { id, layerSize: layer.length, digest: 'sha256:' + createHash('sha256').update(json).digest('hex') };
}

/** Ensures a repository record exists (public unless `private`). */
export async function seedRepo(srv: TestServer, repo: string, options: { private?: boolean; description?: string } = {}): Promise<RepoName> {
  const name = parseRepoPath(repo);
  await srv.running.services.repos.setProperties(name, {
    access: options.private ? 'private' : 'public',
    ...(options.description !== undefined ? { description: options.description } : {}),
  });
  return name;
}

/**
 * Sets `tags` on `repo` straight through the metadata store: tag i gets last_update
 * `baseSeconds + times[i]` (distinct times make the last_updated ordering exact).
 */
export async function seedTags(
  srv: TestServer,
  repo: string,
  image: SeededImage,
  tags: Array<{ name: string; seconds: number }>,
): Promise<void> {
  const meta = srv.running.services.meta;
  const name = parseRepoPath(repo);
  const ancestry = await srv.running.services.images.getAncestry(image.id);
  let record = (await meta.getRepo(name)) ?? (await srv.running.services.repos.ensure(name));
  // Batches of concurrent writes: putTag queues per repository, so order is kept.
  const chunk = 250;
  for (let i = 0; i < tags.length; i += chunk) {
    await Promise.all(
      tags.slice(i, i + chunk).map(({ name: tag, seconds }) => {
        const info: ClientInfo = { last_update: seconds, docker_version: '1.5.0', docker_go_version: 'go1.4.1', arch: 'amd64', os: 'linux', kernel: null };
        record = { ...record, lastTagInfo: info };
        return meta.putTag(name, parseTag(tag), { imageId: image.id, info }, record, ancestry);
      }),
    );
  }
  // The repository's last tag info is the newest tag's.
  const newest = tags.reduce((a, b) => (b.seconds > a.seconds ? b : a));
  const final = (await meta.getRepo(name))!;
  await meta.putRepo(name, { ...final, lastTagInfo: { ...(final.lastTagInfo as ClientInfo), last_update: newest.seconds } });
}

/** Follows `next` from `first` to the end; returns every page's body. */
export async function walk(srv: TestServer, first: string, auth?: string, maxPages = 5000): Promise<Array<{ url: string; json: JsonRes['json'] }>> {
  const pages: Array<{ url: string; json: JsonRes['json'] }> = [];
  let url: string | null = first;
  while (url) {
    assert.ok(pages.length < maxPages, `more than ${maxPages} pages`);
    const res = await call(srv, url, auth ? { auth } : {});
    assert.equal(res.status, 200, `${url}: ${res.text}`);
    pages.push({ url, json: res.json });
    url = res.json.next;
  }
  return pages;
}

