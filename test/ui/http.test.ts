/**
 * The web UI over plain HTTP (no browser): static files (Content-Type, ETag, caching, 304),
 * the paths it owns and the ones it leaves to the APIs, ui_enabled, its HTML error pages,
 * bad form posts, the login redirect, and a repository with 500 tags.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseRepoPath, parseTag } from '../../src/domain/names.js';
import type { ClientInfo } from '../../src/domain/records.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { ALICE, pushAs, startUiServer } from './helpers.js';

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

async function get(srv: TestServer, path: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(`${srv.url}${path}`, { redirect: 'manual', ...init });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** The CSRF cookie and token of a fresh login form. */
async function loginForm(srv: TestServer): Promise<{ cookie: string; token: string }> {
  const page = await get(srv, '/-/login');
  const set = page.headers.get('set-cookie') ?? '';
  const cookie = /registry_csrf=([^;]+)/.exec(set)?.[1];
  const token = /name="_csrf" value="([^"]+)"/.exec(page.text)?.[1];
  assert.ok(cookie && token, 'the login form gives a CSRF cookie and carries its token');
  assert.doesNotMatch(set, /registry_web_session/, 'no session before logging in');
  return { cookie, token };
}

describe('web UI over HTTP', () => {
  let srv: TestServer;

  before(async () => {
    srv = await startUiServer();
    await pushAs(srv, ALICE, 'alice/app', 'v1', [{ createdBy: 'echo', size: 100 }]);
  });

  after(async () => {
    await srv?.destroy();
  });

  test('static files: the Content-Type of their extension, a strong ETag, 304, a year of caching for hashed names', async () => {
    const page = await get(srv, '/');
    const links = [...page.text.matchAll(/(?:href|src)="(\/-\/static\/[^"]+)"/g)].map((m) => m[1]);
    assert.equal(links.length, 3, page.text.slice(0, 600));
    const types: Record<string, string> = { css: 'text/css; charset=utf-8', js: 'text/javascript; charset=utf-8', svg: 'image/svg+xml' };
    for (const link of links) {
      assert.match(link, /^\/-\/static\/[a-z]+\.[0-9a-f]{10}\.(css|js|svg)$/);
      const ext = link.split('.').pop()!;
      const res = await get(srv, link);
      assert.equal(res.status, 200, link);
      assert.equal(res.headers.get('content-type'), types[ext], link);
      assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable', link);
      const etag = res.headers.get('etag');
      assert.match(etag ?? '', /^"[0-9a-f]{64}"$/);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      const again = await get(srv, link, { headers: { 'If-None-Match': etag! } });
      assert.equal(again.status, 304);
      assert.equal(again.text, '');
      assert.equal((await get(srv, link, { headers: { 'If-None-Match': `W/${etag}` } })).status, 304);
      const head = await get(srv, link, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), res.headers.get('content-length'));
      // The plain name: the same bytes, revalidated every time.
      const plain = await get(srv, link.replace(/\.[0-9a-f]{10}\./, '.'));
      assert.equal(plain.status, 200);
      assert.equal(plain.text, res.text);
      assert.equal(plain.headers.get('cache-control'), 'no-cache');
      assert.equal(plain.headers.get('etag'), etag);
    }
    const missing = await get(srv, '/-/static/nothing.css');
    assert.equal(missing.status, 404);
    assert.match(missing.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal((await get(srv, '/-/static/..%2Fpackage.json')).status, 404);
  });

  test('pages: HTML, never cached, with the security headers; unknown UI paths get an HTML 404, wrong methods a 405', async () => {
    for (const path of ['/', '/-/r/alice/app', '/-/r/alice/app/tags/v1', '/-/login']) {
      const res = await get(srv, path);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8', path);
      assert.equal(res.headers.get('cache-control'), 'no-store', path);
      assert.match(res.headers.get('content-security-policy') ?? '', /^default-src 'none'; script-src 'self'/, path);
      assert.equal(res.headers.get('x-frame-options'), 'DENY', path);
      assert.match(res.text, /^<!doctype html>\n<html lang="en">/, path);
    }
    const unknown = await get(srv, '/-/no/such/page');
    assert.equal(unknown.status, 404);
    assert.match(unknown.text, /<h1>Not found<\/h1>/);
    assert.match(unknown.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    const method = await get(srv, '/', { method: 'DELETE' });
    assert.equal(method.status, 405);
    assert.match(method.headers.get('allow') ?? '', /GET/);
    assert.match(method.text, /<h1>Method not allowed<\/h1>/);
    assert.equal((await get(srv, '/-/r/alice/app', { method: 'HEAD' })).status, 200);
    const badName = await get(srv, '/-/r/alice/BAD..name');
    assert.equal(badName.status, 400);
    assert.match(badName.text, /Invalid repository name/);
    assert.equal((await get(srv, '/?page=0')).status, 400);
    // Confirmations come from a fixed list: nothing from the URL is echoed.
    assert.match((await get(srv, '/?done=repo-deleted')).text, /<p class="notice" role="status">Repository deleted\.<\/p>/);
    for (const done of ['constructor', '<script>', 'toString']) assert.doesNotMatch((await get(srv, `/?done=${encodeURIComponent(done)}`)).text, /class="notice"/);
  });

  test('the UI leaves the API paths alone and reads no Authorization header', async () => {
    const ping = await get(srv, '/v1/_ping');
    assert.equal(ping.status, 200);
    assert.match(ping.headers.get('content-type') ?? '', /application\/json/);
    // /v2/ is the Registry API v2's, not a page.
    const v2 = await get(srv, '/v2/');
    assert.equal(v2.headers.get('docker-distribution-api-version'), 'registry/2.0');
    assert.match(v2.headers.get('content-type') ?? '', /application\/json/);
    assert.equal(v2.headers.get('content-security-policy'), null);
    assert.equal((await get(srv, '/_status')).status, 200);
    assert.equal((await get(srv, '/v2/repositories/alice/')).status, 200);
    const search = await get(srv, '/v1/search?q=app');
    assert.equal(JSON.parse(search.text).results[0].name, 'alice/app');
    assert.equal((await get(srv, '/v1/nothing')).headers.get('content-security-policy'), null);
    // Credentials in a header do not sign anyone in to the UI (and bad ones do not break it).
    const basic = 'Basic ' + Buffer.from(`${ALICE.username}:${ALICE.password}`).toString('base64');
    const withBasic = await get(srv, '/', { headers: { Authorization: basic } });
    assert.equal(withBasic.status, 200);
    assert.doesNotMatch(withBasic.text, /Signed in as/);
    assert.equal((await get(srv, '/', { headers: { Authorization: 'Basic garbage' } })).status, 200);
  });

  test('bad form posts: not a form, too large, no session: 4xx pages', async () => {
    const { cookie, token } = await loginForm(srv);
    const headers = { Cookie: `registry_csrf=${cookie}` };
    const json = await get(srv, '/-/login', { method: 'POST', headers: { ...headers, 'Content-Type': 'application/json' }, body: '{}' });
    assert.equal(json.status, 400);
    assert.match(json.text, /Expected a form/);
    const big = await get(srv, '/-/login', {
      method: 'POST',
      headers: { ...headers, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: `_csrf=${token}&username=${'a'.repeat(70 * 1024)}`,
    });
    assert.equal(big.status, 413);
    assert.match(big.text, /<h1>Too large<\/h1>/);
    // Without its cookie the token is worth nothing.
    const noSession = await get(srv, '/-/logout', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `_csrf=${token}` });
    assert.equal(noSession.status, 403);
  });

  test('after logging in, only a path of this site is followed (no open redirect)', async () => {
    for (const [next, expected] of [
      ['/-/r/alice/app', '/-/r/alice/app'],
      ['https://attacker.example/', '/'],
      ['//attacker.example/', '/'],
      ['/\\attacker.example', '/'],
      ['/v1/_ping', '/'],
    ]) {
      const { cookie, token } = await loginForm(srv);
      const res = await get(srv, '/-/login', {
        method: 'POST',
        headers: { Cookie: `registry_csrf=${cookie}`, 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: token, next, username: ALICE.username, password: ALICE.password }).toString(),
      });
      assert.equal(res.status, 303, next);
      assert.equal(res.headers.get('location'), expected, next);
      const set = res.headers.get('set-cookie') ?? '';
      assert.match(set, /^registry_web_session=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+; /);
      assert.match(set, /; httponly/i);
      assert.match(set, /; samesite=lax/i);
      assert.match(set, /; path=\//i);
      const session = await srv.running.services.sessions.open(/registry_web_session=([^;]+)/.exec(set)?.[1]);
      assert.equal(session?.user.name, ALICE.username);
    }
  });

  test('a repository with 500 tags: every tag on its page', async () => {
    const name = parseRepoPath('alice/many');
    const image = await srv.running.services.repos.getTag(parseRepoPath('alice/app'), parseTag('v1'));
    for (let i = 0; i < 500; i++) await srv.running.services.repos.putTag(name, parseTag(`t${i}`), image, undefined, ALICE.username);
    const page = await get(srv, '/-/r/alice/many');
    assert.equal(page.status, 200);
    const rows = [...page.text.matchAll(/<th scope="row"><a href="\/-\/r\/alice\/many\/tags\/(t\d+)">/g)].map((m) => m[1]);
    assert.equal(rows.length, 500);
    // Pushed within the same seconds: newest first, then by name.
    const times = [...page.text.matchAll(/<td><time datetime="([^"]+)">/g)].map((m) => m[1]);
    assert.equal(times.length, 500);
    assert.deepEqual([...times].sort().reverse(), times, 'newest first');
  });
  test('a tag whose image is missing (what fsck calls dangling) does not break the page', async () => {
    const name = parseRepoPath('alice/dangling');
    const record = await srv.running.services.repos.ensure(name);
    const info: ClientInfo = { last_update: 1_700_000_000, docker_version: null, docker_go_version: null, arch: 'amd64', os: 'linux', kernel: null };
    await srv.running.services.meta.putTag(name, parseTag('gone'), { imageId: 'ab'.repeat(32) as never, info }, { ...record, lastTagInfo: info });
    const page = await get(srv, '/-/r/alice/dangling');
    assert.equal(page.status, 200);
    assert.match(page.text, /<td class="num"><span class="muted">unknown<\/span><\/td>/);
    assert.equal((await get(srv, '/-/r/alice/dangling/tags/gone')).status, 404);
  });

  test('the repository list comes 50 to a page, with links to the next and previous pages; private ones are not counted', async () => {
    for (let i = 0; i < 61; i++) {
      await srv.running.services.repos.setProperties(parseRepoPath(`pages/repo-${String(i).padStart(2, '0')}`), { access: i === 60 ? 'private' : 'public', description: 'paged' });
    }
    const first = await get(srv, '/?q=paged');
    assert.match(first.text, /60 repositories found/);
    assert.equal([...first.text.matchAll(/<th scope="row">/g)].length, 50);
    assert.match(first.text, /Page 1 of 2/);
    assert.match(first.text, /<a href="\/\?q=paged&#38;page=2" rel="next">Next page<\/a>/);
    const second = await get(srv, '/?q=paged&page=2');
    assert.equal([...second.text.matchAll(/<th scope="row">/g)].length, 10);
    assert.match(second.text, /<a href="\/\?q=paged&#38;page=1" rel="prev">Previous page<\/a>/);
    assert.doesNotMatch(first.text + second.text, /pages\/repo-60/);
    assert.equal((await get(srv, '/?q=paged&page=3')).status, 200);
  });
});

describe('web UI switched off (ui_enabled: false)', () => {
  let srv: TestServer;

  before(async () => {
    srv = await startTestServer({ overrides: { ui_enabled: false } });
  });

  after(async () => {
    await srv?.destroy();
  });

  test('/ and /-/… answer the API 404', async () => {
    for (const path of ['/', '/-/login', '/-/static/ui.css']) {
      const res = await get(srv, path);
      assert.equal(res.status, 404, path);
      assert.deepEqual(JSON.parse(res.text), { error: 'Not found' });
    }
    assert.equal((await get(srv, '/v1/_ping')).status, 200);
  });
});
