/** Cross-cutting middleware, in the order app.ts mounts them. */
import { randomBytes } from 'node:crypto';
import type { Context, Next } from 'koa';
import { RegistryError } from '../domain/errors.js';
import type { Logger } from '../logger.js';
import { STATUS_BY_CODE } from './error-map.js';
import { NO_CACHE, sendJson } from './respond.js';

export interface RegistryState {
  log: Logger;
  requestId: string;
  /** Body bytes received, when a route counted them (streamed uploads). */
  bytesIn?: number;
}

/** First in the chain: turns every error into a status and a `{"error": "..."}` body. */
export function errorHandler() {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
      if (ctx.body === undefined || ctx.body === null) {
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
      ctx.set(headers);
      sendJson(ctx, status, { error: message });
    }
  };
}

function clientMessage(status: number, err: Error): string {
  if (status === 413) return 'Request body too large';
  if (status === 400 && /json|unexpected|token/i.test(err.message)) return 'Invalid JSON';
  return (err as { expose?: boolean }).expose ? err.message : 'Bad request';
}

/** One structured line per request, from a child logger that carries the request id. */
export function requestLog(root: Logger) {
  return async (ctx: Context, next: Next) => {
    const started = process.hrtime.bigint();
    const requestId = randomBytes(6).toString('hex');
    const log = root.child({ reqId: requestId });
    const state = ctx.state as RegistryState;
    state.log = log;
    state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    ctx.res.once('close', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      log.info(
        {
          method: ctx.method,
          path: ctx.path,
          status: ctx.status,
          bytesIn: state.bytesIn ?? (Number(ctx.req.headers['content-length']) || 0),
          bytesOut: ctx.res.getHeader('Content-Length') !== undefined ? Number(ctx.res.getHeader('Content-Length')) : undefined,
          ms: Math.round(ms * 100) / 100,
          aborted: !ctx.res.writableFinished || undefined,
        },
        'request',
      );
    });
    await next();
  };
}

/** The headers every registry response carries. */
export function dockerHeaders(version: string, flavor: string) {
  return async (ctx: Context, next: Next) => {
    ctx.set('X-Docker-Registry-Version', version);
    ctx.set('X-Docker-Registry-Config', flavor);
    await next();
  };
}
