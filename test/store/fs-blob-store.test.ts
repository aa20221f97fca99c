/**
 * FsBlobStore: the shared BlobStore contract, plus what only the filesystem driver
 * promises: the on-disk layout of blob-paths.ts, temp files confined to tmp/, and invalid
 * digests never turning into paths.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { FsBlobStore } from '../../src/store/blobs/fs-blob-store.js';
import {
  blobStoreContract,
  digestOf,
  INVALID_DIGESTS,
  listAll,
  putBlob,
  readAll,
  rejectsWith,
  upload,
} from './blob-store.contract.js';

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'fs-blob-store-'));
}

blobStoreContract('FsBlobStore', async () => {
  const dir = await tempDir();
  return {
    store: new FsBlobStore(path.join(dir, 'storage')),
    cleanup: () => fs.rm(dir, { recursive: true, force: true }),
  };
});

/** Every file and directory under `dir`, relative, sorted (directories end with `/`). */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    const rel = path.relative(dir, path.join(entry.parentPath ?? entry.path, entry.name));
    out.push(entry.isDirectory() ? `${rel}/` : rel);
  }
  return out.sort();
}

describe('FsBlobStore on disk', () => {
  let base: string;
  let root: string;
  let store: FsBlobStore;

  beforeEach(async () => {
    base = await tempDir();
    // Nested so that `../` traversals from blobs/ still land inside `base`.
    root = path.join(base, 'a', 'b', 'storage');
    store = new FsBlobStore(root);
    await store.init();
  });

  afterEach(async () => {
    await fs.rm(base, { recursive: true, force: true });
  });

  it('init() creates blobs/sha256/, tmp/ and uploads/ under the root', async () => {
    assert.deepEqual(await tree(root), ['blobs/', 'blobs/sha256/', 'tmp/', 'uploads/']);
  });

  it('stores a blob at blobs/sha256/<hex[0:2]>/<hex>, and nothing else', async () => {
    const bytes = randomBytes(777);
    const digest = await putBlob(store, bytes);
    const hex = digest.slice('sha256:'.length);
    const expected = path.join(root, 'blobs', 'sha256', hex.slice(0, 2), hex);
    assert.equal(store.paths.blob(digest), expected);
    assert.ok((await fs.readFile(expected)).equals(bytes));
    assert.deepEqual(await tree(root), [
      'blobs/',
      'blobs/sha256/',
      `blobs/sha256/${hex.slice(0, 2)}/`,
      `blobs/sha256/${hex.slice(0, 2)}/${hex}`,
      'tmp/',
      'uploads/',
    ]);
  });

  it('keeps an upload in tmp/<random>.upload until commit, then removes it', async () => {
    const bytes = randomBytes(4321);
    const writer = await upload(store, bytes);
    const temps = await fs.readdir(store.paths.tmp);
    assert.equal(temps.length, 1);
    assert.match(temps[0], /^[a-f0-9]{24}\.upload$/);
    assert.ok((await fs.readFile(path.join(store.paths.tmp, temps[0]))).equals(bytes));
    assert.deepEqual(await fs.readdir(store.paths.blobs), [], 'nothing under blobs/ before commit');

    await writer.commit(digestOf(bytes));
    assert.deepEqual(await fs.readdir(store.paths.tmp), []);
    await writer.abort();
    assert.ok((await fs.readFile(store.paths.blob(digestOf(bytes)))).equals(bytes));
  });

  it('removes the temp file on abort', async () => {
    const writer = await upload(store, randomBytes(100));
    assert.equal((await fs.readdir(store.paths.tmp)).length, 1);
    await writer.abort();
    assert.deepEqual(await fs.readdir(store.paths.tmp), []);
    assert.deepEqual(await fs.readdir(store.paths.blobs), []);
  });

  it('keeps the existing file (same inode) when the same digest is committed again, and drops the copy', async () => {
    const bytes = randomBytes(2000);
    const digest = await putBlob(store, bytes);
    const before = await fs.stat(store.paths.blob(digest));
    const writer = await upload(store, bytes);
    await writer.commit(digest);
    await writer.abort();
    const after = await fs.stat(store.paths.blob(digest));
    assert.equal(after.ino, before.ino);
    assert.equal(after.nlink, 1, 'no hard link to the dropped copy remains');
    // The copy is removed in the background (freeing a big file's blocks takes a while and
    // the upload need not wait for it).
    let left = await fs.readdir(store.paths.tmp);
    for (let i = 0; i < 100 && left.length > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      left = await fs.readdir(store.paths.tmp);
    }
    assert.deepEqual(left, []);
  });

  it('leaves no temp file behind when a commit fails', async () => {
    const bytes = Buffer.from('cannot be placed');
    const digest = digestOf(bytes);
    // A file where the shard directory should be makes the commit fail.
    await fs.writeFile(path.dirname(store.paths.blob(digest)), 'in the way');
    const writer = await upload(store, bytes);
    try {
      await assert.rejects(writer.commit(digest));
    } finally {
      await writer.abort();
    }
    assert.deepEqual(await fs.readdir(store.paths.tmp), []);
    assert.equal(await store.stat(digest).catch(() => null), null);
  });

  it('an upload whose temp file cannot be created fails cleanly (the stream errors; nothing throws later)', async () => {
    // tmp/ replaced by a plain file: opening <root>/tmp/<name>.upload fails with ENOTDIR.
    await fs.rm(path.join(root, 'tmp'), { recursive: true });
    await fs.writeFile(path.join(root, 'tmp'), 'not a directory');
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      await assert.rejects(upload(store, randomBytes(1000)), /ENOTDIR/);
      await new Promise((resolve) => setTimeout(resolve, 50)); // let a late close run
      assert.deepEqual(uncaught, []);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });

  it('init() on a new instance removes every entry a previous run left in tmp/ and counts them', async () => {
    const kept = await putBlob(store, Buffer.from('kept'));
    await fs.writeFile(path.join(store.paths.tmp, `${'1'.repeat(24)}.upload`), 'partial');
    await fs.writeFile(path.join(store.paths.tmp, `${'2'.repeat(24)}.upload`), '');
    await fs.writeFile(path.join(store.paths.tmp, 'stray'), 'x');
    await fs.mkdir(path.join(store.paths.tmp, 'dir', 'sub'), { recursive: true });
    await fs.writeFile(path.join(store.paths.tmp, 'dir', 'sub', 'f'), 'x');

    const restarted = new FsBlobStore(root);
    assert.deepEqual(await restarted.init(), { removedTemp: 4 });
    assert.deepEqual(await fs.readdir(store.paths.tmp), []);
    assert.deepEqual(await listAll(restarted), [kept]);
  });

  it('list() ignores files that are not blobs', async () => {
    const digest = await putBlob(store, Buffer.from('real'));
    const hex = digest.slice('sha256:'.length);
    const other = 'cd'.repeat(32);
    await fs.mkdir(path.join(store.paths.blobs, 'ff'), { recursive: true });
    await fs.writeFile(path.join(store.paths.blobs, 'ff', other), 'wrong shard');
    await fs.writeFile(path.join(store.paths.blobs, hex.slice(0, 2), `${hex}.partial`), 'x');
    await fs.writeFile(path.join(store.paths.blobs, hex.slice(0, 2), hex.toUpperCase()), 'x');
    await fs.writeFile(path.join(store.paths.blobs, '.DS_Store'), 'x');
    await fs.writeFile(path.join(store.paths.blobs, other), 'a file at the shard level');
    assert.deepEqual(await listAll(store), [digest]);
  });

  it('list() of a store whose directories were never created is empty', async () => {
    const fresh = new FsBlobStore(path.join(base, 'never-initialised'));
    assert.deepEqual(await listAll(fresh), []);
  });

  it('never turns an invalid digest into a path: files a traversal would reach stay untouched', async () => {
    const sentinels: string[] = [];
    for (const digest of INVALID_DIGESTS) {
      const hex = digest.slice('sha256:'.length);
      if (!hex.includes('..')) continue;
      // Where a store that joined the digest into a path without checking it would look.
      const naive = path.join(store.paths.blobs, hex.slice(0, 2), hex);
      assert.ok(naive.startsWith(base + path.sep), `${naive} stays inside the test dir`);
      await fs.mkdir(path.dirname(naive), { recursive: true });
      await fs.writeFile(naive, 'sentinel');
      sentinels.push(naive);
    }
    assert.ok(sentinels.length >= 3);
    const before = await tree(base);

    for (const digest of INVALID_DIGESTS) {
      await assert.rejects(store.stat(digest), rejectsWith('INVALID_INPUT'));
      await assert.rejects(store.read(digest), rejectsWith('INVALID_INPUT'));
      await assert.rejects(store.delete(digest), rejectsWith('INVALID_INPUT'));
      const writer = await upload(store, Buffer.from('sentinel'));
      await assert.rejects(writer.commit(digest), rejectsWith('INVALID_INPUT'));
      await writer.abort();
    }

    for (const file of sentinels) assert.equal(await fs.readFile(file, 'utf8'), 'sentinel');
    assert.deepEqual(await tree(base), before, 'no file or directory was created or removed');
  });

  it('does not leak a file descriptor on a rejected range', { skip: !existsSync('/proc/self/fd') && 'needs /proc' }, async () => {
    const digest = await putBlob(store, randomBytes(100));
    const open = async () => (await fs.readdir('/proc/self/fd')).length;
    const before = await open();
    for (let i = 0; i < 20; i++) {
      await assert.rejects(store.read(digest, { start: 50, end: 10 }), rejectsWith('INVALID_INPUT'));
    }
    assert.ok((await open()) <= before + 2, 'descriptors opened for rejected reads were closed');
  });

  it('closes the file when a reader stops early', { skip: !existsSync('/proc/self/fd') && 'needs /proc' }, async () => {
    const digest = await putBlob(store, randomBytes(4 * 1024 * 1024));
    const open = async () => (await fs.readdir('/proc/self/fd')).length;
    const before = await open();
    for (let i = 0; i < 10; i++) {
      const stream = await store.read(digest);
      for await (const _chunk of stream) break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok((await open()) <= before + 2);
    assert.equal((await readAll(await store.read(digest))).length, 4 * 1024 * 1024);
  });
});
