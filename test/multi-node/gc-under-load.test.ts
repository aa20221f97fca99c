/**
 * Garbage collection on one node while the other nodes take pushes (three nodes on one
 * PostgreSQL and one S3 bucket): the write gate is one for all nodes (GC waits for a write
 * on another node, and holds writes on other nodes back); everything reachable stays (every
 * push pulls back byte-exact from every node, fsck is clean); what nothing references is
 * deleted from the bucket (listed to prove it): unreferenced blobs, and what unfinished
 * uploads left (multipart uploads of dead nodes, temp objects, abandoned sessions) once
 * idle for upload_expiry_seconds, while a younger one, maybe another node's upload in
 * progress, is left alone, also by a node that starts.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CreateMultipartUploadCommand, PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import type { GcReport } from '../../src/services/gc.js';
import { PostgresLocks } from '../../src/store/locks/postgres-locks.js';
import { useEngines } from '../helpers/engines.js';
import { startTestServer } from '../helpers/server.js';
import { holding } from '../store/locks.contract.js';
import { pushImage, put, setTag, type TestImage } from '../helpers/v1.js';
import { digestOf, pushBlob, pushImageV2, type TestImageV2 } from '../helpers/v2.js';
import { assertFsckClean, blobKey, chainOf, pullV1, pullV2, startCluster, type Cluster } from './cluster.js';

const engines = useEngines();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const GRACE_SECONDS = 3;
const EXPIRY_SECONDS = 2;

async function gc(base: string): Promise<GcReport> {
  const res = await fetch(`${base}/_admin/gc`, { method: 'POST' });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text) as GcReport;
}

/** A v1 push as docker 1.x makes it: push start (the image list) on `index`, images and tag on `registry`. */
async function pushV1(index: string, registry: string, repo: string, tag: string, images: TestImage[]): Promise<void> {
  const list = JSON.stringify(images.map((i) => ({ id: i.id })));
  const start = await put(`${index}/v1/repositories/${repo}/`, list, { 'Content-Type': 'application/json' });
  assert.ok(start.status === 200 || start.status === 201, `push start: ${start.status}`);
  for (const image of images) await pushImage(registry, image);
  const res = await setTag(registry, repo, tag, images[images.length - 1].id);
  assert.equal(res.status, 200, await res.text());
  const end = await put(`${index}/v1/repositories/${repo}/images`, list, { 'Content-Type': 'application/json' });
  assert.ok(end.status === 200 || end.status === 204, `push end: ${end.status}`);
}

