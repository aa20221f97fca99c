/**
 * Concurrent pushes of overlapping image chains through three nodes on one PostgreSQL and
 * one S3 bucket: pushers share base images (v1) and base layers (v2), and each step of a
 * push goes to another node than the one before. Every push completes (a step refused
 * because another pusher is writing the same image is retried, as docker does), every
 * node pulls every tag back byte-exact, and fsck finds nothing wrong.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { useEngines } from '../helpers/engines.js';
import { imageJson, payloadChecksum, put, setTag, type TestImage } from '../helpers/v1.js';
import { digestOf, imageConfig, imageManifest, MEDIA, putManifest, type TestImageV2 } from '../helpers/v2.js';
import { assertFsckClean, chainOf, pullV1, pullV2, startCluster, type Cluster } from './cluster.js';

const engines = useEngines();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One step of a v1 push, retried while another pusher holds the image (409 in progress,
 * 400 parent still being uploaded); `done` tells a 409 that means someone completed it.
 */
async function step(what: string, send: () => Promise<Response>, done: (status: number, error: string) => boolean): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const res = await send();
    const text = await res.text();
    if (res.status === 200) return;
    const error = (JSON.parse(text) as { error?: string }).error ?? '';
    if (done(res.status, error)) return;
    const retry = (res.status === 409 && /Another request is uploading/.test(error)) || (res.status === 400 && /still being uploaded|layer has not been uploaded/.test(error));
    assert.ok(retry && attempt < 200, `${what}: ${res.status} ${text}`);
    await sleep(20 + Math.random() * 30);
  }
}

const complete = (status: number, error: string) => status === 409 && /already exists|already complete/.test(error);

/** Pushes `images` (oldest first) step by step, each request to the next node, and tags the top. */
async function pushAcross(nodes: string[], first: number, repo: string, tag: string, images: TestImage[]): Promise<void> {
  let n = first;
  const next = () => nodes[n++ % nodes.length];
  for (const image of images) {
    const json = imageJson(image);
    await step(`json ${image.id}`, () => put(`${next()}/v1/images/${image.id}/json`, json, { 'Content-Type': 'application/json' }), complete);
    let completed = false;
    await step(`layer ${image.id}`, () => put(`${next()}/v1/images/${image.id}/layer`, image.layer, { 'Content-Type': 'application/octet-stream' }), (status, error) => (completed = complete(status, error)));
    if (completed) continue;
    await step(`checksum ${image.id}`, () => put(`${next()}/v1/images/${image.id}/checksum`, undefined, { 'X-Docker-Checksum-Payload': payloadChecksum(json, image.layer) }), complete);
  }
  const res = await setTag(next(), repo, tag, images[images.length - 1].id);
  assert.equal(res.status, 200, `tag ${repo}:${tag}: ${await res.text()}`);
}

/** A v2 push: each blob through the next node, the manifest through the one after. */
async function pushV2Across(nodes: string[], first: number, name: string, tag: string, layers: Buffer[]): Promise<TestImageV2> {
  let n = first;
  const next = () => nodes[n++ % nodes.length];
  const config = imageConfig(layers.map(digestOf), { created: new Date().toISOString() });
  for (const blob of [...layers, config]) {
    const res = await fetch(`${next()}/v2/${name}/blobs/uploads/?digest=${digestOf(blob)}`, { method: 'POST', body: blob, headers: { 'Content-Type': 'application/octet-stream' } });
    assert.equal(res.status, 201, `blob ${digestOf(blob)}: ${await res.text()}`);
  }
  const manifest = imageManifest(config, layers);
  const res = await putManifest(next(), name, tag, manifest, MEDIA.dockerManifest);
  assert.equal(res.status, 201, `manifest ${name}:${tag}: ${await res.text()}`);
  return { config, layers, manifest, digest: digestOf(manifest), mediaType: MEDIA.dockerManifest };
}

describe('concurrent pushes of overlapping chains through three nodes', () => {
  let cluster: Cluster;
  let urls: string[];

  before(async () => {
    cluster = await startCluster(engines, 3);
    urls = cluster.nodes.map((n) => n.url);
  });
  after(async () => {
    await cluster?.close();
  });

  it('v1 and v2 pushers sharing bases all complete; every node pulls every tag byte-exact; fsck is clean', async () => {
    const base = chainOf(2, 30_000);
    const v1Pushes = Array.from({ length: 4 }, (_, i) => ({ repo: `overlap/app${i % 3}`, tag: `t${i}`, images: [...base, ...chainOf(2, 20_000, base[1])] }));
    // Two pushers of exactly the same chain, through different nodes.
    v1Pushes.push({ repo: 'overlap/same', tag: 'b', images: v1Pushes[0].images });
    const sharedLayers = [randomBytes(40_000), randomBytes(40_000)];
    const v2Pushes = Array.from({ length: 3 }, (_, i) => ({ name: `overlap/v2-${i % 2}`, tag: `t${i}`, layers: [...sharedLayers, randomBytes(25_000)] }));

    const v2Images: TestImageV2[] = [];
    await Promise.all([
      ...v1Pushes.map((p, i) => pushAcross(urls, i, p.repo, p.tag, p.images)),
      ...v2Pushes.map(async (p, i) => {
        v2Images[i] = await pushV2Across(urls, i, p.name, p.tag, p.layers);
      }),
    ]);

    for (const node of urls) {
      for (const p of v1Pushes) await pullV1(node, p.repo, p.tag, p.images);
      for (const [i, p] of v2Pushes.entries()) await pullV2(node, p.name, p.tag, v2Images[i]);
    }
    // One blob per distinct layer in the bucket, however many pushers sent it.
    const blobs = await cluster.keys('blobs/');
    const distinct = new Set([...v1Pushes.flatMap((p) => p.images.map((i) => digestOf(i.layer))), ...v2Images.flatMap((i) => [i.config, ...i.layers].map(digestOf))]);
    assert.equal(blobs.length, distinct.size, `blobs in the bucket: ${blobs.length}, distinct layers and configs pushed: ${distinct.size}`);
    assert.deepEqual(await cluster.multipart(), [], 'no multipart upload left behind');
    assert.deepEqual(await cluster.keys('uploads/'), [], 'no temp object left behind');
    await assertFsckClean(urls[1]);
  });

  it('a tag set on one node while another deletes a tag of the same repository: the image list keeps what the remaining tag reaches', async () => {
    const chain = chainOf(2, 5_000);
    await pushAcross(urls, 0, 'race/seed', 'latest', chain);
    const top = chain[1].id;
    await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const repo = `race/r${i}`;
        assert.equal((await setTag(urls[i % 3], repo, 'old', top)).status, 200);
        const [deleted, set] = await Promise.all([
          fetch(`${urls[(i + 1) % 3]}/v1/repositories/${repo}/tags/old`, { method: 'DELETE' }),
          setTag(urls[(i + 2) % 3], repo, 'new', top),
        ]);
        assert.equal(deleted.status, 200, await deleted.text());
        assert.equal(set.status, 200, await set.text());
        for (const node of urls) await pullV1(node, repo, 'new', chain);
      }),
    );
  });
});
