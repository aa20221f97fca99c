/**
 * A test client that talks to the Index and the registry exactly as the docker 1.x CLI
 * does (shared/docs/protocol-v1.md, "Push and pull as the docker 1.x CLI does them"):
 *
 * - login: POST /v1/users/ → 201, or 400 "Username or email already exists" → GET /v1/users/
 *   with Basic auth.
 * - push: PUT /v1/repositories/ns/repo/ (Basic, X-Docker-Token: true) → token + endpoints →
 *   per image, parents first: GET json (404, or 400 for a pending image: upload) → PUT json → PUT layer (chunked) →
 *   PUT checksum → PUT tag → PUT …/images (Basic) → 204.
 * - pull: GET …/images (X-Docker-Token: true, Basic when logged in) → GET tags →
 *   GET ancestry → per image, oldest first: GET json, GET layer.
 *
 * Registry calls go to the host the Index named in X-Docker-Endpoints and carry
 * `Authorization: Token <token>`. Every failure is a Docker1Error naming the step and
 * carrying its status and body, so tests can assert on exactly where a flow stopped.
 */
import { createHash } from 'node:crypto';

export interface Credentials {
  username: string;
  password: string;
}

export interface Docker1Image {
  id: string;
  parent?: string;
  layer: Buffer;
  /** Exact JSON bytes to upload; built from id/parent when absent. */
  json?: Buffer;
}

export interface PulledImage {
  id: string;
  json: Buffer;
  layer: Buffer;
}

export interface PushResult {
  /** The Index's token; null when it gave none (anonymous callers get none). */
  token: string | null;
  endpoints: string;
  /** Ids actually uploaded (GET json answered 404); the others were already there. */
  uploaded: string[];
}

export interface PullResult {
  /** The Index's token; null when it gave none (anonymous callers get none). */
  token: string | null;
  endpoints: string;
  /** The Index image list (GET …/images). */
  imageList: Array<{ id: string; checksum?: string }>;
  tags: Record<string, string>;
  /** The tagged image id. */
  id: string;
  /** From the tagged image to the base. */
  ancestry: string[];
  /** Oldest (base) first, as pulled. */
  images: PulledImage[];
}

/** docker 1.5's User-Agent; the registry records version, os and arch from it on tag PUT. */
export const DOCKER_USER_AGENT = 'docker/1.5.0 go/go1.4.1 git-commit/a8a31ef kernel/3.13.0-24-generic os/linux arch/amd64';

export class Docker1Error extends Error {
  constructor(
    readonly step: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`docker1 ${step}: HTTP ${status} ${body.slice(0, 300)}`);
    this.name = 'Docker1Error';
  }
}

export function basicAuth(credentials: Credentials): string {
  return 'Basic ' + Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64');
}

export function tokenAuth(token: string): string {
  return `Token ${token}`;
}

export function imageJsonOf(image: Docker1Image): Buffer {
  if (image.json) return image.json;
  const doc: Record<string, unknown> = {
    id: image.id,
    created: '2015-02-10T10:10:10.000000000Z',
    container_config: { Cmd: ['/bin/sh', '-c', '#(nop) ADD file'] },
    os: 'linux',
    architecture: 'amd64',
  };
  if (image.parent) doc.parent = image.parent;
  return Buffer.from(JSON.stringify(doc));
}

/** X-Docker-Checksum-Payload: sha256 of the json bytes, "\n", the layer bytes. */
export function payloadChecksumOf(json: Buffer, layer: Buffer): string {
  return 'sha256:' + createHash('sha256').update(json).update('\n').update(layer).digest('hex');
}

async function call(
  step: string,
  url: string,
  init: RequestInit & { duplex?: 'half' },
  expected: number[],
): Promise<{ res: Response; body: Buffer }> {
  const headers = new Headers(init.headers);
  if (!headers.has('User-Agent')) headers.set('User-Agent', DOCKER_USER_AGENT);
  const res = await fetch(url, { ...init, headers });
  const body = Buffer.from(await res.arrayBuffer());
  if (!expected.includes(res.status)) throw new Docker1Error(step, res.status, body.toString('utf8'));
  return { res, body };
}

