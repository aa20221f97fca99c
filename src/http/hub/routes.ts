/**
 * The Docker Hub REST API double (hub.docker.com/v2), on the registry's port under
 * /v2/users/…, /v2/user/… and /v2/repositories/… only: GET /v2/ itself (the Registry HTTP
 * API v2 ping) and every other /v2 path stay unmatched here.
 *
 * Mounted before the registry's `authenticate`, because Hub clients send
 * `Authorization: JWT <token>` or `Bearer <token>`, which the v1 routes refuse: this router
 * reads those (and Basic) itself. Every answer from these routes, errors included, is in
 * Hub's shape: errors are `{"detail": …, "message": …}` with the statuses of error-map.ts.
 * Unknown paths under the three prefixes are 404 and known paths with another method 405,
 * in the same shape.
 *
 * The middleware also leaves the pull recorder on the request, for the v1 pull routes
 * (recordPull below): that is how pull_count and tag_last_pulled are counted.
 */
import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { RegistryError } from '../../domain/errors.js';
import { parseRepoName, type RepoName, type Tag } from '../../domain/names.js';
import { ANONYMOUS, type Principal } from '../../services/access.js';
import type { HubService, PageQuery, PullRecorder } from '../../services/hub.js';
import type { UserService } from '../../services/users.js';
import { basicUser, parseAuthorization, principalOf } from '../shared/authenticate.js';
import { jsonBody } from '../shared/body.js';
import { STATUS_BY_CODE } from '../shared/error-map.js';
import type { RegistryState } from '../shared/middleware.js';
import { NO_CACHE, sendJson } from '../shared/respond.js';
import { originOf } from '../shared/origin.js';

export interface HubRouteDeps {
  hub: HubService;
  users: UserService;
  maxJsonBytes: number;
}

interface HubState extends RegistryState {
  principal?: Principal;
}

const PREFIXES = ['/v2/users{/*rest}', '/v2/user{/*rest}', '/v2/repositories{/*rest}'];

/** The Hub router as one middleware (it passes every other request on untouched). */
export function hubRoutes(deps: HubRouteDeps): Middleware {
  const { hub } = deps;
  const json = jsonBody(deps.maxJsonBytes);
  const router = new Router();
  router.use(hubErrors());
  router.use(hubAuthenticate(hub, deps.users));

  const repoOf = (ctx: Context): RepoName => {
    const params = ctx.params as { ns: string; repo: string };
    return parseRepoName(params.ns, params.repo);
  };
  const ok = (ctx: Context, status: number, body: unknown) => {
    ctx.res.setHeader('Cache-Control', NO_CACHE);
    sendJson(ctx, status, body);
  };

  // ── accounts ──────────────────────────────────────────────────────────────────────
  router.post('/v2/users/login', json, async (ctx) => {
    ok(ctx, 200, await hub.login(ctx.request.body, flag(ctx.query.refresh_token), ctx.ip));
  });
  router.get('/v2/users/:name', async (ctx) => {
    ok(ctx, 200, await hub.user((ctx.params as { name: string }).name));
  });
  // Hub's older path for a user's repositories (docker-hub-api's repositories() uses it).
  router.get('/v2/users/:name/repositories', async (ctx) => {
    ok(ctx, 200, await hub.listRepositories(principalOf(ctx), (ctx.params as { name: string }).name, pageQuery(ctx), selfUrl(ctx)));
  });
  router.get('/v2/user', async (ctx) => {
    ok(ctx, 200, hub.self(principalOf(ctx)));
  });
  router.get('/v2/user/orgs', async (ctx) => {
    ok(ctx, 200, await hub.orgs(principalOf(ctx), pageQuery(ctx), selfUrl(ctx)));
  });

  // ── repositories ──────────────────────────────────────────────────────────────────
  router.post('/v2/repositories', json, async (ctx) => {
    ok(ctx, 201, await hub.createRepository(principalOf(ctx), ctx.request.body));
  });
  router.get('/v2/repositories/:ns', async (ctx) => {
    ok(ctx, 200, await hub.listRepositories(principalOf(ctx), (ctx.params as { ns: string }).ns, pageQuery(ctx), selfUrl(ctx)));
  });
  router.get('/v2/repositories/:ns/:repo', async (ctx) => {
    ok(ctx, 200, await hub.repository(principalOf(ctx), repoOf(ctx)));
  });
  router.patch('/v2/repositories/:ns/:repo', json, async (ctx) => {
    ok(ctx, 200, await hub.updateRepository(principalOf(ctx), repoOf(ctx), ctx.request.body));
  });
  router.delete('/v2/repositories/:ns/:repo', async (ctx) => {
    await hub.deleteRepository(principalOf(ctx), repoOf(ctx));
    ctx.res.setHeader('Cache-Control', NO_CACHE);
    ctx.status = 202;
  });
  router.post('/v2/repositories/:ns/:repo/privacy', json, async (ctx) => {
    ok(ctx, 200, await hub.setPrivacy(principalOf(ctx), repoOf(ctx), ctx.request.body));
  });

  // ── tags ──────────────────────────────────────────────────────────────────────────
  router.get('/v2/repositories/:ns/:repo/tags', async (ctx) => {
    ok(ctx, 200, await hub.listTags(principalOf(ctx), repoOf(ctx), pageQuery(ctx), selfUrl(ctx)));
  });
  router.get('/v2/repositories/:ns/:repo/tags/:tag', async (ctx) => {
    ok(ctx, 200, await hub.tag(principalOf(ctx), repoOf(ctx), (ctx.params as { tag: string }).tag));
  });
  router.delete('/v2/repositories/:ns/:repo/tags/:tag', async (ctx) => {
    await hub.deleteTag(principalOf(ctx), repoOf(ctx), (ctx.params as { tag: string }).tag);
    ctx.res.setHeader('Cache-Control', NO_CACHE);
    ctx.status = 204;
  });

  // Everything else under the Hub prefixes: 405 for a known path, else 404, Hub's shape.
  for (const prefix of PREFIXES) {
    router.all(prefix, async (ctx) => {
      const allowed = new Set<string>();
      for (const layer of router.match(ctx.path, ctx.method).path) {
        if (PREFIXES.includes(layer.path as string)) continue;
        for (const method of layer.methods) allowed.add(method);
      }
      if (allowed.size > 0) {
        ctx.res.setHeader('Allow', [...allowed].join(', '));
        throw new HubHttpError(405, `Method "${ctx.method}" not allowed.`);
      }
      throw new RegistryError('NOT_FOUND', 'Not found.');
    });
  }

  return router.routes() as unknown as Middleware;
}

