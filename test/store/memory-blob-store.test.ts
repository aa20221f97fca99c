/**
 * MemoryBlobStore (the test double's blob store): the shared BlobStore contract, plus what
 * only it promises: readers have no file descriptor (downloads are streamed).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { MemoryBlobStore } from '../../src/store/blobs/memory-blob-store.js';
import { blobStoreContract, putBlob } from './blob-store.contract.js';

blobStoreContract('MemoryBlobStore', async () => ({ store: new MemoryBlobStore(), cleanup: async () => undefined }));

describe('MemoryBlobStore', () => {
  it('hands out readers without a file descriptor', async () => {
    const store = new MemoryBlobStore();
    await store.init();
    const bytes = randomBytes(1000);
    const reader = await store.openReader(await putBlob(store, bytes));
    try {
      assert.equal(reader.fd, undefined);
      const buf = Buffer.alloc(10);
      assert.equal(await reader.read(buf, 10, 990), 10);
      assert.ok(buf.equals(bytes.subarray(990)));
    } finally {
      await reader.close();
    }
  });

  it('keeps its own copy of what was written (the writer may reuse its buffer)', async () => {
    const store = new MemoryBlobStore();
    const chunk = Buffer.from('first');
    const writer = await store.createWriter();
    await new Promise<void>((resolve, reject) => writer.stream.write(chunk, (err) => (err ? reject(err) : resolve())));
    chunk.write('XXXXX');
    await new Promise<void>((resolve) => writer.stream.end(resolve));
    const digest = `sha256:${createHash('sha256').update('first').digest('hex')}`;
    await writer.commit(digest);
    const reader = await store.openReader(digest);
    const buf = Buffer.alloc(5);
    await reader.read(buf, 5, 0);
    assert.equal(buf.toString(), 'first');
  });
});
