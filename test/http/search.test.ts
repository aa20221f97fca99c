/**
 * GET /v1/search?q=&n=&page= with authentication on (standalone: false): the envelope,
 * empty queries listing everything the caller may read, matching on names and
 * descriptions, paging, private repositories, and bad parameters.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { basicAuth, login, type Credentials } from '../helpers/docker1.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

interface SearchResult {
  name: string;
  description: string;
  star_count: number;
  is_official: boolean;
  is_automated: boolean;
}

interface SearchPage {
  query: string;
  num_results: number;
  num_pages: number;
  page: number;
  page_size: number;
  results: SearchResult[];
}

describe('GET /v1/search with authentication on', () => {
  let srv: TestServer;
  const alice = { username: 'alice', password: 'alice-pass', email: 'alice@example.test' };
  const bob = { username: 'bobby', password: 'bobby-pass', email: 'bob@example.test' };
  const carol = { username: 'carol', password: 'carol-pass', email: 'carol@example.test' };
  const admin = { username: 'admin', password: 'adminpass' };

  /** Every repository this suite creates: name, owner, description, private. */
  const fixtures: Array<{ repo: string; owner: Credentials; description?: string; private?: boolean }> = [
    { repo: 'alice/web-frontend', owner: alice, description: 'The Nginx front end of the shop' },
    { repo: 'alice/db', owner: alice, description: 'PostgreSQL database' },
    { repo: 'alice/secret-thing', owner: alice, description: 'internal nginx config', private: true },
    { repo: 'alice/hidden-tools', owner: alice, private: true },
    { repo: 'bobby/tools', owner: bob },
    { repo: 'library/nginx', owner: admin, description: 'Official build of Nginx.' },
    { repo: 'carol/pagetest-1', owner: carol },
    { repo: 'carol/pagetest-2', owner: carol },
    { repo: 'carol/pagetest-3', owner: carol },
    { repo: 'carol/pagetest-4', owner: carol, description: 'fourth' },
    { repo: 'carol/pagetest-5', owner: carol },
  ];
  const publicNames = () => fixtures.filter((f) => !f.private).map((f) => displayName(f.repo));

  function displayName(repo: string): string {
    return repo.startsWith('library/') ? repo.slice('library/'.length) : repo;
  }

  async function search(query: string, who?: Credentials): Promise<{ status: number; body: unknown; type: string }> {
    const res = await fetch(`${srv.url}/v1/search${query}`, { headers: who ? { Authorization: basicAuth(who) } : {} });
    const text = await res.text();
    return { status: res.status, body: JSON.parse(text), type: res.headers.get('Content-Type') ?? '' };
  }

  async function page(query: string, who?: Credentials): Promise<SearchPage> {
    const res = await search(query, who);
    assert.equal(res.status, 200, `GET /v1/search${query}: ${JSON.stringify(res.body)}`);
    assert.match(res.type, /^application\/json/);
    return res.body as SearchPage;
  }

  const names = (p: SearchPage) => p.results.map((r) => r.name).sort();

  async function put(path: string, who: Credentials, body: unknown) {
    const res = await fetch(`${srv.url}${path}`, {
      method: 'PUT',
      headers: { Authorization: basicAuth(who), 'Content-Type': 'application/json', 'X-Docker-Token': 'true' },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 200, `PUT ${path}: ${await res.text()}`);
  }

  before(async () => {
    srv = await startTestServer({ overrides: { standalone: false, admin_username: admin.username, admin_password: admin.password } });
    for (const user of [alice, bob, carol]) await login(srv.url, user);
    for (const f of fixtures) {
      // Push start creates the repository (public), as `docker push` does.
      await put(`/v1/repositories/${f.repo}/`, f.owner, []);
      if (f.description !== undefined) await put(`/v1/repositories/${f.repo}/properties`, f.owner, { description: f.description });
      if (f.private) await put(`/v1/repositories/${f.repo}/properties`, f.owner, { access: 'private' });
    }
  });
  after(async () => {
    await srv?.destroy();
  });

  it('answers the v1 envelope with typed results', async () => {
    const p = await page('?q=nginx');
    assert.deepEqual(Object.keys(p).sort(), ['num_pages', 'num_results', 'page', 'page_size', 'query', 'results']);
    assert.equal(p.query, 'nginx');
    assert.equal(p.page, 1);
    assert.equal(typeof p.page_size, 'number');
    assert.ok(p.page_size >= p.results.length);
    assert.equal(p.num_results, p.results.length);
    assert.equal(p.num_pages, 1);
    for (const r of p.results) {
      assert.equal(typeof r.name, 'string');
      assert.equal(typeof r.description, 'string');
      assert.equal(r.star_count, 0);
      assert.equal(typeof r.is_official, 'boolean');
      assert.equal(r.is_automated, false);
    }
    const official = p.results.find((r) => r.name === 'nginx');
    assert.ok(official, `library/nginx is listed as "nginx": ${JSON.stringify(p.results)}`);
    assert.equal(official.is_official, true);
    assert.equal(official.description, 'Official build of Nginx.');
    const shop = p.results.find((r) => r.name === 'alice/web-frontend');
    assert.ok(shop);
    assert.equal(shop.is_official, false);
    assert.equal(shop.description, 'The Nginx front end of the shop');
  });

  it('an empty query lists every repository the caller may read', async () => {
    const anonymous = await page('?q=');
    assert.deepEqual(names(anonymous), publicNames().sort());
    assert.equal(anonymous.num_results, publicNames().length);
    assert.equal(anonymous.query, '');
    // No q at all is the same.
    assert.deepEqual(names(await page('')), names(anonymous));
    // alice also sees her private ones; bob does not.
    assert.deepEqual(names(await page('?q=', alice)), [...publicNames(), 'alice/secret-thing', 'alice/hidden-tools'].sort());
    assert.deepEqual(names(await page('?q=', bob)), publicNames().sort());
    // The admin sees everything.
    assert.deepEqual(names(await page('?q=', admin)), fixtures.map((f) => displayName(f.repo)).sort());
  });

  it('a term matches names and descriptions, case-insensitively; every word must match', async () => {
    assert.deepEqual(names(await page('?q=nginx')), ['alice/web-frontend', 'nginx']);
    assert.deepEqual(names(await page('?q=NGINX')), ['alice/web-frontend', 'nginx']);
    assert.deepEqual(names(await page('?q=postgresql')), ['alice/db'], 'description only');
    assert.deepEqual(names(await page('?q=frontend')), ['alice/web-frontend'], 'name only');
    assert.deepEqual(names(await page('?q=nginx%20shop')), ['alice/web-frontend']);
    assert.deepEqual(names(await page('?q=tools')), ['bobby/tools']);
    const none = await page('?q=no-such-thing-anywhere');
    assert.deepEqual(none.results, []);
    assert.equal(none.num_results, 0);
    // A description set later is searched.
    assert.deepEqual(names(await page('?q=monitoring')), []);
    await put('/v1/repositories/bobby/tools/properties', bob, { description: 'Monitoring helpers' });
    const found = await page('?q=monitoring');
    assert.deepEqual(names(found), ['bobby/tools']);
    assert.equal(found.results[0].description, 'Monitoring helpers');
  });

  it('pages: n=2 over 5 matches is 3 pages, every repository seen once', async () => {
    const seen: string[] = [];
    for (const n of [1, 2, 3]) {
      const p = await page(`?q=pagetest&n=2&page=${n}`);
      assert.equal(p.num_results, 5);
      assert.equal(p.num_pages, 3);
      assert.equal(p.page, n);
      assert.equal(p.page_size, 2);
      assert.equal(p.results.length, n < 3 ? 2 : 1, `page ${n}`);
      seen.push(...p.results.map((r) => r.name));
    }
    assert.deepEqual(seen.sort(), [1, 2, 3, 4, 5].map((i) => `carol/pagetest-${i}`));
    const beyond = await page('?q=pagetest&n=2&page=4');
    assert.deepEqual(beyond.results, []);
    assert.equal(beyond.num_results, 5);
    // Without n, one page holds them all.
    const all = await page('?q=pagetest');
    assert.equal(all.results.length, 5);
    assert.equal(all.num_pages, 1);
  });

  it('private repositories appear only for their owner, collaborators and admins', async () => {
    const q = '?q=secret';
    assert.deepEqual(names(await page(q)), [], 'anonymous');
    assert.deepEqual(names(await page(q, bob)), [], 'another user');
    assert.deepEqual(names(await page(q, alice)), ['alice/secret-thing'], 'the owner');
    assert.deepEqual(names(await page(q, admin)), ['alice/secret-thing'], 'an admin');
    // A private description does not leak through a matching term either.
    assert.ok(!names(await page('?q=internal')).includes('alice/secret-thing'));
    // Counts do not leak it.
    assert.equal((await page('?q=alice')).num_results, 2);
    assert.equal((await page('?q=alice', alice)).num_results, 4);

    await put('/v1/repositories/alice/secret-thing/collaborators/bobby', alice, { permission: 'read' });
    assert.deepEqual(names(await page(q, bob)), ['alice/secret-thing'], 'a collaborator');
    assert.deepEqual(names(await page(q, carol)), [], 'still not carol');
    const revoke = await fetch(`${srv.url}/v1/repositories/alice/secret-thing/collaborators/bobby`, {
      method: 'DELETE',
      headers: { Authorization: basicAuth(alice) },
    });
    assert.equal(revoke.status, 200);
    assert.deepEqual(names(await page(q, bob)), [], 'revoked');
    // Wrong credentials are an error, not an anonymous search.
    assert.equal((await search(q, { ...alice, password: 'wrong-password' })).status, 401);
  });

  it('bad n or page: 400 with a JSON error', async () => {
    for (const query of ['?n=0', '?n=-1', '?n=abc', '?n=1.5', '?page=0', '?page=-2', '?page=x', '?q=a&n=2&page=1e3']) {
      const res = await search(query);
      assert.equal(res.status, 400, `${query}: ${JSON.stringify(res.body)}`);
      assert.equal(typeof (res.body as { error?: unknown }).error, 'string', query);
    }
    // A large n is capped rather than refused.
    const big = await page('?q=&n=1000');
    assert.ok(big.page_size <= 100 && big.page_size >= big.results.length, `page_size ${big.page_size}`);
    assert.equal(big.results.length, publicNames().length);
  });
});
