/**
 * Disk full: a layer upload that runs out of space answers a clear 507 with a JSON error,
 * removes its temp file, publishes nothing (no blob, the image stays pending), and the next
 * push succeeds once there is space again.
 *
 * Two ways to run out of space:
 * - a real one: the storage root on a small tmpfs (`mount -t tmpfs -o size=…`, needs root;
 *   skipped with the reason when the mount is refused);
 * - an injected one, always run: the server's blob store fails with ENOSPC mid-stream, or
 *   when the blob is linked into place (commit).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BlobWriter } from '../../src/store/blobs/blob-store.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { makeImage, prng, send, verifyPull, type HarnessImage, type HttpResult } from './crash-harness.js';

const JSON_TYPE = { 'Content-Type': 'application/json' };

async function putJson(base: string, img: HarnessImage): Promise<void> {
  const res = await send(base, 'PUT', `/v1/images/${img.id}/json`, { headers: JSON_TYPE, body: img.json });
  assert.equal(res.status, 200, res.body.toString());
}

async function putLayer(base: string, img: HarnessImage): Promise<HttpResult> {
  return send(base, 'PUT', `/v1/images/${img.id}/layer`, { body: img.layer, pieceSize: 256 * 1024 });
}

async function putChecksum(base: string, img: HarnessImage): Promise<HttpResult> {
  return send(base, 'PUT', `/v1/images/${img.id}/checksum`, { headers: { 'X-Docker-Checksum-Payload': img.checksum } });
}

async function pushAndTag(base: string, repo: string, tag: string, images: HarnessImage[]): Promise<void> {
  for (const img of images) {
    await putJson(base, img);
    const layer = await putLayer(base, img);
    assert.equal(layer.status, 200, `PUT layer: ${layer.body.toString()}`);
    assert.equal((await putChecksum(base, img)).status, 200);
  }
  const tag1 = await send(base, 'PUT', `/v1/repositories/${repo}/tags/${tag}`, { headers: JSON_TYPE, body: Buffer.from(JSON.stringify(images.at(-1)!.id)) });
  assert.equal(tag1.status, 200);
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(path.join(entry.parentPath, entry.name));
  }
  return out.sort();
}

/** The 507 and everything that must (not) have happened. */
async function assertDiskFullAnswered(srv: TestServer, img: HarnessImage, res: HttpResult, blobsBefore: string[]): Promise<void> {
  assert.equal(res.status, 507, `disk full is 507: ${res.body.toString()}`);
  assert.match(String(res.headers['content-type']), /application\/json/);
  assert.match((JSON.parse(res.body.toString()) as { error: string }).error, /space/i, 'the error says what happened');
  assert.deepEqual(await fs.readdir(path.join(srv.root, 'tmp')), [], 'the temp file is removed');
  assert.deepEqual(await listFiles(path.join(srv.root, 'blobs')), blobsBefore, 'no blob is published');
  assert.equal((await send(srv.url, 'GET', `/v1/images/${img.id}/json`)).status, 400, 'the image stays pending (not served)');
  const checksum = await putChecksum(srv.url, img);
  assert.equal(checksum.status, 400, 'it cannot be completed: it has no layer');
  assert.match(checksum.body.toString(), /not been uploaded/);
  const fsck = JSON.parse((await send(srv.url, 'POST', '/_admin/fsck')).body.toString()) as { problems: unknown[] };
  assert.deepEqual(fsck.problems, [], 'fsck finds nothing broken');
}

function tryMountTmpfs(dir: string, size: string): string | null {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
    return null;
  } catch (err) {
    return `cannot mount a tmpfs here (${String((err as { stderr?: Buffer }).stderr ?? err).trim().split('\n')[0]})`;
  }
}

