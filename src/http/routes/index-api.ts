/**
 * Index (Hub) API v1, repository part: push start, image lists, delete-token, auth.
 * The Index tells the client where the registry is (`X-Docker-Endpoints`): the host the
 * client used, unless configured.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import type { AccessService } from '../../services/access.js';
import type { RepositoryService } from '../../services/repositories.js';
import { jsonBody } from '../body.js';
import { NO_CACHE, sendJson } from '../respond.js';
import { principalOf } from './registry.js';
import type { RepoRoutes } from './repo-routes.js';

export interface IndexRouteDeps {
  repos: RepositoryService;
  access: AccessService;
  maxJsonBytes: number;
}

const HOST = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

export function endpointsFor(ctx: Context): string {
  const host = ctx.get('Host');
  return HOST.test(host) ? host : `${ctx.req.socket.localAddress}:${ctx.req.socket.localPort}`;
}

export function addIndexRoutes(_router: Router, routes: RepoRoutes, deps: IndexRouteDeps): void {
  const { repos, access } = deps;
  const json = jsonBody(deps.maxJsonBytes);

  // Push start: creates the repository and records the images the client will push.
  routes.add('put', '', [json], async (ctx, name) => {
    await access.authorizeRepo(principalOf(ctx), name, 'write');
    await repos.mergeImages(name, ctx.request.body);
    ctx.set('X-Docker-Endpoints', endpointsFor(ctx));
    sendJson(ctx, 200, '');
  });
  // Push end: the image list with checksums.
  routes.add('put', '/images', [json], async (ctx, name) => {
    await access.authorizeRepo(principalOf(ctx), name, 'write');
    await repos.mergeImages(name, ctx.request.body);
    ctx.status = 204;
  });
  // Pull start.
  routes.add('get', '/images', [], async (ctx, name) => {
    await access.authorizeRepo(principalOf(ctx), name, 'read');
    const list = await repos.listImages(name);
    ctx.set('X-Docker-Endpoints', endpointsFor(ctx));
    ctx.set('Cache-Control', NO_CACHE);
    sendJson(ctx, 200, list);
  });
  // Old delete flow: only hands out a delete token; the data goes with DELETE …/.
  routes.add('delete', '/images', [], async (ctx, name) => {
    await access.authorizeRepo(principalOf(ctx), name, 'delete');
    ctx.set('X-Docker-Endpoints', endpointsFor(ctx));
    ctx.status = 204;
  });
  routes.add('put', '/auth', [], async (ctx, name) => {
    await access.authorizeRepo(principalOf(ctx), name, 'read');
    sendJson(ctx, 200, 'OK');
  });
}
