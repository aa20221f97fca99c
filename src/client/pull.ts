/**
 * `registry pull REF -o FILE|-`: a v1 image into a tarball `docker load` accepts.
 *
 *   GET {index}/v1/repositories/ns/repo/images  (X-Docker-Token: true) → read token, endpoints
 *   GET {registry}/v1/repositories/ns/repo/tags/TAG → id
 *   GET {registry}/v1/images/ID/ancestry
 *   per image, base first: GET json (X-Docker-Size, X-Docker-Checksum-Payload), GET layer
 *
 * The tarball is written as the layers arrive (archive-write.ts): each plain layer goes
 * straight into the output while its sha256 (the diff_id) and payload checksum are
 * computed; a gzip layer (or one of unknown size) is decompressed into a temp file first,
 * since a tar header needs the size. A download that breaks is resumed with
 * `Range: bytes=N-` (a server that ignores the range answers 200 and the first N bytes are
 * skipped). The payload checksum and X-Docker-Size are verified when the server sent them.
 */
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { isImageId } from '../domain/names.js';
import { compressionOf } from './archive-read.js';
import { DockerArchiveWriter } from './archive-write.js';
import { IntegrityError } from './errors.js';
import type { Credentials } from './credentials.js';
import { humanBytes, humanRate, shortId } from './format.js';
import { header, readSmall, RegistryHttpError, serverMessageOf, startPull, type HttpClient, type Session } from './http.js';
import type { Progress } from './progress.js';
import { refString, type RepoRef } from './ref.js';
import { recoverConfig, type PulledMeta } from '../domain/v1-ids.js';

export interface PullOptions {
  ref: RepoRef;
  credentials: Credentials | null;
  client: HttpClient;
  progress: Progress;
  out: Writable;
  /** Resume attempts per layer after a broken download (default 5). */
  retries?: number;
  retryDelayMs?: number;
}

export interface PullResult {
  ref: string;
  id: string;
  /** sha256 of the config written (manifest.json Config): what docker load will call the image. */
  configDigest: string;
  /** True when the config is the one originally pushed, byte for byte. */
  exactConfig: boolean;
  layers: Array<{ id: string; size: number; diffId: string; resumed: number }>;
}

/** An error writing the output: never retried. */
class OutputError extends Error {
  override name = 'OutputError';
}

async function toOutput<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw err instanceof OutputError ? err : new OutputError(`writing the tarball: ${(err as Error).message}`);
  }
}

function retryable(err: unknown): boolean {
  return !(err instanceof RegistryHttpError || err instanceof IntegrityError || err instanceof OutputError);
}

export async function pullImage(options: PullOptions): Promise<PullResult> {
  const { client, ref, progress } = options;
  const { session } = await startPull(client, ref, options.credentials);
  const id = await session.tagId(ref.tag);
  const ancestry = await session.getJson<unknown>(session.imageUrl(id, 'ancestry'), `ancestry of ${id}`);
  if (!Array.isArray(ancestry) || ancestry.length === 0 || ancestry[0] !== id || !ancestry.every(isImageId)) {
    throw new IntegrityError(`the ancestry of ${id} is not a list of image ids starting with it`);
  }
  const chain = [...(ancestry as string[])].reverse();
  progress.info(`pulling ${refString(ref)} (${shortId(id)}, ${chain.length} layer(s))`);
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'v1-registry-pull-'));
  try {
    const writer = new DockerArchiveWriter(options.out);
    const metas: PulledMeta[] = [];
    const layers: PullResult['layers'] = [];
    for (const imageId of chain) {
      const jsonRes = await session.registryCall('GET', session.imageUrl(imageId, 'json'), [200]);
      const sizeHeader = header(jsonRes.headers, 'x-docker-size');
      const size = sizeHeader !== undefined && /^\d+$/.test(sizeHeader) ? Number(sizeHeader) : null;
      const checksum = header(jsonRes.headers, 'x-docker-checksum-payload');
      await toOutput(() => writer.imageMeta(imageId, jsonRes.body));
      const layer = await downloadLayer(session, imageId, jsonRes.body, size, checksum, writer, tmp, options);
      metas.push({ id: imageId, json: jsonRes.body });
      layers.push({ id: imageId, ...layer });
    }
    const config = recoverConfig(metas, layers.map((l) => l.diffId));
    const configDigest = await toOutput(() => writer.finish({ config: config.bytes, repoTag: refString(ref), repoName: ref.display, tag: ref.tag, layerIds: chain }));
    return { ref: refString(ref), id, configDigest, exactConfig: config.exact, layers };
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

/** Decompresses (or just copies) into a temp file, hashing what it writes. */
class Spool {
  private readonly input = new PassThrough();
  private readonly done: Promise<void>;
  size = 0;

  constructor(
    readonly file: string,
    gunzip: boolean,
    hash: Hash,
  ) {
    const count = new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        hash.update(chunk);
        this.size += chunk.length;
        cb(null, chunk);
      },
    });
    const out = fs.createWriteStream(file);
    this.done = gunzip ? pipeline(this.input, zlib.createGunzip(), count, out) : pipeline(this.input, count, out);
    this.done.catch(() => undefined); // observed in write()/finish()
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.input.write(chunk)) return;
    await Promise.race([new Promise<void>((resolve) => this.input.once('drain', resolve)), this.done]);
  }

  async finish(): Promise<number> {
    this.input.end();
    await this.done;
    return this.size;
  }
}

