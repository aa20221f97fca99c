/**
 * LevelMetadataStore: the shared MetadataStore contract, plus what only the LevelDB backend
 * promises: the schema-version guard and the key schema of keys.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Level } from 'level';
import { parseImageId, parseRepoName, parseTag } from '../../src/domain/names.js';
import { SCHEMA_VERSION } from '../../src/store/metadata/keys.js';
import { LevelMetadataStore } from '../../src/store/metadata/level-metadata-store.js';
import { makeDelivery, makeImage, makeRepo, makeTag, makeUser, metadataStoreContract, newId, type MetadataStoreFactory } from './metadata-store.contract.js';
import { oauthStoreContract } from './oauth-store.contract.js';

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'level-metadata-store-'));
}

const levelStores: MetadataStoreFactory = async () => {
  const dir = await tempDir();
  const location = path.join(dir, 'db');
  const opened: LevelMetadataStore[] = [];
  const openOne = async () => {
    const store = new LevelMetadataStore(location);
    opened.push(store);
    await store.open();
    return store;
  };
  return {
    store: await openOne(),
    reopen: openOne,
    async cleanup() {
      for (const store of opened) await store.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
};

metadataStoreContract('LevelMetadataStore', levelStores);
oauthStoreContract('LevelMetadataStore', levelStores);

describe('LevelMetadataStore on disk', () => {
  let dir: string;
  let location: string;

  beforeEach(async () => {
    dir = await tempDir();
    location = path.join(dir, 'db');
  });

  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function raw<T>(fn: (db: Level<string, unknown>) => Promise<T>): Promise<T> {
    const db = new Level<string, unknown>(location, { keyEncoding: 'utf8', valueEncoding: 'json' });
    await db.open();
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  }

  it('a new database records the schema version', async () => {
    const store = new LevelMetadataStore(location);
    await store.open();
    await store.close();
    assert.equal(await raw((db) => db.get('meta!schema')), SCHEMA_VERSION);
  });

  it('refuses a database with another schema version, with a clear error, and releases it', async () => {
    await raw((db) => db.put('meta!schema', SCHEMA_VERSION + 1));
    const store = new LevelMetadataStore(location);
    await assert.rejects(store.open(), {
      message: `metadata schema version ${SCHEMA_VERSION + 1} is not supported (expected ${SCHEMA_VERSION})`,
    });
    // The refused database is left as it was, and closed: another open (a migration tool,
    // a retry) must not find it locked.
    assert.equal(await raw((db) => db.get('meta!schema')), SCHEMA_VERSION + 1);
    await store.close();
  });

  it('refuses a schema version that is not a number', async () => {
    await raw((db) => db.put('meta!schema', '1'));
    const store = new LevelMetadataStore(location);
    await assert.rejects(store.open(), { message: `metadata schema version "1" is not supported (expected ${SCHEMA_VERSION})` });
    await store.close();
  });

  it('cannot be opened twice at the same time (LevelDB allows one user)', async () => {
    const first = new LevelMetadataStore(location);
    await first.open();
    try {
      const second = new LevelMetadataStore(location);
      await assert.rejects(second.open());
      await second.close();
    } finally {
      await first.close();
    }
  });

  it('keeps the webhook queue under hook!<due ms, 15 digits>!<id>, and deletes the other records of an image and a list', async () => {
    const store = new LevelMetadataStore(location);
    await store.open();
    const a = makeDelivery(1_700_000_000_123);
    const b = makeDelivery(999_999_999_999);
    await store.enqueueWebhooks([a, b]);
    await store.rescheduleWebhook(b, { ...b, dueAt: 1_700_000_000_200, attempts: 1 });
    const id = newId();
    const name = parseRepoName('ns', 'app');
    await store.putImage(makeImage(id), Buffer.from('{}'), [id]);
    await store.mergeRepoImages(name, [{ id }]);
    await store.deleteImage(id);
    await store.unlinkRepoImages(name, [id]);
    await store.close();

    const keys = await raw(async (db) => {
      const out: string[] = [];
      for await (const key of db.keys()) out.push(key);
      return out;
    });
    assert.deepEqual(keys, [`hook!001700000000123!${a.id}`, `hook!001700000000200!${b.id}`, 'meta!schema']);
    assert.deepEqual(await raw((db) => db.get(`hook!001700000000200!${b.id}`)), { ...b, dueAt: 1_700_000_000_200, attempts: 1 });
  });

  it('writes the keys documented in keys.ts', async () => {
    const store = new LevelMetadataStore(location);
    await store.open();
    const id = newId();
    const parent = parseImageId('0123456789abcdef');
    const name = parseRepoName('ns', 'app');
    const json = Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d, 0xff]);
    await store.putImage(makeImage(parent), Buffer.from('{}'), [parent]);
    await store.putImage(makeImage(id, parent), json, [id, parent]);
    await store.putTag(name, parseTag('latest'), makeTag(id), makeRepo(name));
    await store.mergeRepoImages(name, [{ id, checksum: 'sha256:x' }]);
    await store.putTag(name, parseTag('old'), makeTag(parent), makeRepo(name), [parent]);
    await store.putUser(makeUser('alice'));
    await store.close();

    const keys = await raw(async (db) => {
      const out: string[] = [];
      for await (const key of db.keys()) out.push(key);
      return out;
    });
    assert.deepEqual(
      keys,
      [
        `ancestry!${id}`,
        `ancestry!${parent}`,
        `image!${id}`,
        `image!${parent}`,
        `imagejson!${id}`,
        `imagejson!${parent}`,
        'email!alice@example.com',
        `imgrepo!${id}!ns/app`,
        `imgrepo!${parent}!ns/app`,
        'meta!schema',
        'repo!ns/app',
        `repoimg!ns/app!${id}`,
        `repoimg!ns/app!${parent}`,
        'tag!ns/app!latest',
        'tag!ns/app!old',
        'user!alice',
      ].sort(),
    );
    const stored = await raw((db) => db.get<string, Buffer>(`imagejson!${id}`, { valueEncoding: 'buffer' }));
    assert.ok(stored?.equals(json), 'the image json is stored as raw bytes');
    assert.deepEqual(await raw((db) => db.get(`repoimg!ns/app!${id}`)), { id, checksum: 'sha256:x' });
    assert.equal(await raw((db) => db.get(`imgrepo!${id}!ns/app`)), true);
    assert.equal(await raw((db) => db.get('email!alice@example.com')), 'alice');
  });
});