describe('disk full: a real full filesystem (tmpfs)', () => {
  let mnt = '';
  let refused: string | null = null;
  let srv: TestServer | undefined;
  before(async () => {
    mnt = await fs.mkdtemp(path.join(os.tmpdir(), 'registry-diskfull-'));
    refused = os.platform() === 'linux' ? tryMountTmpfs(mnt, '8m') : 'not Linux';
  });
  after(async () => {
    await srv?.stop();
    if (!refused) execFileSync('umount', [mnt]);
    await fs.rm(mnt, { recursive: true, force: true });
  });

  it('a layer larger than the free space: 507, temp file removed, nothing published; the next pushes succeed', async (t) => {
    if (refused) {
      t.skip(refused);
      return;
    }
    srv = await startTestServer({ root: path.join(mnt, 'root') });
    const rand = prng(507);
    const known = new Map<string, HarnessImage>();
    const made = (parent: string | null, size: number) => {
      const img = makeImage(rand, parent, size);
      known.set(img.id, img);
      return img;
    };
    const base = made(null, 100_000);
    await pushAndTag(srv.url, 'full/app', 'base', [base]);
    const blobsBefore = await listFiles(path.join(srv.root, 'blobs'));

    // 12 MiB into an 8 MiB filesystem.
    const big = made(base.id, 12 * 1024 * 1024);
    await putJson(srv.url, big);
    await assertDiskFullAnswered(srv, big, await putLayer(srv.url, big), blobsBefore);

    // The temp file is gone, so the space is back: a push that fits succeeds at once.
    const small = made(base.id, 1024 * 1024);
    await pushAndTag(srv.url, 'full/app', 'small', [small]);
    await verifyPull(srv.url, 'full/app', 'small', small.id, known);

    // More space (the operator grew the volume): the push that failed succeeds when retried.
    execFileSync('mount', ['-o', 'remount,size=64m', mnt]);
    const layer = await putLayer(srv.url, big);
    assert.equal(layer.status, 200, layer.body.toString());
    assert.equal((await putChecksum(srv.url, big)).status, 200);
    assert.equal((await send(srv.url, 'PUT', '/v1/repositories/full/app/tags/big', { headers: JSON_TYPE, body: Buffer.from(JSON.stringify(big.id)) })).status, 200);
    await verifyPull(srv.url, 'full/app', 'big', big.id, known);
    await verifyPull(srv.url, 'full/app', 'base', base.id, known);
  });
});

describe('disk full: injected ENOSPC from the blob store', () => {
  let srv: TestServer;
  let failAfterBytes: number | null = null;
  let failCommit = false;
  before(async () => {
    srv = await startTestServer();
    const blobs = srv.running.services.blobs;
    const createWriter = blobs.createWriter.bind(blobs);
    const enospc = (syscall: string) =>
      Object.assign(new Error(`ENOSPC: no space left on device, ${syscall}`), { code: 'ENOSPC', errno: -28, syscall });
    // The ImageService holds this very store object: replacing the method injects the fault.
    blobs.createWriter = async (): Promise<BlobWriter> => {
      const writer = await createWriter();
      if (failAfterBytes !== null) {
        const limit = failAfterBytes;
        let written = 0;
        const write = writer.stream.write.bind(writer.stream) as (...args: unknown[]) => boolean;
        writer.stream.write = ((chunk: Buffer, ...rest: unknown[]) => {
          written += chunk.length;
          if (written > limit) {
            writer.stream.destroy(enospc('write'));
            return false;
          }
          return write(chunk, ...rest);
        }) as typeof writer.stream.write;
      }
      if (!failCommit) return writer;
      return {
        stream: writer.stream,
        abort: () => writer.abort(),
        commit: async () => {
          // As if linking into blobs/ found no space: the writer is then finished.
          await writer.abort();
          throw enospc('link');
        },
      };
    };
  });
  after(async () => {
    await srv?.destroy();
  });

  for (const where of ['mid-stream', 'at commit'] as const) {
    it(`ENOSPC ${where}: 507, temp file removed, nothing published; the retry succeeds once space is back`, async () => {
      const rand = prng(where.length);
      const known = new Map<string, HarnessImage>();
      const img = makeImage(rand, null, 3 * 1024 * 1024);
      known.set(img.id, img);
      const blobsBefore = await listFiles(path.join(srv.root, 'blobs'));
      await putJson(srv.url, img);
      if (where === 'mid-stream') failAfterBytes = 1024 * 1024;
      else failCommit = true;
      try {
        await assertDiskFullAnswered(srv, img, await putLayer(srv.url, img), blobsBefore);
      } finally {
        failAfterBytes = null;
        failCommit = false;
      }
      const layer = await putLayer(srv.url, img);
      assert.equal(layer.status, 200, layer.body.toString());
      assert.equal((await putChecksum(srv.url, img)).status, 200);
      const repo = `full/${where === 'mid-stream' ? 'stream' : 'commit'}`;
      assert.equal((await send(srv.url, 'PUT', `/v1/repositories/${repo}/tags/latest`, { headers: JSON_TYPE, body: Buffer.from(JSON.stringify(img.id)) })).status, 200);
      await verifyPull(srv.url, repo, 'latest', img.id, known);
    });
  }
});
