/**
 * A client we did not write pulls what we pushed: the npm `docker-registry-client` v1
 * client (lib/registry-client-v1.js), the way it talks to a v1 registry:
 * `GET …/images` with `X-Docker-Token: true` opens the session (token and
 * `X-Docker-Endpoints` decide where and how the next calls go), then tags, tag → id,
 * ancestry, json and layer of every ancestor.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import drc, { type ClientError, type RegistryClientV1, type RepoImage } from 'docker-registry-client';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';
import { call, layerOf, silentLogger as silent } from '../helpers/third-party.js';
import { imageJson, payloadChecksum, pushChain, put, setTag, type TestImage } from '../helpers/v1.js';

interface Pushed {
  images: TestImage[];
  tags: Record<string, string>;
}

/**
 * Pushes a 3-image chain as docker 1.x does: push start (`PUT …/` with the id list),
 * every image parents first, the tags, push end (`PUT …/images` with checksums).
 */
async function pushRepo(base: string, repo: string): Promise<Pushed> {
  const root: TestImage = { id: newImageId(), layer: randomBytes(2048) };
  // An empty layer (docker makes them for metadata-only steps).
  const mid: TestImage = { id: newImageId(), parent: root.id, layer: Buffer.alloc(0) };
  // Exact JSON bytes with non-ASCII text and unusual spacing: must come back unchanged.
  const topId = newImageId();
  const top: TestImage = {
    id: topId,
    parent: mid.id,
    layer: randomBytes(700 * 1024 + 3),
    json: Buffer.from(`{"id": "${topId}", "parent": "${mid.id}",  "comment": "pulled by a client we did not write: é 🐳",\n "Size": 716803}`),
  };
  const images = [root, mid, top];

  let res = await put(`${base}/v1/repositories/${repo}/`, JSON.stringify(images.map((i) => ({ id: i.id }))), {
    'Content-Type': 'application/json',
    'X-Docker-Token': 'true',
  });
  assert.equal(res.status, 200, `push start: ${await res.text()}`);
  await pushChain(base, repo, 'latest', images);
  res = await setTag(base, repo, 'v1', mid.id);
  assert.equal(res.status, 200, `PUT tag v1: ${await res.text()}`);
  res = await put(
    `${base}/v1/repositories/${repo}/images`,
    JSON.stringify(images.map((i) => ({ id: i.id, checksum: payloadChecksum(imageJson(i), i.layer) }))),
    { 'Content-Type': 'application/json' },
  );
  assert.equal(res.status, 204, `push end: ${await res.text()}`);
  return { images, tags: { latest: top.id, v1: mid.id } };
}

/** Everything a pull by this client does, checked against what was pushed. */
async function pullAndCompare(client: RegistryClientV1, host: string, pushed: Pushed): Promise<void> {
  const ping = await call<unknown>((cb) => client.ping(cb));
  assert.equal(ping.res.statusCode, 200);
  assert.equal(ping.result, true);

  const list = await call<RepoImage[]>((cb) => client.listRepoImgs(cb));
  assert.equal(list.res.statusCode, 200);
  assert.equal(list.res.headers['x-docker-endpoints'], host, 'the Index points the client back at us');
  const byId = new Map(list.result.map((e) => [e.id, e.checksum]));
  assert.deepEqual([...byId.keys()].sort(), pushed.images.map((i) => i.id).sort());
  for (const image of pushed.images) {
    assert.equal(byId.get(image.id), payloadChecksum(imageJson(image), image.layer), `checksum of ${image.id}`);
  }

  const tags = await call<Record<string, string>>((cb) => client.listRepoTags(cb));
  assert.deepEqual(tags.result, pushed.tags);

  for (const [tag, id] of Object.entries(pushed.tags)) {
    const got = await call<string>((cb) => client.getImgId({ tag }, cb));
    assert.equal(got.result, id, `tag ${tag}`);
  }
  await assert.rejects(
    call((cb) => client.getImgId({ tag: 'missing' }, cb)),
    (err: ClientError) => err.statusCode === 404,
  );

  const top = pushed.images[pushed.images.length - 1];
  const ancestry = await call<string[]>((cb) => client.getImgAncestry({ imgId: top.id }, cb));
  assert.deepEqual(ancestry.result, [...pushed.images].reverse().map((i) => i.id));

  // The pull order of the docker CLI: oldest ancestor first.
  for (const id of [...ancestry.result].reverse()) {
    const image = pushed.images.find((i) => i.id === id);
    assert.ok(image, `ancestry lists only pushed images (${id})`);
    const json = await call<Record<string, unknown>>((cb) => client.getImgJson({ imgId: id }, cb));
    assert.equal(json.res.statusCode, 200);
    assert.equal(json.res.body, imageJson(image).toString('utf8'), `json of ${id} is byte-exact`);
    assert.deepEqual(json.result, JSON.parse(imageJson(image).toString('utf8')));
    assert.equal(json.res.headers['x-docker-size'], String(image.layer.length));

    const layer = await layerOf(client, id);
    assert.equal(layer.res.statusCode, 200);
    assert.equal(layer.res.headers['content-length'], String(image.layer.length));
    assert.equal(layer.bytes.length, image.layer.length, `layer size of ${id}`);
    assert.ok(layer.bytes.equals(image.layer), `layer bytes of ${id}`);
  }
}

describe('docker-registry-client (npm, v1) pulls what we pushed', { timeout: 20_000 }, () => {
  let srv: TestServer;
  let host: string;
  const clients: RegistryClientV1[] = [];
  const client = (name: string) => {
    const c = drc.createClientV1({ name: `${host}/${name}`, scheme: 'http', log: silent });
    clients.push(c);
    return c;
  };

  before(async () => {
    srv = await startTestServer();
    host = new URL(srv.url).host;
  });

  after(async () => {
    for (const c of clients) c.close();
    await srv.destroy();
  });

  it('a namespaced repository (ns/repo)', async () => {
    const pushed = await pushRepo(srv.url, 'ns/repo');
    const c = client('ns/repo');
    assert.equal(c.repo.remoteName, 'ns/repo');
    await pullAndCompare(c, host, pushed);
  });

  it('a single-name repository (library namespace), under both of its names', async () => {
    const pushed = await pushRepo(srv.url, 'busybox');
    const single = client('busybox');
    assert.equal(single.repo.remoteName, 'busybox', 'the client sends the single name as is');
    await pullAndCompare(single, host, pushed);
    await pullAndCompare(client('library/busybox'), host, pushed);
  });

  it('reports an unknown repository as not found', async () => {
    const c = client('ns/nothing-here');
    await assert.rejects(
      call((cb) => c.listRepoTags(cb)),
      (err: ClientError) => err.statusCode === 404,
    );
  });
});
