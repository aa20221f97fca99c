/**
 * The metadata store methods the Docker Hub API double added (pull statistics, pushers,
 * repositories of one namespace), on every MetadataStore (LevelDB, memory): counts survive
 * concurrency and reopening, namespace listings do not leak into a namespace with a longer
 * name, deletes forget exactly one repository's statistics.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { parseRepoName, parseTag } from '../../src/domain/names.js';
import type { RepoRecord } from '../../src/domain/records.js';
import { LevelMetadataStore } from '../../src/store/metadata/level-metadata-store.js';
import { MemoryMetadataData, MemoryMetadataStore } from '../../src/store/metadata/memory-metadata-store.js';
import type { MetadataStore } from '../../src/store/metadata/metadata-store.js';

function repoRecord(namespace: string, repository: string): RepoRecord {
  return { namespace, repository, access: 'public', description: '', createdAt: new Date(0).toISOString(), lastTagInfo: null };
}

/** Storage for stores: `open()` opens a store on it (again, after the previous one closed). */
interface Storage {
  open(): Promise<MetadataStore>;
  remove(): Promise<void>;
}

hubStatistics('LevelMetadataStore', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hub-store-'));
  return {
    async open() {
      const store = new LevelMetadataStore(path.join(dir, 'db'));
      await store.open();
      return store;
    },
    remove: () => fs.rm(dir, { recursive: true, force: true }),
  };
});

hubStatistics('MemoryMetadataStore', async () => {
  const data = new MemoryMetadataData();
  return {
    async open() {
      const store = new MemoryMetadataStore(data);
      await store.open();
      return store;
    },
    remove: async () => undefined,
  };
});

function hubStatistics(title: string, storage: () => Promise<Storage>): void {
  describe(`${title}: Hub double statistics`, () => {
    let where: Storage;
    let store: MetadataStore;

    beforeEach(async () => {
      where = await storage();
      store = await where.open();
    });
    afterEach(async () => {
      await store.close();
      await where.remove();
    });

    it('counts every one of many concurrent pulls, and keeps the count across a reopen', async () => {
      const name = parseRepoName('alice', 'app');
      assert.equal(await store.getRepoPulls(name), null);
      await Promise.all(Array.from({ length: 50 }, (_, i) => store.addRepoPull(name, new Date(1000 * i).toISOString())));
      assert.equal((await store.getRepoPulls(name))?.count, 50);
      await store.close();
      store = await where.open();
      assert.equal((await store.getRepoPulls(name))?.count, 50);
      await store.addRepoPull(name, '2030-01-01T00:00:00.000Z');
      assert.deepEqual(await store.getRepoPulls(name), { count: 51, lastPulledAt: '2030-01-01T00:00:00.000Z' });
      // Pulls counted in memory are written several at a time (services/pull-counter.ts).
      await store.addRepoPull(name, '2030-01-02T00:00:00.000Z', 9);
      assert.deepEqual(await store.getRepoPulls(name), { count: 60, lastPulledAt: '2030-01-02T00:00:00.000Z' });
    });

    it('tag pull times and pushers, in the order asked; unknown tags are nulls', async () => {
      const name = parseRepoName('alice', 'app');
      const [a, b, c] = ['a', 'b', 'c'].map(parseTag);
      await store.setTagsPulled(name, [a, b], '2030-01-01T00:00:00.000Z');
      await store.setTagsPulled(name, [b], '2030-01-02T00:00:00.000Z');
      await store.setTagPusher(name, c, 'bobby');
      assert.deepEqual(await store.getTagStats(name, [c, b, a, parseTag('zzz')]), [
        { lastPulledAt: null, pusher: 'bobby' },
        { lastPulledAt: '2030-01-02T00:00:00.000Z', pusher: null },
        { lastPulledAt: '2030-01-01T00:00:00.000Z', pusher: null },
        { lastPulledAt: null, pusher: null },
      ]);
      assert.deepEqual(await store.getTagStats(name, []), []);
      await store.deleteTagStats(name, c);
      assert.deepEqual(await store.getTagStats(name, [c]), [{ lastPulledAt: null, pusher: null }]);
    });

    it('deleteRepoStats forgets one repository only (not one whose name starts the same)', async () => {
      const app = parseRepoName('alice', 'app');
      const app2 = parseRepoName('alice', 'app2');
      const tag = parseTag('latest');
      for (const name of [app, app2]) {
        await store.addRepoPull(name, '2030-01-01T00:00:00.000Z');
        await store.setTagsPulled(name, [tag], '2030-01-01T00:00:00.000Z');
        await store.setTagPusher(name, tag, 'alice');
      }
      await store.deleteRepoStats(app);
      assert.equal(await store.getRepoPulls(app), null);
      assert.deepEqual(await store.getTagStats(app, [tag]), [{ lastPulledAt: null, pusher: null }]);
      assert.equal((await store.getRepoPulls(app2))?.count, 1);
      assert.deepEqual(await store.getTagStats(app2, [tag]), [{ lastPulledAt: '2030-01-01T00:00:00.000Z', pusher: 'alice' }]);
    });

    it('listReposInNamespace: one namespace, sorted, never a namespace that only starts the same', async () => {
      for (const [ns, repo] of [['ab', 'zeta'], ['ab', 'alpha'], ['ab-c', 'other'], ['ab_c', 'other'], ['aa', 'x'], ['abc', 'y']]) {
        await store.putRepo(parseRepoName(ns, repo), repoRecord(ns, repo));
      }
      const names: string[] = [];
      for await (const record of store.listReposInNamespace('ab')) names.push(`${record.namespace}/${record.repository}`);
      assert.deepEqual(names, ['ab/alpha', 'ab/zeta']);
      const none: string[] = [];
      for await (const record of store.listReposInNamespace('zz')) none.push(record.repository);
      assert.deepEqual(none, []);
    });
  });
}
