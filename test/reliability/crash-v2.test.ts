/**
 * Crash safety of Registry API v2 pushes: the real server as a child process (see
 * crash-harness.ts), `kill -9` during chunked uploads and at random moments of concurrent
 * pushes sharing layers, then offline with the real stores:
 *
 * - every blob under blobs/ re-hashes to its name (nothing half-written is published);
 * - every manifest a repository holds is stored, re-hashes to its digest, and every blob it
 *   names is stored (no manifest points at a missing blob);
 * - every blob link names a stored blob, every tag's manifest is held by its repository;
 * - every upload session still has the bytes it acknowledged;
 *
 * then the restarted server's fsck is clean, every interrupted push succeeds when retried,
 * and everything pulls back byte-exact.
 *
 * CRASH_SEED=<n> replays a run; CRASH_V2_KILLS=<n> changes the number of kills (default 3).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { nameOfRepo } from '../../src/domain/names.js';
import { parseManifest } from '../../src/domain/manifest.js';
import { FsBlobStore } from '../../src/store/blobs/fs-blob-store.js';
import { LevelMetadataStore } from '../../src/store/metadata/level-metadata-store.js';
import { prng, send, startChild, type ChildServer } from './crash-harness.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface V2Push {
  repo: string;
  tag: string;
  layers: Buffer[];
  config: Buffer;
  manifest: Buffer;
}

function makePush(repo: string, tag: string, layers: Buffer[]): V2Push {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map(digestOf) }, history: layers.map(() => ({ created_by: 'x' })) }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: digestOf(config) },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar', size: l.length, digest: digestOf(l) })),
  }));
  return { repo, tag, layers, config, manifest };
}

function ok(res: { status: number; body: Buffer }, statuses: number[], what: string): void {
  if (!statuses.includes(res.status)) throw new Error(`${what}: HTTP ${res.status} ${res.body.toString().slice(0, 200)}`);
}

/** docker push's sequence: HEAD each blob, POST + one streamed PATCH + PUT for the missing ones, then the manifest. */
async function pushV2(base: string, push: V2Push, onPiece?: () => Promise<void>): Promise<void> {
  for (const blob of [...push.layers, push.config]) {
    const digest = digestOf(blob);
    const head = await send(base, 'HEAD', `/v2/${push.repo}/blobs/${digest}`);
    if (head.status === 200) continue;
    const start = await send(base, 'POST', `/v2/${push.repo}/blobs/uploads/`);
    ok(start, [202], 'POST uploads');
    const location = start.headers.location as string;
    ok(await send(base, 'PATCH', location, { body: blob, pieceSize: 64 * 1024, onPiece: onPiece ? () => onPiece() : undefined }), [202], 'PATCH');
    ok(await send(base, 'PUT', `${location}?digest=${digest}`), [201], 'PUT upload');
  }
  ok(await send(base, 'PUT', `/v2/${push.repo}/manifests/${push.tag}`, {
    headers: { 'Content-Type': 'application/vnd.docker.distribution.manifest.v2+json' },
    body: push.manifest,
  }), [201], 'PUT manifest');
}

