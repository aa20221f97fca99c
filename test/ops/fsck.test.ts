/**
 * fsck (POST /_admin/fsck on a running standalone server, `registry fsck` on a stopped
 * one) and `registry gc` from the command line. Damage is done the way it happens in real
 * life: bytes flipped in a blob file, a record missing from LevelDB.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Level } from 'level';
import type { FsckProblem, FsckReport } from '../../src/services/fsck.js';
import type { GcReport } from '../../src/services/gc.js';
import { LevelMetadataStore } from '../../src/store/metadata/level-metadata-store.js';
import { parseImageId } from '../../src/domain/names.js';
import { runScript, type ProcessResult } from '../helpers/cli.js';
import { pull } from '../helpers/docker1.js';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';
import { imageJson, payloadChecksum, pushChain, pushImage, put, setTag, type TestImage } from '../helpers/v1.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const digestOf = (bytes: Buffer) => `sha256:${sha256(bytes)}`;
const blobPath = (root: string, bytes: Buffer) => {
  const hex = sha256(bytes);
  return path.join(root, 'blobs', 'sha256', hex.slice(0, 2), hex);
};

/** Flips bytes in the middle of a blob file, in place (same size, same inode). */
async function corrupt(file: string): Promise<Buffer> {
  const handle = await fs.open(file, 'r+');
  try {
    const { size } = await handle.stat();
    const at = Math.floor(size / 2);
    const original = Buffer.alloc(4);
    await handle.read(original, 0, 4, at);
    await handle.write(Buffer.from(original.map((b) => b ^ 0xff)), 0, 4, at);
  } finally {
    await handle.close();
  }
  return fs.readFile(file);
}

async function fsckHttp(srv: TestServer, repair = false): Promise<FsckReport> {
  const res = await fetch(`${srv.url}/_admin/fsck${repair ? '?repair=true' : ''}`, { method: 'POST' });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as FsckReport;
}

const kinds = (report: FsckReport) =>
  report.problems.map((p) => `${p.kind} ${p.subject} ${p.repaired ? 'repaired' : 'left'}`).sort();

async function layerOf(base: string, id: string): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(`${base}/v1/images/${id}/layer`);
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

async function blobFiles(root: string): Promise<string[]> {
  const dir = path.join(root, 'blobs', 'sha256');
  const out: string[] = [];
  for (const sub of await fs.readdir(dir)) out.push(...(await fs.readdir(path.join(dir, sub))));
  return out.sort();
}

/** `registry <args>` from source on the storage root `root`. */
function cli(root: string, args: string[], env: Record<string, string> = {}): Promise<ProcessResult> {
  return runScript('src/cli/main.ts', args, { REGISTRY_CONFIG: 'config/test.yaml', REGISTRY_STORAGE_ROOT: root, ...env });
}

async function cliJson<T>(root: string, args: string[], expectedCode: number, env: Record<string, string> = {}): Promise<T> {
  const res = await cli(root, [...args, '--json'], env);
  assert.equal(res.code, expectedCode, `registry ${args.join(' ')}: exit ${res.code}\n${res.stdout}\n${res.stderr}`);
  return JSON.parse(res.stdout) as T;
}

/** A pending image: json and layer uploaded, never a checksum. */
async function pushPending(base: string, image: TestImage): Promise<void> {
  assert.equal((await put(`${base}/v1/images/${image.id}/json`, imageJson(image))).status, 200);
  assert.equal((await put(`${base}/v1/images/${image.id}/layer`, image.layer)).status, 200);
}

