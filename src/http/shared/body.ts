/**
 * Request bodies. Layers are never read here: they stream straight to the blob store
 * (through `guardUploadBody`). Every request body is watched for idleness
 * (`upload_idle_timeout_seconds`, armed by server.ts with `watchRequestBody`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { finished, type Readable } from 'node:stream';
import type { Context, Middleware, Next } from 'koa';
import { invalidInput, RegistryError } from '../../domain/errors.js';

/**
 * Reads a small body as exact bytes (image JSON must be kept byte-exact). Over `limit`, it
 * stops reading (the rest is left to settleUnreadBody) and fails with PAYLOAD_TOO_LARGE.
 * The request is never destroyed here, so the answer reaches the client.
 */
export async function readRawBody(ctx: Context, limit: number): Promise<Buffer> {
  const declared = Number(ctx.get('Content-Length') || NaN);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const req = ctx.req;
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let settled = false;
    const settle = (err: unknown) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      stop();
      if (err === null) resolve(Buffer.concat(chunks, total));
      // A client that goes away (or is cut off for idling) mid-body is an input problem.
      else reject(isClientAbort(err) ? invalidInput('Request body was interrupted') : err);
    };
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total > limit) {
        req.pause();
        settle(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const stop = finished(req, { writable: false }, (err) => settle(err ?? null));
    req.on('data', onData);
  });
}

/** The parsed JSON value of `body`, or undefined when it is not UTF-8 JSON. */
export function jsonValueOf(body: Buffer): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    return undefined;
  }
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
 * Calls `onIdle` once when the client has sent no byte of `req`'s body for `ms` while the
 * server was waiting for one; returns a function that stops watching. Bytes read but not
 * consumed yet, or `serverHolds()` (backpressure, another watcher in charge), mean the
 * server is the one holding the body up: the client is not idling. A tick that comes late
 * (the event loop was busy) restarts the count: bytes that arrived meanwhile may still wait
 * in the socket to be read after the timers, and a busy server is not an idle client.
 */
