import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { GcReport } from '../../src/services/gc.js';
import { openUpload } from '../helpers/http-raw.js';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';
import { imageJson, payloadChecksum, pushChain, pushImage, put, setTag } from '../helpers/v1.js';

async function gc(srv: TestServer, dryRun: boolean): Promise<GcReport> {
  const res = await fetch(`${srv.url}/_admin/gc${dryRun ? '?dry_run=true' : ''}`, { method: 'POST' });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as GcReport;
}

async function blobFiles(root: string): Promise<string[]> {
  const dir = path.join(root, 'blobs', 'sha256');
  const out: string[] = [];
  for (const sub of await fs.readdir(dir)) out.push(...(await fs.readdir(path.join(dir, sub))));
  return out.sort();
}

async function layerOf(srv: TestServer, id: string): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(`${srv.url}/v1/images/${id}/layer`);
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

describe('garbage collection', () => {
  let srv: TestServer;
  // base ← c1 and base ← c2; c1 and c2 carry identical layer bytes (one shared blob).
  const shared = randomBytes(64 * 1024);
  const base = { id: newImageId(), layer: randomBytes(32 * 1024) };
  const c1 = { id: newImageId(), parent: base.id, layer: shared };
  const c2 = { id: newImageId(), parent: base.id, layer: Buffer.from(shared) };
  const orphan = { id: newImageId(), layer: randomBytes(10_000) };
  const abandoned = { id: newImageId(), layer: randomBytes(1000) };

  before(async () => {
    srv = await startTestServer({ overrides: { gc_grace_seconds: 0 } });
    await pushChain(srv.url, 'gc/one', 'latest', [base, c1]);
    await pushImage(srv.url, c2);
    assert.equal((await setTag(srv.url, 'gc/two', 'latest', c2.id)).status, 200);
    await pushImage(srv.url, orphan); // complete, never tagged or listed
    // abandoned: json and layer, never a checksum
    assert.equal((await put(`${srv.url}/v1/images/${abandoned.id}/json`, imageJson(abandoned))).status, 200);
    assert.equal((await put(`${srv.url}/v1/images/${abandoned.id}/layer`, abandoned.layer)).status, 200);
  });
  after(async () => {
    await srv.destroy();
  });

  it('a dry run reports the orphans and deletes nothing', async () => {
    const before = await blobFiles(srv.root);
    const report = await gc(srv, true);
    assert.equal(report.dryRun, true);
    assert.deepEqual(report.images.deletedIds, [orphan.id, abandoned.id].sort());
    assert.equal(report.images.scanned, 5);
    assert.equal(report.blobs.deleted, 2);
    assert.equal(report.blobs.bytesFreed, orphan.layer.length + abandoned.layer.length);
    assert.deepEqual(await blobFiles(srv.root), before);
    assert.equal((await layerOf(srv, orphan.id)).status, 200);
  });

  it('a real run frees exactly the orphans; shared layers stay while one image uses them', async () => {
    // Deleting gc/one leaves c1 unreferenced, but its blob is c2's too.
    assert.equal((await fetch(`${srv.url}/v1/repositories/gc/one/`, { method: 'DELETE' })).status, 200);
    const report = await gc(srv, false);
    assert.deepEqual(report.images.deletedIds, [orphan.id, abandoned.id, c1.id].sort());
    assert.equal(report.blobs.deleted, 2);
    assert.equal(report.blobs.bytesFreed, orphan.layer.length + abandoned.layer.length);
    assert.equal((await blobFiles(srv.root)).length, 2, 'base and the shared blob remain');

    assert.equal((await layerOf(srv, orphan.id)).status, 404);
    assert.equal((await fetch(`${srv.url}/v1/images/${c1.id}/json`)).status, 404);
    // What remains pulls byte-exact.
    const ancestry = await (await fetch(`${srv.url}/v1/images/${c2.id}/ancestry`)).json();
    assert.deepEqual(ancestry, [c2.id, base.id]);
    assert.deepEqual((await layerOf(srv, c2.id)).body, shared);
    assert.deepEqual((await layerOf(srv, base.id)).body, base.layer);

    const again = await gc(srv, false);
    assert.equal(again.images.deleted, 0);
    assert.equal(again.blobs.deleted, 0);
  });

  it('deleting the last tag makes its images garbage; GC frees them', async () => {
    const refused = await fetch(`${srv.url}/v1/images/${base.id}`, { method: 'DELETE' });
    assert.equal(refused.status, 409);
    assert.match(((await refused.json()) as { error: string }).error, /in use by gc\/two:latest/);
    assert.equal((await fetch(`${srv.url}/v1/repositories/gc/two/tags/latest`, { method: 'DELETE' })).status, 200);
    assert.deepEqual(await (await fetch(`${srv.url}/v1/repositories/gc/two/images`)).json(), []);
    const report = await gc(srv, false);
    assert.deepEqual(report.images.deletedIds, [c2.id, base.id].sort());
    assert.equal(report.blobs.bytesFreed, shared.length + base.layer.length);
    assert.deepEqual(await blobFiles(srv.root), []);
  });
});

