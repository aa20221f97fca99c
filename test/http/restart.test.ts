/**
 * Durability across a restart on the same storage root: everything a push made complete is
 * pulled back identical; incomplete uploads stay incomplete (and can be pushed again);
 * leftovers in <root>/tmp are removed at start.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { errorOf, rawRequest } from '../helpers/http-raw.js';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';
import { imageJson, payloadChecksum, pushChain, pushImage, setTag, type TestImage } from '../helpers/v1.js';

async function getBytes(url: string): Promise<{ status: number; body: Buffer; headers: Headers }> {
  const res = await fetch(url);
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url);
  assert.equal(res.status, 200, `${url}: ${res.status}`);
  return res.json();
}

describe('restart on the same storage root', () => {
  let srv: TestServer;
  let chain: TestImage[];
  let pending: TestImage;
  let pendingWithLayer: TestImage;
  const REPO = 'alice/durable';

  before(async () => {
    srv = await startTestServer();
    const a: TestImage = {
      id: newImageId(),
      layer: randomBytes(3 * 1024 * 1024 + 17),
      json: Buffer.from(' {"id": "PLACEHOLDER",\n "comment": "odd\\tspacing" }\n'),
    };
    a.json = Buffer.from(a.json!.toString().replace('PLACEHOLDER', a.id));
    const b: TestImage = { id: newImageId(), parent: a.id, layer: Buffer.alloc(0) };
    const c: TestImage = { id: newImageId(), parent: b.id, layer: randomBytes(4096) };
    chain = [a, b, c];
    await pushChain(srv.url, REPO, 'latest', chain);
    assert.equal((await setTag(srv.url, REPO, 'base', a.id, 'docker/1.5.0 go/go1.4 kernel/3.13.0 os/linux arch/amd64')).status, 200);
    assert.equal((await setTag(srv.url, 'busybox', 'latest', b.id)).status, 200);

    // Two unfinished pushes: json only, and json + layer without the checksum.
    pending = { id: newImageId(), parent: c.id, layer: randomBytes(500) };
    assert.equal((await rawRequest(`${srv.url}/v1/images/${pending.id}/json`, { method: 'PUT', body: imageJson(pending) })).status, 200);
    pendingWithLayer = { id: newImageId(), layer: randomBytes(700) };
    assert.equal((await rawRequest(`${srv.url}/v1/images/${pendingWithLayer.id}/json`, { method: 'PUT', body: imageJson(pendingWithLayer) })).status, 200);
    assert.equal((await rawRequest(`${srv.url}/v1/images/${pendingWithLayer.id}/layer`, { method: 'PUT', body: pendingWithLayer.layer })).status, 200);
  });
  after(async () => {
    await srv.destroy();
  });

  it('pulls back identical json bytes, layers, tags and ancestry after a restart', async () => {
    // What the running server serves, to compare with after the restart.
    const beforeRestart = await Promise.all(chain.map((img) => getBytes(`${srv.url}/v1/images/${img.id}/json`)));
    const oldUrl = srv.url;
    await srv.stop();
    await assert.rejects(fetch(`${oldUrl}/v1/_ping`), 'the server is really stopped');
    await srv.restart();

    assert.deepEqual(await getJson(`${srv.url}/v1/repositories/${REPO}/tags`), { base: chain[0].id, latest: chain[2].id });
    assert.equal(await getJson(`${srv.url}/v1/repositories/library/busybox/tags/latest`), chain[1].id);
    const [a, b, c] = chain;
    assert.deepEqual(await getJson(`${srv.url}/v1/images/${c.id}/ancestry`), [c.id, b.id, a.id]);
    assert.deepEqual(await getJson(`${srv.url}/v1/images/${b.id}/ancestry`), [b.id, a.id]);

    for (const [i, img] of chain.entries()) {
      const json = await getBytes(`${srv.url}/v1/images/${img.id}/json`);
      assert.equal(json.status, 200);
      assert.ok(json.body.equals(imageJson(img)), `json of image ${i} differs`);
      assert.ok(json.body.equals(beforeRestart[i].body));
      assert.equal(json.headers.get('x-docker-size'), String(img.layer.length));
      assert.equal(json.headers.get('x-docker-checksum-payload'), payloadChecksum(imageJson(img), img.layer));
      assert.equal(json.headers.get('x-docker-checksum-payload'), beforeRestart[i].headers.get('x-docker-checksum-payload'));

      const layer = await getBytes(`${srv.url}/v1/images/${img.id}/layer`);
      assert.equal(layer.status, 200);
      assert.equal(layer.body.length, img.layer.length);
      assert.ok(layer.body.equals(img.layer), `layer of image ${i} differs`);
    }

    const partial = await rawRequest(`${srv.url}/v1/images/${a.id}/layer`, { headers: { Range: 'bytes=1000-1999' } });
    assert.equal(partial.status, 206);
    assert.ok(partial.body.equals(a.layer.subarray(1000, 2000)));

    const info = (await getJson(`${srv.url}/v1/repositories/${REPO}/tags/base/json`)) as Record<string, unknown>;
    assert.equal(info.docker_version, '1.5.0');
    assert.equal(info.kernel, '3.13.0');
  });

  it('keeps unfinished uploads incomplete, and they can be finished or pushed again', async () => {
    await srv.restart();
    for (const img of [pending, pendingWithLayer]) {
      const res = await rawRequest(`${srv.url}/v1/images/${img.id}/json`);
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'Image is being uploaded, retry later');
    }
    // A complete image stays immutable across restarts.
    const again = await rawRequest(`${srv.url}/v1/images/${chain[0].id}/json`, { method: 'PUT', body: imageJson(chain[0]) });
    assert.equal(again.status, 409);

    // The layer recorded before the restart is still there: the checksum completes it.
    const sum = await rawRequest(`${srv.url}/v1/images/${pendingWithLayer.id}/checksum`, {
      method: 'PUT',
      headers: { 'X-Docker-Checksum-Payload': payloadChecksum(imageJson(pendingWithLayer), pendingWithLayer.layer) },
    });
    assert.equal(sum.status, 200, sum.body.toString());
    assert.ok((await getBytes(`${srv.url}/v1/images/${pendingWithLayer.id}/layer`)).body.equals(pendingWithLayer.layer));

    await pushImage(srv.url, pending);
    assert.deepEqual(await getJson(`${srv.url}/v1/images/${pending.id}/ancestry`), [pending.id, ...chain.map((i) => i.id).reverse()]);
  });

  it('removes files left in <root>/tmp at start', async () => {
    await srv.stop();
    const tmp = path.join(srv.root, 'tmp');
    const leftovers = ['0123456789abcdef01234567.upload', 'stray-file', 'half-dir'];
    await fs.writeFile(path.join(tmp, leftovers[0]), randomBytes(1024));
    await fs.writeFile(path.join(tmp, leftovers[1]), 'x');
    await fs.mkdir(path.join(tmp, leftovers[2]));
    await fs.writeFile(path.join(tmp, leftovers[2], 'inner'), 'y');
    assert.deepEqual((await fs.readdir(tmp)).sort(), [...leftovers].sort());

    await srv.restart();
    assert.deepEqual(await fs.readdir(tmp), []);
    // And the registry still serves what it had.
    const layer = await getBytes(`${srv.url}/v1/images/${chain[2].id}/layer`);
    assert.ok(layer.body.equals(chain[2].layer));
  });
});
