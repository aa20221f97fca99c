/**
 * Several registry nodes on one PostgreSQL schema and one S3 bucket (the shared test
 * engines), for test/multi-node/*.test.ts: in-process servers (startCluster) or child
 * processes (childEnv, for kill -9), what the bucket holds (keys, unfinished multipart
 * uploads), and pulls that check every byte through a given node.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { Engines } from '../helpers/engines.js';
import { newSchema } from '../helpers/postgres-engine.js';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';
import { imageJson, type TestImage } from '../helpers/v1.js';
import { digestOf, type TestImageV2 } from '../helpers/v2.js';

/** The config every node of a registry on the test engines shares (a fresh bucket name each time). */
export function sharedConfig(engines: Engines, postgresUrl: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    metadata_store: 'postgres',
    postgres_url: postgresUrl,
    blob_store: 's3',
    s3_endpoint: engines.s3.endpoint,
    s3_region: engines.s3.region,
    s3_bucket: `multi-${randomBytes(4).toString('hex')}`,
    s3_access_key_id: engines.s3.accessKeyId,
    s3_secret_access_key: engines.s3.secretAccessKey,
    s3_force_path_style: true,
    token_secret: 'one secret for every node of this registry',
    ...extra,
  };
}

/** `config` as REGISTRY_* environment variables (for nodes started as child processes). */
export function asEnv(config: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(config).map(([key, value]) => [`REGISTRY_${key.toUpperCase()}`, String(value)]));
}

/** A request whose body the test sends piece by piece (chunked); the request stays open meanwhile. */
export function openBody(method: string, url: string, headers: Record<string, string> = {}) {
  const req = http.request(url, { method, headers: { 'Transfer-Encoding': 'chunked', 'Content-Type': 'application/octet-stream', ...headers }, agent: false });
  const response = new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    req.once('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.once('error', reject);
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.once('error', reject);
  });
  // A test that kills the server is not interested in the rejection.
  response.catch(() => {});
  return {
    response,
    write: (data: Buffer) => new Promise<void>((resolve, reject) => req.write(data, (err) => (err ? reject(err) : resolve()))),
    end: () => req.end(),
  };
}

/** A client of the bucket and what it holds. */
export function bucketOf(engines: Engines, bucket: string) {
  const s3 = new S3Client({
    endpoint: engines.s3.endpoint,
    region: engines.s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: engines.s3.accessKeyId, secretAccessKey: engines.s3.secretAccessKey },
  });
  return {
    s3,
    /** Every key under `prefix`. */
    async keys(prefix = ''): Promise<string[]> {
      const out: string[] = [];
      let token: string | undefined;
      do {
        const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        for (const object of page.Contents ?? []) if (object.Key) out.push(object.Key);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return out.sort();
    },
    /** The keys of the bucket's unfinished multipart uploads. */
    async multipart(): Promise<string[]> {
      const page = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      return (page.Uploads ?? []).map((u) => u.Key ?? '').sort();
    },
  };
}

export interface Cluster {
  nodes: TestServer[];
  /** The config every node shares (metadata_store: postgres, blob_store: s3, …). */
  shared: Record<string, unknown>;
  /** A client of the nodes' bucket. */
  s3: S3Client;
  bucket: string;
  /** Every key under `prefix`. */
  keys(prefix?: string): Promise<string[]>;
  /** The keys of the bucket's unfinished multipart uploads. */
  multipart(): Promise<string[]>;
  close(): Promise<void>;
}

/** Starts `n` nodes (in this process) on a fresh schema and bucket; `extra` goes to every node. */
export async function startCluster(engines: Engines, n: number, extra: Record<string, unknown> = {}): Promise<Cluster> {
  const schema = await newSchema(engines.postgres.url);
  const shared = sharedConfig(engines, schema.url, extra);
  const bucket = shared.s3_bucket as string;
  const nodes: TestServer[] = [];
  try {
    for (const node of await Promise.all(Array.from({ length: n }, () => startTestServer({ overrides: shared })))) nodes.push(node);
  } catch (err) {
    await schema.drop();
    throw err;
  }
  const contents = bucketOf(engines, bucket);
  return {
    nodes,
    shared,
    bucket,
    ...contents,
    async close() {
      for (const node of nodes) await node.destroy().catch(() => {});
      contents.s3.destroy();
      await schema.drop();
    },
  };
}

