/**
 * The behaviour every MetadataStore must have (see src/store/metadata/ports.ts, the ports it implements).
 * Not a test entry point: a backend's own *.test.ts calls `metadataStoreContract`.
 *
 * The factory returns an OPEN store on fresh, empty storage. `reopen()` opens a new store
 * on the same storage (the suite closes the previous one first), to check that data
 * survives a restart. `cleanup` closes every store it handed out and removes the storage.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { parseImageId, parseRepoName, parseTag, parseV2Name, type ImageId, type RepoName, type Tag } from '../../src/domain/names.js';
import type { ClientInfo, ImageRecord, ManifestLink, RepoImageEntry, RepoRecord, TagRecord, UserRecord, WebhookDelivery } from '../../src/domain/records.js';
import type { MetadataStore } from '../../src/store/metadata/metadata-store.js';

export interface MetadataStoreFixture {
  store: MetadataStore;
  reopen(): Promise<MetadataStore>;
  cleanup(): Promise<void>;
}

export type MetadataStoreFactory = () => Promise<MetadataStoreFixture>;

export function newId(): ImageId {
  return parseImageId(randomBytes(32).toString('hex'));
}

export function makeImage(id: ImageId, parent: ImageId | null = null, extra: Partial<ImageRecord> = {}): ImageRecord {
  return {
    id,
    parent,
    status: 'pending',
    jsonSize: 10,
    claimedChecksum: null,
    layer: null,
    createdAt: '2024-01-02T03:04:05.000Z',
    completedAt: null,
    ...extra,
  };
}

const INFO: ClientInfo = {
  last_update: 1700000000,
  docker_version: '1.5.0',
  docker_go_version: 'go1.4',
  arch: 'amd64',
  os: 'linux',
  kernel: '3.16.0-4-amd64',
};

export function makeRepo(name: RepoName, extra: Partial<RepoRecord> = {}): RepoRecord {
  return {
    namespace: name.namespace,
    repository: name.repository,
    access: 'public',
    description: '',
    createdAt: '2024-01-02T03:04:05.000Z',
    lastTagInfo: null,
    ...extra,
  };
}

export function makeUser(name: string, extra: Partial<UserRecord> = {}): UserRecord {
  return {
    name,
    email: `${name}@example.com`,
    passwordHash: '$2a$10$abcdefghijklmnopqrstuuKp0wfGQ2nG1y1VbH4p3eRvKc0z7c1Gm',
    active: true,
    admin: false,
    createdAt: '2024-01-02T03:04:05.000Z',
    ...extra,
  };
}

export function makeTag(imageId: ImageId, info: Partial<ClientInfo> = {}): TagRecord {
  return { imageId, info: { ...INFO, ...info } };
}

export function makeDelivery(dueAt: number, extra: Partial<WebhookDelivery> = {}): WebhookDelivery {
  return {
    id: randomBytes(8).toString('hex'),
    url: 'http://127.0.0.1:9/hook',
    payload: { event: 'push', push_data: { tag: 'latest', images: [randomBytes(32).toString('hex')] }, nested: [1, 'é', null] },
    attempts: 0,
    dueAt,
    createdAt: new Date(dueAt).toISOString(),
    lastError: null,
    ...extra,
  };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const repoKey = (r: RepoRecord) => `${r.namespace}/${r.repository}`;

export function metadataStoreContract(name: string, factory: MetadataStoreFactory): void {
  describe(`MetadataStore contract: ${name}`, () => {
    let fixture: MetadataStoreFixture;
    let store: MetadataStore;

    const app = parseRepoName('ns', 'app');
    const app2 = parseRepoName('ns', 'app2');
    const ap = parseRepoName('ns', 'ap');
    const otherNs = parseRepoName('ns2', 'app');
    const busybox = parseRepoName(undefined, 'busybox');
    const latest = parseTag('latest');

    beforeEach(async () => {
      fixture = await factory();
      store = fixture.store;
    });

    afterEach(async () => {
      await fixture.cleanup();
    });

    it('ping() resolves on an open store', async () => {
      await store.ping();
    });

    describe('images', () => {
      it('unknown ids give null for the record, the json and the ancestry', async () => {
        const id = newId();
        assert.equal(await store.getImage(id), null);
        assert.equal(await store.getImageJson(id), null);
        assert.equal(await store.getAncestry(id), null);
      });

      it('putImage stores the record, the json bytes and the ancestry', async () => {
        const parent = newId();
        const id = newId();
        const record = makeImage(id, parent, { jsonSize: 42, claimedChecksum: 'tarsum+sha256:' + 'a'.repeat(64) });
        const json = Buffer.from(`{"id":"${id}","parent":"${parent}"}`);
        await store.putImage(record, json, [id, parent]);
        assert.deepEqual(await store.getImage(id), record);
        const got = await store.getImageJson(id);
        assert.ok(Buffer.isBuffer(got), 'getImageJson returns a Buffer');
        assert.ok(got.equals(json));
        assert.deepEqual(await store.getAncestry(id), [id, parent]);
      });

      const jsons: Array<[string, Buffer]> = [
        ['spacing, key order and a trailing newline', Buffer.from('{ "id" : "x",\n\t"b":1 ,"a":2}\n')],
        ['UTF-8 text (é, ü, 日本, 🐳)', Buffer.from('{"comment":"é ü 日本 🐳"}', 'utf8')],
        ['escaped unicode kept as escapes', Buffer.from('{"comment":"\\u00e9\\ud83d\\udc33"}')],
        ['a UTF-8 BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"id":"bom"}')])],
        ['bytes that are not valid UTF-8', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xe9, 0xff, 0xfe, 0x80, 0xc3, 0x22, 0x7d])],
        ['a NUL byte', Buffer.from([0x7b, 0x00, 0x7d])],
        ['a UTF-16 LE BOM', Buffer.from([0xff, 0xfe, 0x7b, 0x00, 0x7d, 0x00])],
      ];
      for (const [title, json] of jsons) {
        it(`keeps the json byte-exact: ${title}`, async () => {
          const id = newId();
          await store.putImage(makeImage(id, null, { jsonSize: json.length }), json, [id]);
          const got = await store.getImageJson(id);
          assert.ok(got, 'json stored');
          assert.equal(got.toString('hex'), json.toString('hex'));
        });
      }

      it('keeps a 512 KiB json byte-exact', async () => {
        const id = newId();
        const json = randomBytes(512 * 1024);
        await store.putImage(makeImage(id), json, [id]);
        assert.ok((await store.getImageJson(id))?.equals(json));
      });

      it('putImage of an existing id replaces record, json and ancestry', async () => {
        const id = newId();
        const parent = newId();
        await store.putImage(makeImage(id, parent), Buffer.from('{"v":1}'), [id, parent]);
        await store.putImage(makeImage(id, null, { jsonSize: 7 }), Buffer.from('{"v":2}'), [id]);
        assert.deepEqual(await store.getImage(id), makeImage(id, null, { jsonSize: 7 }));
        assert.equal((await store.getImageJson(id))?.toString(), '{"v":2}');
        assert.deepEqual(await store.getAncestry(id), [id]);
      });

      it('updateImage replaces the record only; json and ancestry stay', async () => {
        const id = newId();
        const parent = newId();
        const json = Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]);
        await store.putImage(makeImage(id, parent), json, [id, parent]);
        const complete = makeImage(id, parent, {
          status: 'complete',
          completedAt: '2024-01-02T03:05:00.000Z',
          layer: { digest: 'sha256:' + 'b'.repeat(64), size: 1234, payloadChecksum: 'sha256:' + 'c'.repeat(64), tarsum: null },
        });
        await store.updateImage(complete);
        assert.deepEqual(await store.getImage(id), complete);
        assert.ok((await store.getImageJson(id))?.equals(json));
        assert.deepEqual(await store.getAncestry(id), [id, parent]);
      });

      it('listImages yields every image record, and nothing else', async () => {
        assert.deepEqual(await collect(store.listImages()), []);
        const records: ImageRecord[] = [];
        let parent: ImageId | null = null;
        for (let i = 0; i < 5; i++) {
          const id = newId();
          const rec = makeImage(id, parent, { jsonSize: i });
          records.push(rec);
          await store.putImage(rec, Buffer.from(`{"n":${i}}`), parent ? [id, parent] : [id]);
          parent = id;
        }
        // Other kinds of records must not show up as images.
        await store.putTag(app, latest, makeTag(records[4].id), makeRepo(app));
        await store.mergeRepoImages(app, records.map((r) => ({ id: r.id })));
        const listed = await collect(store.listImages());
        assert.deepEqual([...listed].sort(byId), [...records].sort(byId));
      });
    });

    describe('repositories', () => {
      it('getRepo is null when absent; putRepo then getRepo returns the record; putRepo replaces', async () => {
        assert.equal(await store.getRepo(app), null);
        const rec = makeRepo(app, { description: 'dé', lastTagInfo: INFO });
        await store.putRepo(app, rec);
        assert.deepEqual(await store.getRepo(app), rec);
        assert.equal(await store.getRepo(app2), null);
        assert.equal(await store.getRepo(ap), null);
        const priv = { ...rec, access: 'private' as const };
        await store.putRepo(app, priv);
        assert.deepEqual(await store.getRepo(app), priv);
      });

      it('listRepos yields every repository once', async () => {
        assert.deepEqual(await collect(store.listRepos()), []);
        for (const n of [app, app2, ap, otherNs, busybox]) await store.putRepo(n, makeRepo(n));
        await store.putRepo(app, makeRepo(app, { description: 'again' }));
        const listed = (await collect(store.listRepos())).map(repoKey).sort();
        assert.deepEqual(listed, ['library/busybox', 'ns/ap', 'ns/app', 'ns/app2', 'ns2/app']);
      });

      it('deleteRepo returns false when the repository does not exist', async () => {
        assert.equal(await store.deleteRepo(app), false);
        await store.putRepo(app2, makeRepo(app2));
        assert.equal(await store.deleteRepo(app), false);
        assert.deepEqual(await store.getRepo(app2), makeRepo(app2));
      });

      it('deleteRepo removes the repository with its tags and image list, and leaves ns/app2, ns/ap and ns2/app alone', async () => {
        const ids = [newId(), newId(), newId()];
        for (const id of ids) await store.putImage(makeImage(id), Buffer.from('{}'), [id]);
        const neighbours = [app2, ap, otherNs];
        for (const n of [app, ...neighbours]) {
          await store.putTag(n, latest, makeTag(ids[0]), makeRepo(n));
          await store.putTag(n, parseTag('v1'), makeTag(ids[1]), makeRepo(n));
          await store.mergeRepoImages(n, ids.map((id) => ({ id, checksum: `sha256:${n.repository}` })));
        }

        assert.equal(await store.deleteRepo(app), true);
        assert.equal(await store.getRepo(app), null);
        assert.equal(await store.getTag(app, latest), null);
        assert.deepEqual(await store.listTags(app), []);
        assert.deepEqual(await store.getRepoImages(app), []);
        assert.equal(await store.deleteRepo(app), false);

        for (const n of neighbours) {
          assert.deepEqual(await store.getRepo(n), makeRepo(n), n.full);
          assert.deepEqual((await store.listTags(n)).map(([t]) => t), ['latest', 'v1'], n.full);
          assert.equal((await store.getRepoImages(n)).length, 3, n.full);
        }
        assert.deepEqual((await collect(store.listRepos())).map(repoKey).sort(), ['ns/ap', 'ns/app2', 'ns2/app']);
        for (const id of ids) assert.ok(await store.getImage(id), 'images are not deleted with a repository');
      });

      it('a deleted repository can be created again, empty', async () => {
        const id = newId();
        await store.putImage(makeImage(id), Buffer.from('{}'), [id]);
        await store.putTag(app, latest, makeTag(id), makeRepo(app));
        await store.mergeRepoImages(app, [{ id }]);
        assert.equal(await store.deleteRepo(app), true);
        await store.putRepo(app, makeRepo(app));
        assert.deepEqual(await store.listTags(app), []);
        assert.deepEqual(await store.getRepoImages(app), []);
      });
    });

    describe('tags', () => {
      it('getTag is null when absent; putTag then getTag returns the record; putTag replaces', async () => {
        const a = newId();
        const b = newId();
        assert.equal(await store.getTag(app, latest), null);
        await store.putTag(app, latest, makeTag(a), makeRepo(app));
        assert.deepEqual(await store.getTag(app, latest), makeTag(a));
        assert.equal(await store.getTag(app2, latest), null);
        assert.equal(await store.getTag(ap, latest), null);
        await store.putTag(app, latest, makeTag(b, { docker_version: '1.6.0' }), makeRepo(app));
        assert.deepEqual(await store.getTag(app, latest), makeTag(b, { docker_version: '1.6.0' }));
      });

      it('putTag writes the repository record too', async () => {
        const repo = makeRepo(app, { lastTagInfo: INFO, description: 'from putTag' });
        await store.putTag(app, latest, makeTag(newId()), repo);
        assert.deepEqual(await store.getRepo(app), repo);
        assert.deepEqual((await collect(store.listRepos())).map(repoKey), ['ns/app']);
        const updated = { ...repo, lastTagInfo: { ...INFO, docker_version: '1.7.0' } };
        await store.putTag(app, parseTag('v2'), makeTag(newId()), updated);
        assert.deepEqual(await store.getRepo(app), updated);
      });

      it('listTags returns every tag of the repository, sorted by name, and only its own', async () => {
        assert.deepEqual(await store.listTags(app), []);
        const names = ['latest', 'v1.0', 'V2', '_x', 'a', 'a.b', 'a-b', 'Z', '1.0', 'a_b', 'a'.repeat(128)];
        const records = new Map<string, TagRecord>();
        for (const t of [...names].reverse()) {
          const rec = makeTag(newId());
          records.set(t, rec);
          await store.putTag(app, parseTag(t), rec, makeRepo(app));
        }
        for (const n of [app2, ap, otherNs]) await store.putTag(n, parseTag('other'), makeTag(newId()), makeRepo(n));
        const listed = await store.listTags(app);
        assert.deepEqual(listed.map(([t]) => t), [...names].sort());
        for (const [t, rec] of listed) assert.deepEqual(rec, records.get(t));
      });

      it('putTag with a link adds those ids to the image list, keeping existing entries and their checksums', async () => {
        const [a, b, c] = [newId(), newId(), newId()];
        await store.mergeRepoImages(app, [{ id: a, checksum: 'sha256:kept' }]);
        await store.putTag(app, latest, makeTag(b), makeRepo(app), [b, a]);
        assert.deepEqual(await store.getRepoImages(app), [{ id: a, checksum: 'sha256:kept' }, { id: b }].sort(byId));
        assert.deepEqual((await store.reposOfImage(b)).map((n) => n.full), ['ns/app']);
        await store.putTag(app, parseTag('v1'), makeTag(c), makeRepo(app), [c, b, a]);
        assert.deepEqual(await store.getRepoImages(app), [{ id: a, checksum: 'sha256:kept' }, { id: b }, { id: c }].sort(byId));
        assert.deepEqual(await store.getRepoImages(app2), []);
      });

      it('putTag without a link leaves the image list alone', async () => {
        const a = newId();
        await store.putTag(app, latest, makeTag(a), makeRepo(app));
        await store.putTag(app, parseTag('v1'), makeTag(a), makeRepo(app), []);
        assert.deepEqual(await store.getRepoImages(app), []);
        assert.deepEqual(await store.reposOfImage(a), []);
      });

      it('deleteTag returns true, then false; other tags stay', async () => {
        const id = newId();
        await store.putTag(app, latest, makeTag(id), makeRepo(app));
        await store.putTag(app, parseTag('v1'), makeTag(id), makeRepo(app));
        await store.putTag(app2, latest, makeTag(id), makeRepo(app2));
        assert.equal(await store.deleteTag(app, latest), true);
        assert.equal(await store.deleteTag(app, latest), false);
        assert.equal(await store.getTag(app, latest), null);
        assert.deepEqual((await store.listTags(app)).map(([t]) => t), ['v1']);
        assert.deepEqual(await store.getTag(app2, latest), makeTag(id));
        assert.ok(await store.getRepo(app), 'the repository stays');
      });

      it('deleteTag of a tag that never existed returns false', async () => {
        assert.equal(await store.deleteTag(app, latest), false);
      });
    });

    describe('repository image list', () => {
      it('is empty for an unknown repository', async () => {
        assert.deepEqual(await store.getRepoImages(app), []);
      });

      it('mergeRepoImages adds entries; getRepoImages returns them sorted by id', async () => {
        const ids = Array.from({ length: 8 }, newId);
        await store.mergeRepoImages(app, ids.slice(0, 4).map((id) => ({ id, checksum: `sha256:${id}` })));
        await store.mergeRepoImages(app, ids.slice(4).map((id) => ({ id })));
        const expected: RepoImageEntry[] = [
          ...ids.slice(0, 4).map((id) => ({ id, checksum: `sha256:${id}` })),
          ...ids.slice(4).map((id) => ({ id })),
        ].sort(byId);
        assert.deepEqual(await store.getRepoImages(app), expected);
      });

      it('merges by id: a new checksum replaces the old one, an entry without one keeps it', async () => {
        const [a, b, c] = [newId(), newId(), newId()];
        await store.mergeRepoImages(app, [{ id: a, checksum: 'sha256:old-a' }, { id: b, checksum: 'sha256:old-b' }]);
        await store.mergeRepoImages(app, [{ id: a }, { id: b, checksum: 'sha256:new-b' }, { id: c }]);
        assert.deepEqual(
          await store.getRepoImages(app),
          [
            { id: a, checksum: 'sha256:old-a' },
            { id: b, checksum: 'sha256:new-b' },
            { id: c },
          ].sort(byId),
        );
      });

      it('an id repeated in one merge: the last checksum wins, a later entry without one keeps it', async () => {
        const [a, b] = [newId(), newId()];
        await store.mergeRepoImages(app, [
          { id: a, checksum: 'sha256:first' },
          { id: a },
          { id: b, checksum: 'sha256:one' },
          { id: b, checksum: 'sha256:two' },
        ]);
        assert.deepEqual(
          await store.getRepoImages(app),
          [
            { id: a, checksum: 'sha256:first' },
            { id: b, checksum: 'sha256:two' },
          ].sort(byId),
        );
      });

      it('concurrent merges never lose an entry or a checksum', async () => {
        const ids = Array.from({ length: 20 }, newId);
        await Promise.all([
          store.mergeRepoImages(app, ids.map((id) => ({ id }))),
          store.mergeRepoImages(app, ids.map((id) => ({ id, checksum: `sha256:${id}` }))),
          store.mergeRepoImages(app, ids.map((id) => ({ id }))),
          ...ids.map((id) => store.mergeRepoImages(app, [{ id }])),
          ...ids.map((id, i) => store.putTag(app, parseTag(`t${i}`), makeTag(id), makeRepo(app), [id])),
        ]);
        assert.deepEqual(await store.getRepoImages(app), ids.map((id) => ({ id, checksum: `sha256:${id}` })).sort(byId));
      });

      it('merging an empty list changes nothing', async () => {
        const id = newId();
        await store.mergeRepoImages(app, [{ id, checksum: 'sha256:x' }]);
        await store.mergeRepoImages(app, []);
        await store.mergeRepoImages(app2, []);
        assert.deepEqual(await store.getRepoImages(app), [{ id, checksum: 'sha256:x' }]);
        assert.deepEqual(await store.getRepoImages(app2), []);
      });

      it('lists are per repository (ns/app vs ns/app2 vs ns/ap)', async () => {
        const [a, b, c] = [newId(), newId(), newId()];
        await store.mergeRepoImages(app, [{ id: a }]);
        await store.mergeRepoImages(app2, [{ id: b }]);
        await store.mergeRepoImages(ap, [{ id: c }]);
        assert.deepEqual(await store.getRepoImages(app), [{ id: a }]);
        assert.deepEqual(await store.getRepoImages(app2), [{ id: b }]);
        assert.deepEqual(await store.getRepoImages(ap), [{ id: c }]);
      });
    });

    describe('reposOfImage', () => {
      it('is empty for an image no repository lists', async () => {
        assert.deepEqual(await store.reposOfImage(newId()), []);
      });

      it('names every repository whose image list holds the image, and only those', async () => {
        const id = newId();
        const other = newId();
        for (const n of [app, app2, busybox]) await store.mergeRepoImages(n, [{ id }]);
        await store.mergeRepoImages(ap, [{ id: other }]);
        const repos = await store.reposOfImage(id);
        assert.deepEqual(repos.map((n) => n.full).sort(), ['library/busybox', 'ns/app', 'ns/app2']);
        const lib = repos.find((n) => n.full === 'library/busybox');
        assert.deepEqual(lib && { namespace: lib.namespace, repository: lib.repository }, { namespace: 'library', repository: 'busybox' });
        assert.deepEqual((await store.reposOfImage(other)).map((n) => n.full), ['ns/ap']);
      });

      it('does not confuse an id with a longer id it is a prefix of', async () => {
        const short = parseImageId('0123456789abcdef');
        const long = parseImageId(`${short}${'e'.repeat(48)}`);
        await store.mergeRepoImages(app, [{ id: long }]);
        assert.deepEqual(await store.reposOfImage(short), []);
        assert.deepEqual((await store.reposOfImage(long)).map((n) => n.full), ['ns/app']);
      });

      it('forgets a repository once it is deleted', async () => {
        const id = newId();
        await store.putTag(app, latest, makeTag(id), makeRepo(app), [id]);
        await store.putTag(app2, latest, makeTag(id), makeRepo(app2), [id]);
        assert.equal(await store.deleteRepo(app), true);
        assert.deepEqual((await store.reposOfImage(id)).map((n) => n.full), ['ns/app2']);
      });
    });

    describe('deleteImage', () => {
      it('removes the record, the json and the ancestry; other images stay', async () => {
        const parent = newId();
        const id = newId();
        const short = parseImageId('0123456789abcdef');
        const long = parseImageId(`${short}${'f'.repeat(48)}`);
        await store.putImage(makeImage(parent), Buffer.from('{"p":1}'), [parent]);
        await store.putImage(makeImage(id, parent), Buffer.from('{"c":1}'), [id, parent]);
        await store.putImage(makeImage(short), Buffer.from('{"s":1}'), [short]);
        await store.putImage(makeImage(long), Buffer.from('{"l":1}'), [long]);

        await store.deleteImage(id);
        await store.deleteImage(short);
        assert.equal(await store.getImage(id), null);
        assert.equal(await store.getImageJson(id), null);
        assert.equal(await store.getAncestry(id), null);
        assert.equal(await store.getImage(short), null);
        assert.deepEqual(await store.getImage(parent), makeImage(parent));
        assert.equal((await store.getImageJson(parent))?.toString(), '{"p":1}');
        assert.deepEqual(await store.getImage(long), makeImage(long), 'an id the deleted one is a prefix of stays');
        assert.equal((await store.getImageJson(long))?.toString(), '{"l":1}');
        assert.deepEqual(await store.getAncestry(long), [long]);
        assert.deepEqual((await collect(store.listImages())).map((r) => r.id).sort(), [parent, long].sort());
      });

      it('touches nothing else (tags and image lists keep naming the id) and accepts an unknown id', async () => {
        const id = newId();
        await store.putImage(makeImage(id), Buffer.from('{}'), [id]);
        await store.putTag(app, latest, makeTag(id), makeRepo(app), [id]);
        await store.deleteImage(id);
        await store.deleteImage(newId());
        assert.deepEqual(await store.getTag(app, latest), makeTag(id));
        assert.deepEqual(await store.getRepoImages(app), [{ id }]);
        assert.deepEqual((await store.reposOfImage(id)).map((n) => n.full), ['ns/app']);
      });

      it('a deleted image stays deleted after a reopen, and can be written again', async () => {
        const [gone, kept] = [newId(), newId()];
        await store.putImage(makeImage(gone), Buffer.from('{"g":1}'), [gone]);
        await store.putImage(makeImage(kept), Buffer.from('{"k":1}'), [kept]);
        await store.deleteImage(gone);
        await store.close();
        const again = await fixture.reopen();
        assert.equal(await again.getImage(gone), null);
        assert.equal(await again.getImageJson(gone), null);
        assert.equal(await again.getAncestry(gone), null);
        assert.deepEqual((await collect(again.listImages())).map((r) => r.id), [kept]);
        await again.putImage(makeImage(gone, null, { jsonSize: 3 }), Buffer.from('{2}'), [gone]);
        assert.deepEqual(await again.getImage(gone), makeImage(gone, null, { jsonSize: 3 }));
        assert.equal((await again.getImageJson(gone))?.toString(), '{2}');
      });
    });

    describe('unlinkRepoImages', () => {
      it('removes the entries and their reverse links; other entries and other repositories stay', async () => {
        const [a, b, c] = [newId(), newId(), newId()];
        const neighbours = [app2, ap, otherNs];
        for (const n of [app, ...neighbours]) {
          await store.putTag(n, latest, makeTag(c), makeRepo(n));
          await store.mergeRepoImages(n, [{ id: a, checksum: `sha256:a-${n.repository}` }, { id: b }, { id: c, checksum: 'sha256:c' }]);
        }
        await store.unlinkRepoImages(app, [a, b]);

        assert.deepEqual(await store.getRepoImages(app), [{ id: c, checksum: 'sha256:c' }]);
        for (const n of neighbours) {
          assert.deepEqual(
            await store.getRepoImages(n),
            [{ id: a, checksum: `sha256:a-${n.repository}` }, { id: b }, { id: c, checksum: 'sha256:c' }].sort(byId),
            n.full,
          );
        }
        assert.deepEqual((await store.reposOfImage(a)).map((n) => n.full).sort(), ['ns/ap', 'ns/app2', 'ns2/app']);
        assert.deepEqual((await store.reposOfImage(b)).map((n) => n.full).sort(), ['ns/ap', 'ns/app2', 'ns2/app']);
        assert.deepEqual((await store.reposOfImage(c)).map((n) => n.full).sort(), ['ns/ap', 'ns/app', 'ns/app2', 'ns2/app']);
        // Tags and the repository record are not part of the image list.
        assert.deepEqual(await store.getTag(app, latest), makeTag(c));
        assert.deepEqual(await store.getRepo(app), makeRepo(app));
      });

      it('ids that are not listed and an empty list change nothing', async () => {
        const [a, b] = [newId(), newId()];
        await store.mergeRepoImages(app, [{ id: a, checksum: 'sha256:x' }]);
        await store.mergeRepoImages(app2, [{ id: b }]);
        await store.unlinkRepoImages(app, [b, newId()]);
        await store.unlinkRepoImages(app, []);
        await store.unlinkRepoImages(busybox, [a]);
        assert.deepEqual(await store.getRepoImages(app), [{ id: a, checksum: 'sha256:x' }]);
        assert.deepEqual(await store.getRepoImages(app2), [{ id: b }]);
        assert.deepEqual((await store.reposOfImage(a)).map((n) => n.full), ['ns/app']);
        assert.deepEqual((await store.reposOfImage(b)).map((n) => n.full), ['ns/app2']);
      });

      it('an unlinked image can be linked again, without its old checksum', async () => {
        const a = newId();
        await store.mergeRepoImages(app, [{ id: a, checksum: 'sha256:old' }]);
        await store.unlinkRepoImages(app, [a]);
        await store.mergeRepoImages(app, [{ id: a }]);
        assert.deepEqual(await store.getRepoImages(app), [{ id: a }]);
        assert.deepEqual((await store.reposOfImage(a)).map((n) => n.full), ['ns/app']);
      });

      it('concurrent with merges of other ids, loses none of them', async () => {
        const doomed = Array.from({ length: 10 }, newId);
        const added = Array.from({ length: 10 }, newId);
        await store.mergeRepoImages(app, doomed.map((id) => ({ id })));
        await Promise.all([
          ...doomed.map((id) => store.unlinkRepoImages(app, [id])),
          ...added.map((id) => store.mergeRepoImages(app, [{ id, checksum: `sha256:${id}` }])),
        ]);
        assert.deepEqual(await store.getRepoImages(app), added.map((id) => ({ id, checksum: `sha256:${id}` })).sort(byId));
        for (const id of doomed) assert.deepEqual(await store.reposOfImage(id), []);
      });

      it('survives a reopen', async () => {
        const [a, b] = [newId(), newId()];
        await store.mergeRepoImages(app, [{ id: a }, { id: b, checksum: 'sha256:b' }]);
        await store.mergeRepoImages(app2, [{ id: a }]);
        await store.unlinkRepoImages(app, [a]);
        await store.close();
        const again = await fixture.reopen();
        assert.deepEqual(await again.getRepoImages(app), [{ id: b, checksum: 'sha256:b' }]);
        assert.deepEqual(await again.getRepoImages(app2), [{ id: a }]);
        assert.deepEqual((await again.reposOfImage(a)).map((n) => n.full), ['ns/app2']);
        assert.deepEqual((await again.reposOfImage(b)).map((n) => n.full), ['ns/app']);
      });
    });

    describe('webhook queue', () => {
      // Realistic due times (ms since the epoch), with 12- and 13-digit values mixed so that
      // an order by text instead of by number would show.
      const T = 1_700_000_000_000;

      it('is empty at first', async () => {
        assert.deepEqual(await collect(store.listWebhooks()), []);
        assert.deepEqual(await store.dueWebhooks(Number.MAX_SAFE_INTEGER, 100), []);
        await store.enqueueWebhooks([]);
        assert.deepEqual(await collect(store.listWebhooks()), []);
      });

      it('enqueueWebhooks stores every delivery as given; listWebhooks yields each once, and nothing else', async () => {
        const ds = [makeDelivery(T + 5), makeDelivery(T, { attempts: 3, lastError: 'HTTP 500' }), makeDelivery(999_999_999_999)];
        await store.enqueueWebhooks(ds);
        // Other records must not show up as deliveries.
        await store.putRepo(app, makeRepo(app));
        await store.putUser(makeUser('alice'));
        const listed = (await collect(store.listWebhooks())).sort(byId);
        assert.deepEqual(listed, [...ds].sort(byId));
      });

      it('dueWebhooks: only deliveries due at or before now, oldest due first, at most limit', async () => {
        const late = makeDelivery(T + 1000);
        const d2 = makeDelivery(T + 20);
        const d1 = makeDelivery(T + 10);
        const early = makeDelivery(999_999_999_999);
        const d0 = makeDelivery(T);
        await store.enqueueWebhooks([late, d2]);
        await store.enqueueWebhooks([d1, early, d0]);

        assert.deepEqual(await store.dueWebhooks(T - 1, 10), [early]);
        assert.deepEqual(await store.dueWebhooks(T + 10, 10), [early, d0, d1], 'due exactly now is due');
        assert.deepEqual(await store.dueWebhooks(T + 19, 10), [early, d0, d1]);
        assert.deepEqual(await store.dueWebhooks(T + 20, 10), [early, d0, d1, d2]);
        assert.deepEqual(await store.dueWebhooks(T + 20, 2), [early, d0]);
        assert.deepEqual(await store.dueWebhooks(T + 20, 1), [early]);
        assert.deepEqual(await store.dueWebhooks(T + 5000, 100), [early, d0, d1, d2, late]);
        assert.deepEqual(await store.dueWebhooks(0, 10), []);
      });

      it('rescheduleWebhook replaces the delivery: one copy, the new fields, due at its new time', async () => {
        const a = makeDelivery(T);
        const b = makeDelivery(T + 1);
        await store.enqueueWebhooks([a, b]);
        const next = { ...a, attempts: 1, dueAt: T + 100, lastError: 'HTTP 503' };
        await store.rescheduleWebhook(a, next);
        assert.deepEqual(await store.dueWebhooks(T + 99, 10), [b]);
        assert.deepEqual(await store.dueWebhooks(T + 100, 10), [b, next]);
        assert.deepEqual((await collect(store.listWebhooks())).sort(byId), [b, next].sort(byId));
        // Moved earlier than another one: the order follows.
        const again = { ...next, attempts: 2, dueAt: T - 50 };
        await store.rescheduleWebhook(next, again);
        assert.deepEqual(await store.dueWebhooks(T + 100, 10), [again, b]);
        assert.equal((await collect(store.listWebhooks())).length, 2);
      });

      it('removeWebhook removes that delivery only; removing it twice is harmless', async () => {
        const [a, b, c] = [makeDelivery(T), makeDelivery(T), makeDelivery(T + 1)];
        await store.enqueueWebhooks([a, b, c]);
        await store.removeWebhook(b);
        await store.removeWebhook(b);
        assert.deepEqual((await collect(store.listWebhooks())).sort(byId), [a, c].sort(byId));
        assert.deepEqual(await store.dueWebhooks(T + 1, 10), [a, c]);
        const moved = { ...c, dueAt: T + 500, attempts: 1 };
        await store.rescheduleWebhook(c, moved);
        await store.removeWebhook(moved);
        assert.deepEqual(await collect(store.listWebhooks()), [a]);
      });

      it('claimWebhooks takes what is due, oldest first, at most limit, and moves it to the end of the lease', async () => {
        const [d0, d1, d2, later] = [makeDelivery(T), makeDelivery(T + 10), makeDelivery(T + 20), makeDelivery(T + 1000)];
        await store.enqueueWebhooks([later, d2, d0, d1]);
        const lease = 60_000;
        const claimed = await store.claimWebhooks(T + 20, 2, lease);
        assert.deepEqual(claimed, [d0, d1].map((d) => ({ ...d, dueAt: T + 20 + lease })), 'as queued now: due when the lease ends');
        // Not due again before the lease ends: no other claim gets them.
        assert.deepEqual(await store.dueWebhooks(T + 20, 10), [d2]);
        assert.deepEqual(await store.claimWebhooks(T + 20, 10, lease), [{ ...d2, dueAt: T + 20 + lease }]);
        assert.deepEqual(await store.claimWebhooks(T + 500, 10, lease), []);
        assert.equal((await collect(store.listWebhooks())).length, 4, 'claimed deliveries stay queued');
        // The claimer finishes: it removes or reschedules what it claimed, as it was returned.
        await store.removeWebhook(claimed[0]);
        const retry = { ...claimed[1], attempts: 1, dueAt: T + 2000, lastError: 'HTTP 500' };
        await store.rescheduleWebhook(claimed[1], retry);
        assert.deepEqual((await collect(store.listWebhooks())).sort(byId), [{ ...d2, dueAt: T + 20 + lease }, later, retry].sort(byId));
        assert.deepEqual(await store.claimWebhooks(T + 2000, 10, lease), [later, retry].map((d) => ({ ...d, dueAt: T + 2000 + lease })));
      });

      it('a claim whose lease ended is claimed again; the first claimer coming back late changes nothing', async () => {
        const d = makeDelivery(T);
        await store.enqueueWebhooks([d]);
        const [first] = await store.claimWebhooks(T, 10, 1000);
        assert.deepEqual(await store.claimWebhooks(T + 999, 10, 1000), [], 'still leased');
        // The first claimer died (or hangs): the lease ends and another claim takes it.
        const [second] = await store.claimWebhooks(T + 1000, 10, 1000);
        assert.deepEqual(second, { ...d, dueAt: T + 2000 });
        // The first one finishes late: neither its removal nor its retry touches the new claim.
        await store.rescheduleWebhook(first, { ...first, attempts: 1, dueAt: T + 5000 });
        await store.removeWebhook(first);
        assert.deepEqual(await collect(store.listWebhooks()), [second], 'one copy, the second claim\'s');
        await store.removeWebhook(second);
        assert.deepEqual(await collect(store.listWebhooks()), []);
      });

      it('claims at the same time never take the same delivery', async () => {
        const ds = Array.from({ length: 12 }, (_, i) => makeDelivery(T + i));
        await store.enqueueWebhooks(ds);
        const claims = await Promise.all(Array.from({ length: 6 }, () => store.claimWebhooks(T + 100, 3, 60_000)));
        const ids = claims.flat().map((d) => d.id);
        assert.equal(new Set(ids).size, ids.length, 'no delivery claimed twice');
        assert.deepEqual([...ids].sort(), ds.map((d) => d.id).sort(), 'all of them claimed');
      });

      it('survives a reopen, with its order', async () => {
        const [a, b, c, d] = [makeDelivery(T + 30), makeDelivery(T + 10), makeDelivery(T + 20), makeDelivery(T + 40)];
        await store.enqueueWebhooks([a, b, c, d]);
        const moved = { ...b, attempts: 4, dueAt: T + 35, lastError: 'connect ECONNREFUSED 127.0.0.1:9' };
        await store.rescheduleWebhook(b, moved);
        await store.removeWebhook(d);
        await store.close();
        const again = await fixture.reopen();
        assert.deepEqual((await collect(again.listWebhooks())).sort(byId), [a, c, moved].sort(byId));
        assert.deepEqual(await again.dueWebhooks(T + 100, 10), [c, a, moved]);
        assert.deepEqual(await again.dueWebhooks(T + 30, 10), [c, a]);
        await again.removeWebhook(a);
        assert.deepEqual(await again.dueWebhooks(T + 100, 10), [c, moved]);
      });
    });

    describe('users', () => {
      it('getUser and getUserNameByEmail are null when absent', async () => {
        assert.equal(await store.getUser('alice'), null);
        assert.equal(await store.getUserNameByEmail('alice@example.com'), null);
      });

      it('putUser stores the user and its e-mail index', async () => {
        const alice = makeUser('alice', { admin: true });
        await store.putUser(alice);
        assert.deepEqual(await store.getUser('alice'), alice);
        assert.equal(await store.getUserNameByEmail('alice@example.com'), 'alice');
        assert.equal(await store.getUser('alic'), null);
        assert.equal(await store.getUser('alice2'), null);
      });

      it('a changed e-mail releases the previous one; an unchanged one stays indexed', async () => {
        await store.putUser(makeUser('alice'));
        await store.putUser(makeUser('alice', { active: false }), 'alice@example.com');
        assert.equal(await store.getUserNameByEmail('alice@example.com'), 'alice');
        assert.equal((await store.getUser('alice'))?.active, false);
        await store.putUser(makeUser('alice', { email: 'new@example.com' }), 'alice@example.com');
        assert.equal(await store.getUserNameByEmail('alice@example.com'), null);
        assert.equal(await store.getUserNameByEmail('new@example.com'), 'alice');
        assert.equal((await store.getUser('alice'))?.email, 'new@example.com');
      });

      it('listUsers yields every user once, and nothing else', async () => {
        assert.deepEqual(await collect(store.listUsers()), []);
        const users = [makeUser('alice'), makeUser('bobby'), makeUser('user_1', { active: false })];
        for (const u of users) await store.putUser(u);
        await store.putUser(makeUser('bobby', { admin: true }), 'bobby@example.com');
        await store.putRepo(app, makeRepo(app));
        const listed = (await collect(store.listUsers())).sort((a, b) => (a.name < b.name ? -1 : 1));
        assert.deepEqual(listed, [users[0], makeUser('bobby', { admin: true }), users[2]]);
      });
    });

    it('everything survives close and reopen', async () => {
      const parent = newId();
      const id = newId();
      const json = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"é":"🐳"}'), Buffer.from([0xff])]);
      const image = makeImage(id, parent, { status: 'complete', jsonSize: json.length });
      await store.putImage(makeImage(parent), Buffer.from('{}'), [parent]);
      await store.putImage(image, json, [id, parent]);
      const repo = makeRepo(app, { access: 'private', lastTagInfo: INFO });
      await store.putTag(app, latest, makeTag(id), repo);
      await store.putTag(app, parseTag('old'), makeTag(parent), repo);
      await store.putRepo(busybox, makeRepo(busybox));
      await store.mergeRepoImages(app, [{ id, checksum: 'sha256:x' }, { id: parent }]);
      await store.putTag(app2, latest, makeTag(id), makeRepo(app2), [id]);
      assert.equal(await store.deleteRepo(app2), true);
      await store.putTag(ap, latest, makeTag(id), makeRepo(ap), [id, parent]);
      await store.putUser(makeUser('alice'));

      await store.close();
      const again = await fixture.reopen();
      await again.ping();
      assert.deepEqual(await again.getImage(id), image);
      assert.equal((await again.getImageJson(id))?.toString('hex'), json.toString('hex'));
      assert.deepEqual(await again.getAncestry(id), [id, parent]);
      assert.equal((await collect(again.listImages())).length, 2);
      assert.deepEqual(await again.getRepo(app), repo);
      assert.deepEqual(await again.listTags(app), [
        ['latest', makeTag(id)],
        ['old', makeTag(parent)],
      ] as Array<[Tag, TagRecord]>);
      assert.deepEqual(await again.getRepoImages(app), [{ id, checksum: 'sha256:x' }, { id: parent }].sort(byId));
      assert.deepEqual((await collect(again.listRepos())).map(repoKey).sort(), ['library/busybox', 'ns/ap', 'ns/app']);
      assert.equal(await again.getRepo(app2), null);
      assert.deepEqual(await again.getRepoImages(ap), [{ id }, { id: parent }].sort(byId));
      assert.deepEqual((await again.reposOfImage(id)).map((n) => n.full).sort(), ['ns/ap', 'ns/app']);
      assert.deepEqual(await again.getUser('alice'), makeUser('alice'));
      assert.equal(await again.getUserNameByEmail('alice@example.com'), 'alice');
    });

    describe('Registry API v2: manifests, links, referrers, uploads, layer facts', () => {
      const D = (c: string) => `sha256:${c.repeat(64)}`;
      const deep = parseV2Name('org/team/app');
      const link = (extra: Partial<ManifestLink> = {}): ManifestLink => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 3, createdAt: '2024-01-02T03:04:05.000Z', ...extra });

      it('putManifest stores the bytes once and links them into each repository', async () => {
        await store.putManifest(app, D('a'), Buffer.from('one'), link());
        await store.putManifest(deep, D('a'), Buffer.from('two: never stored, same digest'), link({ size: 99 }));
        assert.equal((await store.getManifest(D('a')))?.toString(), 'one');
        assert.deepEqual(await store.getManifestLink(app, D('a')), link());
        assert.deepEqual(await store.getManifestLink(deep, D('a')), link({ size: 99 }));
        assert.equal(await store.getManifestLink(app2, D('a')), null);
        assert.equal(await store.getManifest(D('b')), null);
        await store.putManifest(app, D('b'), Buffer.from('b'), link());
        assert.deepEqual((await store.listManifestLinks(app)).map(([d]) => d), [D('a'), D('b')]);
        assert.deepEqual((await collect(store.listManifests())).sort(), [D('a'), D('b')]);
      });

      it('referrers: indexed by subject per repository; unlinking removes the entry, not the bytes', async () => {
        await store.putManifest(app, D('1'), Buffer.from('x'), link({ subject: D('s'), artifactType: 't/a' }));
        await store.putManifest(app, D('2'), Buffer.from('y'), link({ subject: D('s') }));
        await store.putManifest(app2, D('3'), Buffer.from('z'), link({ subject: D('s') }));
        await store.putManifest(app, D('4'), Buffer.from('w'), link({ subject: D('t') }));
        assert.deepEqual((await store.listReferrers(app, D('s'))).map(([d, l]) => [d, l.artifactType]), [[D('1'), 't/a'], [D('2'), undefined]]);
        assert.equal(await store.unlinkManifest(app, D('1')), true);
        assert.equal(await store.unlinkManifest(app, D('1')), false);
        assert.deepEqual((await store.listReferrers(app, D('s'))).map(([d]) => d), [D('2')]);
        assert.equal((await store.getManifest(D('1')))?.toString(), 'x');
        await store.deleteManifest(D('1'));
        assert.equal(await store.getManifest(D('1')), null);
      });

      it('blob links: kept as they are when linked again, listed, unlinked', async () => {
        await store.linkBlobs(app, [[D('a'), { size: 1, createdAt: 'then' }], [D('b'), { size: 2, createdAt: 'then' }]]);
        await store.linkBlobs(app, [[D('a'), { size: 1, createdAt: 'now' }]]);
        assert.deepEqual(await store.getBlobLink(app, D('a')), { size: 1, createdAt: 'then' });
        assert.equal(await store.getBlobLink(app2, D('a')), null);
        assert.deepEqual((await store.listBlobLinks(app)).map(([d]) => d), [D('a'), D('b')]);
        assert.equal(await store.unlinkBlob(app, D('a')), true);
        assert.equal(await store.unlinkBlob(app, D('a')), false);
        assert.deepEqual((await store.listBlobLinks(app)).map(([d]) => d), [D('b')]);
      });

      it('deleteRepo removes its manifest links, referrer entries and blob links too', async () => {
        await store.putRepo(app, makeRepo(app));
        await store.putManifest(app, D('1'), Buffer.from('x'), link({ subject: D('s') }));
        await store.linkBlobs(app, [[D('a'), { size: 1, createdAt: 'then' }]]);
        await store.putManifest(app2, D('1'), Buffer.from('x'), link({ subject: D('s') }));
        assert.equal(await store.deleteRepo(app), true);
        assert.deepEqual(await store.listManifestLinks(app), []);
        assert.deepEqual(await store.listReferrers(app, D('s')), []);
        assert.deepEqual(await store.listBlobLinks(app), []);
        assert.deepEqual((await store.listReferrers(app2, D('s'))).map(([d]) => d), [D('1')], 'other repositories keep theirs');
      });

      it('uploads: put, get, list, delete', async () => {
        const record = { id: '0f8e2a54-7c1d-4a3b-9e6f-5d4c3b2a1f00', repo: 'ns/app', offset: 10, startedAt: 'a', updatedAt: 'b' };
        await store.putUpload(record);
        assert.deepEqual(await store.getUpload(record.id), record);
        await store.putUpload({ ...record, offset: 20 });
        assert.deepEqual(await collect(store.listUploads()), [{ ...record, offset: 20 }]);
        await store.deleteUpload(record.id);
        assert.equal(await store.getUpload(record.id), null);
      });

      it('layer facts and the manifests of v1 images (the first one recorded stays)', async () => {
        await store.putLayerFacts(D('a'), { compression: 'gzip', diffId: D('b') });
        assert.deepEqual(await store.getLayerFacts(D('a')), { compression: 'gzip', diffId: D('b') });
        await store.deleteLayerFacts(D('a'));
        assert.equal(await store.getLayerFacts(D('a')), null);
        const id = newId();
        await Promise.all([store.putImageManifest(id, 'docker', D('1')), store.putImageManifest(id, 'docker', D('2'))]);
        assert.equal(await store.getImageManifest(id, 'docker'), D('1'));
        assert.equal(await store.getImageManifest(id, 'oci'), null);
        await store.putImageManifest(id, 'oci', D('3'));
        assert.deepEqual((await collect(store.listImageManifests())).sort((a, b) => (a.flavor < b.flavor ? -1 : 1)), [
          { id, flavor: 'docker', digest: D('1') },
          { id, flavor: 'oci', digest: D('3') },
        ]);
        await store.deleteImageManifest(id, 'docker');
        assert.equal(await store.getImageManifest(id, 'docker'), null);
      });

      it('tags naming a manifest (and no v1 image) survive a reopen', async () => {
        const record: TagRecord = { imageId: null, manifest: D('m'), info: makeTag(newId()).info };
        await store.putTag(deep, latest, record, makeRepo(deep));
        await store.close();
        const again = await fixture.reopen();
        assert.deepEqual(await again.listTags(deep), [['latest', record]]);
        assert.deepEqual((await again.allRepos()).map(repoKey), ['org/team/app']);
      });
    });
  });
}
