/**
 * The test double's first middleware (it runs before everything else, routing included):
 * records the request (requests.ts), then applies the first fault rule that matches it
 * (faults.ts): waits, drops the connection, answers instead of the route, or cuts the
 * answer off after some body bytes.
 */
import type { ServerResponse } from 'node:http';
import type { Context, Middleware, Next } from 'koa';
import { bodyBytesSent, type RegistryState } from '../http/shared/middleware.js';
import { watchBody } from '../http/shared/send-blob.js';
import type { Fault, Faults } from './faults.js';
import type { RecordedRequest, RecordedRequests } from './requests.js';

/** What the faults tell the request record about a request. */
interface FaultOutcome {
  /** A rule applied to it. */
  applied?: boolean;
  /** Body bytes sent before a `mid-body` cut, once it happened. */
  cutAfter?: number;
}

/** `requests`: where requests are recorded (null: nowhere). */
export function doubleMiddleware(faults: Faults, requests: RecordedRequests | null): Middleware {
  return (ctx, next) => {
    const outcome: FaultOutcome = {};
    if (requests) record(requests, ctx, outcome);
    const fault = faults.take(ctx.method, ctx.path);
    if (!fault) return next();
    outcome.applied = true;
    return applyFault(fault, ctx, next, outcome);
  };
}

/**
 * Applies `fault` to the request: waits, drops, answers or lets it through to `next`
 * (routing), as the rule says. `outcome` learns where a mid-body cut happened.
 */
async function applyFault(fault: Fault, ctx: Context, next: Next, outcome: FaultOutcome): Promise<void> {
  if (fault.delayMs && !(await delay(ctx.res, fault.delayMs))) return;
  if (fault.drop === 'before-headers') {
    ctx.respond = false;
    ctx.req.socket.destroy();
    return;
  }
  for (const [name, value] of Object.entries(fault.headers ?? {})) ctx.res.setHeader(name, value);
  if (fault.drop === 'mid-body') cutAfter(ctx.res, fault.afterBytes ?? 0, outcome);
  if (fault.status === undefined) return next();
  const body = fault.body ?? defaultBody(ctx.path, fault.status);
  const given = ctx.res.getHeader('Content-Type');
  if (typeof body === 'string') {
    ctx.body = body;
    ctx.type = (given as string | undefined) ?? 'text/plain; charset=utf-8';
  } else if (body instanceof Uint8Array) {
    ctx.body = Buffer.from(body);
    ctx.type = (given as string | undefined) ?? 'application/octet-stream';
  } else {
    ctx.body = Buffer.from(JSON.stringify(body));
    ctx.type = (given as string | undefined) ?? 'application/json';
  }
  ctx.status = fault.status;
}

/** Waits `ms`; false when the client went away meanwhile. Holds no timer past the connection. */
function delay(res: ServerResponse, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      res.off('close', gone);
      resolve(!res.destroyed);
    }, ms);
    const gone = () => {
      clearTimeout(timer);
      resolve(false);
    };
    res.once('close', gone);
  });
}

const HUB = /^\/v2\/(users|user|repositories)(\/|$)/;
const V2_CODES: Record<number, string> = { 401: 'UNAUTHORIZED', 403: 'DENIED', 404: 'NAME_UNKNOWN', 429: 'TOOMANYREQUESTS', 503: 'UNAVAILABLE' };

/** A JSON error in the shape of the face the path belongs to. */
function defaultBody(path: string, status: number): object {
  const message = `Injected fault (HTTP ${status})`;
  if (HUB.test(path)) return { detail: message, message };
  if (path === '/v2' || path.startsWith('/v2/')) return { errors: [{ code: V2_CODES[status] ?? 'UNKNOWN', message, detail: null }] };
  return { error: message };
}

type WriteCallback = (err?: Error | null) => void;

/**
 * Lets `limit` body bytes of the response out, then closes the connection: the head goes
 * out, the client receives exactly `limit` bytes of what was announced, then the socket
 * closes. Writes after the cut fail (their callbacks get an error), so a route streaming
 * the body stops as it would on a client that went away.
 */
function cutAfter(res: ServerResponse, limit: number, outcome: FaultOutcome): void {
  watchBody(res); // no sendfile: every byte must pass through write()
  const write = res.write.bind(res) as (chunk: Buffer, cb?: WriteCallback) => boolean;
  const end = res.end.bind(res) as (chunk?: Buffer, cb?: () => void) => ServerResponse;
  let sent = 0;
  let cut = false;
  const refuse = (cb: unknown) => {
    if (typeof cb === 'function') process.nextTick(cb as WriteCallback, new Error('connection closed by an injected fault'));
  };
  /** Passes `chunk` on whole, or cuts the response inside it; true when passed. */
  const pass = (chunk: unknown, encoding: unknown, cb: unknown, last: boolean): boolean => {
    if (typeof encoding === 'function') [cb, encoding] = [encoding, undefined];
    if (cut) {
      refuse(cb);
      return false;
    }
    const bytes = chunk === undefined || chunk === null ? Buffer.alloc(0) : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string, (encoding as BufferEncoding) ?? 'utf8');
    if (sent + bytes.length <= limit) {
      sent += bytes.length;
      if (last) end(bytes, cb as () => void);
      else write(bytes, cb as WriteCallback);
      return true;
    }
    cut = true;
    const part = bytes.subarray(0, limit - sent);
    sent = limit;
    // Even an empty part sends the head; once the bytes are out, the connection goes.
    write(part, () => {
      outcome.cutAfter = limit;
      res.destroy();
      refuse(cb);
    });
    return false;
  };
  res.write = ((chunk: unknown, encoding?: unknown, cb?: unknown) => pass(chunk, encoding, cb, false)) as typeof res.write;
  res.end = ((chunk?: unknown, encoding?: unknown, cb?: unknown) => {
    if (typeof chunk === 'function') [cb, chunk] = [chunk, undefined];
    pass(chunk, encoding, cb, true);
    return res;
  }) as typeof res.end;
}

const SECRET_HEADERS = new Set(['cookie']);
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization']);

function redacted(headers: Context['headers']): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (SECRET_HEADERS.has(name)) out[name] = '[redacted]';
    else if (CREDENTIAL_HEADERS.has(name) && typeof value === 'string') out[name] = `${value.trim().split(/\s+/)[0]} [redacted]`;
    else out[name] = value;
  }
  return out;
}

/** Adds `ctx`'s request to `list`, and completes the entry when the response is over. */
function record(list: RecordedRequests, ctx: Context, outcome: FaultOutcome): void {
  const entry: RecordedRequest = {
    method: ctx.method,
    path: ctx.path,
    query: { ...ctx.query } as Record<string, string | string[]>,
    headers: redacted(ctx.headers),
    status: 0,
    bytesIn: 0,
    bytesOut: 0,
    fault: false,
    done: false,
  };
  list.push(entry);
  const res = ctx.res;
  res.once('close', () => {
    const state = ctx.state as Partial<RegistryState>;
    entry.status = res.headersSent ? res.statusCode : 0;
    entry.bytesIn = state.bytesIn ?? (Number(ctx.req.headers['content-length']) || 0);
    entry.bytesOut = outcome.cutAfter ?? (res.headersSent ? bodyBytesSent(ctx, state) : 0);
    entry.fault = outcome.applied ?? false;
    entry.done = true;
  });
}
