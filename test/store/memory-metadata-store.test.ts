/**
 * MemoryMetadataStore (the test double's metadata store): the shared MetadataStore contract
 * (a "reopen" is a new store on the same MemoryMetadataData), plus what only it promises:
 * callers never share an object with the store.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRepoName, parseTag } from '../../src/domain/names.js';
import { MemoryMetadataData, MemoryMetadataStore } from '../../src/store/metadata/memory-metadata-store.js';
import { makeImage, makeRepo, makeTag, metadataStoreContract, newId, type MetadataStoreFactory } from './metadata-store.contract.js';
import { oauthStoreContract } from './oauth-store.contract.js';

const memoryStores: MetadataStoreFactory = async () => {
  const data = new MemoryMetadataData();
  const openOne = async () => {
    const store = new MemoryMetadataStore(data);
    await store.open();
    return store;
  };
  return { store: await openOne(), reopen: openOne, cleanup: async () => undefined };
};
metadataStoreContract('MemoryMetadataStore', memoryStores);
oauthStoreContract('MemoryMetadataStore', memoryStores);

describe('MemoryMetadataStore', () => {
  it('keeps copies: changing what was written or read does not change the store', async () => {
    const store = new MemoryMetadataStore();
    await store.open();
    const id = newId();
    const record = makeImage(id);
    const json = Buffer.from('{"a":1}');
    await store.putImage(record, json, [id]);
    record.status = 'complete';
    json.write('X');
    const read = await store.getImage(id);
    assert.equal(read?.status, 'pending');
    (read as { status: string }).status = 'complete';
    assert.equal((await store.getImage(id))?.status, 'pending');
    assert.equal((await store.getImageJson(id))?.toString(), '{"a":1}');

    const app = parseRepoName('ns', 'app');
    await store.putTag(app, parseTag('latest'), makeTag(id), makeRepo(app));
    const tags = await store.listTags(app);
    assert.ok(Object.isFrozen(tags) && Object.isFrozen(tags[0][1]), 'shared lists are frozen');
    assert.ok(Object.isFrozen(await store.getRepo(app)), 'shared repository records are frozen');
  });

  it('refuses calls when it is not open', async () => {
    const store = new MemoryMetadataStore();
    await assert.rejects(store.ping(), /not open/);
    await store.open();
    await store.ping();
    await store.close();
    await assert.rejects(store.getImage(newId()), /not open/);
  });
});