function watchIdle(req: IncomingMessage, ms: number, serverHolds: () => boolean, onIdle: () => void): () => void {
  const socket = req.socket;
  const interval = tick(ms);
  let seen = socket.bytesRead;
  let last = Date.now();
  let lastTick = last;
  const timer = setInterval(() => {
    if (req.complete || req.destroyed || socket.destroyed) {
      clearInterval(timer);
      return;
    }
    const now = Date.now();
    if (now - lastTick > 2 * interval || socket.bytesRead !== seen || req.readableLength > 0 || serverHolds()) {
      seen = socket.bytesRead;
      last = now;
    }
    lastTick = now;
    if (now - last >= ms) {
      clearInterval(timer);
      onIdle();
    }
  }, interval);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Watches a request's body: when the client sends no byte for `ms` while the server is
 * waiting for one (nothing read but unconsumed, the request not complete), the connection
 * is destroyed, whoever reads the body sees it interrupted and any temp file it wrote is
 * removed by its owner. A server that is slow to read (backpressure) never counts as the
 * client idling. Requests without a body are not watched.
 */
export function watchRequestBody(req: IncomingMessage, ms: number): void {
  if (!hasBody(req)) return;
  idleTimeouts.set(req, ms);
  watchIdle(req, ms, () => claimed.has(req), () => req.socket.destroy());
}

export interface GuardedBody {
  /** The body to read: the request itself (no extra stream per chunk). */
  readonly stream: Readable;
  /**
   * Aborted (reason: a REQUEST_TIMEOUT error, 408) once the client idled too long: whoever
   * reads `stream` must then stop and fail with the reason.
   */
  readonly signal: AbortSignal | undefined;
  /** True once the client idled too long (`signal` aborted). */
  readonly timedOut: boolean;
  /** Stops watching; a body left unread is drained (as Node does for unread bodies). */
  dispose(): void;
}

/**
 * A layer upload's body, guarded against a client that stops sending: after the request's
 * idle timeout without a byte (while the server waits for one), `signal` aborts with
 * REQUEST_TIMEOUT, so the reader aborts the upload and it is answered 408 (the request
 * itself is not destroyed, so the answer can still be sent; send it with
 * `Connection: close`). A client that goes away makes `stream` fail with its error (an
 * interrupted upload). The reader must never destroy the request, so errors found
 * mid-stream (disk full) can be answered too.
 *
 * Idleness is read off the socket (`bytesRead`) by the timer: nothing is added per chunk.
 * (It used to pipe the request through a PassThrough: ~10% of an upload's CPU.)
 */
export function guardUploadBody(req: IncomingMessage): GuardedBody {
  const ms = idleTimeouts.get(req);
  if (ms === undefined) return { stream: req, signal: undefined, timedOut: false, dispose() {} };
  claimed.add(req);
  const controller = new AbortController();
  // Paused: the server is not reading fast enough (backpressure), not the client idling.
  const stop = watchIdle(req, ms, () => req.isPaused(), () =>
    controller.abort(new RegistryError('REQUEST_TIMEOUT', `No data received for ${Math.round(ms / 1000)} s; upload aborted`)),
  );
  return {
    stream: req,
    signal: controller.signal,
    get timedOut() {
      return controller.signal.aborted;
    },
    dispose() {
      stop();
      claimed.delete(req);
      if (!req.complete && !controller.signal.aborted && !req.destroyed) req.resume();
    },
  };
}

// ── early answers ──────────────────────────────────────────────────────────────────
/**
 * A body of at most this many bytes (by Content-Length) is read and dropped after an early
 * answer, so that the connection can serve the client's next request.
 */
export const DRAIN_LIMIT = 16 * 1024 * 1024;

/**
 * Called before an answer that did not read the whole request body (a refusal: 401, 403,
 * 404, 409, 413 …), so that a keep-alive client can send its next request on the same
 * connection. Left alone, a body a reader started and stopped (a JSON body over the limit)
 * stays paused in the socket: the next request on that connection is never read, and the
 * connection is reset once the keep-alive timeout passes.
 *
 * - A body of known length up to DRAIN_LIMIT is read and dropped; the connection stays open.
 * - Any other body (chunked, or longer) is answered with `Connection: close`: the answer
 *   goes out, and the lingering close (linger.ts) reads and drops what still arrives for a
 *   while, so the client reads its answer rather than a reset.
 */
export function settleUnreadBody(req: IncomingMessage, res: ServerResponse): void {
  if (req.complete || req.destroyed || !hasBody(req)) return;
  const length = Number(req.headers['content-length']);
  if (req.headers['transfer-encoding'] === undefined && Number.isFinite(length) && length <= DRAIN_LIMIT) {
    req.resume();
    return;
  }
  if (!res.headersSent) res.setHeader('Connection', 'close');
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
  // koa-body (and zod, which it validates its options with: ~13 MiB of RSS together) is
  // loaded on the first JSON body, not at start-up: a registry that only serves layers
  // never pays for it.
  let parse: Promise<Middleware> | null = null;
  const load = async (): Promise<Middleware> => {
    const { HttpMethodEnum, koaBody } = await import('koa-body');
    return koaBody({
      json: true,
      jsonStrict: false,
      jsonLimit: limit,
      urlencoded: false,
      text: false,
      multipart: false,
      parsedMethods: [HttpMethodEnum.POST, HttpMethodEnum.PUT, HttpMethodEnum.PATCH, HttpMethodEnum.DELETE],
    });
  };
  return async (ctx: Context, next: Next) => {
    // Refused before reading, here rather than by co-body: it truncates Content-Length to
    // 32 bits (~~len), so a huge announced length slipped past its limit and the request
    // then waited for bytes that never came.
    const declared = Number(ctx.get('Content-Length') || NaN);
    if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
    ctx.request.headers['content-type'] = 'application/json';
    parse ??= load();
    return (await parse)(ctx, next);
  };
}

/**
 * An `application/x-www-form-urlencoded` body (HTML forms, OAuth requests) as its fields,
 * each given at most once (RFC 6749 §3.1: a repeated parameter is INVALID_INPUT). The body
 * is read (at most `limit` bytes) whatever its type, so the connection stays usable; null
 * when it is not a form.
 */
export async function readForm(ctx: Context, limit: number): Promise<Record<string, string> | null> {
  const raw = await readRawBody(ctx, limit);
  if (!ctx.is('application/x-www-form-urlencoded')) return null;
  const fields: Record<string, string> = Object.create(null);
  for (const [name, value] of new URLSearchParams(raw.toString('utf8'))) {
    if (name in fields) throw invalidInput(`Parameter ${name} is given more than once`);
    fields[name] = value;
  }
  return fields;
}