async function downloadLayer(
  session: Session,
  id: string,
  json: Buffer,
  announced: number | null,
  checksum: string | undefined,
  writer: DockerArchiveWriter,
  tmp: string,
  options: PullOptions,
): Promise<{ size: number; diffId: string; resumed: number }> {
  const { progress } = options;
  const retries = options.retries ?? 5;
  const delay = options.retryDelayMs ?? 500;
  const url = session.imageUrl(id, 'layer');
  const label = shortId(id);
  const payload = createHash('sha256').update(json).update('\n');
  const diff = createHash('sha256');
  let total: number | null = announced;
  let received = 0;
  let head = Buffer.alloc(0);
  let mode: 'direct' | 'spool' | null = null;
  let spool: Spool | null = null;
  let failures = 0;
  const started = Date.now();

  const forward = async (chunk: Buffer): Promise<void> => {
    payload.update(chunk);
    if (mode === 'direct') {
      diff.update(chunk);
      await toOutput(() => writer.layerWrite(chunk));
    } else {
      await (spool as Spool).write(chunk).catch((err: Error) => {
        throw new IntegrityError(`layer ${id}: ${err.message}`);
      });
    }
  };
  /** Chooses direct or spool once the first bytes (the compression magic) are known. */
  const decide = async (final: boolean): Promise<void> => {
    if (mode || (head.length < 8 && !final)) return;
    const gzip = compressionOf(head) === 'gzip';
    if (!gzip && total !== null) {
      mode = 'direct';
      await toOutput(() => writer.layerBegin(id, total as number));
    } else {
      mode = 'spool';
      spool = new Spool(path.join(tmp, `${id}.tar`), gzip, diff);
    }
    const pending = head;
    head = Buffer.alloc(0);
    if (pending.length) await forward(pending);
  };

  progress.begin(label, label, total);
  for (;;) {
    try {
      const headers: Record<string, string> = { ...session.registryAuth() };
      if (received > 0) headers.Range = `bytes=${received}-`;
      const res = await session.client.open({ method: 'GET', url, headers });
      const status = res.statusCode ?? 0;
      let skip = 0;
      if (status === 200) {
        const len = header(res.headers, 'content-length');
        if (len !== undefined) {
          if (total === null) total = Number(len);
          else if (Number(len) !== total) {
            res.resume();
            throw new IntegrityError(`layer ${id}: the registry announced ${total} bytes (X-Docker-Size) but sends ${len}`);
          }
        }
        skip = received; // a first request, or a server that ignored the Range
      } else if (status === 206 && received > 0) {
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(res.headers, 'content-range') ?? '');
        if (!m || Number(m[1]) !== received) {
          res.resume();
          throw new IntegrityError(`layer ${id}: asked for bytes ${received}-, got Content-Range ${header(res.headers, 'content-range')}`);
        }
      } else {
        const body = await readSmall(res, url);
        throw new RegistryHttpError('GET', url, status, serverMessageOf(body, header(res.headers, 'content-type')));
      }
      for await (const piece of res) {
        let chunk = piece as Buffer;
        if (skip > 0) {
          const n = Math.min(skip, chunk.length);
          skip -= n;
          chunk = chunk.subarray(n);
          if (chunk.length === 0) continue;
        }
        received += chunk.length;
        if (total !== null && received > total) throw new IntegrityError(`layer ${id}: more than the ${total} bytes announced`);
        progress.advance(label, chunk.length);
        if (mode) await forward(chunk);
        else {
          head = Buffer.concat([head, chunk]);
          await decide(false);
        }
      }
      if (total !== null && received < total) throw new Error(`connection closed after ${received} of ${total} bytes`);
      break;
    } catch (err) {
      if (!retryable(err) || failures >= retries) throw err;
      failures++;
      progress.info(`${label}: download interrupted after ${humanBytes(received)} (${(err as Error).message}); resuming (${failures}/${retries})`);
      await new Promise((r) => setTimeout(r, delay * failures));
    }
  }
  await decide(true);
  const got = `sha256:${payload.digest('hex')}`;
  if (checksum && /^sha256:[a-f0-9]{64}$/.test(checksum) && got !== checksum) {
    throw new IntegrityError(`layer ${id}: payload checksum ${got} does not match the registry's ${checksum}`);
  }
  let size: number;
  if (mode === 'direct') {
    await toOutput(() => writer.layerEnd());
    size = received;
  } else {
    const s = spool as unknown as Spool;
    size = await s.finish().catch((err: Error) => {
      throw new IntegrityError(`layer ${id}: ${err.message}`);
    });
    await toOutput(() => writer.layerFromFile(id, s.file, size));
    await fsp.rm(s.file, { force: true });
  }
  progress.end(label, `pulled ${humanBytes(received)} (${humanRate(received, Date.now() - started)})${failures ? `, resumed ${failures}×` : ''}`);
  return { size, diffId: `sha256:${diff.digest('hex')}`, resumed: failures };
}
