/**
 * Serves a stored blob (a v1 layer, a v2 blob): ETag, If-None-Match (304), Range with
 * If-Range (206/416), HEAD without opening anything, then the bytes with sendfile or
 * pooled buffers (send-blob.ts). One implementation for every face.
 */
import type { Context } from 'koa';
import { RegistryError } from '../../domain/errors.js';
import type { BlobReader } from '../../store/blobs/blob-store.js';
import type { RegistryState } from './middleware.js';
import { parseRange } from './range.js';
import { IMMUTABLE, noneMatch } from './respond.js';
import { sendBlob, type SendOptions } from './send-blob.js';

export interface ServedBlob {
  digest: string;
  size: number;
}

export interface ServeOptions {
  send: SendOptions;
  /**
   * A presigned URL of the blob, when the blob store hands them out (s3_redirect): a GET is
   * then redirected (307) and the object store sends the bytes and answers a Range itself.
   */
  blobUrl?: (digest: string, expiresInSeconds: number) => Promise<string>;
}

/** How long a redirect's presigned URL stays valid. */
export const REDIRECT_URL_SECONDS = 600;

/**
 * Answers a GET or HEAD of `blob`; `open` is called only when bytes are to be sent. A range
 * outside the blob is RANGE_NOT_SATISFIABLE (details.size: the face sends `Content-Range:
 * bytes *\/size`). Once the head is out, a failure can only cut the connection.
 */
export async function serveBlob(ctx: Context, blob: ServedBlob, open: () => Promise<BlobReader>, options: ServeOptions): Promise<void> {
  const etag = `"${blob.digest}"`;
  const res = ctx.res;
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('ETag', etag);
  res.setHeader('Cache-Control', IMMUTABLE);
  res.setHeader('Content-Type', 'application/octet-stream');
  if (noneMatch(ctx.get('If-None-Match'), etag)) {
    ctx.status = 304;
    return;
  }
  if (options.blobUrl && ctx.method === 'GET') {
    // The URL expires, so the redirect is never cached.
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Location', await options.blobUrl(blob.digest, REDIRECT_URL_SECONDS));
    ctx.status = 307;
    return;
  }
  const ifRange = ctx.get('If-Range');
  const rangeHeader = ifRange && ifRange !== etag ? undefined : ctx.get('Range') || undefined;
  const range = parseRange(rangeHeader, blob.size);
  if (range.kind === 'unsatisfiable') {
    throw new RegistryError('RANGE_NOT_SATISFIABLE', 'Requested range not satisfiable', { size: blob.size });
  }
  if (range.kind === 'partial') {
    const { start, end } = range.range;
    ctx.status = 206;
    res.setHeader('Content-Range', `bytes ${start}-${end}/${blob.size}`);
    ctx.length = end - start + 1;
  } else {
    ctx.status = 200;
    ctx.length = blob.size;
  }
  if (ctx.method === 'HEAD' || ctx.length === 0) {
    if (ctx.length === 0) ctx.body = Buffer.alloc(0);
    return; // HEAD opens no stream
  }
  const reader = await open();
  // The bytes go out from here, not through Koa: headers are set, the status is known.
  ctx.respond = false;
  res.statusCode = ctx.status;
  const start = range.kind === 'partial' ? range.range.start : 0;
  try {
    await sendBlob(reader, start, ctx.length, res, ctx.state as RegistryState, options.send);
  } catch (err) {
    // Headers may be out already: the only honest answer left is to cut the connection.
    res.destroy();
    if (!res.writableEnded) (ctx.state as RegistryState).log?.debug({ err }, 'blob download ended early');
  } finally {
    await reader.close();
  }
}