function parseJson<T>(step: string, status: number, body: Buffer): T {
  try {
    return JSON.parse(body.toString('utf8')) as T;
  } catch {
    throw new Docker1Error(`${step} (body is not JSON)`, status, body.toString('utf8'));
  }
}

/** The registry base URL from X-Docker-Endpoints, with the Index's scheme (as docker does). */
function registryBase(step: string, index: string, res: Response): { base: string; endpoints: string } {
  const endpoints = res.headers.get('X-Docker-Endpoints');
  if (!endpoints) throw new Docker1Error(`${step} (no X-Docker-Endpoints)`, res.status, '');
  const scheme = new URL(index).protocol;
  return { base: `${scheme}//${endpoints.split(/\s*,\s*/)[0]}`, endpoints };
}

/**
 * The Index's token, required when the caller logged in; without one the registry calls
 * go out without `Authorization`, as docker 1.x sends them.
 */
function tokenOf(step: string, res: Response, credentials: Credentials | null): string | null {
  const token = res.headers.get('X-Docker-Token');
  if (!token && credentials) throw new Docker1Error(`${step} (no X-Docker-Token)`, res.status, '');
  return token;
}

function tokenHeaders(token: string | null): Record<string, string> {
  return token ? { Authorization: tokenAuth(token) } : {};
}

/** A chunked request body (docker 1.x streams layers with Transfer-Encoding: chunked). */
function chunked(bytes: Buffer): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      const end = Math.min(bytes.length, offset + 16 * 1024);
      controller.enqueue(new Uint8Array(bytes.subarray(offset, end)));
      offset = end;
    },
  });
}

/** `docker login`: 'created' (201) or 'logged-in' (400 "exists" then GET /v1/users/ 200). */
export async function login(base: string, credentials: Credentials & { email: string }): Promise<'created' | 'logged-in'> {
  const res = await fetch(`${base}/v1/users/`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'User-Agent': DOCKER_USER_AGENT },
    body: JSON.stringify({ username: credentials.username, password: credentials.password, email: credentials.email }),
  });
  const text = await res.text();
  if (res.status === 201) return 'created';
  if (res.status !== 400 || text !== JSON.stringify('Username or email already exists')) {
    throw new Docker1Error('POST /v1/users/', res.status, text);
  }
  await call('GET /v1/users/', `${base}/v1/users/`, { headers: { Authorization: basicAuth(credentials) } }, [200]);
  return 'logged-in';
}

/**
 * `docker push ns/repo:tag` of `images` (oldest first, each one's parent before it).
 * `credentials` null pushes anonymously (the CLI would not, but it shows the answer).
 */
