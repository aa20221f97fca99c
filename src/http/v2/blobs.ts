/**
 * Blobs and uploads of the Registry API v2 (the HTTP edge: parameters, headers, bodies).
 * Bytes stream from the request into BlobIngest (services/blob-ingest.ts); a client that
 * stops sending for upload_idle_timeout_seconds gets 408 and its chunk is dropped.
 */
import type { Context } from 'koa';
import { parseDigest } from '../../domain/digest.js';
import { RegistryError } from '../../domain/errors.js';
import { isV2Name, parseV2Name } from '../../domain/names.js';
import type { ChunkRange } from '../../services/uploads.js';
import { principalOf } from '../shared/authenticate.js';
import { guardUploadBody, type GuardedBody } from '../shared/body.js';
import type { RegistryState } from '../shared/middleware.js';
import { serveBlob } from '../shared/serve-blob.js';
import { authorizeV2 } from './auth.js';
import type { V2Deps, V2Routes } from './face.js';

export function addBlobRoutes(routes: V2Routes, deps: V2Deps): void {
  const { access, blobs, uploads } = deps;

  // ── blobs ─────────────────────────────────────────────────────────────────────────────
  routes.add('blobs/:digest', 'GET', async (ctx, { name, rawName, ref }) => {
    await authorizeV2(ctx, access, name, rawName, 'read');
    const blob = await blobs.stat(name, parseDigest(ref));
    ctx.res.setHeader('Docker-Content-Digest', blob.digest);
    await serveBlob(ctx, blob, () => blobs.open(blob), { send: deps.send, blobUrl: deps.blobUrl });
  });

  routes.add('blobs/:digest', 'DELETE', async (ctx, { name, rawName, ref }) => {
    await authorizeV2(ctx, access, name, rawName, 'untag');
    const digest = parseDigest(ref);
    await blobs.unlink(name, digest);
    ctx.res.setHeader('Docker-Content-Digest', digest);
    accepted(ctx, 202);
  });

  // ── uploads ───────────────────────────────────────────────────────────────────────────
  routes.add('blobs/uploads/', 'POST', async (ctx, { name, rawName }) => {
    await authorizeV2(ctx, access, name, rawName, 'write');
    const q = new URLSearchParams(ctx.querystring);
    const mount = q.get('mount');
    const from = q.get('from');
    if (mount && from && isV2Name(from)) {
      // Mounted when the caller may read `from` and it holds the blob; otherwise a normal
      // upload starts (202), as the spec allows.
      const source = parseV2Name(from);
      const digest = parseDigest(mount);
      const readable = await access.authorizeRepo(principalOf(ctx), source, 'read').then(() => true, () => false);
      const blob = readable ? await blobs.mount(name, source, digest) : null;
      if (blob) return created(ctx, rawName, blob.digest);
    }
    const digest = q.get('digest');
    if (digest !== null) {
      const body = guardUploadBody(ctx.req);
      const blob = await withBody(ctx, body, () => uploads.monolithic(name, digest, body.stream, body.signal));
      (ctx.state as RegistryState).bytesIn = blob.size;
      return created(ctx, rawName, blob.digest);
    }
    const record = await uploads.start(name);
    uploadStatus(ctx, rawName, record.id, record.offset);
    accepted(ctx, 202);
  });

  routes.add('blobs/uploads/:id', 'GET', async (ctx, { name, rawName, ref }) => {
    await authorizeV2(ctx, access, name, rawName, 'write');
    const record = await uploads.get(name, ref);
    uploadStatus(ctx, rawName, record.id, record.offset);
    accepted(ctx, 204);
  });

  routes.add('blobs/uploads/:id', 'PATCH', async (ctx, { name, rawName, ref }) => {
    await authorizeV2(ctx, access, name, rawName, 'write');
    const record = await uploads.get(name, ref);
    const range = contentRange(ctx);
    const body = guardUploadBody(ctx.req);
    const before = record.offset;
    const next = await withBody(ctx, body, () => uploads.append(name, ref, body.stream, { range, length: contentLength(ctx), signal: body.signal }), rawName, record);
    (ctx.state as RegistryState).bytesIn = next.offset - before;
    uploadStatus(ctx, rawName, next.id, next.offset);
    accepted(ctx, 202);
  });

  routes.add('blobs/uploads/:id', 'PUT', async (ctx, { name, rawName, ref }) => {
    await authorizeV2(ctx, access, name, rawName, 'write');
    const record = await uploads.get(name, ref);
    const digest = new URLSearchParams(ctx.querystring).get('digest');
    const range = contentRange(ctx);
    const hasBody = (ctx.req.headers['content-length'] !== undefined && ctx.req.headers['content-length'] !== '0') || ctx.req.headers['transfer-encoding'] !== undefined;
    const body = guardUploadBody(ctx.req);
    const blob = await withBody(
      ctx,
      body,
      () => uploads.finish(name, ref, digest, hasBody ? body.stream : null, { range, length: contentLength(ctx), signal: body.signal }),
      rawName,
      record,
    );
    if (hasBody) (ctx.state as RegistryState).bytesIn = blob.size - record.offset;
    created(ctx, rawName, blob.digest);
  });

  routes.add('blobs/uploads/:id', 'DELETE', async (ctx, { name, rawName, ref }) => {
    await authorizeV2(ctx, access, name, rawName, 'write');
    await uploads.cancel(name, ref);
    accepted(ctx, 204);
  });
}

