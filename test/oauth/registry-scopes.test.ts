/**
 * OAuth access tokens on the registry's v1 and Registry API v2 routes (`Authorization:
 * Bearer oat_…`): repo_read pulls, repo_write pushes, tags and deletes, both within the
 * user's own permissions; repository settings, admin operations and account routes never; a
 * token without a repo scope is refused. On v2 also with skopeo (`--registry-token`), a real
 * v2 client that sends the token as it is.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { parseRepoPath } from '../../src/domain/names.js';
import type { TestServer } from '../helpers/server.js';
import { imageJson, payloadChecksum } from '../helpers/v1.js';
import { digestOf, MEDIA, pushImageV2, v2ErrorOf } from '../helpers/v2.js';
import { hasSkopeo, skopeo } from '../client/helpers.js';
import { ADMIN, ALICE, basic, BOB, registerApp, startOAuthServer, tokensFor, type App } from './helpers.js';

let srv: TestServer;
let app: App;
const tokens: Record<string, string> = {};

async function v1(path: string, token: string | null, init: { method?: string; body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  if (token) headers.Authorization = token.startsWith('Basic ') ? token : `Bearer ${token}`;
  const res = await fetch(`${srv.url}${path}`, { method: init.method ?? 'GET', body: init.body, headers });
  return { status: res.status, text: await res.text() };
}

before(async () => {
  srv = await startOAuthServer();
  app = await registerApp(srv);
  tokens.read = (await tokensFor(app, 'repo_read')).access_token;
  tokens.write = (await tokensFor(app, 'repo_write')).access_token;
  tokens.profile = (await tokensFor(app, 'profile_read')).access_token;
  tokens.bobRead = (await tokensFor(app, 'repo_read', BOB)).access_token;
  tokens.adminWrite = (await tokensFor(app, 'repo_write profile_read', ADMIN)).access_token;
  const res = await v1('/v1/repositories/alice/secret/properties', basic(ALICE), { method: 'PUT', body: '{"access":"private"}', headers: { 'Content-Type': 'application/json' } });
  assert.equal(res.status, 200, res.text);
});

after(async () => {
  await srv.destroy();
});

describe('OAuth Bearer tokens on the v1 routes', () => {
  it('repo_write pushes an image into the own namespace (push start, json, layer, checksum, tag, push end); repo_read pulls it back', async () => {
    const id = randomBytes(32).toString('hex');
    const layer = randomBytes(2048);
    const json = imageJson({ id, layer });
    const jsonHeaders = { 'Content-Type': 'application/json' };
    const steps: Array<[string, string, string | Buffer | undefined, Record<string, string>]> = [
      ['PUT', '/v1/repositories/alice/app/', JSON.stringify([{ id }]), jsonHeaders],
      ['PUT', `/v1/images/${id}/json`, json, jsonHeaders],
      ['PUT', `/v1/images/${id}/layer`, layer, { 'Content-Type': 'application/octet-stream' }],
      ['PUT', `/v1/images/${id}/checksum`, undefined, { 'X-Docker-Checksum-Payload': payloadChecksum(json, layer) }],
      ['PUT', '/v1/repositories/alice/app/tags/latest', JSON.stringify(id), jsonHeaders],
      ['PUT', '/v1/repositories/alice/app/images', JSON.stringify([{ id, checksum: payloadChecksum(json, layer) }]), jsonHeaders],
    ];
    for (const [method, path, body, headers] of steps) {
      const res = await v1(path, tokens.write, { method, body, headers });
      assert.ok(res.status === 200 || res.status === 204, `${method} ${path}: ${res.status} ${res.text}`);
    }
    // A read-only token may not do any of it.
    const refused = await v1('/v1/repositories/alice/app/tags/other', tokens.read, { method: 'PUT', body: JSON.stringify(id), headers: jsonHeaders });
    assert.equal(refused.status, 403);
    assert.match(JSON.parse(refused.text).error, /needs repo_write/);

    assert.equal((await v1('/v1/repositories/alice/app/images', tokens.read)).status, 200);
    assert.equal(JSON.parse((await v1('/v1/repositories/alice/app/tags/latest', tokens.read)).text), id);
    assert.deepEqual(JSON.parse((await v1(`/v1/images/${id}/ancestry`, tokens.read)).text), [id]);
    const pulled = await fetch(`${srv.url}/v1/images/${id}/layer`, { headers: { Authorization: `Bearer ${tokens.read}` } });
    assert.equal(pulled.status, 200);
    assert.ok(Buffer.from(await pulled.arrayBuffer()).equals(layer));

    // repo_write also untags (within the user's permissions).
    const untagged = await v1('/v1/repositories/alice/app/tags/latest', tokens.write, { method: 'DELETE' });
    assert.equal(untagged.status, 200, untagged.text);
  });

  it("repo_read reads the user's private repository; another user's repo_read token is refused (403), as that user would be", async () => {
    assert.deepEqual(JSON.parse((await v1('/v1/repositories/alice/secret/tags', tokens.read)).text), {});
    assert.equal((await v1('/v1/repositories/alice/secret/tags', tokens.bobRead)).status, 403);
    assert.equal((await v1('/v1/repositories/alice/secret/tags', null)).status, 401);
  });

  it('repo_write stays within the user: no push into another namespace', async () => {
    const res = await v1('/v1/repositories/bobby/app/', tokens.write, { method: 'PUT', body: '[]', headers: { 'Content-Type': 'application/json' } });
    assert.equal(res.status, 403);
    assert.match(JSON.parse(res.text).error, /may not write bobby\/app/);
  });

  it('a token without a repo scope: 403 on the registry routes; search shows it only public data', async () => {
    assert.equal((await v1('/v1/repositories/alice/secret/tags', tokens.profile)).status, 403);
    const search = JSON.parse((await v1('/v1/search?q=secret', tokens.profile)).text) as { results: Array<{ name: string }> };
    assert.deepEqual(search.results, []);
    const withScope = JSON.parse((await v1('/v1/search?q=secret', tokens.read)).text) as { results: Array<{ name: string }> };
    assert.deepEqual(withScope.results.map((r) => r.name), ['alice/secret']);
  });

  it('never: repository settings and collaborators, admin operations (even for an admin), account routes', async () => {
    const jsonHeaders = { 'Content-Type': 'application/json' };
    const settings = await v1('/v1/repositories/alice/secret/properties', tokens.write, { method: 'PUT', body: '{"access":"public"}', headers: jsonHeaders });
    assert.equal(settings.status, 403);
    assert.match(JSON.parse(settings.text).error, /OAuth tokens may not/);
    assert.equal((await v1('/v1/repositories/alice/secret/collaborators', tokens.write)).status, 403);
    assert.equal((await v1('/_admin/gc?dry_run=true', tokens.adminWrite, { method: 'POST' })).status, 403);
    assert.equal((await v1('/v1/users/', tokens.write)).status, 401);
    const account = await v1('/v1/users/alice/', tokens.write, { method: 'PUT', body: '{"password":"taken-over-1"}', headers: jsonHeaders });
    assert.equal(account.status, 401);
    assert.equal((await srv.running.services.repos.get(parseRepoPath('alice/secret'))).access, 'private', 'nothing changed');
  });

  it('a bad or revoked Bearer token is 401 on the v1 routes, even on public data', async () => {
    assert.equal((await v1('/v1/search?q=x', 'oat_not-a-token')).status, 401);
    const unsupported = await v1('/v1/search?q=x', 'eyJ.e30.x');
    assert.equal(unsupported.status, 401);
    assert.match(JSON.parse(unsupported.text).error, /Unsupported authorization scheme/);
  });
});

describe('OAuth Bearer tokens on the Registry API v2 routes', () => {
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const get = (path: string, token: string | null, headers: Record<string, string> = {}) =>
    fetch(`${srv.url}${path}`, { headers: { ...headers, ...(token ? { Authorization: `Bearer ${token}` } : {}) } });

  it('repo_write pushes (blobs, manifest) into the own namespace; repo_read pulls it; the tag shows on v1', async () => {
    assert.equal((await get('/v2/', tokens.read)).status, 200, 'GET /v2/ with a token: logged in');
    const layer = randomBytes(1024);
    const image = await pushImageV2(srv.url, 'alice/v2app', 'latest', [layer], { auth: bearer(tokens.write) });
    const manifest = await get('/v2/alice/v2app/manifests/latest', tokens.read, { Accept: MEDIA.dockerManifest });
    assert.equal(manifest.status, 200);
    assert.equal(manifest.headers.get('docker-content-digest'), image.digest);
    assert.ok(Buffer.from(await manifest.arrayBuffer()).equals(image.manifest));
    const blob = await get(`/v2/alice/v2app/blobs/${digestOf(layer)}`, tokens.read);
    assert.equal(blob.status, 200);
    assert.ok(Buffer.from(await blob.arrayBuffer()).equals(layer));
    assert.deepEqual(await (await get('/v2/alice/v2app/tags/list', tokens.read)).json(), { name: 'alice/v2app', tags: ['latest'] });
    assert.equal((await v1('/v1/repositories/alice/v2app/tags', tokens.read)).status, 200);
  });

  it('repo_read may not push or delete (403 DENIED); repo_write deletes by digest', async () => {
    const layer = randomBytes(512);
    const image = await pushImageV2(srv.url, 'alice/v2del', 'one', [layer], { auth: bearer(tokens.write) });
    const upload = await fetch(`${srv.url}/v2/alice/v2del/blobs/uploads/`, { method: 'POST', headers: { Authorization: `Bearer ${tokens.read}` } });
    const refused = await v2ErrorOf(upload);
    assert.equal(refused.status, 403);
    assert.equal(refused.code, 'DENIED');
    assert.match(refused.message, /needs repo_write/);
    const readDelete = await fetch(`${srv.url}/v2/alice/v2del/manifests/${image.digest}`, { method: 'DELETE', headers: { Authorization: `Bearer ${tokens.read}` } });
    assert.equal(readDelete.status, 403);
    const deleted = await fetch(`${srv.url}/v2/alice/v2del/manifests/${image.digest}`, { method: 'DELETE', headers: { Authorization: `Bearer ${tokens.write}` } });
    assert.equal(deleted.status, 202);
    assert.equal((await get(`/v2/alice/v2del/manifests/${image.digest}`, tokens.read)).status, 404);
  });

  it("within the user's permissions: no push into another namespace; another user's token does not read a private repository", async () => {
    const other = await fetch(`${srv.url}/v2/bobby/v2app/blobs/uploads/`, { method: 'POST', headers: { Authorization: `Bearer ${tokens.write}` } });
    assert.equal(other.status, 403);
    assert.equal((await v2ErrorOf(other)).code, 'DENIED');
    assert.equal((await get('/v2/alice/secret/tags/list', tokens.read)).status, 200, "alice's token reads her private repository");
    const bob = await get('/v2/alice/secret/tags/list', tokens.bobRead);
    assert.ok(bob.status === 403 || bob.status === 404, `bob: ${bob.status}`);
    const catalog = (await (await get('/v2/_catalog', tokens.read)).json()) as { repositories: string[] };
    assert.ok(catalog.repositories.includes('alice/secret'));
    const bobCatalog = (await (await get('/v2/_catalog', tokens.bobRead)).json()) as { repositories: string[] };
    assert.ok(!bobCatalog.repositories.includes('alice/secret'));
  });

  it('a token without a repo scope reads nothing private and lists nothing private; bad or revoked: 401 with the Bearer challenge', async () => {
    const profile = await get('/v2/alice/secret/tags/list', tokens.profile);
    assert.equal(profile.status, 403);
    const catalog = (await (await get('/v2/_catalog', tokens.profile)).json()) as { repositories: string[] };
    assert.ok(!catalog.repositories.includes('alice/secret'));
    const bad = await get('/v2/alice/v2app/tags/list', 'oat_not-a-token');
    assert.equal(bad.status, 401);
    assert.equal((await v2ErrorOf(bad)).code, 'UNAUTHORIZED');
    assert.match(bad.headers.get('www-authenticate') ?? '', /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/v2\/token"/);
    const revoked = (await tokensFor(app, 'repo_read')).access_token;
    assert.equal((await get('/v2/alice/v2app/tags/list', revoked)).status, 200);
    const revoke = await fetch(`${srv.url}/api/v1.1/o/revoke_token/`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: revoked, client_id: app.client.client_id, client_secret: app.secret }).toString(),
    });
    assert.equal(revoke.status, 200, await revoke.text());
    assert.equal((await get('/v2/alice/v2app/tags/list', revoked)).status, 401);
  });

  it('skopeo with --registry-token: inspect and list-tags with repo_read, copy in with repo_write, refused with repo_read', { skip: hasSkopeo() ? false : 'skopeo is not installed (apt-get install skopeo)' }, async () => {
    const host = new URL(srv.url).host;
    const inspect = await skopeo(['inspect', '--tls-verify=false', '--registry-token', tokens.read, `docker://${host}/alice/v2app:latest`], 60_000);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.equal((JSON.parse(inspect.stdout) as { Layers: string[] }).Layers.length, 1);
    const copy = await skopeo(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--src-registry-token', tokens.read, '--dest-registry-token', tokens.write, `docker://${host}/alice/v2app:latest`, `docker://${host}/alice/v2copy:1`], 60_000);
    assert.equal(copy.code, 0, copy.stderr);
    const tags = await skopeo(['list-tags', '--tls-verify=false', '--registry-token', tokens.read, `docker://${host}/alice/v2copy`], 60_000);
    assert.equal(tags.code, 0, tags.stderr);
    assert.deepEqual((JSON.parse(tags.stdout) as { Tags: string[] }).Tags, ['1']);
    const refused = await skopeo(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--src-registry-token', tokens.read, '--dest-registry-token', tokens.read, `docker://${host}/alice/v2app:latest`, `docker://${host}/alice/v2copy:2`], 60_000);
    assert.notEqual(refused.code, 0, 'a repo_read token cannot push');
  });
});
