/**
 * Registry-wide admin operations (admins only; Basic auth, not tokens): garbage
 * collection, fsck, and detaching an image from every repository so GC can free it.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { parseImageId } from '../../domain/names.js';
import type { AccessService } from '../../services/access.js';
import type { AdminService } from '../../services/admin.js';
import type { Fsck } from '../../services/fsck.js';
import type { GarbageCollector } from '../../services/gc.js';
import { principalOf } from '../shared/authenticate.js';
import { NO_CACHE, sendJson } from '../shared/respond.js';

export interface AdminRouteDeps {
  access: AccessService;
  admin: AdminService;
  gc: GarbageCollector;
  fsck: Fsck;
  gcGraceMs: number;
  uploadExpiryMs: number;
}

function flag(ctx: Context, name: string): boolean {
  const value = ctx.query[name];
  const v = Array.isArray(value) ? value[0] : value;
  return v === '' || v === '1' || v === 'true';
}

export function addAdminRoutes(router: Router, deps: AdminRouteDeps): void {
  router.post('/_admin/gc', async (ctx) => {
    deps.access.authorizeAdmin(principalOf(ctx));
    const report = await deps.gc.run({ dryRun: flag(ctx, 'dry_run'), graceMs: deps.gcGraceMs, uploadExpiryMs: deps.uploadExpiryMs });
    ctx.res.setHeader('Cache-Control', NO_CACHE);
    sendJson(ctx, 200, report);
  });

  router.post('/_admin/fsck', async (ctx) => {
    deps.access.authorizeAdmin(principalOf(ctx));
    const report = await deps.fsck.run(flag(ctx, 'repair'));
    ctx.res.setHeader('Cache-Control', NO_CACHE);
    sendJson(ctx, 200, report);
  });

  router.delete('/v1/images/:id', async (ctx) => {
    const id = parseImageId((ctx.params as { id: string }).id);
    deps.access.authorizeAdmin(principalOf(ctx));
    sendJson(ctx, 200, await deps.admin.detachImage(id));
  });
}
