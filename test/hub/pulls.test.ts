/**
 * Docker Hub API double, pull statistics from real v1 pulls: pull_count counts pull starts
 * (GET …/images answered 200), tag_last_pulled is set by GET …/tags/:tag for that tag and
 * by GET …/tags for every listed tag; HEAD and refused or failed requests count nothing;
 * a repository delete and a tag delete forget the statistics; who pushed a tag is kept.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { parseRepoPath } from '../../src/domain/names.js';
import { basicAuth, pull, push, type Docker1Image } from '../helpers/docker1.js';
import { newImageId, type TestServer } from '../helpers/server.js';
import { ALICE, BOB, call, eventually, jwt, login, startHubServer } from './helpers.js';

function chain(length: number): Docker1Image[] {
  const out: Docker1Image[] = [];
  for (let i = 0; i < length; i++) out.push({ id: newImageId(), ...(i > 0 ? { parent: out[i - 1].id } : {}), layer: randomBytes(1000 + i) });
  return out;
}

interface TagView {
  name: string;
  tag_last_pulled: string | null;
  last_updater_username: string;
  images: Array<{ last_pulled: string | null }>;
}

describe('Hub API double: pull statistics from v1 pulls', () => {
  let srv: TestServer;

  before(async () => {
    srv = await startHubServer();
  });
  after(async () => {
    await srv?.destroy();
  });

  const repoView = async (repo: string, auth?: string) => {
    const res = await call(srv, `/v2/repositories/${repo}/`, auth ? { auth } : {});
    assert.equal(res.status, 200, res.text);
    return res.json as { pull_count: number };
  };
  const tagsOf = async (repo: string, auth?: string): Promise<Map<string, TagView>> => {
    const res = await call(srv, `/v2/repositories/${repo}/tags/?page_size=100`, auth ? { auth } : {});
    assert.equal(res.status, 200, res.text);
    return new Map((res.json.results as TagView[]).map((t) => [t.name, t]));
  };
  const within = (iso: string | null, from: number, to: number, what: string) => {
    assert.ok(iso, `${what}: pulled`);
    const t = Date.parse(iso);
    assert.ok(t >= from - 5 && t <= to + 5, `${what}: ${iso} within the pull`);
  };

  it('a docker 1.x pull counts one pull and marks the tags it listed; a second pull counts again', async () => {
    const images = chain(2);
    await push(srv.url, ALICE, 'alice/web', 'latest', images);
    await push(srv.url, ALICE, 'alice/web', 'v1', images.slice(0, 1));
    assert.equal((await repoView('alice/web')).pull_count, 0);
    let tags = await tagsOf('alice/web');
    assert.equal(tags.get('latest')!.tag_last_pulled, null);

    const from = Date.now();
    const pulled = await pull(srv.url, null, 'alice/web', 'latest');
    const to = Date.now();
    assert.equal(pulled.id, images[1].id);
    assert.equal((await repoView('alice/web')).pull_count, 1);
    tags = await tagsOf('alice/web');
    // The pull read the full tag list (GET …/tags): every listed tag counts as pulled.
    within(tags.get('latest')!.tag_last_pulled, from, to, 'latest');
    within(tags.get('v1')!.tag_last_pulled, from, to, 'v1');
    assert.equal(tags.get('latest')!.images[0].last_pulled, tags.get('latest')!.tag_last_pulled);

    await pull(srv.url, ALICE, 'alice/web', 'v1');
    assert.equal((await repoView('alice/web')).pull_count, 2);
    // The repository list shows the same count.
    const list = await call(srv, '/v2/repositories/alice/');
    assert.equal(list.json.results.find((r: { name: string }) => r.name === 'web').pull_count, 2);
  });

  it('GET …/tags/:tag marks only that tag pulled and counts no repository pull', async () => {
    const images = chain(1);
    await push(srv.url, ALICE, 'alice/pick', 'a', images);
    await push(srv.url, ALICE, 'alice/pick', 'b', images);
    const from = Date.now();
    const res = await fetch(`${srv.url}/v1/repositories/alice/pick/tags/b`);
    assert.equal(res.status, 200, await res.text());
    const to = Date.now();
    const tags = await tagsOf('alice/pick');
    assert.equal(tags.get('a')!.tag_last_pulled, null);
    within(tags.get('b')!.tag_last_pulled, from, to, 'b');
    assert.equal((await repoView('alice/pick')).pull_count, 0);
    const one = await call(srv, '/v2/repositories/alice/pick/tags/b/');
    assert.equal(one.json.tag_last_pulled, tags.get('b')!.tag_last_pulled);
  });

  it('HEAD, unknown tags, refused and failed pulls count nothing', async () => {
    await push(srv.url, ALICE, 'alice/quiet', 'latest', chain(1));
    await srv.running.services.repos.setProperties(parseRepoPath('alice/quiet'), { access: 'private' });
    const alice = jwt(await login(srv, ALICE));
    const statuses = [
      (await fetch(`${srv.url}/v1/repositories/alice/quiet/images`, { method: 'HEAD', headers: { Authorization: basicAuth(ALICE) } })).status,
      (await fetch(`${srv.url}/v1/repositories/alice/quiet/tags/latest`, { method: 'HEAD', headers: { Authorization: basicAuth(ALICE) } })).status,
      (await fetch(`${srv.url}/v1/repositories/alice/quiet/images`)).status,
      (await fetch(`${srv.url}/v1/repositories/alice/quiet/images`, { headers: { Authorization: basicAuth(BOB) } })).status,
      (await fetch(`${srv.url}/v1/repositories/alice/quiet/tags`)).status,
      (await fetch(`${srv.url}/v1/repositories/alice/quiet/tags/nope`, { headers: { Authorization: basicAuth(ALICE) } })).status,
      (await fetch(`${srv.url}/v1/repositories/alice/nothing/images`, { headers: { Authorization: basicAuth(ALICE) } })).status,
    ];
    assert.deepEqual(statuses, [200, 200, 401, 403, 401, 404, 404]);
    assert.equal((await repoView('alice/quiet', alice)).pull_count, 0);
    assert.equal((await tagsOf('alice/quiet', alice)).get('latest')!.tag_last_pulled, null);
    // And a real one does count.
    await pull(srv.url, ALICE, 'alice/quiet', 'latest');
    assert.equal((await repoView('alice/quiet', alice)).pull_count, 1);
  });

  it('concurrent pulls are all counted', async () => {
    await push(srv.url, ALICE, 'alice/busy', 'latest', chain(1));
    await Promise.all(Array.from({ length: 12 }, () => fetch(`${srv.url}/v1/repositories/alice/busy/images`).then((r) => r.arrayBuffer())));
    assert.equal((await repoView('alice/busy')).pull_count, 12);
  });

  it('deleting a tag or the repository forgets its statistics; who pushed is kept per tag', async () => {
    const images = chain(1);
    await push(srv.url, ALICE, 'alice/again', 'latest', images);
    await pull(srv.url, null, 'alice/again', 'latest');
    assert.equal((await repoView('alice/again')).pull_count, 1);
    await eventually(async () => assert.equal((await tagsOf('alice/again')).get('latest')!.last_updater_username, 'alice'));

    // Tag deleted (v1) and pushed again: never pulled since.
    const del = await fetch(`${srv.url}/v1/repositories/alice/again/tags/latest`, { method: 'DELETE', headers: { Authorization: basicAuth(ALICE) } });
    assert.equal(del.status, 200, await del.text());
    await push(srv.url, ALICE, 'alice/again', 'latest', images);
    await eventually(async () => assert.equal((await tagsOf('alice/again')).get('latest')!.tag_last_pulled, null));

    // Repository deleted through the Hub API and pushed again: pull_count starts over.
    const alice = jwt(await login(srv, ALICE));
    assert.equal((await call(srv, '/v2/repositories/alice/again/', { method: 'DELETE', auth: alice })).status, 202);
    await eventually(async () => assert.equal((await srv.running.services.meta.getRepoPulls(parseRepoPath('alice/again'))), null));
    await push(srv.url, ALICE, 'alice/again', 'latest', images);
    assert.equal((await repoView('alice/again')).pull_count, 0);
    assert.equal((await tagsOf('alice/again')).get('latest')!.tag_last_pulled, null);
  });
});
