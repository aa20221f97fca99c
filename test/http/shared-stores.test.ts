/**
 * Registry nodes on shared stores (metadata_store: postgres, blob_store: s3): a push through
 * one node is pulled through another; a push split across nodes (json on A, layer on B,
 * checksum on A, tag on B) completes; s3_redirect answers layer GETs with a 307 to a
 * presigned URL that serves the bytes and Ranges, while HEAD stays local. The real app on
 * a real PostgreSQL and a real S3 (Ceph RADOS Gateway).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { useEngines } from '../helpers/engines.js';
import { sharedConfig } from '../multi-node/cluster.js';
import { newSchema } from '../helpers/postgres-engine.js';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';
import { imageJson, payloadChecksum, pushChain, put, setTag, type TestImage } from '../helpers/v1.js';

const engines = useEngines();

describe('nodes sharing PostgreSQL and S3', () => {
  let schema: Awaited<ReturnType<typeof newSchema>>;
  const nodes: TestServer[] = [];
  let a: TestServer;
  let b: TestServer;
  let redirecting: TestServer;
  let bucket: string;

  before(async () => {
    schema = await newSchema(engines.postgres.url);
    bucket = `nodes-${randomBytes(4).toString('hex')}`;
    const shared = sharedConfig(engines, schema.url, { s3_bucket: bucket });
    // Two nodes starting at once: both migrate (one waits for the other) and create the bucket.
    [a, b] = await Promise.all([startTestServer({ overrides: shared }), startTestServer({ overrides: shared })]);
    redirecting = await startTestServer({ overrides: { ...shared, s3_redirect: true } });
    nodes.push(a, b, redirecting);
  });

  after(async () => {
    for (const node of nodes) await node.destroy();
    await schema.drop();
  });

  function chain(n: number): TestImage[] {
    const images: TestImage[] = [];
    for (let i = 0; i < n; i++) images.push({ id: newImageId(), parent: images[i - 1]?.id, layer: randomBytes(50_000 + i * 1000) });
    return images;
  }

  async function layerOf(base: string, id: string, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(`${base}/v1/images/${id}/layer`, { headers });
  }

  it('a push through node A is pulled through node B, byte for byte', async () => {
    const images = chain(3);
    await pushChain(a.url, 'shared/app', 'latest', images);
    const tags = await (await fetch(`${b.url}/v1/repositories/shared/app/tags`)).json();
    const top = images[2].id;
    assert.deepEqual(tags, { latest: top });
    const ancestry = await (await fetch(`${b.url}/v1/images/${top}/ancestry`)).json();
    assert.deepEqual(ancestry, [images[2].id, images[1].id, images[0].id]);
    for (const image of images) {
      const json = await fetch(`${b.url}/v1/images/${image.id}/json`);
      assert.equal(json.status, 200);
      assert.ok(Buffer.from(await json.arrayBuffer()).equals(imageJson(image)));
      const layer = await layerOf(b.url, image.id);
      assert.equal(layer.status, 200);
      assert.ok(Buffer.from(await layer.arrayBuffer()).equals(image.layer), `layer of ${image.id} through B`);
    }
    const ranged = await layerOf(b.url, images[0].id, { Range: 'bytes=100-199' });
    assert.equal(ranged.status, 206);
    assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(images[0].layer.subarray(100, 200)));
  });

  it('a push split across nodes (json on A, layer on B, checksum on A, tag on B) completes and is served by both', async () => {
    const [image] = chain(1);
    const json = imageJson(image);
    let res = await put(`${a.url}/v1/images/${image.id}/json`, json, { 'Content-Type': 'application/json' });
    assert.equal(res.status, 200, await res.text());
    // Not complete yet: no node serves it.
    assert.equal((await fetch(`${b.url}/v1/images/${image.id}/json`)).status, 400);
    res = await put(`${b.url}/v1/images/${image.id}/layer`, image.layer, { 'Content-Type': 'application/octet-stream' });
    assert.equal(res.status, 200, await res.text());
    res = await put(`${a.url}/v1/images/${image.id}/checksum`, undefined, { 'X-Docker-Checksum-Payload': payloadChecksum(json, image.layer) });
    assert.equal(res.status, 200, await res.text());
    res = await setTag(b.url, 'shared/split', 'v1', image.id);
    assert.equal(res.status, 200, await res.text());
    for (const node of [a, b]) {
      assert.deepEqual(await (await fetch(`${node.url}/v1/repositories/shared/split/tags`)).json(), { v1: image.id });
      assert.ok(Buffer.from(await (await layerOf(node.url, image.id)).arrayBuffer()).equals(image.layer));
    }
  });

  it('s3_redirect: a layer GET is a 307 to a presigned URL that serves the bytes and Ranges; HEAD stays local', async () => {
    const images = chain(1);
    await pushChain(a.url, 'shared/redirect', 'latest', images);
    const { id, layer } = images[0];
    const res = await fetch(`${redirecting.url}/v1/images/${id}/layer`, { redirect: 'manual' });
    assert.equal(res.status, 307);
    assert.equal(res.headers.get('cache-control'), 'no-store', 'a presigned URL expires: the redirect is not cached');
    const location = res.headers.get('location') ?? '';
    assert.ok(location.startsWith(`${engines.s3.endpoint}/${bucket}/blobs/sha256/`), location);
    assert.match(location, /X-Amz-Signature=/);
    const followed = await fetch(`${redirecting.url}/v1/images/${id}/layer`);
    assert.equal(followed.status, 200);
    const body = Buffer.from(await followed.arrayBuffer());
    assert.equal(createHash('sha256').update(body).digest('hex'), createHash('sha256').update(layer).digest('hex'));
    const ranged = await fetch(`${redirecting.url}/v1/images/${id}/layer`, { headers: { Range: 'bytes=10-19' } });
    assert.equal(ranged.status, 206);
    assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(layer.subarray(10, 20)));
    const head = await fetch(`${redirecting.url}/v1/images/${id}/layer`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(layer.length));
    // Nodes without s3_redirect still send the bytes themselves.
    assert.equal((await fetch(`${a.url}/v1/images/${id}/layer`, { redirect: 'manual' })).status, 200);
  });
});
