/**
 * Request bodies. Layers are never read here: they stream straight to the blob store
 * (through `guardUploadBody`). Every request body is watched for idleness
 * (`upload_idle_timeout_seconds`, armed by server.ts with `watchRequestBody`).
 */
import type { IncomingMessage } from 'node:http';
import { finished, PassThrough, type Readable } from 'node:stream';
import type { Context, Next } from 'koa';
import { HttpMethodEnum, koaBody } from 'koa-body';
import { invalidInput, RegistryError } from '../domain/errors.js';

/** Reads a small body as exact bytes (image JSON must be kept byte-exact). */
export async function readRawBody(ctx: Context, limit: number): Promise<Buffer> {
  const declared = Number(ctx.get('Content-Length') || NaN);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > limit) throw tooLarge(limit);
      chunks.push(chunk);
    }
  } catch (err) {
    // A client that goes away (or is cut off for idling) mid-body is an input problem.
    if (isClientAbort(err)) throw invalidInput('Request body was interrupted');
    throw err;
  }
  return Buffer.concat(chunks, total);
}

export function isClientAbort(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || (err as Error)?.message === 'aborted';
}

// ── idle request bodies ─────────────────────────────────────────────────────────────
/** The idle timeout of each request (set by watchRequestBody). */
const idleTimeouts = new WeakMap<IncomingMessage, number>();
/** Requests whose body a route guards itself (guardUploadBody): the generic watchdog waits. */
const claimed = new WeakSet<IncomingMessage>();

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function tick(ms: number): number {
  return Math.min(1000, Math.max(50, Math.floor(ms / 4)));
}

/**
 * Watches a request's body: when the client sends no byte for `ms` while the server is
 * waiting for one (nothing read but unconsumed, the request not complete), the connection
 * is destroyed, whoever reads the body sees it interrupted and any temp file it wrote is
 * removed by its owner. A server that is slow to read (backpressure) never counts as the
 * client idling. Requests without a body are not watched.
 */
export function watchRequestBody(req: IncomingMessage, ms: number): void {
  idleTimeouts.set(req, ms);
  if (!hasBody(req)) return;
  const socket = req.socket;
  let seen = socket.bytesRead;
  let last = Date.now();
  const timer = setInterval(() => {
    if (req.complete || socket.destroyed) {
      clearInterval(timer);
      return;
    }
    const now = Date.now();
    if (socket.bytesRead !== seen || claimed.has(req) || req.readableLength > 0) {
      seen = socket.bytesRead;
      last = now;
      return;
    }
    if (now - last >= ms) {
      clearInterval(timer);
      socket.destroy();
    }
  }, tick(ms));
  timer.unref();
}

export interface GuardedBody {
  /** The body to read instead of the request itself. */
  readonly stream: Readable;
  /** True once the client idled too long: `stream` then failed with REQUEST_TIMEOUT (408). */
  readonly timedOut: boolean;
  /** Stops watching; a body left unread is drained (as Node does for unread bodies). */
  dispose(): void;
}

/**
 * A layer upload's body, guarded against a client that stops sending: after the request's
 * idle timeout without a byte (while the server waits for one), `stream` fails with
 * REQUEST_TIMEOUT, so the upload is aborted and answered 408 (the request itself is not
 * destroyed, so the answer can still be sent; send it with `Connection: close`). A client
 * that goes away makes `stream` fail with its error (an interrupted upload). Reading
 * `stream` never destroys the request, so errors found mid-stream (disk full) can be
 * answered too.
 */
export function guardUploadBody(req: IncomingMessage): GuardedBody {
  const ms = idleTimeouts.get(req);
  if (ms === undefined) return { stream: req, timedOut: false, dispose() {} };
  claimed.add(req);
  const out = new PassThrough({ highWaterMark: 256 * 1024 });
  let timedOut = false;
  let last = Date.now();
  const onData = () => {
    last = Date.now();
  };
  req.on('data', onData);
  req.pipe(out);
  const stopWatchingEnd = finished(req, (err) => {
    if (err && !out.destroyed) out.destroy(err);
  });
  const timer = setInterval(() => {
    if (req.complete || out.destroyed) {
      clearInterval(timer);
      return;
    }
    const now = Date.now();
    // The server not reading fast enough (backpressure) is not the client idling.
    if (req.isPaused() || out.writableNeedDrain || req.readableLength > 0) {
      last = now;
      return;
    }
    if (now - last >= ms) {
      clearInterval(timer);
      timedOut = true;
      req.unpipe(out);
      out.destroy(new RegistryError('REQUEST_TIMEOUT', `No data received for ${Math.round(ms / 1000)} s; upload aborted`));
    }
  }, tick(ms));
  timer.unref();
  return {
    stream: out,
    get timedOut() {
      return timedOut;
    },
    dispose() {
      clearInterval(timer);
      req.off('data', onData);
      req.unpipe(out);
      stopWatchingEnd();
      claimed.delete(req);
      if (!req.complete && !timedOut && !req.destroyed) req.resume();
    },
  };
}

function tooLarge(limit: number): RegistryError {
  return new RegistryError('PAYLOAD_TOO_LARGE', `Request body larger than ${limit} bytes`);
}

/**
 * JSON bodies for the small v1 routes (tags, properties, image lists, users). They carry
 * JSON whatever Content-Type the client sent (curl -d sends a form type), and a bare JSON
 * string is valid (a tag's image id), so parsing is forced and non-strict.
 */
export function jsonBody(limit: number) {
  const parse = koaBody({
    json: true,
    jsonStrict: false,
    jsonLimit: limit,
    urlencoded: false,
    text: false,
    multipart: false,
    parsedMethods: [HttpMethodEnum.POST, HttpMethodEnum.PUT, HttpMethodEnum.PATCH, HttpMethodEnum.DELETE],
  });
  return async (ctx: Context, next: Next) => {
    ctx.request.headers['content-type'] = 'application/json';
    return parse(ctx, next);
  };
}