describe('fsck over HTTP', () => {
  it('a healthy store: ok, no problems, every count right', async () => {
    const srv = await startTestServer();
    try {
      const base = { id: newImageId(), layer: randomBytes(3000) };
      const child = { id: newImageId(), parent: base.id, layer: randomBytes(5000) };
      const pending = { id: newImageId(), layer: randomBytes(700) };
      await pushChain(srv.url, 'fsck/ok', 'latest', [base, child]);
      assert.equal((await setTag(srv.url, 'fsck/ok', 'old', base.id)).status, 200);
      assert.equal((await setTag(srv.url, 'fsck/other', 'latest', child.id)).status, 200);
      await pushPending(srv.url, pending);
      assert.equal(
        (await put(`${srv.url}/v1/repositories/fsck/ok/images`, JSON.stringify([{ id: pending.id }]), { 'Content-Type': 'application/json' })).status,
        204,
      );
      const report = await fsckHttp(srv);
      assert.deepEqual(report, {
        blobs: { checked: 3, bytes: 3000 + 5000 + 700, orphans: [] },
        images: { checked: 3, complete: 2, pending: 1, unreferenced: [] },
        tags: { checked: 3 },
        manifests: { checked: 0, links: 0 },
        uploads: { sessions: 0 },
        problems: [],
        repair: false,
        ok: true,
      });
      const repaired = await fsckHttp(srv, true);
      assert.deepEqual(repaired, { ...report, repair: true });
    } finally {
      await srv.destroy();
    }
  });

  it('reports orphan blobs and unreferenced images, which are not problems', async () => {
    const srv = await startTestServer();
    try {
      const kept = { id: newImageId(), layer: randomBytes(1000) };
      const loose = { id: newImageId(), layer: randomBytes(2000) };
      await pushChain(srv.url, 'fsck/kept', 'latest', [kept]);
      await pushImage(srv.url, loose); // complete, never tagged or listed
      // A blob no image uses (its content matches its address).
      const stray = randomBytes(1234);
      await fs.mkdir(path.dirname(blobPath(srv.root, stray)), { recursive: true });
      await fs.writeFile(blobPath(srv.root, stray), stray);

      const report = await fsckHttp(srv);
      assert.deepEqual(report.problems, []);
      assert.equal(report.ok, true);
      assert.deepEqual(report.blobs, { checked: 3, bytes: 1000 + 2000 + 1234, orphans: [digestOf(stray)] });
      assert.deepEqual(report.images, { checked: 2, complete: 2, pending: 0, unreferenced: [loose.id] });
      // --repair leaves them to GC.
      const repaired = await fsckHttp(srv, true);
      assert.deepEqual(repaired.blobs.orphans, [digestOf(stray)]);
      assert.deepEqual(repaired.images.unreferenced, [loose.id]);
      assert.ok((await fs.stat(blobPath(srv.root, stray))).isFile());
      assert.deepEqual((await layerOf(srv.url, loose.id)).body, loose.layer);
    } finally {
      await srv.destroy();
    }
  });

  it('a corrupt blob no image uses: reported under its digest; --repair deletes it and it is no orphan any more', async () => {
    const srv = await startTestServer();
    try {
      const kept = { id: newImageId(), layer: randomBytes(1000) };
      await pushChain(srv.url, 'fsck/kept', 'latest', [kept]);
      const stray = randomBytes(3000);
      const file = blobPath(srv.root, stray);
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, stray);
      await corrupt(file);

      const report = await fsckHttp(srv);
      assert.deepEqual(kinds(report), [`corrupt-blob ${digestOf(stray)} left`]);
      assert.deepEqual(report.blobs.orphans, [digestOf(stray)]);
      assert.equal(report.ok, false);

      const repaired = await fsckHttp(srv, true);
      assert.deepEqual(kinds(repaired), [`corrupt-blob ${digestOf(stray)} repaired`]);
      assert.equal(repaired.ok, true);
      await assert.rejects(fs.stat(file), { code: 'ENOENT' });
      assert.deepEqual(repaired.blobs.orphans, [], 'a deleted blob is not listed as an orphan');

      const after = await fsckHttp(srv);
      assert.deepEqual(after.problems, []);
      assert.deepEqual(after.blobs, { checked: 1, bytes: 1000, orphans: [] });
    } finally {
      await srv.destroy();
    }
  });

  it("a complete image's corrupt blob is reported against the image, and --repair does not touch it", async () => {
    const srv = await startTestServer();
    try {
      const good = { id: newImageId(), layer: randomBytes(4000) };
      const bad = { id: newImageId(), layer: randomBytes(8000) };
      await pushChain(srv.url, 'fsck/good', 'latest', [good]);
      await pushChain(srv.url, 'fsck/bad', 'latest', [bad]);
      const file = blobPath(srv.root, bad.layer);
      const damaged = await corrupt(file);

      const report = await fsckHttp(srv);
      assert.equal(report.ok, false);
      assert.deepEqual(kinds(report), [`corrupt-blob ${bad.id} left`]);
      assert.match(report.problems[0].detail, new RegExp(digestOf(bad.layer)));
      assert.equal(report.blobs.checked, 2);

      const repaired = await fsckHttp(srv, true);
      assert.equal(repaired.ok, false);
      assert.deepEqual(kinds(repaired), [`corrupt-blob ${bad.id} left`], 'still reported, not repaired');
      assert.deepEqual(await fs.readFile(file), damaged, 'the blob is still there, unchanged');
      // The image is still complete and tagged: nothing was removed or reset.
      assert.equal(await (await fetch(`${srv.url}/v1/repositories/fsck/bad/tags/latest`)).json(), bad.id);
      assert.equal((await fetch(`${srv.url}/v1/images/${bad.id}/json`)).status, 200);
      assert.equal((await srv.running.services.meta.getImage(parseImageId(bad.id)))?.status, 'complete');
      assert.deepEqual((await layerOf(srv.url, good.id)).body, good.layer);
    } finally {
      await srv.destroy();
    }
  });

  it("a pending image's corrupt blob: --repair resets its layer, and the image can be uploaded again and completed", async () => {
    const srv = await startTestServer();
    try {
      const image = { id: newImageId(), layer: randomBytes(6000) };
      await pushPending(srv.url, image);
      await corrupt(blobPath(srv.root, image.layer));

      const report = await fsckHttp(srv);
      assert.equal(report.ok, false);
      const imageProblem = report.problems.find((p) => p.subject === image.id);
      assert.deepEqual(imageProblem && { kind: imageProblem.kind, repaired: imageProblem.repaired }, { kind: 'corrupt-blob', repaired: false });
      assert.ok(report.problems.every((p) => !p.repaired));

      const repaired = await fsckHttp(srv, true);
      const fixed = repaired.problems.find((p) => p.subject === image.id) as FsckProblem;
      assert.equal(fixed.kind, 'corrupt-blob');
      assert.equal(fixed.repaired, true);
      assert.match(fixed.detail, /uploaded again/);
      assert.ok(repaired.problems.every((p) => p.repaired), JSON.stringify(repaired.problems));
      assert.equal(repaired.ok, true);
      const record = await srv.running.services.meta.getImage(parseImageId(image.id));
      assert.equal(record?.status, 'pending');
      assert.equal(record?.layer, null);
      // Without a layer the checksum is refused; after a new upload it completes.
      const json = imageJson(image);
      const checksum = { 'X-Docker-Checksum-Payload': payloadChecksum(json, image.layer) };
      assert.equal((await put(`${srv.url}/v1/images/${image.id}/checksum`, undefined, checksum)).status, 400);
      assert.equal((await put(`${srv.url}/v1/images/${image.id}/layer`, image.layer)).status, 200);
      assert.equal((await put(`${srv.url}/v1/images/${image.id}/checksum`, undefined, checksum)).status, 200);
      assert.deepEqual((await layerOf(srv.url, image.id)).body, image.layer, 'the new upload is served, not the corrupt bytes');
      const after = await fsckHttp(srv);
      assert.deepEqual(after.problems, []);
      assert.equal(after.images.complete, 1);
    } finally {
      await srv.destroy();
    }
  });

  it('a dangling tag is reported, and --repair deletes that tag only', async () => {
    const srv = await startTestServer();
    try {
      const gone = { id: newImageId(), layer: randomBytes(900) };
      const kept = { id: newImageId(), layer: randomBytes(1100) };
      await pushChain(srv.url, 'fsck/dangle', 'latest', [gone]);
      await pushImage(srv.url, kept);
      assert.equal((await setTag(srv.url, 'fsck/dangle', 'keep', kept.id)).status, 200);
      await srv.running.services.meta.deleteImage(parseImageId(gone.id));

      const report = await fsckHttp(srv);
      assert.equal(report.ok, false);
      assert.deepEqual(kinds(report), ['dangling-tag fsck/dangle:latest left']);
      assert.match(report.problems[0].detail, new RegExp(`missing image ${gone.id}`));
      assert.deepEqual(report.blobs.orphans, [digestOf(gone.layer)], 'the record is gone, its blob is an orphan');
      assert.equal(report.tags.checked, 2);

      const repaired = await fsckHttp(srv, true);
      assert.deepEqual(kinds(repaired), ['dangling-tag fsck/dangle:latest repaired']);
      assert.equal(repaired.ok, true);
      assert.deepEqual(await (await fetch(`${srv.url}/v1/repositories/fsck/dangle/tags`)).json(), { keep: kept.id });

      const after = await fsckHttp(srv);
      assert.deepEqual(after.problems, []);
      assert.equal(after.tags.checked, 1);
    } finally {
      await srv.destroy();
    }
  });
});

