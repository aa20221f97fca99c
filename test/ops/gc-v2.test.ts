/**
 * Garbage collection and fsck over Registry API v2 content: manifests (deleted ones freed,
 * held ones kept with every blob they name), blobs shared between v1 images and v2
 * manifests, blobs pushed but never used (kept through the grace period), abandoned upload
 * sessions (reclaimed after upload_expiry_seconds, never while written), and fsck's checks
 * and repairs of manifests, tags, blob links and sessions.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseRepoPath, parseTag, type ImageId } from '../../src/domain/names.js';
import type { FsckReport } from '../../src/services/fsck.js';
import type { GcReport } from '../../src/services/gc.js';
import { rawRequest } from '../helpers/http-raw.js';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';
import { pushChain } from '../helpers/v1.js';
import { digestOf, MEDIA, pushBlob, pushImageV2, putManifest } from '../helpers/v2.js';

async function gc(srv: TestServer, dryRun = false): Promise<GcReport> {
  const res = await fetch(`${srv.url}/_admin/gc${dryRun ? '?dry_run=true' : ''}`, { method: 'POST' });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as GcReport;
}

async function fsck(srv: TestServer, repair = false): Promise<FsckReport> {
  const res = await fetch(`${srv.url}/_admin/fsck${repair ? '?repair=true' : ''}`, { method: 'POST' });
  assert.equal(res.status, 200);
  return (await res.json()) as FsckReport;
}

async function blobExists(srv: TestServer, digest: string): Promise<boolean> {
  return (await srv.running.services.blobs.stat(digest)) !== null;
}

describe('garbage collection of v2 content', () => {
  it('frees deleted manifests and the blobs only they used; keeps what a v1 image or another manifest uses', async () => {
    const srv = await startTestServer({ overrides: { gc_grace_seconds: 0 } });
    try {
      const shared = randomBytes(3000); // a v1 layer too
      await pushChain(srv.url, 'gc/v1', 'latest', [{ id: newImageId(), layer: shared }]);
      const own = randomBytes(4000);
      const common = randomBytes(5000); // also in the kept manifest
      const doomed = await pushImageV2(srv.url, 'gc/doomed', 'x', [shared, own, common]);
      const kept = await pushImageV2(srv.url, 'gc/kept', 'y', [common]);
      assert.equal((await fetch(`${srv.url}/v2/gc/doomed/manifests/${doomed.digest}`, { method: 'DELETE' })).status, 202);

      const dry = await gc(srv, true);
      assert.deepEqual(dry.manifests.deletedDigests, [doomed.digest]);
      assert.ok(await blobExists(srv, digestOf(own)), 'a dry run deletes nothing');
      const report = await gc(srv);
      assert.deepEqual(report.manifests.deletedDigests, [doomed.digest]);
      assert.equal(await srv.running.services.meta.getManifest(doomed.digest), null);
      assert.ok(!(await blobExists(srv, digestOf(own))), 'only the deleted manifest used it');
      assert.ok(!(await blobExists(srv, digestOf(doomed.config))));
      assert.ok(await blobExists(srv, digestOf(shared)), 'a v1 image uses it');
      assert.ok(await blobExists(srv, digestOf(common)), 'the kept manifest uses it');
      // The derived v1 images of the deleted manifest went with it (nothing lists them).
      assert.ok(report.images.deletedIds.includes(digestOf(doomed.config).slice(7) as ImageId));
      // Links to the freed blobs are gone; what is kept pulls.
      assert.equal(await srv.running.services.meta.getBlobLink(parseRepoPath('gc/doomed'), digestOf(own)), null);
      assert.ok(report.blobs.linksRemoved >= 2);
      const res = await rawRequest(`${srv.url}/v2/gc/kept/manifests/y`);
      assert.ok(res.body.equals(kept.manifest));
      assert.ok((await rawRequest(`${srv.url}/v2/gc/kept/blobs/${digestOf(common)}`)).body.equals(common));
      assert.equal((await fsck(srv)).ok, true);
    } finally {
      await srv.destroy();
    }
  });

  it('a blob pushed but never used is kept through the grace period, then freed', async () => {
    const srv = await startTestServer({ overrides: { gc_grace_seconds: 3600 } });
    try {
      const bytes = randomBytes(2000);
      const digest = await pushBlob(srv.url, 'gc/unused', bytes);
      assert.equal((await gc(srv)).blobs.deleted, 0);
      assert.ok(await blobExists(srv, digest));
      const now = Date.now();
      const collector = srv.running.services.gc as unknown as { now: () => number };
      collector.now = () => now + 2 * 3600_000;
      const later = await srv.running.services.gc.run({ dryRun: false, graceMs: 3600_000 });
      assert.equal(later.blobs.deleted, 1);
      assert.ok(!(await blobExists(srv, digest)));
      assert.equal((await fetch(`${srv.url}/v2/gc/unused/blobs/${digest}`)).status, 404);
    } finally {
      await srv.destroy();
    }
  });

  it('abandoned upload sessions are reclaimed after upload_expiry_seconds; one being written is not', async () => {
    const srv = await startTestServer({ overrides: { gc_grace_seconds: 0, upload_expiry_seconds: 60 } });
    try {
      const start = async () => (await fetch(`${srv.url}/v2/gc/up/blobs/uploads/`, { method: 'POST' })).headers.get('location') as string;
      const idle = await start();
      await rawRequest(`${srv.url}${idle}`, { method: 'PATCH', body: randomBytes(10_000) });
      const fresh = await start();
      assert.equal((await gc(srv)).uploads.reclaimed, 0, 'both are younger than the expiry');
      const collector = srv.running.services.gc as unknown as { now: () => number };
      const now = Date.now();
      collector.now = () => now + 120_000;
      // A session a request is writing right now is spared.
      let release!: () => void;
      let held!: () => void;
      const holding = new Promise<void>((resolve) => (held = resolve));
      const writing = srv.running.services.ingest.hold(fresh.split('/').pop() as string, () => {
        held();
        return new Promise<void>((resolve) => (release = resolve));
      });
      await holding;
      try {
        const report = await srv.running.services.gc.run({ dryRun: false, graceMs: 0, uploadExpiryMs: 60_000 });
        assert.equal(report.uploads.reclaimed, 1);
        assert.equal(report.uploads.bytesFreed, 10_000);
      } finally {
        release();
        await writing;
      }
      assert.equal((await rawRequest(`${srv.url}${idle}`)).status, 404);
      assert.equal((await rawRequest(`${srv.url}${fresh}`)).status, 204);
      assert.deepEqual(await fs.readdir(path.join(srv.root, 'uploads')), []);
    } finally {
      await srv.destroy();
    }
  });
});

describe('fsck of v2 content', () => {
  it('clean after pushes; finds and repairs lost manifest bytes, dangling tags, blob links and lost sessions', async () => {
    const srv = await startTestServer();
    try {
      const image = await pushImageV2(srv.url, 'fsck/app', 'v1', [randomBytes(100)]);
      const artifact = await pushImageV2(srv.url, 'fsck/app', 'v2', [randomBytes(100)], { mediaType: MEDIA.ociManifest });
      const clean = await fsck(srv);
      assert.equal(clean.ok, true, JSON.stringify(clean.problems));
      assert.equal(clean.manifests.checked, 2);
      assert.equal(clean.manifests.links, 2);
      assert.deepEqual(clean.blobs.orphans, [], 'every blob is used by a manifest');

      const meta = srv.running.services.meta;
      const name = parseRepoPath('fsck/app');
      // Lose the bytes of a manifest a repository holds and a tag shows.
      await meta.deleteManifest(artifact.digest);
      // A link to a blob that is not stored.
      await meta.linkBlobs(name, [[digestOf('never stored'), { size: 1, createdAt: new Date().toISOString() }]]);
      // A session that acknowledged bytes its file no longer has.
      const location = (await fetch(`${srv.url}/v2/fsck/app/blobs/uploads/`, { method: 'POST' })).headers.get('location') as string;
      await rawRequest(`${srv.url}${location}`, { method: 'PATCH', body: randomBytes(100) });
      await fs.truncate(path.join(srv.root, 'uploads', location.split('/').pop() as string), 10);

      const broken = await fsck(srv);
      assert.equal(broken.ok, false);
      const kinds = broken.problems.map((p) => `${p.kind} ${p.subject}`).sort();
      assert.deepEqual(kinds, [
        `dangling-blob-link fsck/app@${digestOf('never stored')}`,
        'dangling-tag fsck/app:v2',
        `lost-upload ${location.split('/').pop()}`,
        `missing-manifest fsck/app@${artifact.digest}`,
      ]);
      const repaired = await fsck(srv, true);
      assert.ok(repaired.problems.every((p) => p.repaired), JSON.stringify(repaired.problems));
      assert.equal(repaired.ok, true);
      const after = await fsck(srv);
      assert.equal(after.ok, true, JSON.stringify(after.problems));
      // v2 kept its v1 image (the tag is fine on v1's side), the other tag is untouched.
      const tag = await meta.getTag(name, parseTag('v2'));
      assert.equal(tag?.manifest, undefined);
      assert.equal(tag?.imageId, digestOf(artifact.config).slice(7));
      assert.ok((await rawRequest(`${srv.url}/v2/fsck/app/manifests/v1`)).body.equals(image.manifest));
      assert.equal((await putManifest(srv.url, 'fsck/app', 'v2', artifact.manifest, MEDIA.ociManifest)).status, 201, 'pushed again, all is well');
    } finally {
      await srv.destroy();
    }
  });
});