describe('garbage collection on one node while the others take pushes', () => {
  let cluster: Cluster;
  let a: string, b: string, c: string;
  /** A node of this registry as far as PostgreSQL is concerned: it takes the write gate too. */
  let locks: PostgresLocks;

  before(async () => {
    cluster = await startCluster(engines, 3, { gc_grace_seconds: GRACE_SECONDS, upload_expiry_seconds: EXPIRY_SECONDS });
    [a, b, c] = cluster.nodes.map((n) => n.url);
    locks = new PostgresLocks(cluster.shared.postgres_url as string);
    await locks.open();
  });
  after(async () => {
    await locks?.close();
    await cluster?.close();
  });

  it('GC on A waits for a write under way on another node, and holds back writes on every node while it runs', async () => {
    const [image] = chainOf(1);
    await pushImage(b, image);
    // Another node is in a write (the shared side of the gate): GC waits for it.
    const write = await holding((body) => locks.shared(body));
    let collected = false;
    const run = gc(a).then((report) => ((collected = true), report));
    await sleep(500);
    assert.equal(collected, false, 'GC ran while another node was writing');
    write.release();
    await write.done;
    await run;

    // GC under way (the exclusive side, held here as a node would): writes on B and C wait.
    const sweep = await holding((body) => locks.exclusive(body));
    let tagged = false;
    const tag = setTag(c, 'gate/app', 'latest', image.id).then((res) => ((tagged = true), res));
    await sleep(500);
    assert.equal(tagged, false, 'a tag was written during GC');
    sweep.release();
    await sweep.done;
    assert.equal((await tag).status, 200);
    await pullV1(b, 'gate/app', 'latest', [image]);
  });

  it('everything reachable stays, and S3 loses unreferenced blobs and abandoned uploads, not young ones', async () => {
    // ── what must stay ──
    const kept = chainOf(2);
    await pushV1(b, c, 'load/kept', 'latest', kept);
    const keptV2 = await pushImageV2(c, 'load/kept-v2', 'latest', [randomBytes(30_000)]);

    // ── garbage ──
    const [orphan] = chainOf(1); // complete, never listed or tagged
    await pushImage(b, orphan);
    const untagged = chainOf(2); // tagged, then the tag deleted
    await pushV1(c, b, 'load/untagged', 'gone', untagged);
    assert.equal((await fetch(`${a}/v1/repositories/load/untagged/tags/gone`, { method: 'DELETE' })).status, 200);
    const unreferenced = randomBytes(20_000); // a v2 blob no manifest names
    await pushBlob(c, 'load/blobs', unreferenced);
    // An abandoned v2 session with bytes (and its record).
    const session = (await fetch(`${b}/v2/load/blobs/blobs/uploads/`, { method: 'POST' })).headers.get('location') as string;
    assert.equal((await fetch(new URL(session, c), { method: 'PATCH', body: randomBytes(10_000), headers: { 'Content-Type': 'application/octet-stream' } })).status, 202);
    // What nodes that died mid-upload leave: a multipart upload of a one-request upload and
    // of a session's append, and a completed temp object never committed.
    const { s3, bucket } = cluster;
    const deadMultipart = async (key: string) => {
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
      await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: randomBytes(1000) }));
    };
    await deadMultipart(`uploads/${randomBytes(12).toString('hex')}`);
    await deadMultipart(`sessions/${randomUUID()}/000000000000000`);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `uploads/${randomBytes(12).toString('hex')}`, Body: randomBytes(1000) }));
    const garbageBlobs = [orphan.layer, ...untagged.map((i) => i.layer), unreferenced].map((l) => blobKey(digestOf(l)));
    for (const key of garbageBlobs) assert.ok((await cluster.keys('blobs/')).includes(key), `${key} is in the bucket before GC`);
    assert.equal((await cluster.multipart()).length, 2);
    await sleep(GRACE_SECONDS * 1000 + 200); // the garbage ages past the grace period and the upload expiry

    // ── pushes through B and C while A collects ──
    const pushed: Array<{ repo: string; images: TestImage[] }> = [];
    const pushedV2: Array<{ name: string; image: TestImageV2 }> = [];
    let collecting = true;
    const load = (async () => {
      for (let round = 0; collecting || round < 2; round++) {
        const images = chainOf(2, 20_000, kept[1]);
        const repo = `load/r${round}`;
        const name = `load/v${round}`;
        const [, image] = await Promise.all([
          pushV1(round % 2 ? b : c, round % 2 ? c : b, repo, 'latest', images),
          pushImageV2(round % 2 ? c : b, name, 'latest', [randomBytes(15_000), randomBytes(15_000)]),
        ]);
        pushed.push({ repo, images: [...kept, ...images] });
        pushedV2.push({ name, image });
      }
    })();
    const reports: GcReport[] = [];
    try {
      for (let i = 0; i < 3; i++) reports.push(await gc(a));
    } finally {
      collecting = false;
    }
    await load;
    assert.ok(pushed.length >= 2, `${pushed.length} rounds of pushes`);

    const deleted = new Set(reports.flatMap((r) => r.images.deletedIds));
    assert.deepEqual([...deleted].sort(), [orphan.id, ...untagged.map((i) => i.id)].sort(), 'the images GC deleted');
    const blobsLeft = await cluster.keys('blobs/');
    for (const key of garbageBlobs) assert.ok(!blobsLeft.includes(key), `${key} was reclaimed`);
    assert.deepEqual(await cluster.multipart(), [], 'abandoned multipart uploads were aborted');
    assert.deepEqual(await cluster.keys('uploads/'), [], 'the temp object was removed');
    assert.deepEqual(await cluster.keys('sessions/'), [], "the abandoned session's bytes were removed");
    assert.equal((await fetch(new URL(session, a))).status, 404, 'the abandoned session is gone');
    assert.ok(reports.reduce((n, r) => n + r.uploads.reclaimed, 0) >= 4, JSON.stringify(reports.map((r) => r.uploads)));

    // Everything reachable, pushed before or during GC, is whole on every node.
    for (const node of [a, b, c]) {
      await pullV1(node, 'load/kept', 'latest', kept);
      await pullV2(node, 'load/kept-v2', 'latest', keptV2);
      for (const p of pushed) await pullV1(node, p.repo, 'latest', p.images);
      for (const p of pushedV2) await pullV2(node, p.name, 'latest', p.image);
    }
    await assertFsckClean(b);

    // A young multipart upload (another node's push in progress) survives GC and a node's start.
    const young = `uploads/${randomBytes(12).toString('hex')}`;
    await deadMultipart(young);
    await gc(a);
    const fourth = await startTestServer({ overrides: cluster.shared });
    try {
      assert.deepEqual(await cluster.multipart(), [young]);
    } finally {
      await fourth.destroy();
    }
  });
});
