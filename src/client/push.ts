/**
 * `registry push FILE|- REF`: a `docker save` tarball to a v1 registry, the docker 1.x way:
 *
 *   PUT  {index}/v1/repositories/ns/repo/   (Basic, X-Docker-Token: true, body [{"id"}…])
 *        → X-Docker-Token, X-Docker-Endpoints
 *   per image, base first:
 *     GET {registry}/v1/images/ID/json      200: already there, skipped
 *     PUT …/json                            the image JSON, byte-exact
 *     PUT …/layer                           the layer bytes as they are in the tarball,
 *                                           streamed from the file (Content-Length)
 *     PUT …/checksum                        X-Docker-Checksum-Payload: sha256(json "\n" layer)
 *   PUT {registry}/v1/repositories/ns/repo/tags/TAG   "ID"
 *   PUT {index}/v1/repositories/ns/repo/images        [{"id", "checksum"}…]
 *
 * The layer is read once: the same pass computes the payload checksum and, for current
 * layouts, the sha256 of the uncompressed bytes, which must equal the config's diff_id;
 * a mismatch stops the push before `PUT checksum`, so the image never becomes complete.
 * A tarball from stdin is spooled to a temp file first (random access to manifest, config
 * and layers); a gzip-compressed tarball is decompressed to a temp file.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { compressionOf, readArchive, type PlanImage, type PushPlan } from './archive-read.js';
import { LayerCheck } from './layer-check.js';
import type { Credentials } from './credentials.js';
import { humanBytes, humanRate, shortId } from './format.js';
import { header, readSmall, RegistryHttpError, serverMessageOf, startPush, type HttpClient, type Session } from './http.js';
import type { Progress } from './progress.js';
import { refString, type RepoRef } from './ref.js';

export interface PushOptions {
  /** A file path, or `-` for `stdin`. */
  source: string;
  stdin: Readable;
  ref: RepoRef;
  credentials: Credentials | null;
  client: HttpClient;
  progress: Progress;
  layout?: 'legacy' | 'current';
  image?: string;
}

export interface PushResult {
  ref: string;
  id: string;
  layout: PushPlan['layout'];
  configDigest: string | null;
  images: Array<{ id: string; size: number; uploaded: boolean }>;
}

async function readHead(file: string, n: number): Promise<Buffer> {
  const handle = await fsp.open(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await handle.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** The tarball as a plain tar file on disk: spooled from stdin, decompressed if gzip. */
async function localTarball(options: PushOptions, tmp: string): Promise<string> {
  let file = options.source;
  if (file === '-') {
    file = path.join(tmp, 'stdin.tar');
    options.progress.info('reading the image tarball from standard input');
    await pipeline(options.stdin, fs.createWriteStream(file));
  } else {
    await fsp.access(file, fs.constants.R_OK);
  }
  const kind = compressionOf(await readHead(file, 8));
  if (kind === 'gzip') {
    const plain = path.join(tmp, 'image.tar');
    await pipeline(fs.createReadStream(file), zlib.createGunzip(), fs.createWriteStream(plain));
    return plain;
  }
  if (kind !== 'none') throw new Error(`the tarball is ${kind}-compressed: decompress it first (gzip is read directly)`);
  return file;
}

export async function pushTarball(options: PushOptions): Promise<PushResult> {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'v1-registry-push-'));
  try {
    const file = await localTarball(options, tmp);
    const plan = await readArchive(file, { layout: options.layout, image: options.image });
    return await pushPlan(options, file, plan);
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

async function pushPlan(options: PushOptions, file: string, plan: PushPlan): Promise<PushResult> {
  const { client, ref, progress } = options;
  progress.info(`pushing ${plan.images.length} image(s) (${plan.layout} layout) to ${refString(ref)}`);
  const session = await startPush(client, ref, options.credentials, plan.images.map((i) => i.id));
  const checksums: Array<{ id: string; checksum: string }> = [];
  const results: PushResult['images'] = [];
  for (const image of plan.images) {
    const label = shortId(image.id);
    const probe = await client.open({ method: 'GET', url: session.imageUrl(image.id, 'json'), headers: session.registryAuth() });
    const probeBody = await readSmall(probe, session.imageUrl(image.id, 'json'));
    const status = probe.statusCode ?? 0;
    if (status === 200) {
      const checksum = header(probe.headers, 'x-docker-checksum-payload');
      if (checksum) checksums.push({ id: image.id, checksum });
      progress.end(label, 'already on the registry');
      results.push({ id: image.id, size: image.layer.size, uploaded: false });
      continue;
    }
    // 404: unknown; 400: left pending by an interrupted push. Both mean: upload it.
    if (status !== 404 && status !== 400) {
      throw new RegistryHttpError('GET', session.imageUrl(image.id, 'json'), status, serverMessageOf(probeBody, header(probe.headers, 'content-type')));
    }
    await session.registryCall('PUT', session.imageUrl(image.id, 'json'), [200], {
      headers: { 'Content-Type': 'application/json' },
      body: image.json,
    });
    const checksum = await uploadLayer(session, image, file, progress, label);
    await session.registryCall('PUT', session.imageUrl(image.id, 'checksum'), [200], {
      headers: { 'X-Docker-Checksum-Payload': checksum },
    });
    checksums.push({ id: image.id, checksum });
    results.push({ id: image.id, size: image.layer.size, uploaded: true });
  }
  await session.registryCall('PUT', session.repoUrl(`/tags/${encodeURIComponent(ref.tag)}`), [200], {
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(plan.topId),
  });
  await client.call(
    {
      method: 'PUT',
      url: `${ref.base}/v1/repositories/${ref.name}/images`,
      headers: { ...session.indexAuth(), 'X-Docker-Endpoints': session.endpoints, 'Content-Type': 'application/json' },
      body: JSON.stringify(checksums),
    },
    [200, 204],
  );
  return { ref: refString(ref), id: plan.topId, layout: plan.layout, configDigest: plan.configDigest, images: results };
}

/** Streams one layer from the tarball; returns its payload checksum. */
async function uploadLayer(session: Session, image: PlanImage, file: string, progress: Progress, label: string): Promise<string> {
  const { offset, size } = image.layer;
  const check = new LayerCheck(image);
  const started = Date.now();
  progress.begin(label, label, size);
  const tap = check.tap((chunk) => progress.advance(label, chunk.length));
  const source: Readable = size > 0 ? fs.createReadStream(file, { start: offset, end: offset + size - 1 }) : Readable.from([]);
  source.once('error', (err) => tap.destroy(err));
  tap.once('close', () => source.destroy());
  source.pipe(tap);
  const url = session.imageUrl(image.id, 'layer');
  const res = await session.client.open({
    method: 'PUT',
    url,
    headers: { ...session.registryAuth(), 'Content-Type': 'application/octet-stream' },
    body: tap,
    length: size,
  });
  const body = await readSmall(res, url);
  if (res.statusCode !== 200) {
    throw new RegistryHttpError('PUT', url, res.statusCode ?? 0, serverMessageOf(body, header(res.headers, 'content-type')));
  }
  const checksum = await check.finish();
  progress.end(label, `pushed ${humanBytes(size)} (${humanRate(size, Date.now() - started)})`);
  return checksum;
}
