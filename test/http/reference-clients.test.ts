/**
 * The push and pull flows of the two reference servers' own clients, step for step, against
 * this registry (with the answers shared/docs/protocol-v1.md decides: push start is 200,
 * not Quay's 201):
 *
 * - Quay's test client (`test/registry/protocol_v1.py`): push start with `{}` and no
 *   `X-Docker-Token`, the token taken from `WWW-Authenticate` and sent as
 *   `Authorization: token <that header>`; images not declared; per image PUT json, an
 *   old-style PUT checksum (the tarsum) before the layer, PUT layer, PUT checksum (payload);
 *   tag; push end without a body. Pull: `X-Docker-Token: true`; an anonymous pull gets no
 *   `WWW-Authenticate`.
 * - docker-registry's workflow (`tests/workflow.py`): a `requests` session (a cookie jar);
 *   `Authorization: Token <X-Docker-Token>`; the json PUT announces `X-Docker-Checksum`
 *   (the sha256 payload checksum); the tag is set with no token, "it will use the Cookie";
 *   pull reads with and without the token, and `X-Docker-Payload-Checksum`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { TarsumStream } from '../../src/domain/tarsum.js';
import { pyTar } from '../client/helpers.js';
import { basicAuth, login, type Credentials } from '../helpers/docker1.js';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';

interface Res {
  status: number;
  headers: Headers;
  body: Buffer;
}

/** A client session: one cookie jar, as `requests.Session` and Flask's test client keep. */
class Session {
  private cookies = new Map<string, string>();
  constructor(private readonly base: string) {}

