/**
 * The session cookie: after a request authenticated by an Index token or Basic credentials,
 * `registry_session` (HMAC-signed with the registry secret, the same grant and expiry,
 * HttpOnly, SameSite=Strict, Path=/v1/, Secure over TLS) authorizes later requests that
 * carry it and no `Authorization`, as both reference servers' sessions do. Bad, forged and
 * expired cookies are ignored (never a 5xx) and never widen a grant.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { parseRepoPath } from '../../src/domain/names.js';
import { SessionCookies } from '../../src/http/shared/session.js';
import { KeyRing } from '../../src/services/keyring.js';
import { TokenService } from '../../src/services/tokens.js';
import { basicAuth, imageJsonOf, login, payloadChecksumOf, push, tokenAuth, type Credentials } from '../helpers/docker1.js';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';

interface Res {
  status: number;
  headers: Headers;
  text: string;
}

/** A cookie jar of one cookie, as a client's jar keeps it (name=value; attributes apart). */
interface Jar {
  cookie: string | null;
  /** The attributes of the last Set-Cookie, lower-cased names. */
  attributes: Map<string, string>;
}

function parseSetCookie(header: string): { pair: string; attributes: Map<string, string> } {
  const [pair, ...rest] = header.split(';').map((p) => p.trim());
  const attributes = new Map<string, string>();
  for (const attr of rest) {
    const eq = attr.indexOf('=');
    attributes.set((eq === -1 ? attr : attr.slice(0, eq)).toLowerCase(), eq === -1 ? '' : attr.slice(eq + 1));
  }
  return { pair, attributes };
}

