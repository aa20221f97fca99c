/**
 * `kill -9` of a node mid-push, with three nodes as child processes on one PostgreSQL and
 * one S3 bucket: what was committed before stays and is served by the others; what the
 * dead node was writing is served by no node (no half-written image, layer or blob); the
 * dead node's lock on the image (or session) goes with its PostgreSQL connection, so the
 * push re-runs through another node at once; and the multipart upload it left in the
 * bucket is reclaimed by garbage collection once idle for upload_expiry_seconds.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { PostgresLocks } from '../../src/store/locks/postgres-locks.js';
import { useEngines } from '../helpers/engines.js';
import { eventually } from '../helpers/eventually.js';
import { newSchema } from '../helpers/postgres-engine.js';
import { makeTempDir, newImageId } from '../helpers/server.js';
import { imageJson, payloadChecksum, pushChain, put, setTag, type TestImage } from '../helpers/v1.js';
import { digestOf, imageConfig, imageManifest, MEDIA, putManifest } from '../helpers/v2.js';
import { startChild, type ChildServer } from '../reliability/crash-harness.js';
import { asEnv, assertFsckClean, blobKey, bucketOf, chainOf, openBody, pullV1, pullV2, sharedConfig } from './cluster.js';

const engines = useEngines();

/** More than one S3 part (8 MiB): the dead node has a multipart upload under way. */
const BIG = 9 * 1024 * 1024;

