/**
 * The image cache of a one-node registry (store/metadata/image-cache.ts), in front of a real
 * store: complete images are read once, incomplete ones every time, and every image write
 * through it drops what it cached.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseImageId } from '../../src/domain/names.js';
import type { ImageRecord } from '../../src/domain/records.js';
import { withImageCache } from '../../src/store/metadata/image-cache.js';
import { MemoryMetadataStore } from '../../src/store/metadata/memory-metadata-store.js';
import { makeImage, newId } from './metadata-store.contract.js';

async function stores() {
  const inner = new MemoryMetadataStore();
  await inner.open();
  return { inner, cached: withImageCache(inner) };
}

describe('withImageCache', () => {
  it('a complete image is read from the store once; written behind its back, the cache still answers', async () => {
    const { inner, cached } = await stores();
    const id = parseImageId(newId());
    const record: ImageRecord = { ...makeImage(id), status: 'complete' };
    await cached.putImage(record, Buffer.from('{"id":1}'), [id]);
    const first = await cached.getImage(id);
    const ancestry = await cached.getAncestry(id);
    assert.deepEqual(await cached.getImageJson(id), Buffer.from('{"id":1}'));
    // A write that bypasses the decorator (what another node would do) is not seen: which is
    // why nodes sharing PostgreSQL do not use it.
    await inner.deleteImage(id);
    assert.equal(await cached.getImage(id), first);
    assert.equal(await cached.getAncestry(id), ancestry, 'the same frozen array');
    assert.ok(Object.isFrozen(ancestry));
  });

  it('every image write through it drops the image; incomplete images are never cached', async () => {
    const { inner, cached } = await stores();
    const id = parseImageId(newId());
    const incomplete = makeImage(id);
    await cached.putImage(incomplete, Buffer.from('{"v":1}'), [id]);
    assert.equal((await cached.getImage(id))?.status, 'pending');
    await inner.putImage(incomplete, Buffer.from('{"v":2}'), [id]);
    assert.deepEqual(await cached.getImageJson(id), Buffer.from('{"v":2}'), 'not cached while incomplete');
    await cached.updateImage({ ...incomplete, status: 'complete' });
    assert.equal((await cached.getImage(id))?.status, 'complete');
    await cached.deleteImage(id);
    assert.equal(await cached.getImage(id), null);
    assert.equal(await cached.getImageJson(id), null);
    // Other ports pass through untouched.
    assert.deepEqual(await cached.allRepos(), []);
  });
});
