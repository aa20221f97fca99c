/**
 * The behaviour every BlobStore must have (see src/store/blobs/blob-store.ts). Not a test
 * entry point: a driver's own *.test.ts calls `blobStoreContract` with a factory, so a new
 * backend (S3 later) gets the whole suite for free.
 *
 * The factory returns a store on fresh, empty storage that has NOT been initialised yet;
 * the suite calls `init()` itself. `cleanup` releases everything the factory created.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { isRegistryError, type ErrorCode } from '../../src/domain/errors.js';
import type { BlobInfo, BlobStore, BlobWriter } from '../../src/store/blobs/blob-store.js';

/** A blob's stat: its exact size, and a commit time that is a plausible recent timestamp. */
function assertStat(info: BlobInfo | null, size: number): void {
  assert.ok(info, 'blob should exist');
  assert.equal(info.size, size);
  assert.equal(typeof info.modifiedAt, 'number');
  assert.ok(Math.abs(Date.now() - info.modifiedAt) < 10 * 60_000, `modifiedAt ${info.modifiedAt} is not recent`);
}

export interface BlobStoreFixture {
  store: BlobStore;
  cleanup(): Promise<void>;
}

export type BlobStoreFactory = () => Promise<BlobStoreFixture>;

export function digestOf(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Writes `chunks` through a new writer and ends its stream; does not commit. */
export async function upload(store: BlobStore, chunks: Buffer | Buffer[]): Promise<BlobWriter> {
  const writer = await store.createWriter();
  await pipeline(Readable.from(Array.isArray(chunks) ? chunks : [chunks]), writer.stream);
  return writer;
}

/** Writes and commits `bytes` (the usual `finally abort` pattern); returns its digest. */
export async function putBlob(store: BlobStore, bytes: Buffer): Promise<string> {
  const digest = digestOf(bytes);
  const writer = await upload(store, bytes);
  try {
    await writer.commit(digest);
  } finally {
    await writer.abort();
  }
  return digest;
}

export async function listAll(store: BlobStore): Promise<string[]> {
  const out: string[] = [];
  for await (const digest of store.list()) out.push(digest);
  return out.sort();
}

export function rejectsWith(code: ErrorCode) {
  return (err: unknown) => {
    assert.ok(isRegistryError(err, code), `expected RegistryError ${code}, got ${String((err as Error)?.stack ?? err)}`);
    return true;
  };
}

const HEX = 'ab'.repeat(32);

/** Digests that must be refused before they reach any storage path or key. */
export const INVALID_DIGESTS: string[] = [
  '',
  'sha256:',
  HEX,
  `sha256:${HEX.slice(0, 63)}`,
  `sha256:${HEX}a`,
  `sha256:${HEX.toUpperCase()}`,
  `SHA256:${HEX}`,
  `sha512:${HEX}${HEX}`,
  `sha256:${HEX}\n`,
  ` sha256:${HEX}`,
  `sha256:${HEX.slice(0, 62)}zz`,
  'sha256:../../etc',
  'sha256:../../../etc/passwd',
  `sha256:../${HEX.slice(0, 61)}`,
  `sha256:${HEX.slice(0, 2)}/../../${HEX.slice(0, 56)}`,
  `sha256:${HEX.slice(0, 30)}/${HEX.slice(0, 33)}`,
  `sha256:${HEX.slice(0, 63)}\0`,
];

async function collectIds(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const id of it) out.push(id);
  return out.sort();
}

