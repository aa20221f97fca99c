/**
 * Docker Hub API double, repositories: GET|PATCH|DELETE /v2/repositories/:ns/:repo/ with
 * who may do what (anonymous, another user, a collaborator, the owner, an admin), POST
 * /v2/repositories/ to create, POST …/privacy/, the namespace listing (private
 * repositories only for those who may read them, paginated), the library namespace of
 * official images, and that both APIs see the same data.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseRepoPath } from '../../src/domain/names.js';
import type { TestServer } from '../helpers/server.js';
import { put } from '../helpers/v1.js';
import { ADMIN, ALICE, assertHubError, basic, BOB, call, eventually, jwt, login, seedImage, seedRepo, seedTags, startHubServer, walk } from './helpers.js';

describe('Hub API double: repositories', () => {
  let srv: TestServer;
  let alice: string;
  let bob: string;
  let admin: string;

  before(async () => {
    srv = await startHubServer();
    alice = jwt(await login(srv, ALICE));
    bob = jwt(await login(srv, BOB));
    admin = jwt(await login(srv, ADMIN));
    await seedRepo(srv, 'alice/public-app', { description: 'a public app' });
    await seedRepo(srv, 'alice/private-app', { private: true, description: 'secret' });
    const image = await seedImage(srv);
    await seedTags(srv, 'alice/public-app', image, [{ name: 'latest', seconds: 1_700_000_000 }]);
  });
  after(async () => {
    await srv?.destroy();
  });

  it('GET a public repository: Hub fields, anonymous allowed, with and without the slash', async () => {
    const res = await call(srv, '/v2/repositories/alice/public-app/');
    assert.equal(res.status, 200, res.text);
    const repo = res.json;
    assert.equal(repo.name, 'public-app');
    assert.equal(repo.namespace, 'alice');
    assert.equal(repo.user, 'alice');
    assert.equal(repo.description, 'a public app');
    assert.equal(repo.full_description, '');
    assert.equal(repo.is_private, false);
    assert.equal(repo.star_count, 0);
    assert.equal(repo.pull_count, 0);
    assert.equal(repo.last_updated, new Date(1_700_000_000_000).toISOString());
    assert.equal(repo.permissions.admin, false);
    assert.deepEqual(res.json, (await call(srv, '/v2/repositories/alice/public-app')).json);
    const own = await call(srv, '/v2/repositories/alice/public-app/', { auth: alice });
    assert.deepEqual(own.json.permissions, { read: true, write: true, admin: true });
  });

  it("another user's private repository: 401 anonymous, 403 another user; owner, collaborator and admin see it", async () => {
    const path = '/v2/repositories/alice/private-app/';
    assertHubError(await call(srv, path), 401, 'anonymous');
    assertHubError(await call(srv, path, { auth: bob }), 403, 'bob');
    for (const [who, auth] of [['alice', alice], ['admin', admin]] as const) {
      const res = await call(srv, path, { auth });
      assert.equal(res.status, 200, `${who}: ${res.text}`);
      assert.equal(res.json.is_private, true);
    }
    await srv.running.services.repos.setCollaborator(parseRepoPath('alice/private-app'), 'bobby', 'read');
    try {
      const res = await call(srv, path, { auth: bob });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json.permissions, { read: true, write: false, admin: false });
      assertHubError(await call(srv, path, { method: 'PATCH', auth: bob, body: { description: 'x' } }), 403, 'read collaborator PATCH');
    } finally {
      await srv.running.services.repos.setCollaborator(parseRepoPath('alice/private-app'), 'bobby', null);
    }
  });

  it('unknown repository: 404 Hub shape; invalid name: 400', async () => {
    assertHubError(await call(srv, '/v2/repositories/alice/nothing/'), 404, 'unknown');
    assertHubError(await call(srv, '/v2/repositories/alice/nothing/', { auth: alice }), 404, 'unknown, owner');
    assertHubError(await call(srv, '/v2/repositories/alice/Bad%20Name/'), 400, 'invalid');
  });

  it('PATCH description and full_description: the owner (and admins) only; v1 sees the description', async () => {
    const path = '/v2/repositories/alice/public-app/';
    const body = { description: 'short words', full_description: '# Long\n\nMarkdown *text*.' };
    assertHubError(await call(srv, path, { method: 'PATCH', body }), 401, 'anonymous');
    assertHubError(await call(srv, path, { method: 'PATCH', auth: bob, body }), 403, 'bob');
    const res = await call(srv, path, { method: 'PATCH', auth: alice, body });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.description, 'short words');
    assert.equal(res.json.full_description, body.full_description);
    const again = await call(srv, path);
    assert.equal(again.json.description, 'short words');
    assert.equal(again.json.full_description, body.full_description);
    // Only the field sent changes.
    const partial = await call(srv, path, { method: 'PATCH', auth: admin, body: { full_description: 'by the admin' } });
    assert.equal(partial.status, 200, partial.text);
    assert.equal(partial.json.description, 'short words');
    assert.equal(partial.json.full_description, 'by the admin');
    // The v1 search sees the new description: one set of data.
    const search = (await (await fetch(`${srv.url}/v1/search?q=public-app`)).json()) as { results: Array<{ description: string }> };
    assert.equal(search.results[0].description, 'short words');
    // A later v1 push keeps the full description.
    const image = await seedImage(srv);
    const tag = await put(`${srv.url}/v1/repositories/alice/public-app/tags/v2`, JSON.stringify(image.id), { Authorization: basic(ALICE) });
    assert.equal(tag.status, 200, await tag.text());
    assert.equal((await call(srv, path)).json.full_description, 'by the admin');
  });

  it('PATCH validation: not an object, wrong types, over Hub length limits: 400; unknown repository 404', async () => {
    const path = '/v2/repositories/alice/public-app/';
    for (const body of [['x'], { description: 5 }, { description: 'x'.repeat(101) }, { full_description: 'x'.repeat(25_001) }, 'text']) {
      assertHubError(await call(srv, path, { method: 'PATCH', auth: alice, body }), 400, JSON.stringify(body).slice(0, 40));
    }
    assertHubError(await call(srv, '/v2/repositories/alice/nothing/', { method: 'PATCH', auth: alice, body: { description: 'x' } }), 404, 'unknown');
  });

  it('POST /v2/repositories/ creates: 201 for the namespace owner; 400 when it exists; 401/403 otherwise', async () => {
    const body = { namespace: 'alice', name: 'created', description: 'made by the API', full_description: 'long', is_private: true };
    assertHubError(await call(srv, '/v2/repositories/', { method: 'POST', body }), 401, 'anonymous');
    assertHubError(await call(srv, '/v2/repositories/', { method: 'POST', auth: bob, body }), 403, 'bob in alice');
    const res = await call(srv, '/v2/repositories/', { method: 'POST', auth: alice, body });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.name, 'created');
    assert.equal(res.json.is_private, true);
    assert.equal(res.json.full_description, 'long');
    assert.equal(res.json.last_updated, null);
    assertHubError(await call(srv, '/v2/repositories', { method: 'POST', auth: alice, body }), 400, 'exists');
    // v1 sees it: private.
    const props = await fetch(`${srv.url}/v1/repositories/alice/created/properties`, { headers: { Authorization: basic(ALICE) } });
    assert.deepEqual(await props.json(), { access: 'private' });
    assertHubError(await call(srv, '/v2/repositories/', { method: 'POST', auth: alice, body: { namespace: 'alice' } }), 400, 'no name');
    assertHubError(await call(srv, '/v2/repositories/', { method: 'POST', auth: alice, body: { namespace: 'alice', name: 'UPPER' } }), 400, 'bad name');
    const lib = await call(srv, '/v2/repositories/', { method: 'POST', auth: admin, body: { namespace: 'library', name: 'made-official' } });
    assert.equal(lib.status, 201, lib.text);
    assertHubError(await call(srv, '/v2/repositories/', { method: 'POST', auth: alice, body: { namespace: 'library', name: 'x' } }), 403, 'alice in library');
  });

  it('POST …/privacy/ switches is_private (owner only)', async () => {
    await seedRepo(srv, 'alice/flip');
    const path = '/v2/repositories/alice/flip/privacy/';
    assertHubError(await call(srv, path, { method: 'POST', auth: bob, body: { is_private: true } }), 403, 'bob');
    const res = await call(srv, path, { method: 'POST', auth: alice, body: { is_private: true } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.is_private, true);
    assertHubError(await call(srv, '/v2/repositories/alice/flip/'), 401, 'now private');
    assertHubError(await call(srv, path, { method: 'POST', auth: alice, body: { is_private: 'yes' } }), 400, 'not a boolean');
  });

  it('DELETE: 401 anonymous, 403 another user, 202 owner; then 404 on both APIs', async () => {
    await seedRepo(srv, 'alice/doomed');
    const image = await seedImage(srv);
    await seedTags(srv, 'alice/doomed', image, [{ name: 'latest', seconds: 1_700_000_000 }]);
    const path = '/v2/repositories/alice/doomed/';
    assertHubError(await call(srv, path, { method: 'DELETE' }), 401, 'anonymous');
    assertHubError(await call(srv, path, { method: 'DELETE', auth: bob }), 403, 'bob');
    const res = await call(srv, path, { method: 'DELETE', auth: alice });
    assert.equal(res.status, 202, res.text);
    assertHubError(await call(srv, path), 404, 'gone');
    assertHubError(await call(srv, path, { method: 'DELETE', auth: alice }), 404, 'deleted twice');
    assert.equal((await fetch(`${srv.url}/v1/repositories/alice/doomed/tags`)).status, 404);
  });

  it('GET /v2/repositories/:ns/: private repositories only for those who may read them; paginated to the end', async () => {
    for (let i = 0; i < 23; i++) await seedRepo(srv, `bobby/r${String(i).padStart(2, '0')}`, { private: i % 5 === 0 });
    const names = (pages: Array<{ json: { results: Array<{ name: string }> } }>) => pages.flatMap((p) => p.json.results.map((r) => r.name));
    const publicNames = Array.from({ length: 23 }, (_, i) => i).filter((i) => i % 5 !== 0).map((i) => `r${String(i).padStart(2, '0')}`);
    const allNames = Array.from({ length: 23 }, (_, i) => `r${String(i).padStart(2, '0')}`);
    assert.deepEqual(names(await walk(srv, '/v2/repositories/bobby/?page_size=4')), publicNames, 'anonymous');
    assert.deepEqual(names(await walk(srv, '/v2/repositories/bobby/?page_size=4', alice)), publicNames, 'alice');
    assert.deepEqual(names(await walk(srv, '/v2/repositories/bobby/?page_size=4', bob)), allNames, 'owner');
    assert.deepEqual(names(await walk(srv, '/v2/repositories/bobby/?page_size=100', admin)), allNames, 'admin');
    const first = await call(srv, '/v2/repositories/bobby/', { auth: bob });
    assert.equal(first.json.count, 23);
    assert.equal(first.json.results.length, 10, 'default page size');
    assert.equal(first.json.results[0].full_description, undefined, 'the list has the short view');
    // Hub's older path for the same list.
    const older = await call(srv, '/v2/users/bobby/repositories/', { auth: bob });
    assert.deepEqual(older.json.results, first.json.results);
    // Namespaces: a user's without repositories is an empty list, an unknown one 404.
    assert.deepEqual((await call(srv, '/v2/repositories/hubadmin/')).json.results, []);
    assertHubError(await call(srv, '/v2/repositories/nobody-at-all/'), 404, 'unknown namespace');
    assertHubError(await call(srv, '/v2/repositories/bobby/?page_size=x'), 400, 'bad page_size');
  });

  it('official images live in library: a v1 push of busybox is /v2/repositories/library/busybox/', async () => {
    // docker push busybox by an admin, the v1 way (single-name repository = library/busybox).
    const image = await seedImage(srv, { layerSize: 777 });
    const auth = { Authorization: basic(ADMIN) };
    let res = await put(`${srv.url}/v1/repositories/busybox/`, JSON.stringify([{ id: image.id }]), { ...auth, 'Content-Type': 'application/json' });
    assert.equal(res.status, 200, await res.text());
    res = await put(`${srv.url}/v1/repositories/busybox/tags/latest`, JSON.stringify(image.id), auth);
    assert.equal(res.status, 200, await res.text());
    const repo = await call(srv, '/v2/repositories/library/busybox/');
    assert.equal(repo.status, 200, repo.text);
    assert.equal(repo.json.namespace, 'library');
    assert.equal(repo.json.user, 'library');
    // Who pushed is recorded from the push event, which runs just after the answer.
    await eventually(async () => {
      const tags = await call(srv, '/v2/repositories/library/busybox/tags/');
      assert.deepEqual(tags.json.results.map((t: { name: string; full_size: number; last_updater_username: string }) => [t.name, t.full_size, t.last_updater_username]), [
        ['latest', 777, ADMIN.username],
      ]);
    });
    const list = await call(srv, '/v2/repositories/library/');
    assert.ok(list.json.results.some((r: { name: string }) => r.name === 'busybox'));
    // Nobody but admins changes official images.
    assertHubError(await call(srv, '/v2/repositories/library/busybox/', { method: 'PATCH', auth: alice, body: { description: 'mine' } }), 403, 'alice');
  });
});
