/**
 * Docker Hub API double, accounts and tokens: POST /v2/users/login and /v2/users/login/
 * (with ?refresh_token=true), the token accepted as `JWT <t>` and `Bearer <t>`, what makes
 * a token invalid (forged, expired, other algorithm, refresh used as access, account
 * disabled, password changed), GET /v2/user/, /v2/user/orgs/, /v2/users/:name/, Hub's
 * error shape, and that the Hub routes leave /v2/ and the v1 API alone.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { JwtService } from '../../src/services/jwt.js';
import { TokenService } from '../../src/services/tokens.js';
import type { TestServer } from '../helpers/server.js';
import { ADMIN, ALICE, assertHubError, basic, BOB, call, jwt, login, seedRepo, startHubServer } from './helpers.js';

function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('Hub API double: login and tokens', () => {
  let srv: TestServer;

  before(async () => {
    srv = await startHubServer();
  });
  after(async () => {
    await srv?.destroy();
  });

  for (const path of ['/v2/users/login', '/v2/users/login/']) {
    it(`POST ${path} answers a signed JWT with an expiry`, async () => {
      const res = await call(srv, path, { method: 'POST', body: ALICE });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(Object.keys(res.json), ['token']);
      const token = res.json.token as string;
      const [header] = token.split('.');
      assert.deepEqual(JSON.parse(Buffer.from(header, 'base64url').toString('utf8')), { alg: 'HS256', typ: 'JWT' });
      const claims = claimsOf(token);
      assert.equal(claims.username, 'alice');
      const now = Date.now() / 1000;
      assert.ok(typeof claims.exp === 'number' && claims.exp > now && claims.exp <= now + srv.config.token_ttl_seconds + 5);
    });
  }

  it('?refresh_token=true adds a refresh token, which buys a new access token but is not one', async () => {
    const res = await call(srv, '/v2/users/login/?refresh_token=true', { method: 'POST', body: ALICE });
    assert.equal(res.status, 200, res.text);
    assert.equal(typeof res.json.token, 'string');
    assert.equal(typeof res.json.refresh_token, 'string');
    assert.notEqual(res.json.refresh_token, res.json.token);
    assertHubError(await call(srv, '/v2/user/', { auth: jwt(res.json.refresh_token) }), 401, 'refresh token as access');
    const renewed = await call(srv, '/v2/users/login/', { method: 'POST', body: { refresh_token: res.json.refresh_token } });
    assert.equal(renewed.status, 200, renewed.text);
    const me = await call(srv, '/v2/user/', { auth: jwt(renewed.json.token) });
    assert.equal(me.status, 200, me.text);
    assert.equal(me.json.username, 'alice');
    assertHubError(await call(srv, '/v2/users/login/', { method: 'POST', body: { refresh_token: res.json.token } }), 401, 'access token as refresh');
  });

  it('the token works as "JWT <t>" and "Bearer <t>" (any case of the scheme)', async () => {
    const token = await login(srv, ALICE);
    for (const auth of [`JWT ${token}`, `Bearer ${token}`, `jwt ${token}`, `bearer ${token}`]) {
      const res = await call(srv, '/v2/user/', { auth });
      assert.equal(res.status, 200, `${auth.slice(0, 6)}: ${res.text}`);
      assert.equal(res.json.username, 'alice');
    }
  });

  it('login by e-mail, as on Hub', async () => {
    const res = await call(srv, '/v2/users/login/', { method: 'POST', body: { username: 'Alice@Example.test', password: ALICE.password } });
    assert.equal(res.status, 200, res.text);
    assert.equal(claimsOf(res.json.token).username, 'alice');
  });

  it('wrong password or unknown user: 401; missing fields or not JSON: 400; Hub error shape', async () => {
    assertHubError(await call(srv, '/v2/users/login/', { method: 'POST', body: { username: 'alice', password: 'wrong-one' } }), 401, 'wrong password');
    assertHubError(await call(srv, '/v2/users/login/', { method: 'POST', body: { username: 'nobody_here', password: 'whatever' } }), 401, 'unknown');
    assertHubError(await call(srv, '/v2/users/login/', { method: 'POST', body: { username: 'alice' } }), 400, 'no password');
    assertHubError(await call(srv, '/v2/users/login/', { method: 'POST', body: ['alice'] }), 400, 'a list');
    const raw = await fetch(`${srv.url}/v2/users/login/`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"username": ' });
    assertHubError({ status: raw.status, headers: raw.headers, text: '', json: await raw.json() }, 400, 'broken JSON');
    const res = await call(srv, '/v2/users/login/', { method: 'POST', body: { username: 'alice', password: 'wrong-one' } });
    assert.equal(res.json.detail, 'Incorrect authentication credentials.');
    assert.match(res.headers.get('www-authenticate') ?? '', /^JWT realm=/);
  });

  it('a forged, tampered, truncated, alg=none or expired token is 401, even on public data', async () => {
    const token = await login(srv, ALICE);
    const [h, p, s] = token.split('.');
    const otherPayload = Buffer.from(JSON.stringify({ ...claimsOf(token), username: 'hubadmin', sub: 'hubadmin' })).toString('base64url');
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const wrongKey = createHmac('sha256', 'not-the-secret').update(`${h}.${p}`).digest('base64url');
    // Signed with the real key (derived from the storage root's secret), but expired.
    const secret = TokenService.loadSecret(srv.root);
    const alice = (await srv.running.services.users.get('alice'))!;
    const expired = new JwtService(secret, 60, 60, () => Date.now() - 3600_000).issue(alice);
    const valid = new JwtService(secret, 60).issue(alice);
    assert.equal((await call(srv, '/v2/user/', { auth: jwt(valid) })).status, 200, 'the same key, not expired');
    const cases: Record<string, string> = {
      'other payload': `${h}.${otherPayload}.${s}`,
      'wrong key': `${h}.${p}.${wrongKey}`,
      truncated: `${h}.${p}`,
      'alg none': `${none}.${p}.`,
      'alg none, old signature': `${none}.${p}.${s}`,
      garbage: 'not-a-token',
      expired,
    };
    for (const [what, bad] of Object.entries(cases)) {
      assertHubError(await call(srv, '/v2/user/', { auth: jwt(bad) }), 401, what);
      assertHubError(await call(srv, '/v2/repositories/alice/', { auth: `Bearer ${bad}` }), 401, `${what} on public data`);
    }
    const res = await call(srv, '/v2/user/', { auth: jwt(expired) });
    assert.equal(res.json.detail, 'Signature has expired.');
    assertHubError(await call(srv, '/v2/user/', { auth: 'Token signature=abc' }), 401, 'an Index token scheme');
  });

  it('a disabled account or a changed password ends its tokens', async () => {
    await srv.running.services.users.upsert({ username: 'carol', password: 'carol-secret-1', email: 'carol@example.test', admin: false });
    const token = await login(srv, { username: 'carol', password: 'carol-secret-1' });
    assert.equal((await call(srv, '/v2/user/', { auth: jwt(token) })).status, 200);
    await srv.running.services.users.setActive('carol', false);
    assertHubError(await call(srv, '/v2/user/', { auth: jwt(token) }), 401, 'disabled');
    await srv.running.services.users.setActive('carol', true);
    assert.equal((await call(srv, '/v2/user/', { auth: jwt(token) })).status, 200, 'enabled again');
    await srv.running.services.users.update('carol', { password: 'carol-secret-2' });
    assertHubError(await call(srv, '/v2/user/', { auth: jwt(token) }), 401, 'password changed');
    const fresh = await login(srv, { username: 'carol', password: 'carol-secret-2' });
    assert.equal((await call(srv, '/v2/user/', { auth: jwt(fresh) })).status, 200);
  });

  it('tokens survive a restart (the key comes from the storage root)', async () => {
    const token = await login(srv, BOB);
    await srv.restart();
    const res = await call(srv, '/v2/user/', { auth: jwt(token) });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.username, 'bobby');
  });

  it('GET /v2/user/: the caller (also with Basic); anonymous is 401', async () => {
    const res = await call(srv, '/v2/user/', { auth: jwt(await login(srv, ADMIN)) });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.username, ADMIN.username);
    assert.equal(res.json.is_admin, true);
    assert.equal(typeof res.json.id, 'number');
    assert.match(res.json.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(res.json.email, undefined);
    const viaBasic = await call(srv, '/v2/user', { auth: basic(ALICE) });
    assert.equal(viaBasic.status, 200, viaBasic.text);
    assert.equal(viaBasic.json.username, 'alice');
    assertHubError(await call(srv, '/v2/user/', { auth: basic({ username: 'alice', password: 'nope-nope' }) }), 401, 'wrong Basic');
    const anon = await call(srv, '/v2/user/');
    assertHubError(anon, 401, 'anonymous');
    assert.equal(anon.json.detail, 'Authentication credentials were not provided.');
  });

  it('GET /v2/users/:name/: a public profile without the e-mail; unknown is 404', async () => {
    const res = await call(srv, '/v2/users/alice/');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.username, 'alice');
    assert.equal(res.json.type, 'User');
    assert.equal(res.json.email, undefined);
    assert.equal(res.json.is_admin, undefined);
    assert.equal((await call(srv, '/v2/users/alice')).status, 200, 'without the slash');
    assertHubError(await call(srv, '/v2/users/nobody_here/'), 404, 'unknown');
    assertHubError(await call(srv, '/v2/users/library/'), 404, 'library is not an account');
  });

  it('GET /v2/user/orgs/: empty for users; library and non-user namespaces for admins', async () => {
    await seedRepo(srv, 'library/busybox');
    await seedRepo(srv, 'acme-corp/tool');
    await seedRepo(srv, 'alice/app');
    const mine = await call(srv, '/v2/user/orgs/', { auth: jwt(await login(srv, ALICE)) });
    assert.equal(mine.status, 200, mine.text);
    assert.deepEqual(mine.json, { count: 0, next: null, previous: null, results: [] });
    const admin = await call(srv, '/v2/user/orgs/', { auth: jwt(await login(srv, ADMIN)) });
    assert.equal(admin.status, 200, admin.text);
    assert.deepEqual(admin.json.results.map((o: { orgname: string }) => o.orgname), ['acme-corp', 'library']);
    assert.equal(admin.json.count, 2);
    assertHubError(await call(srv, '/v2/user/orgs/'), 401, 'anonymous');
  });

  it('the Hub routes leave GET /v2/ (the Registry API v2 ping) and other /v2 paths to the v2 face, and v1 untouched', async () => {
    const v2 = (res: { json: { errors?: Array<{ code: string }> } }) => res.json?.errors?.[0]?.code;
    for (const path of ['/v2/', '/v2']) {
      const res = await call(srv, path);
      assert.equal(res.status, 401, `${path}: ${res.text}`);
      assert.equal(v2(res), 'UNAUTHORIZED', path);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm=/);
    }
    for (const path of ['/v2/library/nothing-here/tags/list', '/v2/usersx']) {
      const res = await call(srv, path);
      assert.equal(res.status, 404, `${path}: ${res.text}`);
      assert.equal(v2(res), 'NAME_UNKNOWN', path);
    }
    // The v1 routes still refuse Hub tokens (their own schemes only) and take Basic.
    const token = await login(srv, ALICE);
    assert.equal((await fetch(`${srv.url}/v1/users/`, { headers: { Authorization: `JWT ${token}` } })).status, 401);
    assert.equal((await fetch(`${srv.url}/v1/users/`, { headers: { Authorization: basic(ALICE) } })).status, 200);
  });

  it('unknown paths under the Hub prefixes are 404, other methods 405, in Hub shape', async () => {
    assertHubError(await call(srv, '/v2/repositories/a/b/c/d/'), 404, 'unknown path');
    assertHubError(await call(srv, '/v2/user/settings/'), 404, 'unknown user path');
    const put = await call(srv, '/v2/users/login/', { method: 'PUT', body: {} });
    assertHubError(put, 405, 'PUT login');
    assert.match(put.headers.get('allow') ?? '', /POST/);
    assertHubError(await call(srv, '/v2/repositories/alice/app/tags/', { method: 'POST', body: {} }), 405, 'POST tags');
  });
});