export function blobStoreContract(name: string, factory: BlobStoreFactory): void {
  describe(`BlobStore contract: ${name}`, () => {
    let fixture: BlobStoreFixture;
    let store: BlobStore;
    let firstInit: { removedTemp: number };

    beforeEach(async () => {
      fixture = await factory();
      store = fixture.store;
      firstInit = await store.init();
    });

    afterEach(async () => {
      await fixture.cleanup();
    });

    describe('init()', () => {
      it('reports no leftover uploads on fresh storage', () => {
        assert.deepEqual(firstInit, { removedTemp: 0 });
      });

      it('removes uploads that were never committed or aborted, reports how many, and keeps blobs', async () => {
        const kept = await putBlob(store, Buffer.from('committed before the crash'));
        const leftovers = [
          await upload(store, randomBytes(10)),
          await upload(store, randomBytes(70_000)),
          await upload(store, Buffer.alloc(0)),
        ];
        assert.deepEqual(await store.init(), { removedTemp: 3 });
        for (const w of leftovers) await w.abort();
        assert.deepEqual(await store.init(), { removedTemp: 0 });
        assert.deepEqual(await listAll(store), [kept]);
        assert.deepEqual(await readAll(await store.read(kept)), Buffer.from('committed before the crash'));
      });

      it('reclaimStale() counts (dry run) and removes uploads idle that long, keeps younger ones and blobs', async () => {
        const kept = await putBlob(store, Buffer.from('a committed blob'));
        const stale = await upload(store, randomBytes(3000));
        const later = Date.now() + 60_000;
        assert.deepEqual(await store.reclaimStale(3600_000, false, later), { removed: 0, bytes: 0 }, 'younger than an hour');
        assert.deepEqual(await store.reclaimStale(30_000, true, later), { removed: 1, bytes: 3000 }, 'a dry run counts');
        assert.deepEqual(await store.reclaimStale(30_000, false, later), { removed: 1, bytes: 3000 });
        assert.deepEqual(await store.reclaimStale(0, false, later), { removed: 0, bytes: 0 }, 'nothing left');
        await stale.abort();
        assert.deepEqual(await store.init(), { removedTemp: 0 });
        assert.deepEqual(await listAll(store), [kept]);
      });

      it('is idempotent on an initialised store', async () => {
        const digest = await putBlob(store, Buffer.from('x'));
        assert.deepEqual(await store.init(), { removedTemp: 0 });
        assert.deepEqual(await listAll(store), [digest]);
      });
    });

    describe('write + commit', () => {
      it('makes the exact bytes readable under their digest', async () => {
        const bytes = randomBytes(100_003);
        const digest = await putBlob(store, bytes);
        assertStat(await store.stat(digest), bytes.length);
        const got = await readAll(await store.read(digest));
        assert.equal(got.length, bytes.length);
        assert.ok(got.equals(bytes), 'read returns the committed bytes');
      });

      it('stores bytes written in many small chunks in order', async () => {
        const chunks = Array.from({ length: 200 }, (_, i) => Buffer.from([i, i + 1, i + 2]));
        const bytes = Buffer.concat(chunks);
        const writer = await upload(store, chunks);
        const digest = digestOf(bytes);
        await writer.commit(digest);
        await writer.abort();
        assert.ok((await readAll(await store.read(digest))).equals(bytes));
      });

      it('stores an empty blob', async () => {
        const digest = await putBlob(store, Buffer.alloc(0));
        assertStat(await store.stat(digest), 0);
        assert.equal((await readAll(await store.read(digest))).length, 0);
        assert.deepEqual(await listAll(store), [digest]);
      });

      it('streams a 16 MiB blob through in chunks', async () => {
        const chunk = 64 * 1024;
        const bytes = randomBytes(16 * 1024 * 1024);
        const chunks: Buffer[] = [];
        for (let i = 0; i < bytes.length; i += chunk) chunks.push(bytes.subarray(i, i + chunk));
        const writer = await upload(store, chunks);
        const digest = digestOf(bytes);
        await writer.commit(digest);
        await writer.abort();
        assertStat(await store.stat(digest), bytes.length);

        const hash = createHash('sha256');
        let received = 0;
        let reads = 0;
        for await (const part of await store.read(digest)) {
          hash.update(part as Buffer);
          received += (part as Buffer).length;
          reads += 1;
        }
        assert.equal(received, bytes.length);
        assert.equal(`sha256:${hash.digest('hex')}`, digest);
        assert.ok(reads > 1, `a 16 MiB blob arrives in several chunks, got ${reads}`);
      });
    });

    describe('before commit', () => {
      it('nothing is visible: stat is null, read rejects NOT_FOUND, list excludes it', async () => {
        const bytes = randomBytes(2048);
        const digest = digestOf(bytes);
        const writer = await upload(store, bytes);
        try {
          assert.equal(await store.stat(digest), null);
          await assert.rejects(store.read(digest), rejectsWith('NOT_FOUND'));
          await assert.rejects(store.read(digest, { start: 0, end: 0 }), rejectsWith('NOT_FOUND'));
          assert.deepEqual(await listAll(store), []);
          assert.equal(await store.delete(digest), false);
          await writer.commit(digest);
          assertStat(await store.stat(digest), bytes.length);
        } finally {
          await writer.abort();
        }
      });

      it('commit before the stream has finished rejects and publishes nothing', async () => {
        const bytes = Buffer.from('half an upload');
        const writer = await store.createWriter();
        try {
          await new Promise<void>((resolve, reject) => writer.stream.write(bytes, (err) => (err ? reject(err) : resolve())));
          await assert.rejects(writer.commit(digestOf(bytes)));
          assert.equal(await store.stat(digestOf(bytes)), null);
          assert.deepEqual(await listAll(store), []);
        } finally {
          await writer.abort();
        }
        assert.deepEqual(await store.init(), { removedTemp: 0 }, 'abort cleaned the upload up');
      });
    });

    describe('abort', () => {
      it('removes a finished upload and can be called again', async () => {
        const bytes = randomBytes(5000);
        const writer = await upload(store, bytes);
        await writer.abort();
        await writer.abort();
        assert.equal(await store.stat(digestOf(bytes)), null);
        assert.deepEqual(await listAll(store), []);
        assert.deepEqual(await store.init(), { removedTemp: 0 }, 'nothing was left behind');
        await assert.rejects(writer.commit(digestOf(bytes)), 'an aborted upload cannot be committed');
        assert.equal(await store.stat(digestOf(bytes)), null);
      });

      it('works before anything was written', async () => {
        const writer = await store.createWriter();
        await writer.abort();
        await writer.abort();
        assert.deepEqual(await store.init(), { removedTemp: 0 });
      });

      it('works in the middle of a write', async () => {
        const writer = await store.createWriter();
        await new Promise<void>((resolve, reject) => writer.stream.write(randomBytes(1000), (err) => (err ? reject(err) : resolve())));
        await Promise.all([writer.abort(), writer.abort()]);
        assert.deepEqual(await store.init(), { removedTemp: 0 });
        assert.deepEqual(await listAll(store), []);
      });

      it('does nothing after a commit: the blob stays', async () => {
        const bytes = randomBytes(3000);
        const digest = digestOf(bytes);
        const writer = await upload(store, bytes);
        await writer.commit(digest);
        await writer.abort();
        await writer.abort();
        assert.ok((await readAll(await store.read(digest))).equals(bytes));
        assert.deepEqual(await listAll(store), [digest]);
      });
    });

    describe('commit of a digest that already exists', () => {
      it('keeps the stored blob and drops the new copy', async () => {
        const bytes = randomBytes(4096);
        const digest = await putBlob(store, bytes);
        const again = await upload(store, bytes);
        await again.commit(digest);
        await again.abort();
        assertStat(await store.stat(digest), bytes.length);
        assert.ok((await readAll(await store.read(digest))).equals(bytes));
        assert.deepEqual(await listAll(store), [digest]);
        assert.deepEqual(await store.init(), { removedTemp: 0 }, 'the copy was dropped');
      });

      it('never replaces the stored bytes (first write wins)', async () => {
        // Observable only with a copy whose bytes differ: the store must not overwrite a
        // published blob, so a reader can never see it change or shrink.
        const original = Buffer.from('the original bytes');
        const digest = await putBlob(store, original);
        const other = await upload(store, Buffer.from('other'));
        await other.commit(digest);
        await other.abort();
        assert.ok((await readAll(await store.read(digest))).equals(original));
        assertStat(await store.stat(digest), original.length);
      });

      it('lets concurrent uploads of the same bytes all succeed', async () => {
        const bytes = randomBytes(50_000);
        const digest = digestOf(bytes);
        const writers = await Promise.all([upload(store, bytes), upload(store, bytes), upload(store, bytes)]);
        await Promise.all(writers.map((w) => w.commit(digest)));
        await Promise.all(writers.map((w) => w.abort()));
        assert.ok((await readAll(await store.read(digest))).equals(bytes));
        assert.deepEqual(await listAll(store), [digest]);
        assert.deepEqual(await store.init(), { removedTemp: 0 });
      });
    });

    describe('range reads', () => {
      const bytes = randomBytes(1000);
      let digest: string;
      beforeEach(async () => {
        digest = await putBlob(store, bytes);
      });

      const cases: Array<[string, number, number]> = [
        ['the first byte', 0, 0],
        ['the last byte', 999, 999],
        ['everything', 0, 999],
        ['a middle slice, both ends inclusive', 10, 19],
        ['the tail', 500, 999],
        ['the head', 0, 499],
      ];
      for (const [title, start, end] of cases) {
        it(`reads ${title} (${start}-${end})`, async () => {
          const got = await readAll(await store.read(digest, { start, end }));
          assert.equal(got.length, end - start + 1);
          assert.ok(got.equals(bytes.subarray(start, end + 1)));
        });
      }

      it('stops at the last byte when end is past it', async () => {
        const got = await readAll(await store.read(digest, { start: 990, end: 5000 }));
        assert.ok(got.equals(bytes.subarray(990)));
      });

      it('rejects a malformed range with INVALID_INPUT', async () => {
        const bad = [
          { start: 5, end: 4 },
          { start: -1, end: 3 },
          { start: 0, end: -1 },
          { start: 1.5, end: 3 },
          { start: Number.NaN, end: 3 },
          { start: 0, end: Number.POSITIVE_INFINITY },
        ];
        for (const range of bad) {
          await assert.rejects(store.read(digest, range), rejectsWith('INVALID_INPUT'), JSON.stringify(range));
        }
      });

      it('rejects NOT_FOUND for a range of a missing blob', async () => {
        await assert.rejects(store.read(digestOf(Buffer.from('missing')), { start: 0, end: 1 }), rejectsWith('NOT_FOUND'));
      });
    });

    describe('openReader (positional reads)', () => {
      it('reports the size and reads exact bytes at any position', async () => {
        const bytes = randomBytes(1024 * 1024 + 333);
        const digest = await putBlob(store, bytes);
        const reader = await store.openReader(digest);
        try {
          assert.equal(reader.size, bytes.length);
          const buf = Buffer.alloc(4096);
          for (const position of [0, 1, 4095, 65536, bytes.length - 4096]) {
            assert.equal(await reader.read(buf, 4096, position), 4096);
            assert.ok(buf.equals(bytes.subarray(position, position + 4096)), `bytes at ${position}`);
          }
          // Past the end: a short read, then 0.
          assert.equal(await reader.read(buf, 4096, bytes.length - 10), 10);
          assert.ok(buf.subarray(0, 10).equals(bytes.subarray(bytes.length - 10)));
          assert.equal(await reader.read(buf, 4096, bytes.length), 0);
        } finally {
          await reader.close();
        }
      });

      it('rejects NOT_FOUND for a missing blob and INVALID_INPUT for a bad digest', async () => {
        await assert.rejects(store.openReader(digestOf(Buffer.from('absent'))), rejectsWith('NOT_FOUND'));
        await assert.rejects(store.openReader('sha256:../../etc'), rejectsWith('INVALID_INPUT'));
      });

      it('keeps reading a blob deleted after it was opened', async () => {
        const bytes = randomBytes(200_000);
        const digest = await putBlob(store, bytes);
        const reader = await store.openReader(digest);
        try {
          assert.equal(await store.delete(digest), true);
          const buf = Buffer.alloc(bytes.length);
          assert.equal(await reader.read(buf, bytes.length, 0), bytes.length);
          assert.ok(buf.equals(bytes));
        } finally {
          await reader.close();
        }
      });
    });

    describe('delete', () => {
      it('returns true, then false; the blob is gone', async () => {
        const keep = await putBlob(store, Buffer.from('keep'));
        const digest = await putBlob(store, Buffer.from('delete me'));
        assert.equal(await store.delete(digest), true);
        assert.equal(await store.delete(digest), false);
        assert.equal(await store.stat(digest), null);
        await assert.rejects(store.read(digest), rejectsWith('NOT_FOUND'));
        assert.deepEqual(await listAll(store), [keep]);
      });

      it('returns false for a blob that never existed', async () => {
        assert.equal(await store.delete(digestOf(Buffer.from('never'))), false);
      });

      it('lets the same bytes be stored again afterwards', async () => {
        const bytes = Buffer.from('again');
        const digest = await putBlob(store, bytes);
        assert.equal(await store.delete(digest), true);
        assert.equal(await putBlob(store, bytes), digest);
        assert.ok((await readAll(await store.read(digest))).equals(bytes));
      });

      it('does not cut short a read that was opened before it', async () => {
        const bytes = randomBytes(3 * 1024 * 1024 + 17);
        const digest = await putBlob(store, bytes);
        const stream = await store.read(digest);
        assert.equal(await store.delete(digest), true);
        assert.equal(await store.stat(digest), null);
        const got = await readAll(stream);
        assert.equal(got.length, bytes.length);
        assert.ok(got.equals(bytes));
      });
    });

    describe('list', () => {
      it('is empty on fresh storage', async () => {
        assert.deepEqual(await listAll(store), []);
      });

      it('yields every committed digest exactly once, and nothing else', async () => {
        const committed: string[] = [];
        for (let i = 0; i < 12; i++) committed.push(await putBlob(store, randomBytes(100 + i)));
        const deleted = committed.splice(3, 2);
        for (const d of deleted) assert.equal(await store.delete(d), true);
        const pending = await upload(store, randomBytes(64));
        const aborted = await upload(store, randomBytes(65));
        await aborted.abort();
        try {
          const listed = await listAll(store);
          assert.deepEqual(listed, [...committed].sort());
          for (const d of listed) assert.match(d, /^sha256:[a-f0-9]{64}$/);
        } finally {
          await pending.abort();
        }
      });
    });

    describe('invalid digests', () => {
      it('are rejected with INVALID_INPUT by stat, read and delete', async () => {
        for (const digest of INVALID_DIGESTS) {
          const label = JSON.stringify(digest);
          await assert.rejects(store.stat(digest), rejectsWith('INVALID_INPUT'), `stat ${label}`);
          await assert.rejects(store.read(digest), rejectsWith('INVALID_INPUT'), `read ${label}`);
          await assert.rejects(store.read(digest, { start: 0, end: 0 }), rejectsWith('INVALID_INPUT'), `read range ${label}`);
          await assert.rejects(store.delete(digest), rejectsWith('INVALID_INPUT'), `delete ${label}`);
        }
      });

      it('are rejected by commit, which publishes nothing; the upload can still be aborted', async () => {
        for (const digest of INVALID_DIGESTS) {
          const writer = await upload(store, Buffer.from('payload'));
          await assert.rejects(writer.commit(digest), rejectsWith('INVALID_INPUT'), `commit ${JSON.stringify(digest)}`);
          await writer.abort();
        }
        assert.deepEqual(await listAll(store), []);
        assert.deepEqual(await store.init(), { removedTemp: 0 });
      });

      it('are rejected even when the digest is not a string', async () => {
        for (const digest of [undefined, null, 42, ['sha256:', HEX]] as unknown as string[]) {
          await assert.rejects(store.stat(digest), rejectsWith('INVALID_INPUT'), `stat ${String(digest)}`);
        }
      });
    });

    describe('resumable uploads', () => {
      const ID = '0f8e2a54-7c1d-4a3b-9e6f-5d4c3b2a1f00';
      const OTHER = '1f8e2a54-7c1d-4a3b-9e6f-5d4c3b2a1f00';

      async function append(id: string, position: number, bytes: Buffer): Promise<void> {
        const stream = await store.appendUpload(id, position);
        const closed = new Promise((resolve) => stream.once('close', resolve));
        await new Promise<void>((resolve, reject) => {
          stream.once('error', reject);
          stream.once('finish', resolve);
          stream.end(bytes);
        });
        await closed;
      }

      it('appends at the given position, survives init(), and is read back whole', async () => {
        const bytes = randomBytes(300_000);
        await append(ID, 0, bytes.subarray(0, 100_000));
        await append(ID, 100_000, bytes.subarray(100_000));
        assert.deepEqual(await store.init(), { removedTemp: 0 }, 'a resumable upload is not a leftover');
        assert.equal((await store.statUpload(ID))?.size, bytes.length);
        assert.ok((await readAll(await store.readUpload(ID, bytes.length))).equals(bytes));
        assert.ok((await readAll(await store.readUpload(ID, 10))).equals(bytes.subarray(0, 10)));
        assert.deepEqual(await collectIds(store.listUploads()), [ID]);
      });

      it('cuts what lies beyond the position before appending (bytes never acknowledged)', async () => {
        await append(ID, 0, Buffer.from('0123456789'));
        await append(ID, 4, Buffer.from('abc'));
        assert.equal((await readAll(await store.readUpload(ID, 7))).toString(), '0123abc');
        assert.equal((await store.statUpload(ID))?.size, 7);
      });

      it('commitUpload publishes the bytes under their digest and removes the upload; a duplicate keeps the stored blob', async () => {
        const bytes = randomBytes(5000);
        await append(ID, 0, bytes);
        await store.commitUpload(ID, digestOf(bytes));
        assert.ok((await readAll(await store.read(digestOf(bytes)))).equals(bytes));
        assert.equal(await store.statUpload(ID), null);
        assert.deepEqual(await collectIds(store.listUploads()), []);
        await append(OTHER, 0, bytes);
        await store.commitUpload(OTHER, digestOf(bytes));
        assert.deepEqual(await listAll(store), [digestOf(bytes)]);
      });

      it('deleteUpload removes it (false when absent); unknown uploads: null, NOT_FOUND', async () => {
        await append(ID, 0, Buffer.from('x'));
        assert.equal(await store.deleteUpload(ID), true);
        assert.equal(await store.deleteUpload(ID), false);
        assert.equal(await store.statUpload(ID), null);
        await assert.rejects(store.commitUpload(ID, digestOf(Buffer.from('x'))), rejectsWith('NOT_FOUND'));
      });

      it('rejects ids that are not upload ids before they reach a path', async () => {
        for (const id of ['../blobs', '', 'x'.repeat(36), `${ID}/..`, ID.toUpperCase()]) {
          await assert.rejects(store.appendUpload(id, 0), rejectsWith('INVALID_INPUT'), id);
          await assert.rejects(store.statUpload(id), rejectsWith('INVALID_INPUT'), id);
          await assert.rejects(store.deleteUpload(id), rejectsWith('INVALID_INPUT'), id);
        }
      });
    });
  });
}