describe('session cookie', () => {
  let srv: TestServer;
  const alice = { username: 'alice', password: 'alice-pass', email: 'alice@example.test' };
  const bob = { username: 'bobby', password: 'bobby-pass', email: 'bob@example.test' };
  const admin = { username: 'admin', password: 'adminpass' };

  /** A request; `jar` sends its cookie and keeps the one the answer sets. */
  async function req(method: string, path: string, opts: { jar?: Jar; auth?: string; body?: Buffer | string; headers?: Record<string, string> } = {}): Promise<Res> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.auth) headers.Authorization = opts.auth;
    if (opts.jar?.cookie) headers.Cookie = opts.jar.cookie;
    const res = await fetch(`${srv.url}${path}`, { method, headers, body: opts.body });
    const set = res.headers.get('Set-Cookie');
    if (set && opts.jar) {
      const { pair, attributes } = parseSetCookie(set);
      opts.jar.cookie = pair;
      opts.jar.attributes = attributes;
    }
    return { status: res.status, headers: res.headers, text: await res.text() };
  }
  const newJar = (): Jar => ({ cookie: null, attributes: new Map() });

  /** Push start with Basic (no X-Docker-Token header: the token comes anyway). */
  async function writeToken(repo: string, who: Credentials, jar?: Jar): Promise<string> {
    const res = await req('PUT', `/v1/repositories/${repo}/`, { auth: basicAuth(who), body: '{}', jar });
    assert.equal(res.status, 200, res.text);
    return res.headers.get('X-Docker-Token') as string;
  }

  before(async () => {
    srv = await startTestServer({ overrides: { standalone: false, admin_username: admin.username, admin_password: admin.password, token_ttl_seconds: 600 } });
    for (const user of [alice, bob]) assert.equal(await login(srv.url, user), 'created');
  });
  after(async () => {
    await srv?.destroy();
  });

  it('a push with a token, then the tag with only the cookie (the reference clients do that)', async () => {
    const repo = 'alice/tagged-by-cookie';
    const jar = newJar();
    const token = await writeToken(repo, alice, jar);
    const images = [{ id: newImageId(), layer: randomBytes(2000) }];
    for (const image of images) {
      const json = imageJsonOf(image);
      assert.equal((await req('PUT', `/v1/images/${image.id}/json`, { auth: tokenAuth(token), body: json, jar })).status, 200);
      assert.equal((await req('PUT', `/v1/images/${image.id}/layer`, { auth: tokenAuth(token), body: image.layer, jar })).status, 200);
      const sum = await req('PUT', `/v1/images/${image.id}/checksum`, { auth: tokenAuth(token), headers: { 'X-Docker-Checksum-Payload': payloadChecksumOf(json, image.layer) }, jar });
      assert.equal(sum.status, 200, sum.text);
    }
    // The cookie the token requests set: the token's grant and expiry.
    assert.match(jar.cookie ?? '', /^registry_session=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    assert.equal(jar.attributes.get('path'), '/v1/');
    assert.ok(jar.attributes.has('httponly'));
    assert.equal(jar.attributes.get('samesite'), 'Strict');
    assert.ok(!jar.attributes.has('secure'), 'plain HTTP: not Secure');
    const maxAge = Number(jar.attributes.get('max-age'));
    assert.ok(maxAge > 590 && maxAge <= 600, `Max-Age ${maxAge}: the token's remaining life`);
    assert.ok(jar.attributes.get('expires'), 'Expires too, for older jars');

    const tag = await req('PUT', `/v1/repositories/${repo}/tags/latest`, { body: JSON.stringify(images[0].id), jar });
    assert.equal(tag.status, 200, `the tag with the cookie alone: ${tag.text}`);
    assert.deepEqual(JSON.parse((await req('GET', `/v1/repositories/${repo}/tags`)).text), { latest: images[0].id });
    // Without the cookie the same request is anonymous.
    assert.equal((await req('PUT', `/v1/repositories/${repo}/tags/other`, { body: JSON.stringify(images[0].id) })).status, 401);
  });

  it('a cookie never widens its grant: the token repository and access, and Authorization wins over it', async () => {
    const repo = 'alice/narrow';
    const [image] = [{ id: newImageId(), layer: randomBytes(500) }];
    await push(srv.url, alice, repo, 'latest', [image]);
    await writeToken('alice/elsewhere', alice);
    // A read token's session: reads, never writes.
    const readJar = newJar();
    const pullStart = await req('GET', `/v1/repositories/${repo}/images`, { auth: basicAuth(alice) });
    const readToken = pullStart.headers.get('X-Docker-Token') as string;
    assert.equal((await req('GET', `/v1/repositories/${repo}/tags`, { auth: tokenAuth(readToken), jar: readJar })).status, 200);
    assert.ok(readJar.cookie);
    assert.equal((await req('GET', `/v1/repositories/${repo}/tags/latest`, { jar: readJar })).status, 200);
    assert.equal((await req('PUT', `/v1/repositories/${repo}/tags/x`, { body: JSON.stringify(image.id), jar: readJar })).status, 403, 'read grant: no tag');
    assert.equal((await req('DELETE', `/v1/repositories/${repo}/tags/latest`, { jar: readJar })).status, 403, 'read grant: no untag');
    // Another repository than the token's: refused.
    assert.equal((await req('PUT', `/v1/repositories/alice/elsewhere/tags/x`, { body: JSON.stringify(image.id), jar: readJar })).status, 403);
    assert.equal((await req('GET', `/v1/repositories/alice/elsewhere/tags`, { jar: readJar })).status, 403);
    // Authorization wins: a write cookie does not help a request that brings a read token.
    const writeJar = newJar();
    const write = await writeToken(repo, alice);
    assert.equal((await req('GET', `/v1/repositories/${repo}/tags`, { auth: tokenAuth(write), jar: writeJar })).status, 200);
    const both = await req('PUT', `/v1/repositories/${repo}/tags/x`, { auth: tokenAuth(readToken), body: JSON.stringify(image.id), headers: { Cookie: writeJar.cookie as string } });
    assert.equal(both.status, 403, both.text);
    // Nor does a cookie rescue bad credentials.
    const bad = await req('PUT', `/v1/repositories/${repo}/tags/x`, { auth: basicAuth({ ...alice, password: 'wrong-pass' }), body: JSON.stringify(image.id), headers: { Cookie: writeJar.cookie as string } });
    assert.equal(bad.status, 401, bad.text);
    assert.deepEqual(JSON.parse((await req('GET', `/v1/repositories/${repo}/tags`)).text), { latest: image.id }, 'nothing changed');
  });

  it('bad, forged and expired cookies are ignored: anonymous, never a 5xx', async () => {
    const repo = 'alice/forged';
    const [image] = [{ id: newImageId(), layer: randomBytes(500) }];
    await push(srv.url, alice, repo, 'latest', [image]);
    const jar = newJar();
    const token = await writeToken(repo, alice);
    assert.equal((await req('GET', `/v1/repositories/${repo}/tags`, { auth: tokenAuth(token), jar })).status, 200);
    const value = (jar.cookie as string).slice('registry_session='.length);
    const [payload, mac] = value.split('.');
    const flipped = mac.slice(0, -1) + (mac.endsWith('A') ? 'B' : 'A');
    const grant = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const widened = Buffer.from(JSON.stringify({ ...grant, r: 'bobby/app', a: 'delete' })).toString('base64url');
    const past = new SessionCookies(new KeyRing(TokenService.loadSecret(srv.root)), 600, () => Date.now() - 3_600_000);
    const expiredToken = new TokenService(TokenService.loadSecret(srv.root), 600, () => Date.now() - 3_600_000).issue(alice.username, parseRepoPath(repo), 'write');
    const expired = parseSetCookie(past.open({ kind: 'token', claims: new TokenService(TokenService.loadSecret(srv.root), 600, () => Date.now() - 3_600_000).verify(expiredToken) }, false)).pair;
    const otherSecret = parseSetCookie(new SessionCookies(new KeyRing(randomBytes(32)), 600).open({ kind: 'token', claims: new TokenService(TokenService.loadSecret(srv.root), 600).verify(token) }, false)).pair;
    const cases: Array<[string, string]> = [
      ['one character of the MAC changed', `registry_session=${payload}.${flipped}`],
      ['payload changed (another repository, delete)', `registry_session=${widened}.${mac}`],
      ['signed with another secret', otherSecret],
      ['expired', expired],
      ['the token itself as the cookie', `registry_session=${token}`],
      ['empty', 'registry_session='],
      ['no dot', `registry_session=${payload}`],
      ['not base64 JSON', `registry_session=!!!.${mac}`],
      ['huge', `registry_session=${'A'.repeat(9000)}.${mac}`],
      ['garbage header', ';;;=;registry_session'],
    ];
    for (const [what, cookie] of cases) {
      const write = await req('PUT', `/v1/repositories/${repo}/tags/evil`, { body: JSON.stringify(image.id), headers: { Cookie: cookie } });
      assert.equal(write.status, 401, `${what}: a write is anonymous: ${write.text}`);
      const read = await req('GET', `/v1/repositories/${repo}/tags`, { headers: { Cookie: cookie } });
      assert.equal(read.status, 200, `${what}: a public read still works`);
    }
    // The genuine cookie, next to other cookies, works.
    const genuine = await req('PUT', `/v1/repositories/${repo}/tags/ok`, { body: JSON.stringify(image.id), headers: { Cookie: `a=b; ${jar.cookie as string}; c=d` } });
    assert.equal(genuine.status, 200, genuine.text);
    assert.deepEqual(Object.keys(JSON.parse((await req('GET', `/v1/repositories/${repo}/tags`)).text)).sort(), ['latest', 'ok']);
  });

  it("a Basic session is the user's grant until the password changes or the account is disabled; not for accounts or admin routes", async () => {
    const carol = { username: 'carol', password: 'carol-pass', email: 'carol@example.test' };
    assert.equal(await login(srv.url, carol), 'created');
    const repo = 'carol/basic';
    const [image] = [{ id: newImageId(), layer: randomBytes(500) }];
    await push(srv.url, carol, repo, 'latest', [image]);
    const jar = newJar();
    assert.equal((await req('GET', '/v1/users/', { auth: basicAuth(carol), jar })).status, 200, 'docker login');
    assert.ok(jar.cookie, 'the login opened a session');
    assert.equal((await req('PUT', `/v1/repositories/${repo}/tags/v1`, { body: JSON.stringify(image.id), jar })).status, 200);
    assert.equal((await req('PUT', `/v1/repositories/${repo}/properties`, { body: JSON.stringify({ access: 'private' }), jar })).status, 200);
    assert.equal((await req('GET', `/v1/repositories/${repo}/tags`, { jar })).status, 200, 'her private repository, through the session');
    assert.equal((await req('GET', `/v1/images/${image.id}/json`, { jar })).status, 200);
    assert.equal((await req('GET', `/v1/repositories/${repo}/tags`)).status, 401);
    // Not another user's repository.
    await push(srv.url, alice, 'alice/not-carols', 'latest', [{ id: newImageId(), layer: randomBytes(10) }]);
    assert.equal((await req('PUT', '/v1/repositories/alice/not-carols/tags/x', { body: JSON.stringify(image.id), jar })).status, 403);
    // Accounts and admin routes need real credentials.
    assert.equal((await req('GET', '/v1/users/', { jar })).status, 401, 'a login check needs the password');
    assert.equal((await req('PUT', `/v1/users/${carol.username}/`, { body: JSON.stringify({ password: 'stolen-pass' }), jar })).status, 401);
    const adminJar = newJar();
    assert.equal((await req('GET', '/v1/users/', { auth: basicAuth(admin), jar: adminJar })).status, 200);
    assert.equal((await req('DELETE', `/v1/images/${image.id}`, { jar: adminJar })).status, 401, 'admin routes: no session');
    // A password change ends the session.
    assert.equal((await req('PUT', `/v1/users/${carol.username}/`, { auth: basicAuth(carol), body: JSON.stringify({ password: 'carol-new-pass' }) })).status, 204);
    assert.equal((await req('GET', `/v1/repositories/${repo}/tags`, { jar })).status, 401);
    // So does disabling the account (a fresh session of the new password first).
    const fresh = newJar();
    assert.equal((await req('GET', `/v1/repositories/${repo}/tags`, { auth: basicAuth({ ...carol, password: 'carol-new-pass' }), jar: fresh })).status, 200);
    assert.equal((await req('GET', `/v1/repositories/${repo}/tags`, { jar: fresh })).status, 200);
    await srv.running.services.users.setActive(carol.username, false);
    assert.equal((await req('GET', `/v1/repositories/${repo}/tags`, { jar: fresh })).status, 401);
    await srv.running.services.users.setActive(carol.username, true);
  });

  it('no session on cacheable image reads and the ping; Secure behind TLS', async () => {
    const repo = 'alice/cache';
    const [image] = [{ id: newImageId(), layer: randomBytes(500) }];
    await push(srv.url, alice, repo, 'latest', [image]);
    for (const [method, path] of [['GET', `/v1/images/${image.id}/json`], ['GET', `/v1/images/${image.id}/layer`], ['HEAD', `/v1/images/${image.id}/layer`], ['GET', `/v1/images/${image.id}/ancestry`], ['GET', '/v1/_ping']]) {
      const res = await req(method, path, { auth: basicAuth(alice) });
      assert.equal(res.status, 200, `${method} ${path}`);
      assert.equal(res.headers.get('Set-Cookie'), null, `${method} ${path}: no cookie with a public, cacheable answer`);
    }
    const tls = await req('GET', `/v1/repositories/${repo}/tags`, { auth: basicAuth(alice), headers: { 'X-Forwarded-Proto': 'https' } });
    assert.match(tls.headers.get('Set-Cookie') ?? '', /; Secure$/);
  });
});
