/**
 * Docker Hub API double, tags: GET /v2/repositories/:ns/:repo/tags(/) pagination over a
 * repository with 2,500 tags, walked to the end through `next` for page sizes 1, 7, 100 and
 * 1000 in every ordering (every tag exactly once, in the requested order), the envelope
 * (count, absolute next/previous keeping page_size and ordering, null at the ends),
 * page_size defaults, clamping and validation, and the tag object, GET and DELETE of one tag.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../../src/services/hub.js';
import type { TestServer } from '../helpers/server.js';
import { ALICE, assertHubError, BOB, call, jwt, login, seedImage, seedRepo, seedTags, startHubServer, walk, type SeededImage } from './helpers.js';

const TAG_COUNT = 2500;
const BASE_SECONDS = 1_700_000_000;
const REPO = 'alice/many';

/**
 * Tag names whose name order differs from their time order: tag i is pushed at a time
 * given by a permutation of i, so ordering by name and by last_updated disagree.
 */
function tagSet(): Array<{ name: string; seconds: number }> {
  const out: Array<{ name: string; seconds: number }> = [];
  for (let i = 0; i < TAG_COUNT; i++) {
    // 997 is prime to 2500: i → (i * 997) % 2500 is a permutation.
    out.push({ name: `v${String(i).padStart(4, '0')}`, seconds: BASE_SECONDS + ((i * 997) % TAG_COUNT) * 60 });
  }
  return out;
}

function expectedOrder(tags: Array<{ name: string; seconds: number }>, ordering: string): string[] {
  const sorted = [...tags];
  if (ordering === 'name') sorted.sort((a, b) => (a.name < b.name ? -1 : 1));
  if (ordering === 'last_updated') sorted.sort((a, b) => a.seconds - b.seconds);
  if (ordering === '-last_updated' || ordering === '') sorted.sort((a, b) => b.seconds - a.seconds);
  return sorted.map((t) => t.name);
}

