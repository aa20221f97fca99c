/**
 * Operations routes: /_status (health with the failing part named, 503 when unhealthy)
 * and /metrics (Prometheus text; `Authorization: Bearer <metrics_token>` when one is
 * configured). Both are mounted before authentication: they never read user credentials.
 */
import { timingSafeEqual } from 'node:crypto';
import type Router from '@koa/router';
import { RegistryError } from '../../domain/errors.js';
import type { Metrics } from '../../metrics.js';
import type { HealthService } from '../../services/health.js';
import { NO_CACHE, sendJson } from '../respond.js';

export interface OpsRouteDeps {
  health: HealthService;
  metrics: Metrics;
  metricsToken: string;
}

export function addOpsRoutes(router: Router, deps: OpsRouteDeps): void {
  router.get('/_status', async (ctx) => {
    const report = await deps.health.check();
    ctx.set('Cache-Control', NO_CACHE);
    sendJson(ctx, report.status === 'ok' ? 200 : 503, report);
  });

  router.get('/metrics', async (ctx) => {
    if (deps.metricsToken) {
      const given = Buffer.from(ctx.get('Authorization'));
      const expected = Buffer.from(`Bearer ${deps.metricsToken}`);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        ctx.set('WWW-Authenticate', 'Bearer realm="metrics"');
        throw new RegistryError('UNAUTHORIZED', 'Metrics need Authorization: Bearer <metrics_token>');
      }
    }
    ctx.set('Cache-Control', NO_CACHE);
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });
}