/**
 * For the v1 pull routes, after they answered 200: counts a pull of the repository (no
 * tag, no `allTags`), marks one tag pulled (`tag`), or every tag of the repository
 * (`allTags`, the full tag list was read). Never fails the pull: a failure is logged.
 * Does nothing for a HEAD request.
 */
export async function recordPull(ctx: Context, recorder: PullRecorder, pull: { repo: RepoName; tag?: Tag; allTags?: boolean }): Promise<void> {
  const state = ctx.state as HubState;
  if (ctx.method !== 'GET' || ctx.status !== 200) return;
  try {
    if (pull.tag !== undefined) await recorder.tagPulled(pull.repo, pull.tag);
    else if (pull.allTags) await recorder.tagsListed(pull.repo);
    else await recorder.repositoryPulled(pull.repo);
  } catch (err) {
    state.log?.error({ err, repo: pull.repo.full }, 'could not record a pull');
  }
}

/** A status that has no domain error code (405). */
class HubHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Turns every error of the Hub routes into Hub's `{"detail", "message"}` body. */
function hubErrors(): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      let status: number;
      let detail: string;
      if (err instanceof RegistryError) {
        status = STATUS_BY_CODE[err.code];
        detail = err.message;
      } else if (err instanceof HubHttpError) {
        status = err.status;
        detail = err.message;
      } else {
        const httpStatus = (err as { status?: unknown }).status;
        if (typeof httpStatus === 'number' && httpStatus >= 400 && httpStatus < 500) {
          status = httpStatus;
          detail = httpStatus === 413 ? 'Request body too large.' : httpStatus === 400 ? 'JSON parse error.' : 'Bad request.';
        } else {
          status = 500;
          detail = 'Internal server error.';
          (ctx.state as HubState).log?.error({ err }, 'request failed');
        }
      }
      if (ctx.headerSent || !ctx.writable) throw err;
      if (err instanceof RegistryError && typeof err.details.retryAfter === 'number') ctx.res.setHeader('Retry-After', String(err.details.retryAfter));
      if (status === 401) ctx.res.setHeader('WWW-Authenticate', 'JWT realm="api"');
      ctx.res.setHeader('Cache-Control', NO_CACHE);
      sendJson(ctx, status, { detail, message: detail });
    }
  };
}

/**
 * The caller: `JWT <token>` or `Bearer <token>` (from POST /v2/users/login), or Basic;
 * none: anonymous. A bad, expired or forged token is 401 even where none is needed.
 */
function hubAuthenticate(hub: HubService, users: UserService): Middleware {
  return async (ctx, next) => {
    const header = ctx.get('Authorization');
    let principal: Principal = ANONYMOUS;
    if (header) {
      const { scheme, value } = parseAuthorization(header);
      if ((scheme === 'jwt' || scheme === 'bearer') && value) {
        principal = { kind: 'user', user: await hub.userOfToken(value) };
      } else if (scheme === 'basic') {
        principal = { kind: 'user', user: await basicUser(value, users, ctx.ip) };
      } else {
        throw new RegistryError('UNAUTHORIZED', 'Invalid Authorization header: use "JWT <token>" or "Bearer <token>".');
      }
    }
    (ctx.state as HubState).principal = principal;
    await next();
  };
}

function pageQuery(ctx: Context): PageQuery {
  const first = (name: string): string | undefined => {
    const value = (ctx.query as Record<string, string | string[] | undefined>)[name];
    return Array.isArray(value) ? value[0] : value;
  };
  return { page: first('page'), page_size: first('page_size'), ordering: first('ordering') };
}

function flag(value: string | string[] | undefined): boolean {
  const v = (Array.isArray(value) ? value[0] : value)?.toLowerCase();
  return v === 'true' || v === '1' || v === 'yes';
}

/**
 * The absolute URL of this request, for `next` and `previous`: the Host the client used
 * (else the local address), and https when a TLS front (the way hard-coded hub.docker.com
 * clients reach the double) says so with X-Forwarded-Proto.
 */
function selfUrl(ctx: Context): URL {
  const url = new URL(originOf(ctx));
  url.pathname = ctx.path;
  url.search = ctx.querystring;
  return url;
}
