/**
 * A Hub API client we did not write drives the double: npm `docker-hub-api` (0.8.0, GPL-3.0,
 * `request`-based). It has no base-URL option: every call goes through its exported
 * `makeRequestParams(method, path, data)`, which builds `https://hub.docker.com/v2/<path>`.
 * The test wraps that one method to swap the origin for the test server's (and refuses any
 * other URL, so nothing can leave 127.0.0.1); everything else — paths, trailing slashes,
 * `Authorization: JWT <token>`, how it reads results and recognises errors (a `detail` in
 * the body) — is the library's own.
 *
 * The package is not a dependency of the project: install it with
 * `npm install --no-save docker-hub-api@0.8.0` (or as a devDependency); without it the
 * suite is skipped, saying so.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestServer } from '../helpers/server.js';
import { HUB_PACKAGE, hubErrorOf, loadHubClient, pointHubClientAt, type DockerHubApi } from '../helpers/third-party.js';
import { ALICE, BOB, seedImage, seedRepo, seedTags, startHubServer } from './helpers.js';

const api = loadHubClient();
const skip = api ? false : `${HUB_PACKAGE} is not installed (npm install --no-save ${HUB_PACKAGE}@0.8.0)`;

describe('third-party Hub client (docker-hub-api) against the double', { skip }, () => {
  let srv: TestServer;
  const client = api as DockerHubApi;
  let restore: () => void = () => undefined;
  const seen: string[] = [];

  before(async () => {
    srv = await startHubServer();
    restore = pointHubClientAt(client, () => srv.url, seen);
    const image = await seedImage(srv, { layerSize: 400 });
    await seedRepo(srv, 'alice/app', { description: 'the app' });
    await seedTags(srv, 'alice/app', image, [
      { name: 'old', seconds: 1_700_000_000 },
      { name: 'new', seconds: 1_700_000_100 },
      { name: 'latest', seconds: 1_700_000_200 },
    ]);
    await seedRepo(srv, 'library/busybox');
    await seedTags(srv, 'library/busybox', image, [{ name: 'latest', seconds: 1_700_000_000 }]);
    await seedRepo(srv, 'bobby/hidden', { private: true });
  });
  after(async () => {
    restore();
    await srv?.destroy();
  });

  it('logs in and reads the caller and a profile', async () => {
    const info = await client.login(ALICE.username, ALICE.password);
    assert.equal(typeof info.token, 'string');
    assert.equal((await client.loggedInUser()).username, 'alice');
    const bob = await client.user(BOB.username);
    assert.equal(bob.username, 'bobby');
    assert.equal(bob.type, 'User');
    assert.ok(seen.includes('POST /v2/users/login/'), seen.join(', '));
  });

  it('reads repositories, tags (newest first) and an official image', async () => {
    const repo = await client.repository('alice', 'app');
    assert.equal(repo.name, 'app');
    assert.equal(repo.description, 'the app');
    const tags = await client.tags('alice', 'app', { page: 1, perPage: 2 });
    assert.deepEqual(tags.map((t) => t.name), ['latest', 'new']);
    const official = await client.repository('busybox');
    assert.equal(official.namespace, 'library');
    assert.deepEqual((await client.tags('busybox')).map((t) => t.name), ['latest']);
    const mine = await client.repositories('alice');
    assert.deepEqual(mine.results.map((r) => r.name), ['app']);
  });

  it('creates, describes and deletes a repository; deletes a tag', async () => {
    const created = await client.createRepository('alice', 'made-by-client', { description: 'short', full_description: 'long', is_private: false });
    assert.equal(created.name, 'made-by-client');
    const described = await client.setRepositoryDescription('alice', 'made-by-client', { short: 'new short', full: '# new long' });
    assert.equal(described.description, 'new short');
    assert.equal(described.full_description, '# new long');
    // setRepositoryPrivacy is not called: in 0.8.0 it throws a ReferenceError (`descriptions`
    // is not defined) before sending anything. POST …/privacy/ is tested over plain HTTP.
    await client.deleteTag('alice', 'app', 'old');
    assert.deepEqual((await client.tags('alice', 'app', { page: 1, perPage: 10 })).map((t) => t.name), ['latest', 'new']);
    await client.deleteRepository('alice', 'made-by-client');
    const gone = await client.repository('alice', 'made-by-client').then(
      () => assert.fail('expected an error'),
      (err: unknown) => hubErrorOf(err),
    );
    assert.match(gone.detail, /not found/i);
  });

  it('sees Hub errors as errors: unknown repository, another user\'s private repository', async () => {
    const unknown = await client.repository('alice', 'nothing').then(
      () => assert.fail('expected an error'),
      (err: unknown) => hubErrorOf(err),
    );
    assert.match(unknown.detail, /not found/i);
    const forbidden = await client.repository('bobby', 'hidden').then(
      () => assert.fail('expected an error'),
      (err: unknown) => hubErrorOf(err),
    );
    assert.match(forbidden.detail, /may not/i);
    // A wrong password: the library rejects the login.
    await assert.rejects(client.login('alice', 'not-the-password'));
  });
});
