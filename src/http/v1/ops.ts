/**
 * Operations routes: /_status (health with the failing part named, 503 when unhealthy)
 * and /metrics (Prometheus text; `Authorization: Bearer <metrics_token>` when one is
 * configured). Both are mounted before authentication: they never read user credentials.
 */
import type Router from '@koa/router';
import { RegistryError } from '../../domain/errors.js';
import type { Metrics } from '../../metrics.js';
import type { HealthService } from '../../services/health.js';
import { safeEqual } from '../../services/keyring.js';
import { NO_CACHE, sendJson } from '../shared/respond.js';

export interface OpsRouteDeps {
  health: HealthService;
  metrics: Metrics;
  metricsToken: string;
}

export function addOpsRoutes(router: Router, deps: OpsRouteDeps): void {
  router.get('/_status', async (ctx) => {
    const report = await deps.health.check();
    ctx.res.setHeader('Cache-Control', NO_CACHE);
    sendJson(ctx, report.status === 'ok' ? 200 : 503, report);
  });

  // Docker Hub's webhook callback: receivers may POST a status back. It is logged only.
  router.post('/_webhooks/callback/:id', async (ctx) => {
    const id = (ctx.params as { id: string }).id;
    if (!/^[a-f0-9]{16}$/.test(id)) throw new RegistryError('NOT_FOUND', 'Unknown callback');
    (ctx.state as { log?: { info(o: object, m: string): void } }).log?.info({ callback: id }, 'webhook callback received');
    sendJson(ctx, 200, { ok: true });
  });

  router.get('/metrics', async (ctx) => {
    if (deps.metricsToken) {
      if (!safeEqual(ctx.get('Authorization'), `Bearer ${deps.metricsToken}`)) {
        ctx.res.setHeader('WWW-Authenticate', 'Bearer realm="metrics"');
        throw new RegistryError('UNAUTHORIZED', 'Metrics need Authorization: Bearer <metrics_token>');
      }
    }
    ctx.res.setHeader('Cache-Control', NO_CACHE);
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });
}
