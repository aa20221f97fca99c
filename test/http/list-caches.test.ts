/**
 * Tag lists, image lists and search answers are cached (the store's per-repository lists,
 * the services' answers, the serialized bodies). Every write that changes one must show
 * in the very next read, over HTTP: each test reads first (filling the caches), writes,
 * then reads again.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';
import { pushImage, put, setTag } from '../helpers/v1.js';

describe('cached lists see every write', () => {
  let srv: TestServer;
  const a = { id: newImageId(), layer: randomBytes(100) };
  const b = { id: newImageId(), parent: a.id, layer: randomBytes(100) };
  const c = { id: newImageId(), layer: randomBytes(100) };

  before(async () => {
    srv = await startTestServer({ overrides: { gc_grace_seconds: 0 } });
    for (const image of [a, b, c]) await pushImage(srv.url, image);
  });
  after(async () => {
    await srv.destroy();
  });

  async function get(path: string): Promise<{ status: number; body: unknown }> {
    const res = await fetch(`${srv.url}${path}`);
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }
  const tags = (repo: string) => get(`/v1/repositories/${repo}/tags`);
  const tag = (repo: string, name: string) => get(`/v1/repositories/${repo}/tags/${name}`);
  const images = async (repo: string) => {
    const res = await get(`/v1/repositories/${repo}/images`);
    assert.equal(res.status, 200);
    return res.body as Array<{ id: string; checksum?: string }>;
  };
  const ids = async (repo: string) => (await images(repo)).map((e) => e.id).sort();
  async function putImages(repo: string, list: unknown): Promise<void> {
    const res = await put(`${srv.url}/v1/repositories/${repo}/images`, JSON.stringify(list), { 'Content-Type': 'application/json' });
    assert.equal(res.status, 204, await res.text());
  }
  async function tagIt(repo: string, name: string, id: string): Promise<void> {
    const res = await setTag(srv.url, repo, name, id);
    assert.equal(res.status, 200, await res.text());
  }
  async function setProperties(repo: string): Promise<void> {
    const res = await put(`${srv.url}/v1/repositories/${repo}/properties`, JSON.stringify({ access: 'public' }), { 'Content-Type': 'application/json' });
    assert.equal(res.status, 200, await res.text());
  }
  async function del(path: string, status = 200): Promise<void> {
    const res = await fetch(`${srv.url}${path}`, { method: 'DELETE' });
    assert.equal(res.status, status, await res.text());
  }

  it('tag list and tag get: set, move, delete a tag; delete and re-create the repository', async () => {
    await tagIt('cache/tags', 'one', a.id);
    assert.deepEqual((await tags('cache/tags')).body, { one: a.id });
    assert.equal((await tag('cache/tags', 'two')).status, 404);

    await tagIt('cache/tags', 'two', b.id);
    assert.deepEqual((await tags('cache/tags')).body, { one: a.id, two: b.id });
    assert.deepEqual((await tag('cache/tags', 'two')).body, b.id);

    await tagIt('cache/tags', 'one', c.id);
    assert.deepEqual((await tags('cache/tags')).body, { one: c.id, two: b.id });
    assert.deepEqual((await tag('cache/tags', 'one')).body, c.id);
    // The short repository shape reads the same list (library/…).
    await tagIt('cache-short', 'x', a.id);
    assert.deepEqual((await tags('cache-short')).body, { x: a.id });
    assert.deepEqual((await tags('library/cache-short')).body, { x: a.id });
    await tagIt('library/cache-short', 'y', b.id);
    assert.deepEqual((await tags('cache-short')).body, { x: a.id, y: b.id });

    await del('/v1/repositories/cache/tags/tags/one');
    assert.deepEqual((await tags('cache/tags')).body, { two: b.id });
    assert.equal((await tag('cache/tags', 'one')).status, 404);

    await del('/v1/repositories/cache/tags/');
    assert.equal((await tags('cache/tags')).status, 404);
    assert.equal((await tag('cache/tags', 'two')).status, 404);
    // Re-created by a write that touches neither tags nor image lists: still no tags.
    await setProperties('cache/tags');
    assert.deepEqual((await tags('cache/tags')).body, {});

    await tagIt('cache/tags', 'three', a.id);
    assert.deepEqual((await tags('cache/tags')).body, { three: a.id });
    assert.equal((await tag('cache/tags', 'two')).status, 404);
  });

  it('image list: a merge, a new checksum, a tag, a tag delete, a repository delete', async () => {
    await putImages('cache/imglist', [{ id: a.id }]);
    assert.deepEqual(await ids('cache/imglist'), [a.id]);

    await putImages('cache/imglist', [{ id: c.id, checksum: 'sha256:given' }]);
    assert.deepEqual(await ids('cache/imglist'), [a.id, c.id].sort());
    assert.equal((await images('cache/imglist')).find((e) => e.id === c.id)?.checksum, 'sha256:given');

    await putImages('cache/imglist', [{ id: c.id, checksum: 'sha256:changed' }]);
    assert.equal((await images('cache/imglist')).find((e) => e.id === c.id)?.checksum, 'sha256:changed');

    // Tagging b links it (and its parent a) into the list.
    await tagIt('cache/imglist', 'latest', b.id);
    assert.deepEqual(await ids('cache/imglist'), [a.id, b.id, c.id].sort());

    // Deleting the only tag prunes the complete images no tag reaches.
    await del('/v1/repositories/cache/imglist/tags/latest');
    assert.deepEqual(await ids('cache/imglist'), []);

    await putImages('cache/imglist', [{ id: a.id }]);
    assert.deepEqual(await ids('cache/imglist'), [a.id]);
    await del('/v1/repositories/cache/imglist/');
    assert.equal((await get('/v1/repositories/cache/imglist/images')).status, 404);
    await setProperties('cache/imglist');
    assert.deepEqual(await ids('cache/imglist'), []);
    await putImages('cache/imglist', [{ id: c.id }]);
    assert.deepEqual(await ids('cache/imglist'), [c.id]);
  });

  it('image list: a listed image shows once its push completes', async () => {
    const d = { id: newImageId(), layer: randomBytes(100) };
    await putImages('cache/pending', [{ id: a.id }, { id: d.id }]);
    // d is listed but not pushed yet: not served.
    assert.deepEqual(await ids('cache/pending'), [a.id]);
    const json = await put(`${srv.url}/v1/images/${d.id}/json`, JSON.stringify({ id: d.id }), { 'Content-Type': 'application/json' });
    assert.equal(json.status, 200);
    assert.deepEqual(await ids('cache/pending'), [a.id], 'a pending image is not listed');
    await pushImage(srv.url, { ...d, json: Buffer.from(JSON.stringify({ id: d.id })) });
    assert.deepEqual(await ids('cache/pending'), [a.id, d.id].sort());
    // Its checksum comes from its layer when the list gave none.
    assert.match(String((await images('cache/pending')).find((e) => e.id === d.id)?.checksum), /^sha256:[0-9a-f]{64}$/);
  });

  it('image list: an admin detach and garbage collection', async () => {
    const e = { id: newImageId(), layer: randomBytes(100) };
    await pushImage(srv.url, e);
    await putImages('cache/detach', [{ id: e.id }, { id: c.id }]);
    assert.deepEqual(await ids('cache/detach'), [c.id, e.id].sort());
    await del(`/v1/images/${e.id}`);
    assert.deepEqual(await ids('cache/detach'), [c.id]);
    const gc = await fetch(`${srv.url}/_admin/gc`, { method: 'POST' });
    assert.equal(gc.status, 200);
    assert.ok(((await gc.json()) as { images: { deletedIds: string[] } }).images.deletedIds.includes(e.id));
    assert.deepEqual(await ids('cache/detach'), [c.id]);
    // Listed again after it is gone: not served until it is pushed again.
    await putImages('cache/detach', [{ id: e.id }]);
    assert.deepEqual(await ids('cache/detach'), [c.id]);
    await pushImage(srv.url, e);
    assert.deepEqual(await ids('cache/detach'), [c.id, e.id].sort());
  });

  it('search: new repositories, new descriptions, deleted repositories', async () => {
    const names = async (q: string) =>
      ((await get(`/v1/search?q=${encodeURIComponent(q)}`)).body as { results: Array<{ name: string; description: string }> }).results;
    assert.deepEqual(await names('zebracache'), []);
    await tagIt('zebracache/one', 'latest', a.id);
    assert.deepEqual((await names('zebracache')).map((r) => r.name), ['zebracache/one']);
    const empty = (await get('/v1/search?q=')).body as { num_results: number };

    const props = await put(`${srv.url}/v1/repositories/zebracache/one/properties`, JSON.stringify({ description: 'Striped Things' }), {
      'Content-Type': 'application/json',
    });
    assert.equal(props.status, 200);
    assert.deepEqual(await names('striped'), [{ name: 'zebracache/one', description: 'Striped Things', star_count: 0, is_official: false, is_automated: false, is_trusted: false }]);

    await tagIt('zebracache/two', 'latest', a.id);
    assert.deepEqual((await names('zebracache')).map((r) => r.name), ['zebracache/one', 'zebracache/two']);
    assert.equal(((await get('/v1/search?q=')).body as { num_results: number }).num_results, empty.num_results + 1);

    await del('/v1/repositories/zebracache/one/');
    assert.deepEqual((await names('zebracache')).map((r) => r.name), ['zebracache/two']);
    assert.deepEqual(await names('striped'), []);
    assert.equal(((await get('/v1/search?q=')).body as { num_results: number }).num_results, empty.num_results);
  });
});
