/**
 * Index API v1 with authentication on (standalone: false), end to end over HTTP: the docker
 * 1.x push and pull sequences with Index tokens, namespaces, private repositories and
 * collaborators, token scope/expiry/forgery, image access across repositories, the delete
 * flow, interrupted pushes, and the third-party `docker-registry-client` pulling a private
 * repository with the token it receives.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import drc, { type ClientError, type RegistryClientV1 } from 'docker-registry-client';
import { parseRepoPath } from '../../src/domain/names.js';
import { TokenService } from '../../src/services/tokens.js';
import {
  basicAuth,
  Docker1Error,
  imageJsonOf,
  login,
  payloadChecksumOf,
  pull,
  push,
  tokenAuth,
  type Credentials,
  type Docker1Image,
} from '../helpers/docker1.js';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';

// ── helpers ─────────────────────────────────────────────────────────────────────────
interface Res {
  status: number;
  headers: Headers;
  body: Buffer;
  text: string;
}

interface ReqOptions {
  basic?: Credentials;
  token?: string;
  /** A JSON value (encoded) or exact bytes. */
  json?: unknown;
  bytes?: Buffer;
  headers?: Record<string, string>;
}

function chain(length: number, size = 3000): Docker1Image[] {
  const out: Docker1Image[] = [];
  for (let i = 0; i < length; i++) {
    out.push({ id: newImageId(), ...(i > 0 ? { parent: out[i - 1].id } : {}), layer: randomBytes(size + i * 7) });
  }
  return out;
}

/** A Docker1Error at `step` (a prefix of the step name) with `status`. */
function failsAt(step: string, status: number) {
  return (err: unknown) => {
    assert.ok(err instanceof Docker1Error, `expected a Docker1Error, got ${String(err)}`);
    assert.ok(err.step.startsWith(step), `expected the failure at "${step}", it was at "${err.step}" (${err.status} ${err.body})`);
    assert.equal(err.status, status, `status at ${err.step}: ${err.body}`);
    return true;
  };
}

function assertPulledEqualsPushed(pulled: Awaited<ReturnType<typeof pull>>, pushed: Docker1Image[]) {
  assert.deepEqual(
    pulled.images.map((i) => i.id),
    pushed.map((i) => i.id),
    'pulled oldest first, the whole chain',
  );
  for (const [i, image] of pushed.entries()) {
    assert.ok(pulled.images[i].json.equals(imageJsonOf(image)), `json of ${image.id} is byte-exact`);
    assert.ok(pulled.images[i].layer.equals(image.layer), `layer of ${image.id} is byte-exact`);
  }
}

let seq = 0;
function uniq(prefix: string): string {
  seq += 1;
  return `${prefix}${seq}${randomBytes(2).toString('hex')}`;
}

function collect(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
    stream.resume();
  });
}

function cb<T>(fn: (done: (err: ClientError | null, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));
}

