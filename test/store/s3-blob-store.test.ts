/**
 * S3BlobStore: the shared BlobStore contract on a real S3 (Ceph's RADOS Gateway, one bucket
 * per test), plus what only this backend promises: the key layout of s3-keys.ts, uploads
 * never visible under blobs/, parts of bounded size, multipart copies past the single-copy
 * limit, abandoned uploads (and only those) removed by init(), presigned GETs with Range.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  AbortMultipartUploadCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { S3BlobStore, type S3BlobStoreOptions } from '../../src/store/blobs/s3-blob-store.js';
import { s3Keys } from '../../src/store/blobs/s3-keys.js';
import { useEngines } from '../helpers/engines.js';
import { blobStoreContract, digestOf, listAll, putBlob, readAll, upload } from './blob-store.contract.js';

const engines = useEngines({ postgres: false });

let buckets = 0;
function bucketName(): string {
  buckets += 1;
  return `t-${process.pid}-${buckets}-${randomBytes(3).toString('hex')}`;
}

function storeOn(bucket: string, extra: Partial<S3BlobStoreOptions> = {}): S3BlobStore {
  const { endpoint, region, accessKeyId, secretAccessKey } = engines.s3;
  return new S3BlobStore({ endpoint, region, accessKeyId, secretAccessKey, bucket, forcePathStyle: true, abandonAfterMs: 0, ...extra });
}

/** Every key and multipart upload left in the bucket. */
async function bucketContents(store: S3BlobStore): Promise<{ objects: string[]; uploads: string[] }> {
  const objects: string[] = [];
  let token: string | undefined;
  do {
    const page = await store.client.send(new ListObjectsV2Command({ Bucket: store.bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) objects.push(o.Key as string);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const listed = await store.client.send(new ListMultipartUploadsCommand({ Bucket: store.bucket }));
  return { objects: objects.sort(), uploads: (listed.Uploads ?? []).map((u) => u.Key as string).sort() };
}

/** Empties and removes a test bucket. */
async function removeBucket(store: S3BlobStore): Promise<void> {
  const listed = await store.client.send(new ListMultipartUploadsCommand({ Bucket: store.bucket }));
  for (const u of listed.Uploads ?? []) {
    await store.client.send(new AbortMultipartUploadCommand({ Bucket: store.bucket, Key: u.Key, UploadId: u.UploadId }));
  }
  for (const key of (await bucketContents(store)).objects) await store.client.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: key }));
  await store.client.send(new DeleteBucketCommand({ Bucket: store.bucket }));
  store.close();
}

blobStoreContract('S3BlobStore', async () => {
  const store = storeOn(bucketName());
  await store.client.send(new CreateBucketCommand({ Bucket: store.bucket }));
  return { store, cleanup: () => removeBucket(store) };
});

