/**
 * Three nodes of one registry on one PostgreSQL and one S3 bucket (the real engines), and a
 * client that goes to any of them, as behind a load balancer: what one node writes, the
 * others serve at once (no per-node cache serves a stale tag list, permission, visibility,
 * password or session); what one node issues (Index tokens, v2 bearer tokens, Hub JWTs, web
 * UI sessions), the others accept; a logout on one ends the session everywhere; the login
 * throttle counts failures on every node together.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { useEngines } from '../helpers/engines.js';
import { newImageId, type TestServer } from '../helpers/server.js';
import { imageJson, payloadChecksum, put } from '../helpers/v1.js';
import { adminAuth, basic, pushAs, startCluster, tagAs, type Cluster } from './nodes.js';

const engines = useEngines();
const MAX_FAILURES = 4;

describe('three nodes, one registry', () => {
  let cluster: Cluster;
  let a: TestServer;
  let b: TestServer;
  let c: TestServer;

  before(async () => {
    cluster = await startCluster(engines, 3, { login_max_failures: MAX_FAILURES, login_window_seconds: 300 });
    [a, b, c] = cluster.nodes;
  });
  after(async () => {
    await cluster?.stop();
  });

  const image = () => ({ id: newImageId(), layer: randomBytes(20_000) });
  const json = async (res: Response) => {
    const text = await res.text();
    assert.equal(res.status, 200, text);
    return JSON.parse(text) as unknown;
  };
  /** An account made through node `on` (the admin API). */
  async function account(on: TestServer, name: string, password: string): Promise<Record<string, string>> {
    const res = await put(`${on.url}/_admin/users/${name}`, JSON.stringify({ password, email: `${name}@example.com` }), { ...adminAuth, 'Content-Type': 'application/json' });
    assert.equal(res.status, 201, await res.text());
    return basic(name, password);
  }

  it('a tag set on A is listed by B and C at once (v1, v2 and Hub), its move and its delete too', async () => {
    const [one, two] = [image(), image()];
    await pushAs(a.url, adminAuth, 'fresh/app', 'latest', [one]);
    await pushAs(a.url, adminAuth, 'fresh/app', 'two', [two]);
    // Read the lists on B and C first, so that a per-node cache would hold them.
    const lists = async () =>
      Promise.all(
        [b, c].flatMap((node) => [
          fetch(`${node.url}/v1/repositories/fresh/app/tags`, { headers: adminAuth }).then(json),
          fetch(`${node.url}/v2/fresh/app/tags/list`, { headers: adminAuth }).then(json),
          fetch(`${node.url}/v2/repositories/fresh/app/tags?page_size=100`, { headers: adminAuth })
            .then(json)
            .then((body) => (body as { results: Array<{ name: string }> }).results.map((t) => t.name).sort()),
        ]),
      );
    const expect = (tags: Record<string, string>) => {
      const names = Object.keys(tags).sort();
      return [tags, { name: 'fresh/app', tags: names }, names, tags, { name: 'fresh/app', tags: names }, names];
    };
    assert.deepEqual(await lists(), expect({ latest: one.id, two: two.id }));

    // A moves a tag, adds one, deletes one: B and C, asked at the same moment, agree at once.
    assert.equal((await tagAs(a.url, adminAuth, 'fresh/app', 'latest', two.id)).status, 200);
    assert.equal((await tagAs(a.url, adminAuth, 'fresh/app', 'v3', one.id)).status, 200);
    assert.deepEqual(await lists(), expect({ latest: two.id, two: two.id, v3: one.id }));
    assert.equal((await fetch(`${a.url}/v1/repositories/fresh/app/tags/two`, { method: 'DELETE', headers: adminAuth })).status, 200);
    assert.deepEqual(await lists(), expect({ latest: two.id, v3: one.id }));
  });

  it('visibility and collaborators changed on A hold on B and C at once', async () => {
    const bob = await account(a, 'bobnode', 'bob-password-1');
    await pushAs(a.url, adminAuth, 'perm/app', 'latest', [image()]);
    const bobReads = (node: TestServer) => fetch(`${node.url}/v1/repositories/perm/app/tags`, { headers: bob }).then((r) => r.status);
    assert.deepEqual(await Promise.all([b, c].map(bobReads)), [200, 200], 'public');

    const privacy = await fetch(`${a.url}/v2/repositories/perm/app/privacy`, {
      method: 'POST',
      headers: { ...adminAuth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ is_private: true }),
    });
    assert.equal(privacy.status, 200, await privacy.text());
    assert.deepEqual(await Promise.all([b, c].map(bobReads)), [403, 403], 'private: refused on every node at once');
    assert.equal((await fetch(`${c.url}/v1/repositories/perm/app/tags`)).status, 401, 'anonymous: who are you?');

    const grant = await put(`${a.url}/v1/repositories/perm/app/collaborators/bobnode`, JSON.stringify({ permission: 'read' }), {
      ...adminAuth,
      'Content-Type': 'application/json',
    });
    assert.equal(grant.status, 200, await grant.text());
    assert.deepEqual(await Promise.all([b, c].map(bobReads)), [200, 200], 'a collaborator reads on every node');
    assert.equal((await fetch(`${b.url}/v1/repositories/perm/app/collaborators/bobnode`, { method: 'DELETE', headers: adminAuth })).status, 200);
    assert.deepEqual(await Promise.all([a, c].map(bobReads)), [403, 403], 'revoked on B: refused on A and C');
  });

  it('a password changed or an account deactivated on A is refused on B at once', async () => {
    const old = await account(a, 'carolnode', 'carol-password-1');
    const login = (node: TestServer, auth: Record<string, string>) => fetch(`${node.url}/v1/users/`, { headers: auth }).then((r) => r.status);
    // B checks (and remembers) the old password first.
    assert.equal(await login(b, old), 200);
    const changed = await put(`${a.url}/v1/users/carolnode/`, JSON.stringify({ password: 'carol-password-2' }), { ...old, 'Content-Type': 'application/json' });
    assert.equal(changed.status, 204, await changed.text());
    const fresh = basic('carolnode', 'carol-password-2');
    assert.deepEqual(await Promise.all([login(b, old), login(c, old), login(b, fresh)]), [401, 401, 200]);

    const disable = await fetch(`${a.url}/_admin/users/carolnode`, {
      method: 'PATCH',
      headers: { ...adminAuth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ active: false }),
    });
    assert.equal(disable.status, 200, await disable.text());
    assert.deepEqual(await Promise.all([login(b, fresh), login(c, fresh)]), [403, 403], 'deactivated on every node');
  });

  it('Index tokens, v2 bearer tokens and Hub JWTs issued by A are accepted by B and C', async () => {
    const dave = await account(a, 'davenode', 'dave-password-1');
    const pushed = image();
    await pushAs(a.url, dave, 'davenode/app', 'latest', [pushed]);

    // Index token (docker 1.x): from A's Index, used on B's registry and C's.
    const index = await fetch(`${a.url}/v1/repositories/davenode/app/images`, { headers: { ...dave, 'X-Docker-Token': 'true' } });
    assert.equal(index.status, 200, await index.text());
    const token = index.headers.get('x-docker-token');
    assert.ok(token, 'an Index token');
    for (const node of [b, c]) {
      const res = await fetch(`${node.url}/v1/images/${pushed.id}/ancestry`, { headers: { Authorization: `Token ${token}` } });
      assert.equal(res.status, 200, `Index token on ${node.url}: ${await res.text()}`);
    }

    // Registry API v2 bearer token from A's realm.
    const issued = await json(await fetch(`${a.url}/v2/token?service=${encodeURIComponent(a.config.token_service)}&scope=repository:davenode/app:pull`, { headers: dave }));
    const bearer = (issued as { token: string }).token;
    for (const node of [b, c]) {
      const res = await fetch(`${node.url}/v2/davenode/app/tags/list`, { headers: { Authorization: `Bearer ${bearer}` } });
      assert.equal(res.status, 200, `v2 bearer on ${node.url}: ${await res.text()}`);
    }

    // Hub JWT from A's login.
    const hubLogin = await fetch(`${a.url}/v2/users/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'davenode', password: 'dave-password-1' }),
    });
    const jwt = ((await json(hubLogin)) as { token: string }).token;
    for (const node of [b, c]) {
      const me = await json(await fetch(`${node.url}/v2/user`, { headers: { Authorization: `JWT ${jwt}` } }));
      assert.equal((me as { username: string }).username, 'davenode');
    }
  });

  it('a web UI session from A works on B; a logout on B ends it on A and C', async () => {
    await account(a, 'erinnode', 'erin-password-1');
    // The login form on A: its CSRF cookie and token, then the post.
    const form = await fetch(`${a.url}/-/login`);
    const csrfCookie = /registry_csrf=([^;]+)/.exec(form.headers.get('set-cookie') ?? '')![1];
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await form.text())![1];
    const posted = (node: TestServer, path: string, fields: Record<string, string>, cookie: string) =>
      fetch(`${node.url}${path}`, {
        method: 'POST',
        redirect: 'manual',
        headers: { Cookie: cookie, 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(fields).toString(),
      });
    const login = await posted(a, '/-/login', { username: 'erinnode', password: 'erin-password-1', _csrf: csrf }, `registry_csrf=${csrfCookie}`);
    assert.equal(login.status, 303, await login.text());
    const session = /registry_web_session=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')![1];
    const cookie = `registry_web_session=${session}; registry_csrf=${csrfCookie}`;
    // Signed in: the login page sends a signed-in browser on (303); otherwise it shows the form (200).
    const signedIn = async (node: TestServer) => (await fetch(`${node.url}/-/login`, { headers: { Cookie: cookie }, redirect: 'manual' })).status === 303;
    assert.deepEqual(await Promise.all([a, b, c].map(signedIn)), [true, true, true]);

    const logout = await posted(b, '/-/logout', { _csrf: csrf }, cookie);
    assert.equal(logout.status, 303, await logout.text());
    assert.deepEqual(await Promise.all([a, b, c].map(signedIn)), [false, false, false], 'the copied cookie is refused on every node');
  });

  it('an image garbage-collected through A is gone on B at once, and B takes it pushed again', async () => {
    const loose = image();
    const pushLoose = async (node: TestServer) => {
      const body = imageJson(loose);
      for (const [part, data, headers] of [
        ['json', body, { 'Content-Type': 'application/json' }],
        ['layer', loose.layer, { 'Content-Type': 'application/octet-stream' }],
        ['checksum', undefined, { 'X-Docker-Checksum-Payload': payloadChecksum(body, loose.layer) }],
      ] as const) {
        const res = await put(`${node.url}/v1/images/${loose.id}/${part}`, data, { ...adminAuth, ...headers });
        assert.equal(res.status, 200, `${part}: ${await res.text()}`);
      }
    };
    await pushLoose(a);
    // B reads it (a node that cached complete images would keep it now).
    assert.equal((await fetch(`${b.url}/v1/images/${loose.id}/json`, { headers: adminAuth })).status, 200);
    // Never tagged: garbage collection through A with no grace deletes it.
    const gc = await fetch(`${a.url}/_admin/gc?grace_seconds=0`, { method: 'POST', headers: adminAuth });
    assert.equal(gc.status, 200, await gc.text());
    assert.equal((await fetch(`${b.url}/v1/images/${loose.id}/json`, { headers: adminAuth })).status, 404, 'gone on B at once');
    await pushLoose(b);
    assert.equal((await fetch(`${c.url}/v1/images/${loose.id}/json`, { headers: adminAuth })).status, 200);
  });

  it('the login throttle counts wrong passwords on every node together', async () => {
    await account(a, 'frannode', 'fran-password-1');
    const wrong = basic('frannode', 'not-her-password');
    const statuses: number[] = [];
    // MAX_FAILURES wrong passwords spread over A, B and C …
    for (let i = 0; i < MAX_FAILURES; i++) statuses.push((await fetch(`${cluster.nodes[i % 3].url}/v1/users/`, { headers: wrong })).status);
    assert.deepEqual(statuses, Array(MAX_FAILURES).fill(401));
    // … and every node refuses the account now, even its right password, with the same answer.
    for (const node of [a, b, c]) {
      const res = await fetch(`${node.url}/v1/users/`, { headers: basic('frannode', 'fran-password-1') });
      assert.equal(res.status, 429, `${node.url}`);
      assert.ok(Number(res.headers.get('retry-after')) > 0);
      assert.match(((await res.json()) as { error: string }).error, /^Too many failed logins; retry in \d+ s$/);
    }
  });
});