// ── the suite ───────────────────────────────────────────────────────────────────────
describe('Index API with authentication: docker 1.x push and pull with tokens', () => {
  let srv: TestServer;
  const alice = { username: 'alice', password: 'alice-pass', email: 'alice@example.test' };
  const bob = { username: 'bobby', password: 'bobby-pass', email: 'bob@example.test' };
  const carol = { username: 'carol', password: 'carol-pass', email: 'carol@example.test' };
  const admin = { username: 'admin', password: 'adminpass' };

  async function req(method: string, path: string, opts: ReqOptions = {}): Promise<Res> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.basic) headers.Authorization = basicAuth(opts.basic);
    if (opts.token !== undefined) headers.Authorization = tokenAuth(opts.token);
    let body: Buffer | string | undefined;
    if (opts.json !== undefined) {
      body = JSON.stringify(opts.json);
      headers['Content-Type'] ??= 'application/json';
    } else if (opts.bytes) body = opts.bytes;
    const res = await fetch(`${srv.url}${path}`, { method, headers, body });
    const buf = Buffer.from(await res.arrayBuffer());
    return { status: res.status, headers: res.headers, body: buf, text: buf.toString('utf8') };
  }

  /** GET …/images with X-Docker-Token: true: the token the Index hands out for a pull. */
  async function readToken(repo: string, who?: Credentials): Promise<string> {
    const res = await req('GET', `/v1/repositories/${repo}/images`, { basic: who, headers: { 'X-Docker-Token': 'true' } });
    assert.equal(res.status, 200, `GET images of ${repo}: ${res.text}`);
    const token = res.headers.get('X-Docker-Token');
    assert.ok(token, 'a read token');
    return token;
  }

  /** PUT …/ with X-Docker-Token: true and no image list: a write token. */
  async function writeToken(repo: string, who: Credentials): Promise<string> {
    const res = await req('PUT', `/v1/repositories/${repo}/`, { basic: who, json: [], headers: { 'X-Docker-Token': 'true' } });
    assert.equal(res.status, 200, `PUT ${repo}/: ${res.text}`);
    const token = res.headers.get('X-Docker-Token');
    assert.ok(token, 'a write token');
    return token;
  }

  /** A user-less read token signed with the server's secret. */
  function anonymousToken(repo: string): string {
    return new TokenService(TokenService.loadSecret(srv.root), 600).issue(null, parseRepoPath(repo), 'read');
  }

  async function makePrivate(repo: string, owner: Credentials) {
    const res = await req('PUT', `/v1/repositories/${repo}/properties`, { basic: owner, json: { access: 'private' } });
    assert.equal(res.status, 200, `make ${repo} private: ${res.text}`);
  }

  async function grant(repo: string, owner: Credentials, user: string, permission: string | null) {
    const res =
      permission === null
        ? await req('DELETE', `/v1/repositories/${repo}/collaborators/${user}`, { basic: owner })
        : await req('PUT', `/v1/repositories/${repo}/collaborators/${user}`, { basic: owner, json: { permission } });
    assert.equal(res.status, 200, `grant ${permission} on ${repo} to ${user}: ${res.text}`);
  }

  before(async () => {
    srv = await startTestServer({ overrides: { standalone: false, admin_username: admin.username, admin_password: admin.password } });
    for (const user of [alice, bob, carol]) assert.equal(await login(srv.url, user), 'created');
  });
  after(async () => {
    await srv?.destroy();
  });

  it('push then pull: the bytes pulled are the bytes pushed, through tokens and the named endpoint', async () => {
    const repo = `alice/${uniq('app')}`;
    const images = chain(3);
    const pushed = await push(srv.url, alice, repo, 'latest', images);
    assert.deepEqual(pushed.uploaded, images.map((i) => i.id), 'every image was new');
    assert.match(pushed.token ?? '', new RegExp(`^signature=[A-Za-z0-9_.-]+,repository="${repo}",access=write$`));
    assert.equal(pushed.endpoints, new URL(srv.url).host, 'X-Docker-Endpoints is the host the client used');

    const pulled = await pull(srv.url, alice, repo, 'latest');
    assert.match(pulled.token ?? '', new RegExp(`^signature=[A-Za-z0-9_.-]+,repository="${repo}",access=read$`));
    assert.deepEqual(pulled.tags, { latest: images[2].id });
    assert.deepEqual(pulled.ancestry, [images[2].id, images[1].id, images[0].id]);
    assertPulledEqualsPushed(pulled, images);
    // The Index list has every image with the checksum the push ended with.
    const listed = new Map(pulled.imageList.map((e) => [e.id, e.checksum]));
    for (const image of images) assert.equal(listed.get(image.id), payloadChecksumOf(imageJsonOf(image), image.layer));

    // A public repository: anyone pulls it, with an anonymous read token.
    const anonymous = await pull(srv.url, null, repo, 'latest');
    assertPulledEqualsPushed(anonymous, images);
    // Pushing the same images under another tag uploads nothing (GET json with the write
    // token answers 200 for images the repository holds).
    const again = await push(srv.url, alice, repo, 'v2', images);
    assert.deepEqual(again.uploaded, []);
    assert.deepEqual((await pull(srv.url, null, repo, 'v2')).tags, { latest: images[2].id, v2: images[2].id });
  });

  it('token headers: X-Docker-Token and WWW-Authenticate carry the same token, asked for or not; anonymous callers get none', async () => {
    const repo = `alice/${uniq('hdr')}`;
    const res = await req('PUT', `/v1/repositories/${repo}/`, { basic: alice, json: [], headers: { 'X-Docker-Token': 'true' } });
    assert.equal(res.status, 200, res.text);
    const token = res.headers.get('X-Docker-Token');
    assert.ok(token);
    assert.equal(res.headers.get('WWW-Authenticate'), `Token ${token}`);
    assert.equal(res.headers.get('X-Docker-Endpoints'), new URL(srv.url).host);
    // Without X-Docker-Token: true an authenticated caller gets one all the same (both
    // reference servers always issue one; only docker 1.x asks), on push start, pull start
    // and the delete flow.
    const plain = await req('PUT', `/v1/repositories/${repo}/`, { basic: alice, json: {} });
    assert.equal(plain.status, 200, plain.text);
    assert.match(plain.headers.get('X-Docker-Token') ?? '', new RegExp(`^signature=[A-Za-z0-9_.-]+,repository="${repo}",access=write$`));
    assert.equal(plain.headers.get('WWW-Authenticate'), `Token ${plain.headers.get('X-Docker-Token')}`);
    assert.equal(plain.headers.get('X-Docker-Endpoints'), new URL(srv.url).host);
    const pullStart = await req('GET', `/v1/repositories/${repo}/images`, { basic: alice });
    assert.equal(pullStart.status, 200, pullStart.text);
    assert.match(pullStart.headers.get('X-Docker-Token') ?? '', /,access=read$/);
    const deleteStart = await req('DELETE', `/v1/repositories/${repo}/images`, { basic: alice });
    assert.equal(deleteStart.status, 204, deleteStart.text);
    assert.match(deleteStart.headers.get('X-Docker-Token') ?? '', /,access=delete$/);
    // Anonymous pulls of a public repository: no token, asked for or not; the endpoints still.
    for (const headers of [{}, { 'X-Docker-Token': 'true' }] as Array<Record<string, string>>) {
      const anonymous = await req('GET', `/v1/repositories/${repo}/images`, { headers });
      assert.equal(anonymous.status, 200, anonymous.text);
      assert.equal(anonymous.headers.get('X-Docker-Token'), null);
      assert.equal(anonymous.headers.get('WWW-Authenticate'), null);
      assert.equal(anonymous.headers.get('X-Docker-Endpoints'), new URL(srv.url).host);
    }
    // `Authorization: Token Token signature=…`, as clients that prefix `WWW-Authenticate`
    // (or the reference server's `X-Docker-Token`) with `Token ` send it: the same token.
    assert.equal((await req('GET', `/v1/repositories/${repo}/tags`, { headers: { Authorization: `token ${plain.headers.get('WWW-Authenticate')}` } })).status, 200);
    // The token validates for its repository on PUT …/auth, only there, and only as a token.
    assert.equal((await req('PUT', `/v1/repositories/${repo}/auth`, { token })).status, 200);
    assert.equal((await req('PUT', `/v1/repositories/alice/${uniq('other')}/auth`, { token })).status, 403);
    assert.equal((await req('PUT', `/v1/repositories/${repo}/auth`, { basic: alice })).status, 401);
  });

  it("push to another user's namespace: 403 at PUT /v1/repositories/ns/repo/, nothing created", async () => {
    const repo = `alice/${uniq('mine')}`;
    await assert.rejects(push(srv.url, bob, repo, 'latest', chain(1)), failsAt('PUT repository', 403));
    assert.equal(await srv.running.services.meta.getRepo(parseRepoPath(repo)), null, 'no repository record');
    assert.equal((await req('GET', `/v1/repositories/${repo}/tags`)).status, 404);
  });

  it('anonymous push: 401 at PUT /v1/repositories/ns/repo/; anonymous image uploads 401 too', async () => {
    const repo = `alice/${uniq('anon')}`;
    await assert.rejects(push(srv.url, null, repo, 'latest', chain(1)), failsAt('PUT repository', 401));
    const [image] = chain(1);
    const res = await req('PUT', `/v1/images/${image.id}/json`, { bytes: imageJsonOf(image) });
    assert.equal(res.status, 401, res.text);
    assert.equal(await srv.running.services.images.find(image.id as never), null);
  });

  it('library/…: a non-admin push is 403, the admin pushes, anyone pulls (both name shapes)', async () => {
    const name = uniq('busy');
    await assert.rejects(push(srv.url, alice, `library/${name}`, 'latest', chain(1)), failsAt('PUT repository', 403));
    await assert.rejects(push(srv.url, alice, name, 'latest', chain(1)), failsAt('PUT repository', 403));
    const images = chain(2);
    const pushed = await push(srv.url, admin, `library/${name}`, 'latest', images);
    assert.match(pushed.token ?? '', new RegExp(`repository="library/${name}"`));
    assertPulledEqualsPushed(await pull(srv.url, null, name, 'latest'), images);
    assertPulledEqualsPushed(await pull(srv.url, bob, `library/${name}`, 'latest'), images);
  });

  it('a private repository: anonymous 401, wrong credentials 401, another user 403, then read and write grants', async () => {
    const repo = `alice/${uniq('private')}`;
    const images = chain(2);
    await push(srv.url, alice, repo, 'latest', images);
    // Only the owner may change the properties.
    assert.equal((await req('PUT', `/v1/repositories/${repo}/properties`, { basic: bob, json: { access: 'private' } })).status, 403);
    assert.equal((await req('PUT', `/v1/repositories/${repo}/properties`, { json: { access: 'private' } })).status, 401);
    await makePrivate(repo, alice);
    const props = await req('GET', `/v1/repositories/${repo}/properties`, { basic: alice });
    assert.deepEqual(JSON.parse(props.text), { access: 'private' });

    await assert.rejects(pull(srv.url, null, repo, 'latest'), failsAt('GET images', 401));
    await assert.rejects(pull(srv.url, { ...alice, password: 'not-her-password' }, repo, 'latest'), failsAt('GET images', 401));
    await assert.rejects(pull(srv.url, bob, repo, 'latest'), failsAt('GET images', 403));
    // The registry routes answer the same without the Index step.
    assert.equal((await req('GET', `/v1/repositories/${repo}/tags`)).status, 401);
    assert.equal((await req('GET', `/v1/repositories/${repo}/tags`, { basic: bob })).status, 403);
    assert.equal((await req('GET', `/v1/repositories/${repo}/tags/latest`, { basic: carol })).status, 403);
    assert.equal((await req('GET', `/v1/images/${images[1].id}/json`)).status, 401);
    assert.equal((await req('GET', `/v1/images/${images[1].id}/layer`, { basic: bob })).status, 404, 'not readable: as if absent');
    assertPulledEqualsPushed(await pull(srv.url, alice, repo, 'latest'), images);
    assertPulledEqualsPushed(await pull(srv.url, admin, repo, 'latest'), images);

    // Read for bob: he pulls, he may not push, nor administer.
    await grant(repo, alice, bob.username, 'read');
    assertPulledEqualsPushed(await pull(srv.url, bob, repo, 'latest'), images);
    await assert.rejects(push(srv.url, bob, repo, 'bob', chain(1)), failsAt('PUT repository', 403));
    assert.equal((await req('PUT', `/v1/repositories/${repo}/properties`, { basic: bob, json: { access: 'public' } })).status, 403);
    assert.equal((await req('PUT', `/v1/repositories/${repo}/collaborators/${carol.username}`, { basic: bob, json: { permission: 'read' } })).status, 403);
    await assert.rejects(pull(srv.url, carol, repo, 'latest'), failsAt('GET images', 403));

    // Write for bob: he pushes a new tag, alice pulls it.
    await grant(repo, alice, bob.username, 'write');
    const bobs = [images[0], ...chain(1).map((i) => ({ ...i, parent: images[0].id }))];
    const pushed = await push(srv.url, bob, repo, 'bob', bobs);
    assert.deepEqual(pushed.uploaded, [bobs[1].id]);
    assertPulledEqualsPushed(await pull(srv.url, alice, repo, 'bob'), bobs);

    // Revoked: bob is out again, and a token he got before no longer works.
    const stale = await readToken(repo, bob);
    await grant(repo, alice, bob.username, null);
    await assert.rejects(pull(srv.url, bob, repo, 'latest'), failsAt('GET images', 403));
    assert.equal((await req('GET', `/v1/repositories/${repo}/tags`, { token: stale })).status, 403);
    assert.equal((await req('GET', `/v1/images/${images[0].id}/layer`, { token: stale })).status, 403);
  });

  it('a read token does not allow writes; a delete token does not allow pushes', async () => {
    const repo = `alice/${uniq('ro')}`;
    const images = chain(2);
    await push(srv.url, alice, repo, 'latest', images);
    const token = await readToken(repo, alice);
    const tag = await req('PUT', `/v1/repositories/${repo}/tags/hacked`, { token, json: images[0].id });
    assert.equal(tag.status, 403, tag.text);
    const [fresh] = chain(1);
    assert.equal((await req('PUT', `/v1/images/${fresh.id}/json`, { token, bytes: imageJsonOf(fresh) })).status, 403);
    assert.equal((await req('PUT', `/v1/repositories/${repo}/images`, { token, json: [] })).status, 403);
    assert.equal((await req('DELETE', `/v1/repositories/${repo}/`, { token })).status, 403);

    const del = await req('DELETE', `/v1/repositories/${repo}/`, { basic: alice, headers: { 'X-Docker-Token': 'true' } });
    const deleteToken = del.headers.get('X-Docker-Token');
    assert.ok(deleteToken, del.text);
    assert.equal((await req('PUT', `/v1/repositories/${repo}/tags/hacked`, { token: deleteToken, json: images[0].id })).status, 403);
    // Nothing changed.
    const tags = await req('GET', `/v1/repositories/${repo}/tags`, { token });
    assert.deepEqual(JSON.parse(tags.text), { latest: images[1].id });
  });

  it("a token stops working when its user's account is deactivated", async () => {
    const dave = { username: uniq('dave'), password: 'dave-pass', email: `${uniq('dave')}@example.test` };
    assert.equal(await login(srv.url, dave), 'created');
    const repo = `${dave.username}/app`;
    const images = chain(1);
    await push(srv.url, dave, repo, 'latest', images);
    const token = await writeToken(repo, dave);
    await srv.running.services.users.setActive(dave.username, false);
    try {
      assert.equal((await req('GET', `/v1/repositories/${repo}/tags`, { token })).status, 403);
      assert.equal((await req('PUT', `/v1/repositories/${repo}/tags/x`, { token, json: images[0].id })).status, 403);
      await assert.rejects(push(srv.url, dave, repo, 'v2', images), failsAt('PUT repository', 403));
    } finally {
      await srv.running.services.users.setActive(dave.username, true);
    }
    assert.equal((await req('GET', `/v1/repositories/${repo}/tags`, { token })).status, 200);
  });

  it('push end (PUT …/images): a JSON list or no body is 204, anything else 400; checksums are kept', async () => {
    const repo = `alice/${uniq('end')}`;
    const images = chain(1);
    await push(srv.url, alice, repo, 'latest', images);
    const path = `/v1/repositories/${repo}/images`;
    assert.equal((await req('PUT', path, { basic: alice })).status, 204, 'no body');
    assert.equal((await req('PUT', path, { basic: alice, json: [] })).status, 204, 'empty list');
    for (const bad of [{}, 'abc', [{ id: 'not-an-id' }], [{ id: images[0].id, checksum: 5 }]]) {
      const res = await req('PUT', path, { basic: alice, json: bad });
      assert.equal(res.status, 400, `${JSON.stringify(bad)}: ${res.text}`);
    }
    assert.equal((await req('PUT', path, { json: [] })).status, 401, 'anonymous');
    assert.equal((await req('PUT', path, { basic: bob, json: [] })).status, 403, 'another user');
    const list = JSON.parse((await req('GET', path)).text) as Array<{ id: string; checksum?: string }>;
    assert.deepEqual(list, [{ id: images[0].id, checksum: payloadChecksumOf(imageJsonOf(images[0]), images[0].layer) }]);
  });

  it('push start (PUT …/): a body that is not a JSON list declares nothing; a list with a bad entry is 400', async () => {
    const repo = `alice/${uniq('start')}`;
    const path = `/v1/repositories/${repo}/`;
    const bodies: Array<[string, ReqOptions]> = [
      ['{}', { json: {} }],
      ['null', { json: null }],
      ['no body', {}],
      ['a JSON string', { json: 'abc' }],
      ['not JSON', { bytes: Buffer.from('not json at all'), headers: { 'Content-Type': 'application/json' } }],
    ];
    for (const [what, opts] of bodies) {
      const res = await req('PUT', path, { basic: alice, ...opts });
      assert.equal(res.status, 200, `${what}: ${res.text}`);
      assert.match(res.headers.get('X-Docker-Token') ?? '', /,access=write$/, what);
    }
    assert.deepEqual(JSON.parse((await req('GET', `/v1/repositories/${repo}/images`, { basic: alice })).text), [], 'the repository exists, nothing declared');
    for (const bad of [[{ id: 'not-an-id' }], [5], [{ id: newImageId(), checksum: 5 }]]) {
      const res = await req('PUT', path, { basic: alice, json: bad });
      assert.equal(res.status, 400, `${JSON.stringify(bad)}: ${res.text}`);
    }
    assert.equal((await req('PUT', path, { json: {} })).status, 401, 'anonymous');
    assert.equal((await req('PUT', path, { basic: bob, json: {} })).status, 403, 'another user');
  });

  it('a write collaborator (and a write token) may delete a tag', async () => {
    const repo = `alice/${uniq('untag')}`;
    const images = chain(1);
    await push(srv.url, alice, repo, 'latest', images);
    await push(srv.url, alice, repo, 'old', images);
    await push(srv.url, alice, repo, 'older', images);
    await grant(repo, alice, bob.username, 'write');
    assert.equal((await req('DELETE', `/v1/repositories/${repo}/tags/old`, { basic: carol })).status, 403, 'no rights');
    const res = await req('DELETE', `/v1/repositories/${repo}/tags/old`, { basic: bob });
    assert.equal(res.status, 200, `write collaborator: ${res.text}`);
    const token = await writeToken(repo, bob);
    assert.equal((await req('DELETE', `/v1/repositories/${repo}/tags/older`, { token })).status, 200, 'write token');
  });

  it('a token is only good for its repository', async () => {
    const a = `alice/${uniq('tok-a')}`;
    const b = `alice/${uniq('tok-b')}`;
    const imagesA = chain(1);
    const imagesB = chain(1);
    await push(srv.url, alice, a, 'latest', imagesA);
    await push(srv.url, alice, b, 'latest', imagesB);
    const tokenA = await readToken(a, alice);
    assert.equal((await req('GET', `/v1/repositories/${a}/tags`, { token: tokenA })).status, 200);
    const res = await req('GET', `/v1/repositories/${b}/tags`, { token: tokenA });
    assert.equal(res.status, 403, res.text);
    assert.equal((await req('GET', `/v1/repositories/${b}/images`, { token: tokenA })).status, 403);
    const writeA = await writeToken(a, alice);
    assert.equal((await req('PUT', `/v1/repositories/${b}/tags/x`, { token: writeA, json: imagesB[0].id })).status, 403);
    // B's image through A's token: not A's image, so not found (never revealed); nor an
    // image that does not exist.
    const other = await req('GET', `/v1/images/${imagesB[0].id}/json`, { token: tokenA });
    assert.equal(other.status, 404, other.text);
    assert.deepEqual(JSON.parse(other.text), { error: 'Image not found' });
    for (const what of ['json', 'layer', 'ancestry']) {
      assert.equal((await req('GET', `/v1/images/${newImageId()}/${what}`, { token: tokenA })).status, 404, `unknown image, ${what}`);
    }
    assert.equal((await req('PUT', `/v1/images/${newImageId()}/layer`, { token: writeA, bytes: randomBytes(10) })).status, 404, 'a layer of an unknown image');
    assert.equal((await req('PUT', `/v1/images/${newImageId()}/checksum`, { token: writeA, headers: { 'X-Docker-Checksum-Payload': `sha256:${'0'.repeat(64)}` } })).status, 404, 'the checksum of an unknown image');
    assert.equal((await req('GET', `/v1/images/${imagesA[0].id}/json`, { token: tokenA })).status, 200);
  });

  it('an expired token is 401', async () => {
    const repo = `alice/${uniq('exp')}`;
    const images = chain(1);
    await push(srv.url, alice, repo, 'latest', images);
    const old = new TokenService(TokenService.loadSecret(srv.root), 10, () => Date.now() - 3_600_000);
    const expired = old.issue(alice.username, parseRepoPath(repo), 'read');
    const res = await req('GET', `/v1/repositories/${repo}/tags`, { token: expired });
    assert.equal(res.status, 401, res.text);
    assert.equal((await req('GET', `/v1/images/${images[0].id}/layer`, { token: expired })).status, 401);
    // The same secret and a current clock: accepted (so the 401 above is the expiry).
    const current = new TokenService(TokenService.loadSecret(srv.root), 10).issue(alice.username, parseRepoPath(repo), 'read');
    assert.equal((await req('GET', `/v1/repositories/${repo}/tags`, { token: current })).status, 200);
  });

  it('forged or tampered tokens are 401', async () => {
    const repo = `alice/${uniq('forge')}`;
    const secret = `alice/${uniq('forge-private')}`;
    await push(srv.url, alice, repo, 'latest', chain(1));
    await push(srv.url, alice, secret, 'latest', chain(1));
    await makePrivate(secret, alice);
    const token = await readToken(repo, alice);
    const m = /^signature=([^.]+)\.([^,]+),(.*)$/.exec(token);
    assert.ok(m, token);
    const [, payload, mac, rest] = m;
    const flipped = mac.slice(0, -1) + (mac.endsWith('A') ? 'B' : 'A');
    const otherSecret = new TokenService(randomBytes(32), 3600).issue(alice.username, parseRepoPath(secret), 'read');
    const cases: Array<[string, string, string]> = [
      ['one character of the signature changed', `signature=${payload}.${flipped},${rest}`, repo],
      ['signed with another secret', otherSecret, secret],
      ['repository changed', token.replace(`repository="${repo}"`, `repository="${secret}"`), secret],
      ['access changed', token.replace('access=read', 'access=write'), repo],
      ['payload of another token', `signature=${otherSecret.split('.')[0].slice('signature='.length)}.${mac},${rest}`, repo],
      ['not a token', 'abc', repo],
      ['empty', '', repo],
    ];
    for (const [what, forged, target] of cases) {
      const res = await req('GET', `/v1/repositories/${target}/tags`, { token: forged });
      assert.equal(res.status, 401, `${what}: ${res.status} ${res.text}`);
    }
    // The untouched token still works.
    assert.equal((await req('GET', `/v1/repositories/${repo}/tags`, { token })).status, 200);
  });

  it("image routes through another repository's token: a private image stays private", async () => {
    const secret = `alice/${uniq('vault')}`;
    const pub = `carol/${uniq('pub')}`;
    const secretImages = chain(2);
    const pubImages = chain(1);
    await push(srv.url, alice, secret, 'latest', secretImages);
    await makePrivate(secret, alice);
    await push(srv.url, carol, pub, 'latest', pubImages);
    // An anonymous token (user-less) for the public repository, as tokens issued to
    // anonymous callers used to be: still valid while it lasts.
    const anonRead = anonymousToken(pub);
    const carolWrite = await writeToken(pub, carol);
    const carolRead = await readToken(pub, carol);
    for (const [who, token] of [['anonymous read token of a public repo', anonRead], ['carol write token', carolWrite], ['carol read token', carolRead]] as const) {
      for (const what of ['json', 'layer', 'ancestry']) {
        const res = await req('GET', `/v1/images/${secretImages[1].id}/${what}`, { token });
        assert.equal(res.status, 404, `${who}, ${what}: ${res.status} ${res.text}`);
        assert.ok(!res.body.equals(secretImages[1].layer), 'no layer bytes');
      }
    }
    // Her own images through her own token are fine; alice's token does not open carol's.
    assert.equal((await req('GET', `/v1/images/${pubImages[0].id}/layer`, { token: anonRead })).status, 200);
    const aliceRead = await readToken(secret, alice);
    assert.equal((await req('GET', `/v1/images/${secretImages[0].id}/layer`, { token: aliceRead })).status, 200);
    assert.equal((await req('GET', `/v1/images/${pubImages[0].id}/layer`, { token: aliceRead })).status, 404);
    // Basic auth: carol cannot read alice's private image either.
    assert.equal((await req('GET', `/v1/images/${secretImages[0].id}/json`, { basic: carol })).status, 404);
    // Nor overwrite or re-upload it: with her token she cannot see it (404); a public image
    // she can read is complete, so immutable (409).
    for (const what of ['json', 'layer', 'checksum']) {
      const put = await req('PUT', `/v1/images/${secretImages[0].id}/${what}`, { token: carolWrite, bytes: imageJsonOf(secretImages[0]), headers: { 'X-Docker-Checksum-Payload': `sha256:${'0'.repeat(64)}` } });
      assert.equal(put.status, 404, `${what}: ${put.text}`);
    }
    const aliceWrite = await writeToken(`alice/${uniq('other')}`, alice);
    const immutable = await req('PUT', `/v1/images/${pubImages[0].id}/json`, { token: aliceWrite, bytes: imageJsonOf(pubImages[0]) });
    assert.equal(immutable.status, 409, immutable.text);
    assert.equal((await srv.running.services.meta.reposOfImage(pubImages[0].id as never)).length, 1, 'a refused write joins nothing');
  });

  it("listing another repository's private image in your own image list does not make it yours", async () => {
    const secret = `alice/${uniq('list-vault')}`;
    const images = chain(1);
    await push(srv.url, alice, secret, 'latest', images);
    await makePrivate(secret, alice);
    const target = images[0].id;
    // Carol claims the image id at push start (the docker CLI lists every image of the push).
    const steal = `carol/${uniq('steal')}`;
    const start = await req('PUT', `/v1/repositories/${steal}/`, { basic: carol, json: [{ id: target }], headers: { 'X-Docker-Token': 'true' } });
    assert.equal(start.status, 403, `push start listing a private image: ${start.text}`);
    const token = await writeToken(steal, carol);
    for (const what of ['json', 'layer']) {
      const res = await req('GET', `/v1/images/${target}/${what}`, { token });
      assert.ok(res.status === 403 || res.status === 404, `${what} through carol's token: ${res.status}`);
    }
    // Nor at push end.
    const end = await req('PUT', `/v1/repositories/${steal}/images`, { basic: carol, json: [{ id: target, checksum: 'sha256:00' }] });
    assert.equal(end.status, 403, `push end listing a private image: ${end.text}`);
    const anon = anonymousToken(steal);
    assert.notEqual((await req('GET', `/v1/images/${target}/layer`, { token: anon })).status, 200);
    assert.equal((await req('GET', `/v1/images/${target}/layer`)).status, 401);
    // Listing an image you may read (a public one) is fine: that is how a push reuses layers.
    const pub = `alice/${uniq('list-pub')}`;
    const pubImages = chain(1);
    await push(srv.url, alice, pub, 'latest', pubImages);
    const reuse = await push(srv.url, carol, `carol/${uniq('reuse')}`, 'latest', [pubImages[0], { id: newImageId(), parent: pubImages[0].id, layer: randomBytes(100) }]);
    assert.equal(reuse.uploaded.length, 1, 'the public base layer was not uploaded again');
  });

  it('images need not be declared: a new image written with a write token joins its repository; other pushes stay protected', async () => {
    const repo = `alice/${uniq('undeclared')}`;
    const start = await req('PUT', `/v1/repositories/${repo}/`, { basic: alice, json: {} });
    assert.equal(start.status, 200, start.text);
    const token = start.headers.get('X-Docker-Token') as string;
    const images = chain(2);
    for (const image of images) {
      const json = imageJsonOf(image);
      assert.equal((await req('GET', `/v1/images/${image.id}/json`, { token })).status, 404, 'not there yet');
      assert.equal((await req('PUT', `/v1/images/${image.id}/json`, { token, bytes: json })).status, 200);
      const layer = await req('PUT', `/v1/images/${image.id}/layer`, { token, bytes: image.layer });
      assert.equal(layer.status, 200, `layer with the same token: ${layer.text}`);
      const checksum = await req('PUT', `/v1/images/${image.id}/checksum`, { token, headers: { 'X-Docker-Checksum-Payload': payloadChecksumOf(json, image.layer) } });
      assert.equal(checksum.status, 200, checksum.text);
      assert.equal((await req('GET', `/v1/images/${image.id}/json`, { token })).status, 200, 'now the repository holds it');
    }
    assert.equal((await req('PUT', `/v1/repositories/${repo}/tags/latest`, { token, json: images[1].id })).status, 200);
    assert.equal((await req('PUT', `/v1/repositories/${repo}/images`, { basic: alice })).status, 204);
    assertPulledEqualsPushed(await pull(srv.url, alice, repo, 'latest'), images);

    // A pending image joined one repository: another repository's token may not write it,
    // not even one of the same user (it is another push's business), nor bob's.
    const [pendingImage] = chain(1);
    assert.equal((await req('PUT', `/v1/images/${pendingImage.id}/json`, { token, bytes: imageJsonOf(pendingImage) })).status, 200);
    const aliceOther = await writeToken(`alice/${uniq('other')}`, alice);
    const bobs = await writeToken(`bobby/${uniq('other')}`, bob);
    for (const [who, other] of [['alice, another repository', aliceOther], ['bob', bobs]]) {
      const json = await req('PUT', `/v1/images/${pendingImage.id}/json`, { token: other, bytes: imageJsonOf(pendingImage) });
      assert.equal(json.status, 403, `${who}: ${json.text}`);
      assert.equal((await req('PUT', `/v1/images/${pendingImage.id}/layer`, { token: other, bytes: pendingImage.layer })).status, 403, who);
    }
    // Nor may a read collaborator of the repository claim the pending image at push start
    // (claiming it would let their own token write it).
    await grant(repo, alice, bob.username, 'read');
    const claim = await req('PUT', `/v1/repositories/bobby/${uniq('claim')}/`, { basic: bob, json: [{ id: pendingImage.id }] });
    assert.equal(claim.status, 403, claim.text);
    // Its own push goes on.
    const layer = await req('PUT', `/v1/images/${pendingImage.id}/layer`, { token, bytes: pendingImage.layer });
    assert.equal(layer.status, 200, layer.text);
  });

  it("tagging another repository's private image does not make it readable", async () => {
    const secret = `alice/${uniq('tag-vault')}`;
    const images = chain(1);
    await push(srv.url, alice, secret, 'latest', images);
    await makePrivate(secret, alice);
    const steal = `carol/${uniq('tag-steal')}`;
    const token = await writeToken(steal, carol);
    const tag = await req('PUT', `/v1/repositories/${steal}/tags/stolen`, { token, json: images[0].id });
    assert.ok(tag.status === 403 || tag.status === 404, `tagging alice's private image: ${tag.status} ${tag.text}`);
    assert.equal((await req('GET', `/v1/images/${images[0].id}/layer`)).status, 401, 'still not readable anonymously');
  });

  it('delete: DELETE …/ with Basic + X-Docker-Token → 202 and a delete token; DELETE with the token → 200, gone', async () => {
    const repo = `alice/${uniq('gone')}`;
    const images = chain(2);
    await push(srv.url, alice, repo, 'latest', images);
    // Others may not.
    assert.equal((await req('DELETE', `/v1/repositories/${repo}/`, { basic: bob, headers: { 'X-Docker-Token': 'true' } })).status, 403);
    assert.equal((await req('DELETE', `/v1/repositories/${repo}/`, { headers: { 'X-Docker-Token': 'true' } })).status, 401);

    const step1 = await req('DELETE', `/v1/repositories/${repo}/`, { basic: alice, headers: { 'X-Docker-Token': 'true' } });
    assert.equal(step1.status, 202, step1.text);
    const token = step1.headers.get('X-Docker-Token');
    assert.ok(token);
    assert.match(token, new RegExp(`repository="${repo}",access=delete$`));
    assert.ok(step1.headers.get('X-Docker-Endpoints'));
    // Nothing deleted yet.
    assert.equal((await req('GET', `/v1/repositories/${repo}/tags`)).status, 200);
    // The old flow's first step hands out a delete token as well.
    const old = await req('DELETE', `/v1/repositories/${repo}/images`, { basic: alice, headers: { 'X-Docker-Token': 'true' } });
    assert.equal(old.status, 204, old.text);
    assert.match(old.headers.get('X-Docker-Token') ?? '', /access=delete$/);

    const step2 = await req('DELETE', `/v1/repositories/${repo}/`, { token });
    assert.equal(step2.status, 200, step2.text);
    assert.equal((await req('GET', `/v1/repositories/${repo}/tags`)).status, 404);
    assert.equal((await req('GET', `/v1/repositories/${repo}/images`)).status, 404);
    assert.equal((await req('GET', `/v1/repositories/${repo}/tags/latest`, { basic: alice })).status, 404);
    await assert.rejects(pull(srv.url, alice, repo, 'latest'), failsAt('GET images', 404));
    // The owner can push the same images again (they are still stored until a GC).
    const again = await push(srv.url, alice, repo, 'latest', images);
    assert.deepEqual(again.uploaded, []);
    assertPulledEqualsPushed(await pull(srv.url, null, repo, 'latest'), images);
  });

  it('an interrupted push leaves nothing pullable under its tag, and pushing again succeeds', async () => {
    const repo = `alice/${uniq('crash')}`;
    const images = chain(2);
    const [base, top] = images;
    // Push start and the base image, then the top image's json and layer, no checksum.
    const token = await (async () => {
      const res = await req('PUT', `/v1/repositories/${repo}/`, { basic: alice, json: images.map((i) => ({ id: i.id })), headers: { 'X-Docker-Token': 'true' } });
      assert.equal(res.status, 200, res.text);
      return res.headers.get('X-Docker-Token') as string;
    })();
    for (const image of images) {
      const json = imageJsonOf(image);
      assert.equal((await req('PUT', `/v1/images/${image.id}/json`, { token, bytes: json })).status, 200);
      assert.equal((await req('PUT', `/v1/images/${image.id}/layer`, { token, bytes: image.layer })).status, 200);
      if (image === base) {
        const res = await req('PUT', `/v1/images/${image.id}/checksum`, { token, headers: { 'X-Docker-Checksum-Payload': payloadChecksumOf(json, image.layer) } });
        assert.equal(res.status, 200, res.text);
      }
    }
    // The tag cannot point at the incomplete image.
    const tag = await req('PUT', `/v1/repositories/${repo}/tags/latest`, { token, json: top.id });
    assert.equal(tag.status, 400, tag.text);
    const tags = await req('GET', `/v1/repositories/${repo}/tags`, { token });
    assert.equal(tags.status, 200, tags.text);
    assert.deepEqual(JSON.parse(tags.text), {});
    // The image list served to a pull leaves the incomplete image out.
    const list = await req('GET', `/v1/repositories/${repo}/images`, { basic: alice });
    const ids = (JSON.parse(list.text) as Array<{ id: string }>).map((e) => e.id);
    assert.ok(ids.includes(base.id), 'the complete base is listed');
    assert.ok(!ids.includes(top.id), 'the incomplete top is not');
    await assert.rejects(pull(srv.url, alice, repo, 'latest'), failsAt('tag latest', 200));
    assert.equal((await req('GET', `/v1/images/${top.id}/layer`, { token })).status, 400);

    // Nobody else may rewrite the pending image meanwhile, with Basic auth or with a write
    // token of their own repository.
    const evil = Buffer.from(JSON.stringify({ id: top.id, parent: base.id, comment: 'not alice' }));
    assert.equal((await req('PUT', `/v1/images/${top.id}/json`, { basic: bob, bytes: evil })).status, 403);
    assert.equal((await req('PUT', `/v1/images/${top.id}/layer`, { basic: bob, bytes: randomBytes(10) })).status, 403);
    const bobToken = await writeToken(`bobby/${uniq('evil')}`, bob);
    assert.equal((await req('PUT', `/v1/images/${top.id}/json`, { token: bobToken, bytes: evil })).status, 403);
    assert.equal((await req('PUT', `/v1/images/${top.id}/checksum`, { token: bobToken, headers: { 'X-Docker-Checksum-Payload': payloadChecksumOf(imageJsonOf(top), top.layer) } })).status, 403);

    // docker push again: the base is skipped, the top uploaded again, the tag set.
    const pushed = await push(srv.url, alice, repo, 'latest', images);
    assert.deepEqual(pushed.uploaded, [top.id]);
    assertPulledEqualsPushed(await pull(srv.url, null, repo, 'latest'), images);
  });

  it('docker-registry-client pulls a private repository with the token it receives', async () => {
    const name = uniq('drc');
    const repo = `alice/${name}`;
    const images = chain(2, 20_000);
    await push(srv.url, alice, repo, 'latest', images);
    await makePrivate(repo, alice);
    const host = new URL(srv.url).host;
    const open = (creds?: Credentials) =>
      drc.createClientV1({ name: `${host}/${repo}`, scheme: 'http', ...(creds ? { username: creds.username, password: creds.password } : {}) });

    const client: RegistryClientV1 = open(alice);
    try {
      const list = await cb<Array<{ id: string }>>((done) => client.listRepoImgs(done));
      assert.deepEqual(new Set(list.map((e) => e.id)), new Set(images.map((i) => i.id)));
      const tags = await cb<Record<string, string>>((done) => client.listRepoTags(done));
      assert.deepEqual(tags, { latest: images[1].id });
      // The client kept the token the Index handed out and uses it for the registry.
      const token = (client as unknown as { token?: string }).token;
      assert.match(token ?? '', new RegExp(`repository="${repo}",access=read$`));
      const id = await cb<string>((done) => client.getImgId({ tag: 'latest' }, done));
      assert.equal(id, images[1].id);
      const ancestry = await cb<string[]>((done) => client.getImgAncestry({ imgId: id }, done));
      assert.deepEqual(ancestry, [images[1].id, images[0].id]);
      for (const image of images) {
        const json = await cb<Record<string, unknown>>((done) => client.getImgJson({ imgId: image.id }, done));
        assert.deepEqual(json, JSON.parse(imageJsonOf(image).toString('utf8')));
        const stream = await cb<IncomingMessage>((done) => client.getImgLayerStream({ imgId: image.id }, done));
        assert.equal(stream.statusCode, 200);
        const bytes = await collect(stream);
        assert.ok(bytes.equals(image.layer), `layer ${image.id}: ${bytes.length} bytes, expected ${image.layer.length}`);
      }
    } finally {
      client.close();
    }

    // Anonymous and another user are refused at the Index step.
    for (const [who, creds, status] of [['anonymous', undefined, 401], ['bob', bob, 403], ['wrong password', { ...alice, password: 'nope-nope' }, 401]] as const) {
      const other = open(creds);
      try {
        await assert.rejects(
          cb((done) => other.listRepoTags(done)),
          (err: ClientError) => {
            assert.equal(err.statusCode, status, `${who}: ${err.message}`);
            return true;
          },
        );
      } finally {
        other.close();
      }
    }
  });
});
