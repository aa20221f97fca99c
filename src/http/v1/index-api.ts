/**
 * Index (Hub) API v1, repository part: push start, image lists, tokens, delete, auth,
 * collaborators, search. The Index tells the client where the registry is
 * (`X-Docker-Endpoints`: configured, or the host the client used) and hands an
 * authenticated caller a token for one repository and one access.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { RegistryError } from '../../domain/errors.js';
import { parseUsername, type RepoName } from '../../domain/names.js';
import type { AccessService } from '../../services/access.js';
import type { RepositoryService } from '../../services/repositories.js';
import type { PullRecorder } from '../../services/hub.js';
import type { SearchService } from '../../services/search.js';
import type { TokenAccess, TokenService } from '../../services/tokens.js';
import { actorOf, principalOf } from '../shared/authenticate.js';
import { jsonBody, jsonValueOf, readRawBody } from '../shared/body.js';
import { requestHost } from '../shared/request-host.js';
import { NO_CACHE, sendJson, sendSharedJson } from '../shared/respond.js';
import { recordPull } from '../hub/routes.js';
import type { RepoRoutes } from './repo-routes.js';

export interface IndexRouteDeps {
  repos: RepositoryService;
  access: AccessService;
  tokens: TokenService;
  search: SearchService;
  /** Counts pulls for the Hub double (pull_count). */
  pulls: PullRecorder;
  maxJsonBytes: number;
  /** Fixed X-Docker-Endpoints value; empty: the Host header of the request. */
  endpoints: string;
}


export function addIndexRoutes(router: Router, routes: RepoRoutes, deps: IndexRouteDeps): void {
  const { repos, access, tokens, search } = deps;
  const json = jsonBody(deps.maxJsonBytes);

  const endpoints = (ctx: Context): string => {
    return deps.endpoints || requestHost(ctx);
  };
  /**
   * Endpoints, plus a token for an authenticated caller, whether or not it sent
   * `X-Docker-Token: true` (docker 1.x asks; clients written against the reference servers
   * do not, and both references hand one out anyway). Anonymous callers get none.
   */
  const session = (ctx: Context, name: RepoName, tokenAccess: TokenAccess) => {
    ctx.res.setHeader('X-Docker-Endpoints', endpoints(ctx));
    const subject = access.tokenSubject(principalOf(ctx));
    if (!subject) return;
    const token = tokens.issue(subject.name, name, tokenAccess);
    ctx.res.setHeader('X-Docker-Token', token);
    ctx.res.setHeader('WWW-Authenticate', `Token ${token}`);
  };

  // Push start: creates the repository and records the images the client will push. The
  // body is the image list docker sends; anything that is not a JSON list (`{}`, empty,
  // `null`, which Quay's clients send) declares nothing: images need not be declared.
  routes.add('put', '', [], async (ctx, name) => {
    const principal = principalOf(ctx);
    await access.authorizeRepo(principal, name, 'write');
    const body = jsonValueOf(await readRawBody(ctx, deps.maxJsonBytes));
    await repos.mergeImages(name, Array.isArray(body) ? body : [], (ids) => access.authorizeImageList(principal, name, ids));
    session(ctx, name, 'write');
    sendJson(ctx, 200, '');
  });
  // Push end: the image list with checksums.
  routes.add('put', '/images', [json], async (ctx, name) => {
    const principal = principalOf(ctx);
    await access.authorizeRepo(principal, name, 'write');
    await repos.mergeImages(name, ctx.request.body, (ids) => access.authorizeImageList(principal, name, ids));
    ctx.status = 204;
  });
  // Pull start.
  routes.add('get', '/images', [], async (ctx, name) => {
    await access.authorizeRepo(principalOf(ctx), name, 'read');
    const list = await repos.listImages(name);
    session(ctx, name, 'read');
    ctx.res.setHeader('Cache-Control', NO_CACHE);
    sendSharedJson(ctx, 200, list);
    await recordPull(ctx, deps.pulls, { repo: name });
  });
  // Old delete flow, step 1: a delete token; the data goes with DELETE …/ on the registry.
  routes.add('delete', '/images', [], async (ctx, name) => {
    await access.authorizeRepo(principalOf(ctx), name, 'delete');
    await repos.get(name);
    session(ctx, name, 'delete');
    ctx.status = 204;
  });
  /**
   * DELETE …/ is both the Index's and the registry's. Asked for a token (the Index's
   * two-step flow), it answers 202 with a delete token and deletes nothing yet; otherwise
   * (the registry side, or a direct call) it deletes the repository: 200.
   */
  routes.add('delete', '', [], async (ctx, name) => {
    await access.authorizeRepo(principalOf(ctx), name, 'delete');
    if (ctx.get('X-Docker-Token').toLowerCase() === 'true') {
      await repos.get(name);
      session(ctx, name, 'delete');
      sendJson(ctx, 202, '');
      return;
    }
    await repos.delete(name, actorOf(ctx));
    sendJson(ctx, 200, true);
  });
  // Lets a registry check a token for a repository.
  routes.add('put', '/auth', [], async (ctx, name) => {
    const principal = principalOf(ctx);
    if (principal.kind !== 'token' && !access.isStandalone) throw new RegistryError('UNAUTHORIZED', 'A token is required');
    await access.authorizeRepo(principal, name, 'read');
    sendJson(ctx, 200, 'OK');
  });

  // Collaborators (an extension: the v1 Index had no API for them).
  const userParam = (ctx: Context) => parseUsername((ctx.params as { user: string }).user);
  routes.add('get', '/collaborators', [], async (ctx, name) => {
    await access.authorizeRepo(principalOf(ctx), name, 'admin');
    ctx.res.setHeader('Cache-Control', NO_CACHE);
    sendJson(ctx, 200, await repos.collaborators(name));
  });
  routes.add('put', '/collaborators/:user', [json], async (ctx, name) => {
    const user = userParam(ctx);
    await access.authorizeRepo(principalOf(ctx), name, 'admin');
    await repos.setCollaborator(name, user, (ctx.request.body as { permission?: unknown } | null)?.permission ?? 'missing');
    sendJson(ctx, 200, true);
  });
  routes.add('delete', '/collaborators/:user', [], async (ctx, name) => {
    const user = userParam(ctx);
    await access.authorizeRepo(principalOf(ctx), name, 'admin');
    await repos.setCollaborator(name, user, null);
    sendJson(ctx, 200, true);
  });

  router.get('/v1/search', async (ctx) => {
    const query = ctx.query as Record<string, string | string[] | undefined>;
    const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
    ctx.res.setHeader('Cache-Control', NO_CACHE);
    sendJson(ctx, 200, await search.search(principalOf(ctx), first(query.q) ?? '', first(query.n), first(query.page)));
  });
}