async function verifyV2(base: string, push: V2Push): Promise<void> {
  const manifest = await send(base, 'GET', `/v2/${push.repo}/manifests/${push.tag}`, { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
  assert.equal(manifest.status, 200, `${push.repo}:${push.tag}`);
  assert.ok(manifest.body.equals(push.manifest), `${push.repo}:${push.tag} manifest byte-exact`);
  for (const blob of [...push.layers, push.config]) {
    const res = await send(base, 'GET', `/v2/${push.repo}/blobs/${digestOf(blob)}`);
    assert.equal(res.status, 200);
    assert.ok(res.body.equals(blob), `${push.repo} blob ${digestOf(blob)} byte-exact`);
  }
}

/** The v2 crash invariants, offline with the real stores (the server must be down). */
async function inspectV2(root: string): Promise<{ blobs: number; manifests: number; sessions: number }> {
  const blobs = new FsBlobStore(root);
  const meta = new LevelMetadataStore(blobs.paths.db);
  await meta.open();
  try {
    const present = new Set<string>();
    for await (const digest of blobs.list()) {
      const hash = createHash('sha256');
      for await (const c of await blobs.read(digest)) hash.update(c as Buffer);
      assert.equal(`sha256:${hash.digest('hex')}`, digest, `blob ${digest} re-hashes to its name`);
      present.add(digest);
    }
    let manifests = 0;
    for await (const repo of meta.listRepos()) {
      const name = nameOfRepo(repo);
      const held = new Set<string>();
      for (const [digest] of await meta.listManifestLinks(name)) {
        manifests += 1;
        held.add(digest);
        const bytes = await meta.getManifest(digest);
        assert.ok(bytes, `${name.full} holds ${digest}: stored`);
        assert.equal(digestOf(bytes), digest, `manifest ${digest} re-hashes`);
        const m = parseManifest(bytes, undefined);
        const named: string[] = [...(m.config ? [m.config.digest] : []), ...m.layers.map((l) => l.digest)];
        for (const d of named) {
          assert.ok(present.has(d), `manifest ${digest} of ${name.full} names ${d}: stored`);
        }
      }
      for (const [digest] of await meta.listBlobLinks(name)) assert.ok(present.has(digest), `${name.full} links ${digest}: stored`);
      for (const [tag, record] of await meta.listTags(name)) {
        if (record.manifest) assert.ok(held.has(record.manifest), `${name.full}:${tag} shows a manifest the repository holds`);
      }
    }
    let sessions = 0;
    for await (const record of meta.listUploads()) {
      sessions += 1;
      const info = await blobs.statUpload(record.id);
      // A session whose file is gone was killed between publishing its blob (a rename) and
      // dropping its record: its next chunk or PUT answers BLOB_UPLOAD_UNKNOWN and GC reclaims the record. A file
      // that is there must hold every byte the session acknowledged.
      if (record.offset > 0 && info) assert.ok(info.size >= record.offset, `session ${record.id} keeps the ${record.offset} bytes it acknowledged`);
    }
    return { blobs: present.size, manifests, sessions };
  } finally {
    await meta.close();
  }
}

async function fsckClean(server: ChildServer): Promise<void> {
  const res = await send(server.url, 'POST', '/_admin/fsck');
  assert.equal(res.status, 200);
  const report = JSON.parse(res.body.toString()) as { ok: boolean; problems: unknown[] };
  assert.deepEqual(report.problems, [], 'fsck finds nothing after the kill');
}

describe('crash safety of v2 pushes: kill -9, restart on the same storage', () => {
  it('a kill in the middle of a chunked upload: no blob appears, the session survives, the push completes', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'registry-crash-v2-'));
    const big = randomBytes(4 * 1024 * 1024);
    const push = makePush('crash/v2', 'one', [randomBytes(1000), big]);
    let server = await startChild(root);
    try {
      const start = await send(server.url, 'POST', '/v2/crash/v2/blobs/uploads/');
      const location = start.headers.location as string;
      ok(await send(server.url, 'PATCH', location, { body: big.subarray(0, 1 << 20) }), [202], 'first chunk');
      const current = server;
      const patch = send(current.url, 'PATCH', location, {
        body: big.subarray(1 << 20),
        pieceSize: 64 * 1024,
        onPiece: async (piece) => {
          if (piece === 16) await current.kill9();
        },
      });
      await assert.rejects(patch, 'the chunk dies with the server');
      const report = await inspectV2(root);
      assert.equal(report.sessions, 1);
      assert.equal(report.blobs, 0, 'nothing half-written is published');

      server = await startChild(root);
      await fsckClean(server);
      const status = await send(server.url, 'GET', location);
      assert.equal(status.status, 204);
      assert.equal(status.headers.range, `0-${(1 << 20) - 1}`, 'the acknowledged chunk is kept, the killed one is not');
      ok(await send(server.url, 'PATCH', location, { body: big.subarray(1 << 20), headers: { 'Content-Range': `${1 << 20}-${big.length - 1}` } }), [202], 'rest');
      ok(await send(server.url, 'PUT', `${location}?digest=${digestOf(big)}`), [201], 'finish');
      await pushV2(server.url, push);
      await verifyV2(server.url, push);
      await inspectV2Later(server, root);
    } finally {
      await server.kill9();
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it('kills at random moments of concurrent pushes sharing layers', async () => {
    const seed = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const kills = Number(process.env.CRASH_V2_KILLS ?? 3);
    const rand = prng(seed);
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'registry-crash-v2r-'));
    const shared = randomBytes(512 * 1024);
    const done: V2Push[] = [];
    let server = await startChild(root);
    try {
      for (let k = 0; k < kills; k++) {
        const pushes = [0, 1, 2].map((i) =>
          makePush(`crash/r${i}`, `k${k}`, [shared, randomBytes(64 * 1024 + Math.floor(rand() * 1024 * 1024)), randomBytes(1000 + i)]),
        );
        const current = server;
        const outcomes = pushes.map((p) => pushV2(current.url, p).then(() => true, () => false));
        await sleep(30 + Math.floor(rand() * 400));
        await current.kill9();
        const finished = await Promise.all(outcomes);
        pushes.forEach((p, i) => finished[i] && done.push(p));
        await inspectV2(root).catch((err: Error) => {
          throw new Error(`seed ${seed}, kill ${k}: ${err.message}`);
        });
        server = await startChild(root);
        await fsckClean(server);
        // Interrupted pushes succeed when retried; everything pushed pulls back.
        for (const [i, p] of pushes.entries()) {
          if (!finished[i]) {
            await pushV2(server.url, p);
            done.push(p);
          }
        }
        for (const p of done) await verifyV2(server.url, p);
      }
    } finally {
      await server.kill9();
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});

/** Stops the server and inspects once more (the end state of a test). */
async function inspectV2Later(server: ChildServer, root: string): Promise<void> {
  await server.stop();
  const report = await inspectV2(root);
  assert.equal(report.sessions, 0, 'the finished session is gone');
}
