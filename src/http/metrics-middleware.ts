/** Records every request in the Prometheus metrics, labelled by the matched route pattern. */
import type { Context, Next } from 'koa';
import type { Metrics } from '../metrics.js';

const LAYER_PATH = /^\/v1\/images\/[^/]+\/layer$/;

export function recordMetrics(metrics: Metrics) {
  return async (ctx: Context, next: Next) => {
    const started = process.hrtime.bigint();
    const upload = ctx.method === 'PUT' && LAYER_PATH.test(ctx.path);
    if (upload) metrics.uploadsInFlight.inc();
    ctx.res.once('close', () => {
      if (upload) metrics.uploadsInFlight.dec();
      const route = (ctx as Context & { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      const method = ctx.method;
      const status = ctx.status;
      metrics.requests.inc({ route, method, status: String(status) });
      metrics.duration.observe({ route, method }, Number(process.hrtime.bigint() - started) / 1e9);
      const inBytes = Number((ctx.state as { bytesIn?: number }).bytesIn ?? ctx.req.headers['content-length'] ?? 0);
      if (inBytes > 0) metrics.bytesIn.inc({ route, method }, inBytes);
      const outBytes = ctx.method === 'HEAD' ? 0 : Number(ctx.res.getHeader('Content-Length') ?? 0);
      if (outBytes > 0 && ctx.res.writableFinished) metrics.bytesOut.inc({ route, method }, outBytes);
      if (route === '/v1/images/:id/checksum' && method === 'PUT' && status === 200) metrics.pushes.inc();
      if (route === '/v1/images/:id/layer' && method === 'GET' && (status === 200 || status === 206)) metrics.pulls.inc();
    });
    await next();
  };
}