describe('S3BlobStore on a RADOS Gateway', () => {
  let store: S3BlobStore;

  beforeEach(async () => {
    store = storeOn(bucketName());
    await store.client.send(new CreateBucketCommand({ Bucket: store.bucket }));
    await store.init();
  });

  afterEach(async () => {
    await removeBucket(store);
  });

  it('stores a blob at blobs/sha256/<hex[0:2]>/<hex>, and nothing else', async () => {
    const digest = await putBlob(store, randomBytes(777));
    const hex = digest.slice('sha256:'.length);
    assert.equal(s3Keys.blob(digest), `blobs/sha256/${hex.slice(0, 2)}/${hex}`);
    assert.deepEqual(await bucketContents(store), { objects: [`blobs/sha256/${hex.slice(0, 2)}/${hex}`], uploads: [] });
  });

  it('keeps a finished upload under uploads/ until commit, invisible as a blob', async () => {
    const bytes = randomBytes(4321);
    const writer = await upload(store, bytes);
    const { objects } = await bucketContents(store);
    assert.equal(objects.length, 1);
    assert.match(objects[0], /^uploads\/[a-f0-9]{24}$/);
    assert.deepEqual(await listAll(store), []);
    await writer.commit(digestOf(bytes));
    await writer.abort();
    assert.deepEqual((await bucketContents(store)).objects, [s3Keys.blob(digestOf(bytes))]);
  });

  it('sends a large upload in parts of the configured size while it streams, and completes it only at the end', async () => {
    const partSize = 5 * 1024 * 1024;
    const small = storeOn(store.bucket, { partSize });
    const writer = await small.createWriter();
    const bytes = randomBytes(3 * partSize + 12345);
    // Two parts written: the first is uploading or uploaded as a multipart upload, no object yet.
    await new Promise<void>((resolve, reject) => writer.stream.write(bytes.subarray(0, 2 * partSize + 1), (err) => (err ? reject(err) : resolve())));
    const during = await bucketContents(small);
    assert.deepEqual(during.objects, [], 'nothing is an object before the stream ends');
    assert.equal(during.uploads.length, 1, 'a multipart upload is open');
    await pipeline(Readable.from([bytes.subarray(2 * partSize + 1)]), writer.stream);
    await writer.commit(digestOf(bytes));
    await writer.abort();
    assert.deepEqual(await bucketContents(small), { objects: [s3Keys.blob(digestOf(bytes))], uploads: [] });
    assert.ok((await readAll(await small.read(digestOf(bytes)))).equals(bytes));
    small.close();
  });

  it('an upload aborted half-way leaves no multipart upload and no object', async () => {
    const small = storeOn(store.bucket, { partSize: 5 * 1024 * 1024 });
    const writer = await small.createWriter();
    await new Promise<void>((resolve, reject) => writer.stream.write(randomBytes(11 * 1024 * 1024), (err) => (err ? reject(err) : resolve())));
    await writer.abort();
    assert.deepEqual(await bucketContents(small), { objects: [], uploads: [] });
    small.close();
  });

  it('copies a blob past the single-copy limit in parts at commit', async () => {
    const MiB = 1024 * 1024;
    const small = storeOn(store.bucket, { partSize: 5 * MiB, singleCopyLimit: 6 * MiB, copyPartSize: 5 * MiB });
    const bytes = randomBytes(13 * MiB + 7);
    const digest = await putBlob(small, bytes);
    const got = await readAll(await small.read(digest));
    assert.equal(createHash('sha256').update(got).digest('hex'), digest.slice(7));
    assert.deepEqual(await bucketContents(small), { objects: [s3Keys.blob(digest)], uploads: [] });
    small.close();
  });

  it('init() spares uploads younger than the abandon age (another node may be writing them)', async () => {
    const node = storeOn(store.bucket, { abandonAfterMs: 3600_000 });
    const writer = await upload(node, randomBytes(100));
    const started = await node.createWriter();
    // More than one part (8 MiB by default): the multipart upload has begun.
    await new Promise<void>((resolve, reject) => started.stream.write(randomBytes(9 * 1024 * 1024), (err) => (err ? reject(err) : resolve())));
    assert.deepEqual(await node.init(), { removedTemp: 0 });
    const left = await bucketContents(node);
    assert.equal(left.objects.length, 1, 'the finished upload is still there');
    assert.equal(left.uploads.length, 1, 'the multipart upload in progress is still there');
    await writer.abort();
    await started.abort();
    assert.deepEqual(await bucketContents(node), { objects: [], uploads: [] });
    node.close();
  });

  it('list() ignores keys that are not blobs', async () => {
    const digest = await putBlob(store, Buffer.from('real'));
    const hex = digest.slice('sha256:'.length);
    for (const key of [`blobs/sha256/ff/${'cd'.repeat(32)}`, `blobs/sha256/${hex.slice(0, 2)}/${hex}.partial`, `blobs/sha256/${hex.toUpperCase()}`, 'stray']) {
      await store.client.send(new PutObjectCommand({ Bucket: store.bucket, Key: key, Body: 'x' }));
    }
    assert.deepEqual(await listAll(store), [digest]);
  });

  it('presignGet: a URL any HTTP client can GET, with Range, until it expires', async () => {
    const bytes = randomBytes(10_000);
    const digest = await putBlob(store, bytes);
    const url = await store.presignGet(digest, 60);
    const whole = await fetch(url);
    assert.equal(whole.status, 200);
    assert.ok(Buffer.from(await whole.arrayBuffer()).equals(bytes));
    const part = await fetch(url, { headers: { Range: 'bytes=100-199' } });
    assert.equal(part.status, 206);
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(100, 200)));
    const tampered = new URL(url);
    tampered.searchParams.set('X-Amz-Expires', '600');
    assert.equal((await fetch(tampered)).status, 403, 'the signature covers the expiry');
  });

  it('an open reader serves reads in any order, sequential ones from one GET', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 5);
    const digest = await putBlob(store, bytes);
    const reader = await store.openReader(digest);
    try {
      const buf = Buffer.alloc(256 * 1024);
      for (const position of [0, 262144, 524288, 2_000_000, 10, 3 * 1024 * 1024 - 100, 1_000_000]) {
        const n = await reader.read(buf, buf.length, position);
        assert.equal(n, Math.min(buf.length, bytes.length - position));
        assert.ok(buf.subarray(0, n).equals(bytes.subarray(position, position + n)), `bytes at ${position}`);
      }
      assert.equal(reader.fd, undefined, 'no file descriptor: the layer sender streams');
    } finally {
      await reader.close();
    }
  });
});
