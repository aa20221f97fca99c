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
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import type { TestServer } from '../helpers/server.js';
import { ALICE, BOB, seedImage, seedRepo, seedTags, startHubServer } from './helpers.js';

/** The part of docker-hub-api the test uses (the package ships no types). */
interface DockerHubApi {
  login(username: string, password: string): Promise<{ token: string }>;
  setLoginToken(token: string | null): void;
  setCacheOptions(options: { enabled?: boolean; time?: number }): void;
  loggedInUser(): Promise<{ username: string }>;
  user(username: string): Promise<{ username: string; type: string }>;
  repository(username: string, name?: string): Promise<Record<string, unknown>>;
  repositories(username: string): Promise<{ count: number; results: Array<{ name: string }> }>;
  createRepository(username: string, name: string, details: Record<string, unknown>): Promise<Record<string, unknown>>;
  setRepositoryDescription(username: string, name: string, descriptions: { short?: string; full?: string }): Promise<Record<string, unknown>>;
  tags(username: string, name?: unknown, options?: { page?: number; perPage?: number }): Promise<Array<Record<string, unknown>>>;
  deleteTag(username: string, name: string, tag: string): Promise<void>;
  deleteRepository(username: string, name: string): Promise<void>;
  makeRequestParams(method: string, path: string, data?: unknown): { url: string; method: string; headers: Record<string, string> };
}

const PACKAGE = 'docker-hub-api';
const HUB_ORIGIN = 'https://hub.docker.com';

function loadClient(): DockerHubApi | null {
  try {
    return createRequire(import.meta.url)(PACKAGE) as DockerHubApi;
  } catch {
    return null;
  }
}

const api = loadClient();
const skip = api ? false : `${PACKAGE} is not installed (npm install --no-save ${PACKAGE}@0.8.0)`;

/** The library's error: `new Error(JSON.stringify(body))` for a body with `detail`. */
function hubErrorOf(err: unknown): { detail: string } {
  assert.ok(err instanceof Error, String(err));
  return JSON.parse(err.message) as { detail: string };
}

describe('third-party Hub client (docker-hub-api) against the double', { skip }, () => {
  let srv: TestServer;
  const client = api as DockerHubApi;
  let original: DockerHubApi['makeRequestParams'];
  const seen: string[] = [];

  before(async () => {
    srv = await startHubServer();
    original = client.makeRequestParams;
    client.makeRequestParams = function (this: DockerHubApi, method, path, data) {
      const params = original.call(this, method, path, data);
      if (!params.url.startsWith(`${HUB_ORIGIN}/`)) throw new Error(`unexpected URL ${params.url}`);
      params.url = srv.url + params.url.slice(HUB_ORIGIN.length);
      seen.push(`${method.toUpperCase()} ${params.url.slice(srv.url.length)}`);
      return params;
    };
    client.setCacheOptions({ enabled: false });
    client.setLoginToken(null);
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
    if (api) {
      client.makeRequestParams = original;
      client.setLoginToken(null);
    }
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