describe('Hub API double: tags', () => {
  let srv: TestServer;
  let image: SeededImage;
  const tags = tagSet();

  before(async () => {
    srv = await startHubServer();
    const base = await seedImage(srv, { layerSize: 1000 });
    image = await seedImage(srv, { parent: base, layerSize: 300, arch: 'arm64' });
    await seedRepo(srv, REPO);
    await seedTags(srv, REPO, image, tags);
    await seedRepo(srv, 'alice/secret', { private: true });
    await seedTags(srv, 'alice/secret', image, [{ name: 'latest', seconds: BASE_SECONDS }]);
  });
  after(async () => {
    await srv?.destroy();
  });

  for (const pageSize of [1, 7, 100, 1000]) {
    // Page size 1 means 2,500 requests: one ordering is enough there; the others get all three.
    const orderings = pageSize === 1 ? ['last_updated'] : ['name', 'last_updated', '-last_updated'];
    for (const ordering of orderings) {
      it(`page_size=${pageSize} ordering=${ordering}: every tag exactly once, in order, to the end`, async () => {
        const first = `/v2/repositories/${REPO}/tags/?page_size=${pageSize}&ordering=${ordering}`;
        const pages = await walk(srv, first);
        assert.equal(pages.length, Math.ceil(TAG_COUNT / pageSize));
        const seen: string[] = [];
        pages.forEach((page, i) => {
          assert.equal(page.json.count, TAG_COUNT);
          const expectedLength = i < pages.length - 1 ? pageSize : TAG_COUNT - pageSize * (pages.length - 1);
          assert.equal(page.json.results.length, expectedLength, `page ${i + 1}`);
          if (i === 0) assert.equal(page.json.previous, null);
          else {
            const previous = new URL(page.json.previous);
            assert.equal(previous.searchParams.get('page'), String(i));
            assert.equal(previous.searchParams.get('page_size'), String(pageSize));
            assert.equal(previous.searchParams.get('ordering'), ordering);
          }
          if (page.json.next) {
            const next = new URL(page.json.next);
            assert.equal(next.origin, srv.url, 'absolute, same origin');
            assert.equal(next.pathname, `/v2/repositories/${REPO}/tags/`);
            assert.equal(next.searchParams.get('page_size'), String(pageSize));
            assert.equal(next.searchParams.get('ordering'), ordering);
            assert.equal(next.searchParams.get('page'), String(i + 2));
          }
          for (const tag of page.json.results) seen.push(tag.name);
        });
        assert.equal(pages[pages.length - 1].json.next, null);
        assert.equal(new Set(seen).size, TAG_COUNT, 'no tag twice');
        assert.deepEqual(seen, expectedOrder(tags, ordering));
      });
    }
  }

  it('defaults: page_size 10, newest first (-last_updated), /tags and /tags/ alike', async () => {
    const a = await call(srv, `/v2/repositories/${REPO}/tags`);
    const b = await call(srv, `/v2/repositories/${REPO}/tags/`);
    assert.equal(a.status, 200, a.text);
    assert.equal(a.json.results.length, DEFAULT_PAGE_SIZE);
    assert.deepEqual(a.json.results.map((t: { name: string }) => t.name), expectedOrder(tags, '-last_updated').slice(0, DEFAULT_PAGE_SIZE));
    assert.deepEqual(b.json.results, a.json.results);
    assert.equal(new URL(a.json.next).searchParams.get('page'), '2');
  });

  it('previous links back and keeps the parameters', async () => {
    const res = await call(srv, `/v2/repositories/${REPO}/tags/?page=3&page_size=100&ordering=name`);
    assert.equal(res.status, 200, res.text);
    const previous = new URL(res.json.previous);
    assert.equal(previous.searchParams.get('page'), '2');
    assert.equal(previous.searchParams.get('page_size'), '100');
    assert.equal(previous.searchParams.get('ordering'), 'name');
    const back = await call(srv, res.json.previous);
    assert.deepEqual(back.json.results.map((t: { name: string }) => t.name), expectedOrder(tags, 'name').slice(100, 200));
  });

  it(`page_size above ${MAX_PAGE_SIZE} is clamped`, async () => {
    const res = await call(srv, `/v2/repositories/${REPO}/tags/?page_size=100000&ordering=name`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.results.length, MAX_PAGE_SIZE);
    assert.equal(res.json.count, TAG_COUNT);
    assert.ok(res.json.next);
  });

  it('a page_size or page that is not a positive number is 400; a page past the end is 404', async () => {
    for (const query of ['page_size=abc', 'page_size=0', 'page_size=-5', 'page_size=1.5', 'page=zero', 'page=0']) {
      assertHubError(await call(srv, `/v2/repositories/${REPO}/tags/?${query}`), 400, query);
    }
    assertHubError(await call(srv, `/v2/repositories/${REPO}/tags/?page=4&page_size=1000`), 404, 'past the end');
    // page 3 of 1000 is the last, partial page.
    const last = await call(srv, `/v2/repositories/${REPO}/tags/?page=3&page_size=1000`);
    assert.equal(last.json.results.length, 500);
    assert.equal(last.json.next, null);
  });

  it('behind a TLS front that answers for hub.docker.com, next and previous use its origin', async () => {
    // What a tool that hard-codes hub.docker.com sees through a hosts entry and a TLS proxy
    // (notes/hub.md): the proxy keeps the Host header and says https in X-Forwarded-Proto.
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.get(
        `${srv.url}/v2/repositories/${REPO}/tags/?page=2&page_size=5`,
        { headers: { Host: 'hub.docker.com', 'X-Forwarded-Proto': 'https' } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve(text));
        },
      );
      req.on('error', reject);
    });
    const page = JSON.parse(body) as { next: string; previous: string };
    assert.equal(page.next, `https://hub.docker.com/v2/repositories/${REPO}/tags/?page=3&page_size=5`);
    assert.equal(page.previous, `https://hub.docker.com/v2/repositories/${REPO}/tags/?page=1&page_size=5`);
    // Without the proxy header, the scheme the client used; a Host that is not a host name
    // is replaced by the local address.
    const plain = await call(srv, `/v2/repositories/${REPO}/tags/?page_size=5`, { headers: { 'X-Forwarded-Proto': 'gopher' } });
    assert.equal(new URL(plain.json.next).origin, srv.url);
  });

  it('an unknown ordering falls back to the default, as Hub ignores unknown fields', async () => {
    const res = await call(srv, `/v2/repositories/${REPO}/tags/?ordering=size&page_size=5`);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.results.map((t: { name: string }) => t.name), expectedOrder(tags, '-last_updated').slice(0, 5));
  });

  it('the tag object has the fields Hub clients read', async () => {
    const res = await call(srv, `/v2/repositories/${REPO}/tags/v0001/`);
    assert.equal(res.status, 200, res.text);
    const tag = res.json;
    const pushed = new Date((BASE_SECONDS + 997 * 60) * 1000).toISOString();
    assert.equal(tag.name, 'v0001');
    assert.equal(typeof tag.id, 'number');
    assert.equal(typeof tag.repository, 'number');
    assert.equal(typeof tag.creator, 'number');
    assert.equal(tag.last_updated, pushed);
    assert.equal(tag.tag_last_pushed, pushed);
    assert.equal(tag.tag_last_pulled, null);
    assert.equal(tag.full_size, 1300, 'the layers of the whole ancestry');
    assert.equal(tag.digest, image.digest);
    assert.equal(tag.tag_status, 'active');
    assert.equal(tag.last_updater_username, 'alice', 'seeded without a push event: the namespace');
    assert.deepEqual(
      tag.images.map((i: Record<string, unknown>) => [i.architecture, i.os, i.digest, i.size, i.status, i.last_pushed]),
      [['arm64', 'linux', image.digest, 1300, 'active', pushed]],
    );
    // The same object in the list.
    const listed = await call(srv, `/v2/repositories/${REPO}/tags/?ordering=name&page_size=2`);
    assert.deepEqual(listed.json.results[1], tag);
  });

  it('unknown repository or tag: 404 in Hub shape; invalid names: 400', async () => {
    assertHubError(await call(srv, '/v2/repositories/alice/nothing/tags/'), 404, 'unknown repository');
    assertHubError(await call(srv, `/v2/repositories/${REPO}/tags/nope/`), 404, 'unknown tag');
    assertHubError(await call(srv, '/v2/repositories/alice/nothing/tags/latest/'), 404, 'tag of an unknown repository');
    assertHubError(await call(srv, `/v2/repositories/${REPO}/tags/.bad/`), 400, 'invalid tag');
    assertHubError(await call(srv, '/v2/repositories/ALICE/x/tags/'), 400, 'invalid namespace');
  });

  it("another user's private repository: 401 anonymous, 403 signed in, 200 owner", async () => {
    assertHubError(await call(srv, '/v2/repositories/alice/secret/tags/'), 401, 'anonymous');
    assertHubError(await call(srv, '/v2/repositories/alice/secret/tags/latest/'), 401, 'anonymous');
    const bob = jwt(await login(srv, BOB));
    assertHubError(await call(srv, '/v2/repositories/alice/secret/tags/', { auth: bob }), 403, 'bob');
    assertHubError(await call(srv, '/v2/repositories/alice/secret/tags/latest/', { auth: bob }), 403, 'bob');
    const alice = jwt(await login(srv, ALICE));
    const res = await call(srv, '/v2/repositories/alice/secret/tags/', { auth: alice });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.results.map((t: { name: string }) => t.name), ['latest']);
  });

  it('DELETE a tag: 401 anonymous, 403 without write, 204 for the owner, then 404', async () => {
    await seedRepo(srv, 'alice/deltags');
    await seedTags(srv, 'alice/deltags', image, [
      { name: 'keep', seconds: BASE_SECONDS },
      { name: 'gone', seconds: BASE_SECONDS + 1 },
    ]);
    const path = '/v2/repositories/alice/deltags/tags/gone/';
    assertHubError(await call(srv, path, { method: 'DELETE' }), 401, 'anonymous');
    assertHubError(await call(srv, path, { method: 'DELETE', auth: jwt(await login(srv, BOB)) }), 403, 'bob');
    const alice = jwt(await login(srv, ALICE));
    const res = await call(srv, path, { method: 'DELETE', auth: alice });
    assert.equal(res.status, 204, res.text);
    assertHubError(await call(srv, path), 404, 'deleted tag');
    assertHubError(await call(srv, path, { method: 'DELETE', auth: alice }), 404, 'deleted twice');
    // The v1 registry sees the same data.
    const v1 = await fetch(`${srv.url}/v1/repositories/alice/deltags/tags`);
    assert.deepEqual(Object.keys((await v1.json()) as Record<string, string>), ['keep']);
  });
});