// Each CLI run starts a process (about a second): the two tests run side by side.
describe('fsck and gc from the command line, on a stopped registry', { concurrency: true }, () => {
  it('fsck: exit 1 while a problem is left; --repair fixes a dangling tag and a missing reverse link, not a corrupt complete image', { timeout: 60_000 }, async () => {
    const srv = await startTestServer();
    const root = srv.root;
    try {
      const base = { id: newImageId(), layer: randomBytes(2500) };
      const child = { id: newImageId(), parent: base.id, layer: randomBytes(3500) };
      const gone = { id: newImageId(), layer: randomBytes(1500) };
      const bad = { id: newImageId(), layer: randomBytes(4500) };
      await pushChain(srv.url, 'cli/app', 'latest', [base, child]);
      await pushChain(srv.url, 'cli/gone', 'latest', [gone]);
      await pushChain(srv.url, 'cli/bad', 'latest', [bad]);
      await srv.stop();

      // Damage: an image record lost, a reverse link lost, a blob corrupted.
      const store = new LevelMetadataStore(path.join(root, 'db'));
      await store.open();
      await store.deleteImage(parseImageId(gone.id));
      await store.close();
      const reverse = `imgrepo!${base.id}!cli/app`;
      const db = new Level<string, unknown>(path.join(root, 'db'), { keyEncoding: 'utf8', valueEncoding: 'json' });
      await db.open();
      assert.equal(await db.get(reverse), true);
      await db.del(reverse);
      await db.close();
      const badFile = blobPath(root, bad.layer);
      const damaged = await corrupt(badFile);

      const broken = await cliJson<FsckReport>(root, ['fsck'], 1);
      assert.equal(broken.ok, false);
      assert.deepEqual(kinds(broken), [
        `corrupt-blob ${bad.id} left`,
        'dangling-tag cli/gone:latest left',
        `missing-reverse-link cli/app@${base.id} left`,
      ].sort());
      assert.deepEqual(broken.blobs, { checked: 4, bytes: 2500 + 3500 + 1500 + 4500, orphans: [digestOf(gone.layer)] });
      assert.deepEqual(broken.images, { checked: 3, complete: 3, pending: 0, unreferenced: [] });
      assert.equal(broken.tags.checked, 3);

      const repaired = await cliJson<FsckReport>(root, ['fsck', '--repair'], 1);
      assert.deepEqual(kinds(repaired), [
        `corrupt-blob ${bad.id} left`,
        'dangling-tag cli/gone:latest repaired',
        `missing-reverse-link cli/app@${base.id} repaired`,
      ].sort());

      // The text report: what is left, and exit code 1.
      const left = await cli(root, ['fsck']);
      assert.equal(left.code, 1, left.stderr);
      assert.deepEqual(left.stdout.split('\n').filter((l) => /^(PROBLEM|repaired) /.test(l)), [
        `PROBLEM corrupt-blob ${bad.id}: layer blob does not match its digest (${digestOf(bad.layer)})`,
      ]);
      assert.match(left.stdout, /^1 problem\(s\) left$/m);
      assert.deepEqual(await fs.readFile(badFile), damaged, 'the corrupt blob of a complete image is untouched');
      const check = new Level<string, unknown>(path.join(root, 'db'), { keyEncoding: 'utf8', valueEncoding: 'json' });
      await check.open();
      assert.equal(await check.get(reverse), true, 'the reverse link is back');
      assert.equal(await check.get('tag!cli/gone!latest'), undefined, 'the dangling tag is gone');
      assert.ok(await check.get('tag!cli/bad!latest'), 'the corrupt image keeps its tag');
      await check.close();

      // The repaired store serves what it holds.
      const again = await startTestServer({ root });
      try {
        const pulled = await pull(again.url, null, 'cli/app', 'latest');
        assert.deepEqual(pulled.images.map((i) => i.layer), [base.layer, child.layer]);
        assert.deepEqual(await (await fetch(`${again.url}/v1/repositories/cli/gone/tags`)).json(), {});
      } finally {
        await again.stop();
      }
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it('gc --dry-run --json and gc --grace 0 agree on images, blobs and bytes; fsck then exits 0; what remains pulls byte-exact', { timeout: 60_000 }, async () => {
    const srv = await startTestServer();
    const root = srv.root;
    // base ← c1 (gc/one) and base ← c2 (gc/two); c1 and c2 carry the same layer bytes.
    const shared = randomBytes(40 * 1024);
    const base = { id: newImageId(), layer: randomBytes(20 * 1024) };
    const c1 = { id: newImageId(), parent: base.id, layer: shared };
    const c2 = { id: newImageId(), parent: base.id, layer: Buffer.from(shared) };
    const orphan = { id: newImageId(), layer: randomBytes(7000) };
    const abandoned = { id: newImageId(), layer: randomBytes(3000) };
    try {
      await pushChain(srv.url, 'gc/one', 'latest', [base, c1]);
      await pushImage(srv.url, c2);
      assert.equal((await setTag(srv.url, 'gc/two', 'latest', c2.id)).status, 200);
      await pushImage(srv.url, orphan);
      await pushPending(srv.url, abandoned);
      assert.equal((await fetch(`${srv.url}/v1/repositories/gc/one/`, { method: 'DELETE' })).status, 200);
      await srv.stop();
      const blobsBefore = await blobFiles(root);
      assert.equal(blobsBefore.length, 4);

      // (test/ops/gc.test.ts shows the configured grace period keeping young images.)
      const dry = await cliJson<GcReport>(root, ['gc', '--dry-run'], 0, { REGISTRY_GC_GRACE_SECONDS: '0' });
      assert.equal(dry.dryRun, true);
      assert.deepEqual(dry.images, { scanned: 5, deleted: 3, deletedIds: [c1.id, orphan.id, abandoned.id].sort() });
      assert.deepEqual(dry.blobs, { scanned: 4, deleted: 2, bytesFreed: orphan.layer.length + abandoned.layer.length, linksRemoved: 0 });
      assert.deepEqual(dry.manifests, { scanned: 0, deleted: 0, deletedDigests: [] });
      assert.deepEqual(dry.uploads, { scanned: 0, reclaimed: 0, bytesFreed: 0 });
      assert.deepEqual(await blobFiles(root), blobsBefore, 'a dry run deletes nothing');

      const real = await cli(root, ['gc', '--grace', '0']);
      assert.equal(real.code, 0, real.stderr);
      assert.equal(
        real.stdout.trim(),
        `deleted ${dry.images.deleted} of ${dry.images.scanned} images, 0 of 0 manifests and ${dry.blobs.deleted} of ${dry.blobs.scanned} blobs (${dry.blobs.bytesFreed} bytes); 0 abandoned upload(s) reclaimed (0 bytes)`,
      );
      assert.deepEqual(await blobFiles(root), [sha256(base.layer), sha256(shared)].sort());
      const fsck = await cliJson<FsckReport>(root, ['fsck'], 0);
      assert.equal(fsck.ok, true);
      assert.deepEqual(fsck.problems, []);
      assert.deepEqual(fsck.blobs, { checked: 2, bytes: base.layer.length + shared.length, orphans: [] });
      assert.deepEqual(fsck.images, { checked: 2, complete: 2, pending: 0, unreferenced: [] });
      assert.equal(fsck.tags.checked, 1);

      const again = await startTestServer({ root });
      try {
        const pulled = await pull(again.url, null, 'gc/two', 'latest');
        assert.deepEqual(pulled.ancestry, [c2.id, base.id]);
        assert.deepEqual(pulled.images.map((i) => i.id), [base.id, c2.id]);
        assert.ok(pulled.images[0].layer.equals(base.layer));
        assert.ok(pulled.images[1].layer.equals(shared));
        assert.ok(pulled.images[1].json.equals(imageJson(c2)));
        for (const id of [c1.id, orphan.id, abandoned.id]) {
          assert.equal((await fetch(`${again.url}/v1/images/${id}/json`)).status, 404, id);
        }
      } finally {
        await again.stop();
      }
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});