describe('[DELETE /v1/images/:id]', () => {
  it('detaches a listed image and its descendants from every list so GC frees them', async () => {
    const srv = await startTestServer({ overrides: { gc_grace_seconds: 0 } });
    try {
      const parent = { id: newImageId(), layer: randomBytes(500) };
      const child = { id: newImageId(), parent: parent.id, layer: randomBytes(700) };
      const kept = { id: newImageId(), layer: randomBytes(900) };
      await pushImage(srv.url, parent);
      await pushImage(srv.url, child);
      await pushImage(srv.url, kept);
      const list = JSON.stringify([{ id: parent.id }, { id: child.id }, { id: kept.id }]);
      for (const repo of ['del/a', 'del/b']) {
        assert.equal((await put(`${srv.url}/v1/repositories/${repo}/images`, list, { 'Content-Type': 'application/json' })).status, 204);
      }
      const res = await fetch(`${srv.url}/v1/images/${parent.id}`, { method: 'DELETE' });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { detached: [parent.id, child.id].sort(), repositories: ['del/a', 'del/b'] });
      const listed = (await (await fetch(`${srv.url}/v1/repositories/del/a/images`)).json()) as Array<{ id: string }>;
      assert.deepEqual(listed.map((e) => e.id), [kept.id]);
      const report = await gc(srv, false);
      assert.deepEqual(report.images.deletedIds, [parent.id, child.id].sort());
      assert.equal(report.blobs.bytesFreed, parent.layer.length + child.layer.length);
      assert.deepEqual((await layerOf(srv, kept.id)).body, kept.layer);
      assert.equal((await fetch(`${srv.url}/v1/images/${newImageId()}`, { method: 'DELETE' })).status, 404);
    } finally {
      await srv.destroy();
    }
  });
});

describe('garbage collection racing a push', () => {
  it('never collects an image whose layer is streaming, nor its parent', async () => {
    const srv = await startTestServer({ overrides: { gc_grace_seconds: 0 } });
    try {
      const parent = { id: newImageId(), layer: randomBytes(2048) };
      await pushImage(srv.url, parent); // complete, not tagged yet: garbage if nothing protects it
      const child = { id: newImageId(), parent: parent.id, layer: randomBytes(3 * 1024 * 1024) };
      const json = imageJson(child);
      assert.equal((await put(`${srv.url}/v1/images/${child.id}/json`, json)).status, 200);

      const upload = openUpload(`${srv.url}/v1/images/${child.id}/layer`);
      await upload.write(child.layer.subarray(0, 1024 * 1024));
      // GC runs while the layer is half uploaded.
      const during = await gc(srv, false);
      assert.deepEqual(during.images.deletedIds, []);
      await upload.write(child.layer.subarray(1024 * 1024));
      upload.end();
      assert.equal((await upload.response).status, 200);
      const ck = await put(`${srv.url}/v1/images/${child.id}/checksum`, undefined, {
        'X-Docker-Checksum-Payload': payloadChecksum(json, child.layer),
      });
      assert.equal(ck.status, 200);
      assert.equal((await setTag(srv.url, 'race/app', 'latest', child.id)).status, 200);
      const afterPush = await gc(srv, false);
      assert.deepEqual(afterPush.images.deletedIds, []);
      assert.deepEqual((await layerOf(srv, child.id)).body, child.layer);
      assert.deepEqual((await layerOf(srv, parent.id)).body, parent.layer);
    } finally {
      await srv.destroy();
    }
  });

  it('keeps unreferenced images younger than the grace period', async () => {
    const srv = await startTestServer({ overrides: { gc_grace_seconds: 3600 } });
    try {
      const young = { id: newImageId(), layer: randomBytes(100) };
      await pushImage(srv.url, young);
      const report = await gc(srv, false);
      assert.equal(report.images.deleted, 0);
      assert.equal((await layerOf(srv, young.id)).status, 200);
    } finally {
      await srv.destroy();
    }
  });
});

describe('admin operations need an admin', () => {
  it('401 anonymous, 403 for a user, 200 for an admin', async () => {
    const srv = await startTestServer({ overrides: { standalone: false, admin_username: 'boss', admin_password: 'boss-pass' } });
    try {
      await srv.running.services.users.upsert({ username: 'pleb', password: 'pleb-pass', email: 'pleb@x.io', admin: false });
      const basic = (u: string, p: string) => ({ Authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
      assert.equal((await fetch(`${srv.url}/_admin/gc?dry_run=1`, { method: 'POST' })).status, 401);
      assert.equal((await fetch(`${srv.url}/_admin/gc?dry_run=1`, { method: 'POST', headers: basic('pleb', 'pleb-pass') })).status, 403);
      assert.equal((await fetch(`${srv.url}/_admin/fsck`, { method: 'POST', headers: basic('pleb', 'pleb-pass') })).status, 403);
      assert.equal((await fetch(`${srv.url}/v1/images/${newImageId()}`, { method: 'DELETE', headers: basic('pleb', 'pleb-pass') })).status, 403);
      assert.equal((await fetch(`${srv.url}/_admin/gc?dry_run=1`, { method: 'POST', headers: basic('boss', 'boss-pass') })).status, 200);
      assert.equal((await fetch(`${srv.url}/v1/images/${newImageId()}`, { method: 'DELETE', headers: basic('boss', 'boss-pass') })).status, 404);
    } finally {
      await srv.destroy();
    }
  });
});
