/** Cross-cutting middleware, in the order app.ts mounts them. */
import { randomBytes } from 'node:crypto';
import type { Context, Next } from 'koa';
import { RegistryError } from '../../domain/errors.js';
import type { Logger } from '../../logger.js';
import { settleUnreadBody } from './body.js';
import { STATUS_BY_CODE } from './error-map.js';
import { NO_CACHE, sendJson } from './respond.js';
import type { RequestMetrics } from './metrics-middleware.js';

export interface RegistryState {
  readonly log: Logger;
  readonly requestId: string;
  /** Body bytes received, when a route counted them (streamed uploads). */
  bytesIn?: number;
  /** Body bytes written, when a route streamed the body itself (layer downloads). */
  bytesOut?: number;
}

/** First in the chain: turns every error into a status and a `{"error": "..."}` body. */
export function errorHandler() {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
      if (ctx.body === undefined || ctx.body === null) {
        if (ctx.status === 404 || ctx.status === 405) settleUnreadBody(ctx.req, ctx.res);
        if (ctx.status === 404) sendJson(ctx, 404, { error: 'Not found' });
        else if (ctx.status === 405) sendJson(ctx, 405, { error: 'Method not allowed' });
      }
    } catch (err) {
      const state = ctx.state as RegistryState;
      let status: number;
      let message: string;
      const headers: Record<string, string> = { 'Cache-Control': NO_CACHE };
      if (err instanceof RegistryError) {
        status = STATUS_BY_CODE[err.code];
        message = err.message;
        if (typeof err.details.size === 'number') headers['Content-Range'] = `bytes */${err.details.size}`;
        if (typeof err.details.retryAfter === 'number') headers['Retry-After'] = String(err.details.retryAfter);
      } else {
        const httpStatus = (err as { status?: unknown }).status;
        if (typeof httpStatus === 'number' && httpStatus >= 400 && httpStatus < 500) {
          status = httpStatus;
          message = clientMessage(httpStatus, err as Error);
        } else {
          status = 500;
          message = 'Internal server error';
        }
      }
      if (status >= 500) state.log?.error({ err }, 'request failed');
      // Headers of a partly-sent response cannot change: the socket is torn down instead.
      if (ctx.headerSent || !ctx.writable) {
        ctx.req.socket.destroy();
        return;
      }
      ctx.remove('Content-Length');
      ctx.remove('Content-Range');
      ctx.remove('ETag');
      for (const [name, value] of Object.entries(headers)) ctx.res.setHeader(name, value);
      // The client may still be sending a body nobody will read: keep its connection usable.
      settleUnreadBody(ctx.req, ctx.res);
      sendJson(ctx, status, { error: message });
    }
  };
}

function clientMessage(status: number, err: Error): string {
  if (status === 413) return 'Request body too large';
  if (status === 400 && /json|unexpected|token/i.test(err.message)) return 'Invalid JSON';
  return (err as { expose?: boolean }).expose ? err.message : 'Bad request';
}

/** Per-request state; the request's child logger is made on first use. */
class RequestState implements RegistryState {
  private child: Logger | null = null;
  bytesIn?: number;
  bytesOut?: number;

  constructor(
    private readonly root: Logger,
    readonly requestId: string,
  ) {}

  get log(): Logger {
    // Most requests never log anything but their request line (written from the root
    // logger with the id): a pino child per request cost ~1.5% of a small GET.
    this.child ??= this.root.child({ reqId: this.requestId });
    return this.child;
  }
}

/**
 * One structured line per request, carrying the request id, and the request's Prometheus
 * metrics (recorded from the same 'close' listener). `bytesOut` counts the body bytes
 * actually written (0 for 204, 304 and HEAD; what was sent before an abort), not what
 * Content-Length announced: a body Koa sends is written whole by one `end()` (or not at
 * all); routes that stream (layer downloads) count what they wrote in `state.bytesOut`.
 */
export function requestLog(root: Logger, metrics: RequestMetrics) {
  // Request ids: a random prefix per process and a counter. randomBytes per request cost
  // ~5% of the CPU of a small GET (profile of GET /v1/images/:id/json under wrk).
  // 12 hex digits: 6 random, 6 of a counter (wraps after 16.7 million requests).
  const prefix = randomBytes(3).toString('hex');
  let sequence = 0;
  // The request line holds only scalars named here (no header, no body, nothing called
  // token or password), so it is written without the redaction pass: with the wildcard
  // paths ('*.token', '*.password') pino ran a redactor over every key of every line
  // (small GET under wrk: ~7,300 -> ~8,100 req/s without it). Every other line keeps it.
  const lines = root.child({}, { redact: [] });
  return async (ctx: Context, next: Next) => {
    const started = process.hrtime.bigint();
    sequence = (sequence + 1) % 0x1000000;
    const requestId = prefix + sequence.toString(16).padStart(6, '0');
    const upload = metrics.begin(ctx);
    const state = new RequestState(root, requestId);
    ctx.state = state;
    const res = ctx.res;
    res.setHeader('X-Request-Id', requestId);
    res.once('close', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const bytesIn = state.bytesIn ?? (Number(ctx.req.headers['content-length']) || 0);
      metrics.end(ctx, upload, ms / 1000, bytesIn);
      lines.info(
        {
          reqId: requestId,
          method: ctx.method,
          path: ctx.path,
          status: ctx.status,
          bytesIn,
          bytesOut: bodyBytesSent(ctx, state),
          ms: Math.round(ms * 100) / 100,
          aborted: !res.writableFinished || undefined,
        },
        'request',
      );
    });
    await next();
  };
}

/** Body bytes of the response actually sent (see requestLog); `state.bytesOut` when a route counted them. */
export function bodyBytesSent(ctx: Context, state: { bytesOut?: number }): number {
  const res = ctx.res;
  if (ctx.method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304) return 0;
  if (state.bytesOut !== undefined) return state.bytesOut;
  return res.writableEnded ? Number(res.getHeader('Content-Length') ?? 0) : 0;
}

/** The headers every registry response carries. */
export function dockerHeaders(version: string, flavor: string) {
  return async (ctx: Context, next: Next) => {
    ctx.res.setHeader('X-Docker-Registry-Version', version);
    ctx.res.setHeader('X-Docker-Registry-Config', flavor);
    await next();
  };
}