export async function push(
  index: string,
  credentials: Credentials | null,
  repo: string,
  tag: string,
  images: Docker1Image[],
): Promise<PushResult> {
  const auth: Record<string, string> = credentials ? { Authorization: basicAuth(credentials) } : {};
  const start = await call(
    'PUT repository',
    `${index}/v1/repositories/${repo}/`,
    {
      method: 'PUT',
      headers: { ...auth, 'X-Docker-Token': 'true', 'Content-Type': 'application/json' },
      body: JSON.stringify(images.map((i) => ({ id: i.id }))),
    },
    [200, 201],
  );
  const token = tokenOf('PUT repository', start.res, credentials);
  const { base, endpoints } = registryBase('PUT repository', index, start.res);
  const withToken = tokenHeaders(token);

  const uploaded: string[] = [];
  const checksums: Array<{ id: string; checksum: string }> = [];
  for (const image of images) {
    const json = imageJsonOf(image);
    const checksum = payloadChecksumOf(json, image.layer);
    checksums.push({ id: image.id, checksum });
    // docker's LookupRemoteImage: 200 means "already pushed"; 404 (unknown) and 400 (a
    // pending image left by an interrupted push) mean "upload it". Anything else is an
    // error here, so that permission problems show at the step where they happen.
    const probe = await call(`GET json ${image.id}`, `${base}/v1/images/${image.id}/json`, { headers: withToken }, [200, 400, 404]);
    if (probe.res.status === 200) continue;
    await call(
      `PUT json ${image.id}`,
      `${base}/v1/images/${image.id}/json`,
      { method: 'PUT', headers: { ...withToken, 'Content-Type': 'application/json' }, body: json },
      [200],
    );
    await call(
      `PUT layer ${image.id}`,
      `${base}/v1/images/${image.id}/layer`,
      {
        method: 'PUT',
        headers: { ...withToken, 'Content-Type': 'application/octet-stream' },
        body: chunked(image.layer),
        duplex: 'half',
      },
      [200],
    );
    await call(
      `PUT checksum ${image.id}`,
      `${base}/v1/images/${image.id}/checksum`,
      { method: 'PUT', headers: { ...withToken, 'X-Docker-Checksum-Payload': checksum } },
      [200],
    );
    uploaded.push(image.id);
  }

  const top = images[images.length - 1];
  await call(
    `PUT tag ${tag}`,
    `${base}/v1/repositories/${repo}/tags/${tag}`,
    { method: 'PUT', headers: { ...withToken, 'Content-Type': 'application/json' }, body: JSON.stringify(top.id) },
    [200],
  );
  await call(
    'PUT images',
    `${index}/v1/repositories/${repo}/images`,
    {
      method: 'PUT',
      headers: { ...auth, 'X-Docker-Endpoints': endpoints, 'Content-Type': 'application/json' },
      body: JSON.stringify(checksums),
    },
    [204],
  );
  return { token, endpoints, uploaded };
}

/** `docker pull ns/repo:tag`; `credentials` null pulls anonymously. */
export async function pull(index: string, credentials: Credentials | null, repo: string, tag: string): Promise<PullResult> {
  const auth: Record<string, string> = credentials ? { Authorization: basicAuth(credentials) } : {};
  const start = await call(
    'GET images',
    `${index}/v1/repositories/${repo}/images`,
    { headers: { ...auth, 'X-Docker-Token': 'true' } },
    [200],
  );
  const imageList = parseJson<Array<{ id: string; checksum?: string }>>('GET images', 200, start.body);
  const token = tokenOf('GET images', start.res, credentials);
  const { base, endpoints } = registryBase('GET images', index, start.res);
  const withToken = tokenHeaders(token);

  const tagsRes = await call('GET tags', `${base}/v1/repositories/${repo}/tags`, { headers: withToken }, [200]);
  const tags = parseJson<Record<string, string>>('GET tags', 200, tagsRes.body);
  const id = tags[tag];
  if (!id) throw new Docker1Error(`tag ${tag} not in GET tags`, 200, tagsRes.body.toString('utf8'));

  const ancestryRes = await call(`GET ancestry ${id}`, `${base}/v1/images/${id}/ancestry`, { headers: withToken }, [200]);
  const ancestry = parseJson<string[]>(`GET ancestry ${id}`, 200, ancestryRes.body);

  const images: PulledImage[] = [];
  for (const imageId of [...ancestry].reverse()) {
    const json = await call(`GET json ${imageId}`, `${base}/v1/images/${imageId}/json`, { headers: withToken }, [200]);
    const layer = await call(`GET layer ${imageId}`, `${base}/v1/images/${imageId}/layer`, { headers: withToken }, [200]);
    const size = json.res.headers.get('X-Docker-Size');
    if (size !== null && Number(size) !== layer.body.length) {
      throw new Docker1Error(`GET layer ${imageId} (X-Docker-Size ${size}, got ${layer.body.length} bytes)`, 200, '');
    }
    images.push({ id: imageId, json: json.body, layer: layer.body });
  }
  return { token, endpoints, imageList, tags, id, ancestry, images };
}
