/**
 * OAuth access tokens on the registry's v1 routes (`Authorization: Bearer oat_…`): repo_read
 * pulls, repo_write pushes, tags and deletes, both within the user's own permissions;
 * repository settings, admin operations and account routes never; a token without a repo
 * scope is refused.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { parseRepoPath } from '../../src/domain/names.js';
import type { TestServer } from '../helpers/server.js';
import { imageJson, payloadChecksum } from '../helpers/v1.js';
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
