/**
 * Registry-wide admin operations (admins only; Basic auth, not tokens): garbage
 * collection, fsck, detaching an image from every repository so GC can free it, accounts
 * and OAuth clients. The `registry` CLI uses these routes when a running registry holds
 * the store (src/cli/admin.ts).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { invalidInput } from '../../domain/errors.js';
import type { AccessService } from '../../services/access.js';
import type { AdminService } from '../../services/admin.js';
import type { Fsck } from '../../services/fsck.js';
import type { GarbageCollector } from '../../services/gc.js';
import type { OAuthService } from '../../services/oauth.js';
import type { UserService } from '../../services/users.js';
import { principalOf } from '../shared/authenticate.js';
import { jsonBody } from '../shared/body.js';
import { NO_CACHE, sendJson } from '../shared/respond.js';
import { imageIdParam } from './registry.js';

export interface AdminRouteDeps {
  access: AccessService;
  admin: AdminService;
  gc: GarbageCollector;
  fsck: Fsck;
  users: UserService;
  oauth: OAuthService;
  maxJsonBytes: number;
}

function flag(ctx: Context, name: string): boolean {
  const value = ctx.query[name];
  const v = Array.isArray(value) ? value[0] : value;
  return v === '' || v === '1' || v === 'true';
}

export function addAdminRoutes(router: Router, deps: AdminRouteDeps): void {
  router.post('/_admin/gc', async (ctx) => {
    deps.access.authorizeAdmin(principalOf(ctx));
    const grace = ctx.query.grace_seconds;
    let graceMs: number | undefined;
    if (grace !== undefined) {
      if (typeof grace !== 'string' || !/^\d{1,10}$/.test(grace)) throw invalidInput('grace_seconds: a number of seconds');
      graceMs = Number(grace) * 1000;
    }
    const report = await deps.gc.run({ dryRun: flag(ctx, 'dry_run'), graceMs });
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
    const id = imageIdParam(ctx);
    deps.access.authorizeAdmin(principalOf(ctx));
    sendJson(ctx, 200, await deps.admin.detachImage(id));
  });

  const { users, oauth } = deps;
  const json = jsonBody(deps.maxJsonBytes);
  const admin = (ctx: Context) => deps.access.authorizeAdmin(principalOf(ctx));
  const body = (ctx: Context) => {
    const value = ctx.request.body as unknown;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidInput('Invalid data: expected a JSON object');
    return value as Record<string, unknown>;
  };
  const name = (ctx: Context) => (ctx.params as { name: string }).name;

  // ── accounts ──────────────────────────────────────────────────────────────────────
  router.get('/_admin/users', async (ctx) => {
    admin(ctx);
    const rows = [];
    for await (const u of users.list()) rows.push({ name: u.name, email: u.email, admin: u.admin, active: u.active, createdAt: u.createdAt });
    ctx.res.setHeader('Cache-Control', NO_CACHE);
    sendJson(ctx, 200, rows);
  });
  // Set a password: {password, email?, admin?, must_exist?} (registry user add|passwd).
  router.put('/_admin/users/:name', json, async (ctx) => {
    admin(ctx);
    const input = body(ctx);
    const { result, admin: isAdmin } = await users.setAccount({
      username: name(ctx),
      password: input.password,
      email: input.email,
      admin: input.admin,
      mustExist: input.must_exist === true,
    });
    sendJson(ctx, result === 'created' ? 201 : 200, { result, name: name(ctx), admin: isAdmin });
  });
  // {active: true|false} (registry user enable|disable).
  router.patch('/_admin/users/:name', json, async (ctx) => {
    admin(ctx);
    const { active } = body(ctx);
    if (typeof active !== 'boolean') throw invalidInput('active: true or false');
    await users.setActive(name(ctx), active);
    sendJson(ctx, 200, { name: name(ctx), active });
  });
  // {htpasswd: "<file text>"} (registry user import-htpasswd).
  router.post('/_admin/users/import-htpasswd', json, async (ctx) => {
    admin(ctx);
    const { htpasswd } = body(ctx);
    if (typeof htpasswd !== 'string') throw invalidInput('htpasswd: the file as a string');
    sendJson(ctx, 200, await users.importHtpasswd(htpasswd));
  });

  // ── OAuth clients ─────────────────────────────────────────────────────────────────
  router.get('/_admin/oauth/clients', async (ctx) => {
    admin(ctx);
    ctx.res.setHeader('Cache-Control', NO_CACHE);
    sendJson(ctx, 200, await oauth.listClients());
  });
  // {name, redirect_uris: [...]}: 201 with the secret (shown this once).
  router.post('/_admin/oauth/clients', json, async (ctx) => {
    admin(ctx);
    const { name: clientName, redirect_uris } = body(ctx);
    ctx.res.setHeader('Cache-Control', 'no-store');
    sendJson(ctx, 201, await oauth.addClient(clientName, redirect_uris));
  });
  router.delete('/_admin/oauth/clients/:id', async (ctx) => {
    admin(ctx);
    await oauth.removeClient((ctx.params as { id: string }).id);
    ctx.status = 204;
  });
}