/**
 * Runs an upload that reads `body`; an idle client gets its 408 on a closing connection.
 * A 416 names where the upload stands (Location and Range), so the client can go on.
 */
async function withBody<T>(ctx: Context, body: GuardedBody, fn: () => Promise<T>, rawName?: string, record?: { id: string }): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (body.timedOut) ctx.res.setHeader('Connection', 'close');
    if (rawName && record && err instanceof RegistryError && err.code === 'RANGE_NOT_SATISFIABLE') {
      ctx.res.setHeader('Location', uploadUrl(rawName, record.id));
      ctx.res.setHeader('Docker-Upload-UUID', record.id);
    }
    throw err;
  } finally {
    body.dispose();
  }
}

/** `Content-Range: <start>-<end>` of a chunk (also `bytes <start>-<end>[/<total>]` and `bytes=…`). */
function contentRange(ctx: Context): ChunkRange | undefined {
  const header = ctx.get('Content-Range');
  if (!header) return undefined;
  const m = /^(?:bytes[ =])?(\d{1,15})-(\d{1,15})(?:\/(?:\d{1,15}|\*))?$/.exec(header.trim());
  if (!m) throw new RegistryError('RANGE_NOT_SATISFIABLE', `Invalid Content-Range ${JSON.stringify(header.slice(0, 60))}: expected <start>-<end>`);
  return { start: Number(m[1]), end: Number(m[2]) };
}

function contentLength(ctx: Context): number | undefined {
  const value = ctx.req.headers['content-length'];
  return value !== undefined && /^\d{1,15}$/.test(value) ? Number(value) : undefined;
}

function uploadUrl(rawName: string, id: string): string {
  return `/v2/${rawName}/blobs/uploads/${id}`;
}

/** Location, Docker-Upload-UUID and Range of an upload in progress. */
function uploadStatus(ctx: Context, rawName: string, id: string, offset: number): void {
  const res = ctx.res;
  res.setHeader('Location', uploadUrl(rawName, id));
  res.setHeader('Docker-Upload-UUID', id);
  res.setHeader('Range', `0-${Math.max(0, offset - 1)}`);
}

/** 201 for a blob now in the repository. */
function created(ctx: Context, rawName: string, digest: string): void {
  ctx.res.setHeader('Location', `/v2/${rawName}/blobs/${digest}`);
  ctx.res.setHeader('Docker-Content-Digest', digest);
  accepted(ctx, 201);
}

/** An empty answer with `status` (no body, no Content-Type: as Distribution answers). */
export function accepted(ctx: Context, status: number): void {
  ctx.status = status;
  ctx.respond = false;
  const res = ctx.res;
  res.statusCode = status;
  if (status === 204) res.removeHeader('Content-Length');
  else res.setHeader('Content-Length', '0');
  res.end();
}
