/**
 * Records every request in the Prometheus metrics, labelled by the matched route pattern.
 * Not a middleware of its own: requestLog (middleware.ts) calls `begin` when a request
 * starts and `end` from the one 'close' listener it already has, so a request pays for
 * one listener and one clock read, not two.
 */
import type { Context } from 'koa';
import type { Metrics } from '../../metrics.js';

const LAYER_PATH = /^\/v1\/images\/[^/]+\/layer$/;
/** A Registry API v2 upload session (PATCH and PUT carry its bytes). */
const V2_UPLOAD_PATH = /^\/v2\/.+\/blobs\/uploads\/[^/]+$/;

export interface RequestMetrics {
  /** A request starts; returns what `end` needs back. */
  begin(ctx: Context): boolean;
  /** The request is over (answered or aborted) after `seconds`, having received `bytesIn` body bytes. */
  end(ctx: Context, upload: boolean, seconds: number, bytesIn: number): void;
}

export function requestMetrics(metrics: Metrics): RequestMetrics {
  // Label children, looked up once per route/method/status instead of hashing labels on
  // every request (routes are patterns, so there are only a few hundred combinations).
  const counted = new Map<string, { inc(): void }>();
  const timed = new Map<string, { observe(v: number): void }>();
  const countRequest = (route: string, method: string, status: string) => {
    const key = `${route} ${method} ${status}`;
    let child = counted.get(key);
    if (!child) counted.set(key, (child = metrics.requests.labels(route, method, status)));
    child.inc();
  };
  const observeDuration = (route: string, method: string, seconds: number) => {
    const key = `${route} ${method}`;
    let child = timed.get(key);
    if (!child) timed.set(key, (child = metrics.duration.labels(route, method)));
    child.observe(seconds);
  };
  return {
    begin(ctx) {
      const upload =
        (ctx.method === 'PUT' && LAYER_PATH.test(ctx.path)) || ((ctx.method === 'PATCH' || ctx.method === 'PUT') && V2_UPLOAD_PATH.test(ctx.path));
      if (upload) metrics.uploadsInFlight.inc();
      return upload;
    },
    end(ctx, upload, seconds, bytesIn) {
      if (upload) metrics.uploadsInFlight.dec();
      const route = (ctx as Context & { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      const method = ctx.method;
      const status = ctx.status;
      countRequest(route, method, String(status));
      observeDuration(route, method, seconds);
      if (bytesIn > 0) metrics.bytesIn.inc({ route, method }, bytesIn);
      const outBytes = ctx.method === 'HEAD' ? 0 : Number(ctx.res.getHeader('Content-Length') ?? 0);
      if (outBytes > 0 && ctx.res.writableFinished) metrics.bytesOut.inc({ route, method }, outBytes);
      if (route === '/v1/images/:id/checksum' && method === 'PUT' && status === 200) metrics.pushes.inc();
      if (route === '/v2/:name/manifests/:reference' && method === 'PUT' && status === 201) metrics.pushes.inc();
      if ((route === '/v1/images/:id/layer' || route === '/v2/:name/blobs/:digest') && method === 'GET' && (status === 200 || status === 206)) metrics.pulls.inc();
    },
  };
}
