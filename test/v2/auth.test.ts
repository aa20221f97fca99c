/**
 * Registry API v2 authentication: the 401 challenge, the token realm (Basic, anonymous,
 * grant_type=password and refresh_token, several scopes), bearer tokens with exactly what
 * the user may do (the same accounts, private repositories, collaborators and admins as
 * v1), Basic straight on v2 routes, and every way a token stops working.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { rawRequest } from '../helpers/http-raw.js';
import { type TestServer } from '../helpers/server.js';
import { ADMIN, ALICE, BOB, startHubServer } from '../hub/helpers.js';
import { digestOf, pushBlob, pushImageV2, v2ErrorOf } from '../helpers/v2.js';

const basic = (u: { username: string; password: string }) => `Basic ${Buffer.from(`${u.username}:${u.password}`).toString('base64')}`;

interface TokenAnswer {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
}

function claimsOf(token: string): { sub: string; aud: string; exp: number; iat: number; access: Array<{ type: string; name: string; actions: string[] }> } {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

describe('Registry API v2: authentication and authorization', () => {
  let srv: TestServer;
  let realm: string;
  before(async () => {
    srv = await startHubServer();
    realm = `${srv.url}/v2/token`;
    // alice/private: private, bobby reads it; alice/public: public.
    await pushImageV2(srv.url, 'alice/private', 'v1', [randomBytes(100)], { auth: { authorization: basic(ALICE) } });
    await pushImageV2(srv.url, 'alice/public', 'v1', [randomBytes(100)], { auth: { authorization: basic(ALICE) } });
    const repos = srv.running.services.repos;
    const { parseRepoName } = await import('../../src/domain/names.js');
    await repos.setProperties(parseRepoName('alice', 'private'), { access: 'private' });
    await repos.setCollaborator(parseRepoName('alice', 'private'), BOB.username, 'read');
  });
  after(async () => {
    await srv.destroy();
  });

  async function token(scopes: string[], auth?: string, extra = ''): Promise<TokenAnswer> {
    const q = scopes.map((s) => `scope=${encodeURIComponent(s)}`).join('&');
    const res = await fetch(`${realm}?service=registry&${q}${extra}`, { headers: auth ? { Authorization: auth } : {} });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as TokenAnswer;
  }

  it('GET /v2/ anonymous: 401 UNAUTHORIZED with the Bearer challenge; with credentials: 200', async () => {
    const res = await fetch(`${srv.url}/v2/`);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), `Bearer realm="${realm}",service="registry"`);
    assert.equal((await v2ErrorOf(res)).code, 'UNAUTHORIZED');
    assert.equal((await fetch(`${srv.url}/v2/`, { headers: { Authorization: basic(ALICE) } })).status, 200);
    const t = await token([], basic(ALICE));
    assert.equal((await fetch(`${srv.url}/v2/`, { headers: { Authorization: `Bearer ${t.token}` } })).status, 200);
  });

  it('the realm grants, of what was asked, what the user may do; several scopes in one request', async () => {
    const t = await token(['repository:alice/private:pull,push,delete', 'repository:alice/public:pull', 'repository:bobby/x:push'], basic(BOB));
    assert.equal(t.token, t.access_token);
    assert.equal(t.expires_in, srv.config.token_ttl_seconds);
    assert.ok(Math.abs(Date.parse(t.issued_at) - Date.now()) < 60_000);
    const claims = claimsOf(t.token);
    assert.equal(claims.sub, 'bobby');
    assert.equal(claims.aud, 'registry');
    assert.deepEqual(claims.access, [
      { type: 'repository', name: 'alice/private', actions: ['pull'] },
      { type: 'repository', name: 'alice/public', actions: ['pull'] },
      { type: 'repository', name: 'bobby/x', actions: ['push'] },
    ]);
    const admin = claimsOf((await token(['repository:alice/private:*'], basic(ADMIN))).token);
    assert.deepEqual(admin.access, [{ type: 'repository', name: 'alice/private', actions: ['pull', 'push', 'delete'] }]);
  });

  it('anonymous: a pull-only token for public repositories, nothing for private ones', async () => {
    const t = await token(['repository:alice/public:pull,push', 'repository:alice/private:pull']);
    assert.deepEqual(claimsOf(t.token).access, [
      { type: 'repository', name: 'alice/public', actions: ['pull'] },
      { type: 'repository', name: 'alice/private', actions: [] },
    ]);
    const auth = { Authorization: `Bearer ${t.token}` };
    assert.equal((await fetch(`${srv.url}/v2/alice/public/manifests/v1`, { headers: auth })).status, 200);
    const denied = await fetch(`${srv.url}/v2/alice/private/manifests/v1`, { headers: auth });
    assert.equal(denied.status, 401);
    assert.equal(denied.headers.get('www-authenticate'), `Bearer realm="${realm}",service="registry",scope="repository:alice/private:pull",error="insufficient_scope"`);
    const push = await fetch(`${srv.url}/v2/alice/public/blobs/uploads/`, { method: 'POST', headers: auth });
    assert.equal(push.status, 401);
    assert.match(push.headers.get('www-authenticate') ?? '', /scope="repository:alice\/public:pull,push"/);
  });

  it('a private repository without credentials: 401 with the scope to ask for', async () => {
    const res = await fetch(`${srv.url}/v2/alice/private/tags/list`);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), `Bearer realm="${realm}",service="registry",scope="repository:alice/private:pull"`);
    // A public one is readable without a token at all.
    assert.equal((await fetch(`${srv.url}/v2/alice/public/tags/list`)).status, 200);
  });

  it('a push with a token: blobs, manifest; the tag shows on v1 too', async () => {
    const t = await token(['repository:bobby/app:pull,push'], basic(BOB));
    const auth = { authorization: `Bearer ${t.token}` };
    const image = await pushImageV2(srv.url, 'bobby/app', 'v1', [randomBytes(500)], { auth });
    const res = await rawRequest(`${srv.url}/v2/bobby/app/manifests/v1`, { headers: { Authorization: auth.authorization } });
    assert.ok(res.body.equals(image.manifest));
    const v1 = await fetch(`${srv.url}/v1/repositories/bobby/app/tags`, { headers: { Authorization: basic(BOB) } });
    assert.deepEqual(await v1.json(), { v1: digestOf(image.config).slice(7) });
    // The same token may not delete (not asked for).
    const del = await fetch(`${srv.url}/v2/bobby/app/manifests/v1`, { method: 'DELETE', headers: { Authorization: auth.authorization } });
    assert.equal(del.status, 401);
    assert.match(del.headers.get('www-authenticate') ?? '', /scope="repository:bobby\/app:delete",error="insufficient_scope"/);
  });

  it('read collaborators pull but do not push; other users get nothing; Basic works straight on v2 routes', async () => {
    assert.equal((await fetch(`${srv.url}/v2/alice/private/manifests/v1`, { headers: { Authorization: basic(BOB) } })).status, 200);
    const push = await fetch(`${srv.url}/v2/alice/private/blobs/uploads/`, { method: 'POST', headers: { Authorization: basic(BOB) } });
    assert.equal(push.status, 403);
    assert.equal((await v2ErrorOf(push)).code, 'DENIED');
    await srv.running.services.users.upsert({ username: 'carol', password: 'carol-secret-1', email: 'carol@example.test', admin: false });
    const carol = await fetch(`${srv.url}/v2/alice/private/manifests/v1`, { headers: { Authorization: basic({ username: 'carol', password: 'carol-secret-1' }) } });
    assert.equal(carol.status, 403);
    const wrong = await fetch(`${srv.url}/v2/alice/public/manifests/v1`, { headers: { Authorization: basic({ username: 'alice', password: 'wrong-password' }) } });
    assert.equal(wrong.status, 401, 'wrong credentials are refused even on public data');
  });

  it('POST realm: grant_type=password gives a refresh token (docker identity token); grant_type=refresh_token trades it', async () => {
    const form = (body: Record<string, string>) =>
      fetch(realm, { method: 'POST', body: new URLSearchParams(body), headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    const first = await form({ grant_type: 'password', username: 'alice', password: ALICE.password, service: 'registry', client_id: 'docker', access_type: 'offline', scope: 'repository:alice/private:pull' });
    assert.equal(first.status, 200);
    const a = (await first.json()) as TokenAnswer;
    assert.ok(a.refresh_token);
    assert.deepEqual(claimsOf(a.access_token).access, [{ type: 'repository', name: 'alice/private', actions: ['pull'] }]);
    const second = await form({ grant_type: 'refresh_token', refresh_token: a.refresh_token as string, service: 'registry', scope: 'repository:alice/private:pull,push' });
    assert.equal(second.status, 200);
    const b = (await second.json()) as TokenAnswer;
    assert.deepEqual(claimsOf(b.access_token).access, [{ type: 'repository', name: 'alice/private', actions: ['pull', 'push'] }]);
    assert.equal((await form({ grant_type: 'password', username: 'alice', password: 'nope-nope' })).status, 401);
    assert.equal((await form({ grant_type: 'refresh_token', refresh_token: b.access_token })).status, 401, 'an access token is no refresh token');
    assert.equal((await form({ grant_type: 'authorization_code' })).status, 400);
    // GET with offline_token=true (docker login) also hands out a refresh token.
    const login = await token([], basic(ALICE), '&offline_token=true&client_id=docker&account=alice');
    assert.ok(login.refresh_token);
  });

  it('tokens stop working: forged, expired, another service, the account disabled or its password changed', async () => {
    await srv.running.services.users.upsert({ username: 'dave', password: 'dave-secret-1', email: 'dave@example.test', admin: false });
    const dave = { username: 'dave', password: 'dave-secret-1' };
    await pushBlob(srv.url, 'dave/app', randomBytes(10), { authorization: basic(dave) });
    const t = (await token(['repository:dave/app:pull'], basic(dave))).token;
    const get = (tok: string) => fetch(`${srv.url}/v2/dave/app/tags/list`, { headers: { Authorization: `Bearer ${tok}` } });
    assert.notEqual((await get(t)).status, 401);
    const [h, p, sig] = t.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claimsOf(t), sub: 'hubadmin' })).toString('base64url')}.${sig}`;
    assert.equal((await get(forged)).status, 401);
    assert.equal((await get(`${h}.${p}.${sig.slice(0, -2)}xx`)).status, 401);
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.`;
    assert.equal((await get(none)).status, 401);
    const { RegistryTokenService } = await import('../../src/services/registry-tokens.js');
    const services = srv.running.services;
    const { TokenService } = await import('../../src/services/tokens.js');
    const { JwtService } = await import('../../src/services/jwt.js');
    const { KeyRing } = await import('../../src/services/keyring.js');
    const secret = TokenService.loadSecret(srv.root);
    const user = await services.users.get('dave');
    const old = new RegistryTokenService(new KeyRing(secret), 'registry', 60, services.access, services.users, new JwtService(secret, 60), () => Date.now() - 3600_000);
    assert.equal((await get((await old.issue({ user, service: 'registry', scopes: ['repository:dave/app:pull'], offline: false })).token)).status, 401, 'expired');
    const other = new RegistryTokenService(new KeyRing(secret), 'elsewhere', 60, services.access, services.users, new JwtService(secret, 60));
    assert.equal((await get((await other.issue({ user, service: 'elsewhere', scopes: ['repository:dave/app:pull'], offline: false })).token)).status, 401, 'another service');
    const hubToken = services.hub ? (await services.hub.login({ username: 'dave', password: dave.password }, false)).token : '';
    assert.equal((await get(hubToken)).status, 401, 'a Hub token is no registry token');
    await services.users.upsert({ username: 'dave', password: 'dave-secret-2', email: 'dave@example.test', admin: false });
    assert.equal((await get(t)).status, 401, 'password changed');
    const t2 = (await token(['repository:dave/app:pull'], basic({ username: 'dave', password: 'dave-secret-2' }))).token;
    await services.users.setActive('dave', false);
    assert.equal((await get(t2)).status, 401, 'account disabled');
    assert.equal((await fetch(`${realm}?service=registry`, { headers: { Authorization: basic({ username: 'dave', password: 'dave-secret-2' }) } })).status, 403);
  });

  it('the realm refuses another service; the catalog lists only what the caller may read', async () => {
    assert.equal((await fetch(`${realm}?service=elsewhere`, { headers: { Authorization: basic(ALICE) } })).status, 400);
    const list = async (auth?: string) => ((await (await fetch(`${srv.url}/v2/_catalog`, { headers: auth ? { Authorization: auth } : {} })).json()) as { repositories: string[] }).repositories;
    assert.ok(!(await list()).includes('alice/private'));
    assert.ok((await list()).includes('alice/public'));
    assert.ok((await list(basic(ALICE))).includes('alice/private'));
    const carol = basic({ username: 'carol', password: 'carol-secret-1' });
    assert.ok(!(await list(carol)).includes('alice/private'));
    const catalogToken = await token(['registry:catalog:*'], basic(BOB));
    assert.ok((await list(`Bearer ${catalogToken.token}`)).includes('alice/private'), 'bobby reads it');
  });
});