  async send(method: string, path: string, options: { headers?: Record<string, string>; body?: Buffer | string; expect?: number } = {}): Promise<Res> {
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    if (this.cookies.size > 0) headers.Cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(`${this.base}${path}`, { method, headers, body: options.body });
    for (const set of res.headers.getSetCookie()) {
      const pair = set.split(';')[0];
      const eq = pair.indexOf('=');
      this.cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    const body = Buffer.from(await res.arrayBuffer());
    const expected = options.expect ?? 200;
    assert.equal(res.status, expected, `${method} ${path}: ${body.toString('utf8').slice(0, 300)}`);
    return { status: res.status, headers: res.headers, body };
  }
}

interface RefImage {
  id: string;
  parent: string | null;
  bytes: Buffer;
}

function images(seed: string, n: number): RefImage[] {
  const out: RefImage[] = [];
  for (let i = 0; i < n; i++) {
    const bytes = pyTar([
      { name: `layer${i}`, type: 'dir' },
      { name: `layer${i}/${seed}.txt`, data: `${seed} ${i}\n`.repeat(50 + i) },
    ]);
    out.push({ id: newImageId(), parent: i > 0 ? out[i - 1].id : null, bytes });
  }
  return out;
}

async function tarsumOf(bytes: Buffer, json: string): Promise<string> {
  const stream = new TarsumStream('tarsum', Buffer.from(json));
  await stream.write(bytes);
  return (await stream.digest()) as string;
}

function simpleChecksum(bytes: Buffer, json: string): string {
  return 'sha256:' + createHash('sha256').update(`${json}\n`).update(bytes).digest('hex');
}

describe("the reference servers' own clients", () => {
  let srv: TestServer;
  const alice = { username: 'alice', password: 'alice-pass', email: 'alice@example.test' };
  before(async () => {
    srv = await startTestServer({ overrides: { standalone: false } });
    assert.equal(await login(srv.url, alice), 'created');
  });
  after(async () => {
    await srv?.destroy();
  });

  // ── Quay's protocol_v1.py ────────────────────────────────────────────────────────
  async function quayPush(session: Session, repo: string, tag: string, pushed: RefImage[], credentials: Credentials): Promise<void> {
    await session.send('GET', '/v1/_ping');
    const start = await session.send('PUT', `/v1/repositories/${repo}/`, {
      headers: { Authorization: basicAuth(credentials), 'Content-Type': 'application/json' },
      body: '{}',
    });
    const headers = { Authorization: 'token ' + (start.headers.get('www-authenticate') as string) };
    for (const image of pushed) {
      const json = JSON.stringify({ id: image.id, Size: image.bytes.length, ...(image.parent ? { parent: image.parent } : {}), created: '2018-01-01T00:00:00Z' });
      await session.send('PUT', `/v1/images/${image.id}/json`, { headers, body: json });
      await session.send('PUT', `/v1/images/${image.id}/checksum`, { headers: { ...headers, 'X-Docker-Checksum': await tarsumOf(image.bytes, json) } });
      await session.send('PUT', `/v1/images/${image.id}/layer`, { headers, body: image.bytes });
      await session.send('PUT', `/v1/images/${image.id}/checksum`, { headers: { ...headers, 'X-Docker-Checksum-Payload': simpleChecksum(image.bytes, json) } });
    }
    await session.send('PUT', `/v1/repositories/${repo}/tags/${tag}`, { headers, body: `"${pushed[pushed.length - 1].id}"` });
    await session.send('PUT', `/v1/repositories/${repo}/images`, { headers, expect: 204 });
  }

  async function quayPull(session: Session, repo: string, tag: string, expected: RefImage[], credentials: Credentials | null): Promise<void> {
    await session.send('GET', '/v1/_ping');
    const start = await session.send('GET', `/v1/repositories/${repo}/images`, {
      headers: { 'X-Docker-Token': 'true', ...(credentials ? { Authorization: basicAuth(credentials) } : {}) },
    });
    const headers: Record<string, string> = {};
    if (credentials) headers.Authorization = 'token ' + (start.headers.get('www-authenticate') as string);
    else assert.equal(start.headers.get('www-authenticate'), null, 'an anonymous pull gets no token');
    const tags = JSON.parse((await session.send('GET', `/v1/repositories/${repo}/tags`, { headers })).body.toString()) as Record<string, string>;
    const id = JSON.parse((await session.send('GET', `/v1/repositories/${repo}/tags/${tag}`, { headers })).body.toString()) as string;
    assert.equal(id, tags[tag]);
    const ancestors = JSON.parse((await session.send('GET', `/v1/images/${id}/ancestry`, { headers })).body.toString()) as string[];
    assert.equal(ancestors.length, expected.length);
    for (const [index, imageId] of [...ancestors].reverse().entries()) {
      await session.send('GET', `/v1/images/${imageId}/ancestry`, { headers });
      assert.equal((JSON.parse((await session.send('GET', `/v1/images/${imageId}/json`, { headers })).body.toString()) as { id: string }).id, imageId);
      await session.send('HEAD', `/v1/images/${imageId}/layer`, { headers });
      const layer = await session.send('GET', `/v1/images/${imageId}/layer`, { headers });
      assert.ok(layer.body.equals(expected[index].bytes), `layer ${index}`);
    }
  }

  it("Quay's client: push without declaring images (old-style checksum before the layer), pull with and without credentials", async () => {
    const pushed = images('quay', 3);
    await quayPush(new Session(srv.url), 'alice/quay', 'latest', pushed, alice);
    await quayPull(new Session(srv.url), 'alice/quay', 'latest', pushed, alice);
    await quayPull(new Session(srv.url), 'alice/quay', 'latest', pushed, null);
    // A second push of the same images under another tag, as Quay's client does it: every
    // image is already complete, so its json PUT is 409 and the client stops there. What
    // it pushed stays intact.
    const again = new Session(srv.url);
    const start = await again.send('PUT', '/v1/repositories/alice/quay/', { headers: { Authorization: basicAuth(alice) }, body: '{}' });
    const headers = { Authorization: 'token ' + (start.headers.get('www-authenticate') as string) };
    await again.send('PUT', `/v1/images/${pushed[0].id}/json`, { headers, body: JSON.stringify({ id: pushed[0].id }), expect: 409 });
    await quayPull(new Session(srv.url), 'alice/quay', 'latest', pushed, null);
  });

  // ── docker-registry's tests/workflow.py ─────────────────────────────────────────
  it("docker-registry's workflow: the tag set with the session cookie alone, reads with and without the token", async () => {
    const session = new Session(srv.url);
    const [parent, image] = images('workflow', 2);
    const repo = 'alice/workflow';
    const ua = 'docker/1.0.0 registry test pretending to be docker';
    const start = await session.send('PUT', `/v1/repositories/${repo}/`, {
      headers: { Authorization: basicAuth(alice), 'X-Docker-Token': 'true', 'User-Agent': ua },
      body: JSON.stringify([{ id: image.id }, { id: parent.id }]),
    });
    const token = start.headers.get('x-docker-token') as string;
    const uploaded: Array<{ id: string; checksum: string }> = [];
    for (const img of [parent, image]) {
      const json = JSON.stringify({ id: img.id, ...(img.parent ? { parent: img.parent } : {}) });
      const checksum = simpleChecksum(img.bytes, json);
      await session.send('PUT', `/v1/images/${img.id}/json`, { headers: { Authorization: 'Token ' + token, 'User-Agent': ua, 'X-Docker-Checksum': checksum }, body: json });
      await session.send('PUT', `/v1/images/${img.id}/layer`, { headers: { Authorization: 'Token ' + token, 'User-Agent': ua }, body: img.bytes });
      await session.send('PUT', `/v1/images/${img.id}/checksum`, { headers: { Authorization: 'Token ' + token, 'X-Docker-Checksum-Payload': checksum, 'User-Agent': ua } });
      uploaded.push({ id: img.id, checksum });
    }
    // "Updating the tags does not need a token, it will use the Cookie".
    await session.send('PUT', `/v1/repositories/${repo}/tags/latest`, { body: JSON.stringify(image.id) });
    await session.send('PUT', `/v1/repositories/${repo}/images`, {
      headers: { Authorization: basicAuth(alice), 'X-Endpoints': srv.url, 'User-Agent': ua },
      body: JSON.stringify(uploaded),
      expect: 204,
    });

    // docker_pull
    await session.send('GET', `/v1/repositories/${repo}/images`);
    const pullStart = await session.send('GET', `/v1/repositories/${repo}/images`, { headers: { Authorization: basicAuth(alice), 'X-Docker-Token': 'true' } });
    const readToken = pullStart.headers.get('x-docker-token') as string;
    await session.send('GET', `/v1/repositories/${repo}/tags/latest`, { headers: { Authorization: 'Token ' + readToken } });
    const tagged = JSON.parse((await session.send('GET', `/v1/repositories/${repo}/tags/latest`)).body.toString()) as string;
    assert.equal(tagged, image.id);
    const ancestry = JSON.parse((await session.send('GET', `/v1/images/${tagged}/ancestry`)).body.toString()) as string[];
    assert.deepEqual(ancestry, [image.id, parent.id]);
    for (const id of ancestry) {
      await session.send('GET', `/v1/images/${id}/json`);
      const json = await session.send('GET', `/v1/images/${id}/json`, { headers: { Authorization: 'Token ' + readToken } });
      const checksum = json.headers.get('x-docker-payload-checksum');
      await session.send('GET', `/v1/images/${id}/layer`);
      const layer = await session.send('GET', `/v1/images/${id}/layer`, { headers: { Authorization: 'Token ' + readToken } });
      assert.equal(checksum, simpleChecksum(layer.body, json.body.toString()));
    }
  });
});