/** The S3 key of a blob (the layout of src/store/blobs/s3-keys.ts). */
export function blobKey(digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return `blobs/sha256/${hex.slice(0, 2)}/${hex}`;
}

/** A chain of `n` images on `parent` (oldest first), layers of about `size` random bytes. */
export function chainOf(n: number, size = 40_000, parent?: TestImage): TestImage[] {
  const images: TestImage[] = [];
  for (let i = 0; i < n; i++) {
    images.push({ id: newImageId(), parent: (images[i - 1] ?? parent)?.id, layer: randomBytes(size + Math.floor(Math.random() * 1000)) });
  }
  return images;
}

async function bytesOf(res: Response, what: string): Promise<Buffer> {
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200, `${what}: ${res.status} ${body.toString('utf8', 0, 200)}`);
  return body;
}

/**
 * A v1 pull of `repo:tag` through `base`, as docker 1.x does it (image list, tags,
 * ancestry, every json and layer), asserting every byte is the pushed one. `images` is the
 * tagged image's whole chain, oldest first.
 */
export async function pullV1(base: string, repo: string, tag: string, images: TestImage[]): Promise<void> {
  const top = images[images.length - 1];
  const listed = JSON.parse((await bytesOf(await fetch(`${base}/v1/repositories/${repo}/images`), `${base} image list`)).toString()) as Array<{ id: string }>;
  const ids = new Set(listed.map((e) => e.id));
  for (const image of images) assert.ok(ids.has(image.id), `${base}: ${repo}'s image list lacks ${image.id}`);
  const tags = JSON.parse((await bytesOf(await fetch(`${base}/v1/repositories/${repo}/tags`), `${base} tags`)).toString()) as Record<string, string>;
  assert.equal(tags[tag], top.id, `${base}: ${repo}:${tag}`);
  const ancestry = JSON.parse((await bytesOf(await fetch(`${base}/v1/images/${top.id}/ancestry`), `${base} ancestry`)).toString()) as string[];
  assert.deepEqual(ancestry, images.map((i) => i.id).reverse(), `${base}: ancestry of ${top.id}`);
  for (const image of images) {
    const json = await bytesOf(await fetch(`${base}/v1/images/${image.id}/json`), `${base} json of ${image.id}`);
    assert.ok(json.equals(imageJson(image)), `${base}: json of ${image.id}`);
    const layer = await bytesOf(await fetch(`${base}/v1/images/${image.id}/layer`), `${base} layer of ${image.id}`);
    assert.ok(layer.equals(image.layer), `${base}: layer of ${image.id} (${layer.length} of ${image.layer.length} bytes)`);
  }
}

/** A v2 pull of `name:reference` through `base`: the manifest and every blob, byte-exact. */
export async function pullV2(base: string, name: string, reference: string, image: TestImageV2): Promise<void> {
  const manifest = await bytesOf(
    await fetch(`${base}/v2/${name}/manifests/${reference}`, { headers: { Accept: image.mediaType } }),
    `${base} manifest ${name}:${reference}`,
  );
  assert.ok(manifest.equals(image.manifest), `${base}: manifest of ${name}:${reference}`);
  for (const blob of [image.config, ...image.layers]) {
    const got = await bytesOf(await fetch(`${base}/v2/${name}/blobs/${digestOf(blob)}`), `${base} blob ${digestOf(blob)}`);
    assert.ok(got.equals(blob), `${base}: blob ${digestOf(blob)}`);
  }
}

/** POST /_admin/fsck through `base`; asserts it found nothing wrong. */
export async function assertFsckClean(base: string): Promise<void> {
  const res = await fetch(`${base}/_admin/fsck`, { method: 'POST' });
  const report = (await res.json()) as { ok: boolean; problems: unknown[] };
  assert.equal(res.status, 200, JSON.stringify(report));
  assert.equal(report.ok, true, `fsck: ${JSON.stringify(report.problems).slice(0, 2000)}`);
}