describe('kill -9 of a node mid-push (nodes as child processes)', () => {
  let schema: Awaited<ReturnType<typeof newSchema>>;
  let env: Record<string, string>;
  let bucket: ReturnType<typeof bucketOf>;
  /** The locks as the nodes see them (this process is one more PostgreSQL client). */
  let locks: PostgresLocks;
  const children: ChildServer[] = [];
  const roots: string[] = [];
  let a: ChildServer, c: ChildServer;
  const committed: TestImage[] = chainOf(2, 100_000);

  async function node(): Promise<ChildServer> {
    const root = await makeTempDir('registry-multi-');
    roots.push(root);
    const child = await startChild(root, env);
    children.push(child);
    return child;
  }

  before(async () => {
    schema = await newSchema(engines.postgres.url);
    // upload_expiry_seconds: 1, so that GC may reclaim the dead node's upload in this test.
    const shared = sharedConfig(engines, schema.url, { upload_expiry_seconds: 1 });
    env = asEnv(shared);
    bucket = bucketOf(engines, shared.s3_bucket as string);
    [a, c] = await Promise.all([node(), node()]);
    locks = new PostgresLocks(schema.url);
    await locks.open();
    await pushChain(a.url, 'killed/base', 'latest', committed);
  });

  after(async () => {
    for (const child of children) await child.stop().catch(() => {});
    await locks?.close();
    bucket?.s3.destroy();
    for (const root of roots) await fs.rm(root, { recursive: true, force: true });
    await schema?.drop();
  });

  it('v1: the node streaming a layer dies; no node serves the image; the push re-runs through another node', async () => {
    const b = await node();
    const image: TestImage = { id: newImageId(), parent: committed[1].id, layer: randomBytes(BIG + 500_000) };
    const json = imageJson(image);
    assert.equal((await put(`${a.url}/v1/images/${image.id}/json`, json, { 'Content-Type': 'application/json' })).status, 200);
    const upload = openBody('PUT', `${b.url}/v1/images/${image.id}/layer`);
    await upload.write(image.layer.subarray(0, BIG));
    await eventually(async () => assert.ok(await locks.isKeyHeld(`image:${image.id}`), 'B holds the image'), 10_000);
    await eventually(async () => assert.ok((await bucket.multipart()).some((k) => k.startsWith('uploads/')), 'B has a multipart upload under way'), 10_000);
    await b.kill9();

    // The dead node's lock went with its connection.
    await eventually(async () => assert.equal(await locks.isKeyHeld(`image:${image.id}`), false), 10_000);
    // Nothing of the interrupted push is served, and no blob of its layer exists.
    for (const live of [a, c]) {
      assert.equal((await fetch(`${live.url}/v1/images/${image.id}/json`)).status, 400, 'the image is still pending');
      assert.notEqual((await fetch(`${live.url}/v1/images/${image.id}/layer`)).status, 200);
    }
    assert.ok(!(await bucket.keys('blobs/')).includes(blobKey(digestOf(image.layer))));
    // What was committed before the kill is all there.
    for (const live of [a, c]) await pullV1(live.url, 'killed/base', 'latest', committed);

    // The push again, through C (docker retries the image from its json).
    assert.equal((await put(`${c.url}/v1/images/${image.id}/json`, json, { 'Content-Type': 'application/json' })).status, 200);
    const layer = await put(`${c.url}/v1/images/${image.id}/layer`, image.layer, { 'Content-Type': 'application/octet-stream' });
    assert.equal(layer.status, 200, await layer.text());
    const checksum = await put(`${a.url}/v1/images/${image.id}/checksum`, undefined, { 'X-Docker-Checksum-Payload': payloadChecksum(json, image.layer) });
    assert.equal(checksum.status, 200, await checksum.text());
    assert.equal((await setTag(c.url, 'killed/base', 'next', image.id)).status, 200);
    for (const live of [a, c]) await pullV1(live.url, 'killed/base', 'next', [...committed, image]);

    // The multipart upload the dead node left: idle for upload_expiry_seconds, GC on A removes it.
    const left = (await bucket.multipart()).filter((k) => k.startsWith('uploads/'));
    assert.equal(left.length, 1, `the dead node's upload: ${left}`);
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const gc = await fetch(`${a.url}/_admin/gc`, { method: 'POST' });
    const report = (await gc.json()) as { uploads: { reclaimed: number } };
    assert.equal(gc.status, 200, JSON.stringify(report));
    assert.ok(report.uploads.reclaimed >= 1, JSON.stringify(report));
    assert.deepEqual((await bucket.multipart()).filter((k) => k.startsWith('uploads/')), []);
    await assertFsckClean(c.url);
  });

  it('v2: the node taking a chunk dies; the session keeps what was acknowledged and goes on through another node', async () => {
    const b = await node();
    const name = 'killed/v2';
    const first = randomBytes(1_000_000);
    const second = randomBytes(BIG);
    const blob = Buffer.concat([first, second]);
    const location = (await fetch(`${a.url}/v2/${name}/blobs/uploads/`, { method: 'POST' })).headers.get('location') as string;
    const id = location.split('/').pop() as string;
    let res = await fetch(new URL(location, c.url), { method: 'PATCH', body: first, headers: { 'Content-Type': 'application/octet-stream' } });
    assert.equal(res.status, 202, await res.text());
    const patch = openBody('PATCH', new URL(location, b.url).toString());
    await patch.write(second.subarray(0, BIG - 100_000));
    await eventually(async () => assert.ok(await locks.isKeyHeld(`upload:${id}`), 'B holds the session'), 10_000);
    await eventually(async () => assert.ok((await bucket.multipart()).some((k) => k.startsWith(`sessions/${id}/`)), 'B has a multipart upload under way'), 10_000);
    await b.kill9();

    await eventually(async () => assert.equal(await locks.isKeyHeld(`upload:${id}`), false), 10_000);
    // The session stands where it was acknowledged; its blob exists nowhere.
    const status = await fetch(new URL(location, a.url));
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), `0-${first.length - 1}`);
    assert.equal((await fetch(`${c.url}/v2/${name}/blobs/${digestOf(blob)}`)).status, 404);

    res = await fetch(new URL(location, c.url), {
      method: 'PATCH',
      body: second,
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${first.length}-${blob.length - 1}` },
    });
    assert.equal(res.status, 202, await res.text());
    const close = new URL(location, a.url);
    close.searchParams.set('digest', digestOf(blob));
    res = await fetch(close, { method: 'PUT' });
    assert.equal(res.status, 201, await res.text());
    const config = imageConfig([digestOf(blob)]);
    res = await fetch(`${c.url}/v2/${name}/blobs/uploads/?digest=${digestOf(config)}`, { method: 'POST', body: config, headers: { 'Content-Type': 'application/octet-stream' } });
    assert.equal(res.status, 201, await res.text());
    const manifest = imageManifest(config, [blob]);
    res = await putManifest(a.url, name, 'latest', manifest, MEDIA.dockerManifest);
    assert.equal(res.status, 201, await res.text());
    for (const live of [a, c]) await pullV2(live.url, name, 'latest', { config, layers: [blob], manifest, digest: digestOf(manifest), mediaType: MEDIA.dockerManifest });
    await assertFsckClean(a.url);
  });
});
