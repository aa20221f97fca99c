/**
 * Three nodes on one PostgreSQL and one S3 bucket: a push split across them completes and
 * every node pulls it back byte for byte; two nodes writing the same image or the same
 * upload session get the answer two requests on one node get (one writer: a keyed lock in
 * PostgreSQL).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { ImageId } from '../../src/domain/names.js';
import { useEngines } from '../helpers/engines.js';
import { eventually } from '../helpers/eventually.js';
import { openUpload } from '../helpers/http-raw.js';
import { imageJson, payloadChecksum, put, setTag } from '../helpers/v1.js';
import { digestOf, imageConfig, imageManifest, MEDIA, putManifest, v2ErrorOf } from '../helpers/v2.js';
import { assertFsckClean, chainOf, openBody, pullV1, pullV2, startCluster, type Cluster } from './cluster.js';

const engines = useEngines();

describe('a push split across three nodes', () => {
  let cluster: Cluster;
  let a: string, b: string, c: string;

  before(async () => {
    cluster = await startCluster(engines, 3);
    [a, b, c] = cluster.nodes.map((n) => n.url);
  });
  after(async () => {
    await cluster?.close();
  });

  it('v1: push start on A, json on A, layer on B, checksum on C, tag on A, push end on C; every node pulls it byte-exact', async () => {
    const images = chainOf(3);
    const repo = 'split/v1';
    let res = await put(`${a}/v1/repositories/${repo}/`, JSON.stringify(images.map((i) => ({ id: i.id }))), { 'Content-Type': 'application/json' });
    assert.ok(res.status === 200 || res.status === 201, `push start: ${res.status} ${await res.text()}`);
    for (const image of images) {
      const json = imageJson(image);
      res = await put(`${a}/v1/images/${image.id}/json`, json, { 'Content-Type': 'application/json' });
      assert.equal(res.status, 200, `json on A: ${await res.text()}`);
      res = await put(`${b}/v1/images/${image.id}/layer`, image.layer, { 'Content-Type': 'application/octet-stream' });
      assert.equal(res.status, 200, `layer on B: ${await res.text()}`);
      // Not complete yet: no node serves it.
      assert.equal((await fetch(`${c}/v1/images/${image.id}/json`)).status, 400);
      res = await put(`${c}/v1/images/${image.id}/checksum`, undefined, { 'X-Docker-Checksum-Payload': payloadChecksum(json, image.layer) });
      assert.equal(res.status, 200, `checksum on C: ${await res.text()}`);
    }
    res = await setTag(a, repo, 'latest', images[2].id);
    assert.equal(res.status, 200, `tag on A: ${await res.text()}`);
    res = await put(`${c}/v1/repositories/${repo}/images`, JSON.stringify(images.map((i) => ({ id: i.id }))), { 'Content-Type': 'application/json' });
    assert.ok(res.status === 200 || res.status === 204, `push end on C: ${res.status} ${await res.text()}`);
    for (const node of [a, b, c]) await pullV1(node, repo, 'latest', images);
  });

  it('v2: session started on A, chunks on B and C, closed on A, config on B, manifest on C; every node pulls it byte-exact', async () => {
    const name = 'split/v2';
    const layer = randomBytes(300_000);
    const start = await fetch(`${a}/v2/${name}/blobs/uploads/`, { method: 'POST' });
    assert.equal(start.status, 202);
    const location = start.headers.get('location') as string;
    const pieces = [layer.subarray(0, 100_000), layer.subarray(100_000, 250_000), layer.subarray(250_000)];
    let offset = 0;
    for (const [node, piece] of [[b, pieces[0]], [c, pieces[1]]] as const) {
      const res = await fetch(new URL(location, node), {
        method: 'PATCH',
        body: piece,
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${offset}-${offset + piece.length - 1}` },
      });
      assert.equal(res.status, 202, `PATCH on ${node}: ${await res.text()}`);
      offset += piece.length;
      assert.equal(res.headers.get('range'), `0-${offset - 1}`);
    }
    // The session's state, as any node sees it.
    const status = await fetch(new URL(location, b));
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), `0-${offset - 1}`);
    const close = new URL(location, a);
    close.searchParams.set('digest', digestOf(layer));
    const done = await fetch(close, { method: 'PUT', body: pieces[2], headers: { 'Content-Type': 'application/octet-stream' } });
    assert.equal(done.status, 201, `PUT on A: ${await done.text()}`);
    const config = imageConfig([digestOf(layer)]);
    const monolithic = await fetch(`${b}/v2/${name}/blobs/uploads/?digest=${digestOf(config)}`, { method: 'POST', body: config, headers: { 'Content-Type': 'application/octet-stream' } });
    assert.equal(monolithic.status, 201, await monolithic.text());
    const manifest = imageManifest(config, [layer]);
    const res = await putManifest(c, name, 'latest', manifest, MEDIA.dockerManifest);
    assert.equal(res.status, 201, `manifest on C: ${await res.text()}`);
    const image = { config, layers: [layer], manifest, digest: digestOf(manifest), mediaType: MEDIA.dockerManifest };
    for (const node of [a, b, c]) {
      await pullV2(node, name, 'latest', image);
      await pullV2(node, name, image.digest, image);
      // Its v1 face, made on C, is seen by every node.
      const tags = (await (await fetch(`${node}/v1/repositories/${name}/tags`)).json()) as Record<string, string>;
      assert.match(tags.latest ?? '', /^[a-f0-9]{64}$/, `${node}: the v1 tag of a v2 push`);
    }
    await assertFsckClean(b);
  });

  it('two nodes writing one image: the second gets 409 while the first streams its layer; the first completes', async () => {
    const [image] = chainOf(1, 200_000);
    const json = imageJson(image);
    assert.equal((await put(`${a}/v1/images/${image.id}/json`, json, { 'Content-Type': 'application/json' })).status, 200);
    const upload = openUpload(`${b}/v1/images/${image.id}/layer`, { 'Content-Type': 'application/octet-stream' });
    await upload.write(image.layer.subarray(0, 100_000));
    // B holds the image (its layer is streaming), as every node sees: C and A are refused,
    // as a second request on B would be.
    await eventually(async () => assert.ok(await cluster.nodes[2].running.services.images.isWriting(image.id as ImageId), 'B holds the image'));
    let res = await put(`${c}/v1/images/${image.id}/json`, json, { 'Content-Type': 'application/json' });
    const refusal = await res.text();
    assert.equal(res.status, 409, refusal);
    assert.match((JSON.parse(refusal) as { error: string }).error, /Another request is uploading this image/);
    const other = await put(`${a}/v1/images/${image.id}/layer`, image.layer, { 'Content-Type': 'application/octet-stream' });
    assert.equal(other.status, 409);
    await upload.write(image.layer.subarray(100_000));
    upload.end();
    assert.equal((await upload.response).status, 200);
    res = await put(`${c}/v1/images/${image.id}/checksum`, undefined, { 'X-Docker-Checksum-Payload': payloadChecksum(json, image.layer) });
    assert.equal(res.status, 200, await res.text());
    assert.equal((await setTag(c, 'split/race', 'latest', image.id)).status, 200);
    for (const node of [a, b, c]) await pullV1(node, 'split/race', 'latest', [image]);
  });

  it('two nodes writing one upload session: the second PATCH is refused while the first streams; the session goes on', async () => {
    const name = 'split/session';
    const blob = randomBytes(120_000);
    const location = (await fetch(`${a}/v2/${name}/blobs/uploads/`, { method: 'POST' })).headers.get('location') as string;
    const first = openBody('PATCH', new URL(location, b).toString());
    await first.write(blob.subarray(0, 60_000));
    const id = new URL(location, a).pathname.split('/').pop() as string;
    await eventually(async () => assert.ok(await cluster.nodes[2].running.services.ingest.isBusy(id), 'B holds the session'));
    const refused = await fetch(new URL(location, c), { method: 'PATCH', body: Buffer.alloc(0), headers: { 'Content-Type': 'application/octet-stream' } });
    const error = await v2ErrorOf(refused);
    assert.equal(error.status, 400);
    assert.equal(error.code, 'BLOB_UPLOAD_INVALID');
    assert.match(error.message, /Another request is writing this upload/);
    await first.write(blob.subarray(60_000));
    first.end();
    const answer = await first.response;
    assert.equal(answer.status, 202, answer.body);
    const close = new URL(location, c);
    close.searchParams.set('digest', digestOf(blob));
    const done = await fetch(close, { method: 'PUT' });
    assert.equal(done.status, 201, await done.text());
    for (const node of [a, b, c]) {
      const got = Buffer.from(await (await fetch(`${node}/v2/${name}/blobs/${digestOf(blob)}`)).arrayBuffer());
      assert.ok(got.equals(blob), `${node}: the blob`);
    }
  });
});
