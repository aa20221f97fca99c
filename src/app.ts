/**
 * createApp(deps): the Koa application with its middleware in order and every router.
 * It never listens; main.ts and the tests do.
 */
import Router from '@koa/router';
import Koa, { type Context, type Middleware } from 'koa';
import type { Config } from './config/schema.js';
import { authenticate, oauthBearer } from './http/shared/authenticate.js';
import { SessionCookies } from './http/shared/session.js';
import { requestMetrics } from './http/shared/metrics-middleware.js';
import { dockerHeaders, errorHandler, requestLog } from './http/shared/middleware.js';
import { OAUTH_PREFIX, oauthRoutes } from './http/oauth/routes.js';
import { addOpsRoutes } from './http/v1/ops.js';
import { addAdminRoutes } from './http/v1/admin.js';
import { hubRoutes } from './http/hub/routes.js';
import { addIndexRoutes } from './http/v1/index-api.js';
import { addRegistryRoutes } from './http/v1/registry.js';
import { RepoRoutes } from './http/v1/repo-routes.js';
import { addUserRoutes } from './http/v1/users.js';
import { v2Face } from './http/v2/face.js';
import { uiRoutes } from './http/ui/routes.js';
import { WebSessions } from './http/shared/web-session.js';
import type { Logger } from './logger.js';
import type { Services } from './compose.js';
import { VERSION } from './version.js';

export interface AppDeps {
  config: Config;
  logger: Logger;
  services: Services;
  /** Runs before everything else, routing included (the test double's faults and request record). */
  first?: Middleware;
}

export function createApp(deps: AppDeps): Koa {
  const { config, logger, services } = deps;
  // sendfile(2) writes plain bytes to the socket: never under TLS.
  const send = { sendfile: config.layer_sendfile && !config.tls_certificate, stallMs: config.download_stall_timeout_seconds * 1000 };
  // With s3_redirect, blob and layer GETs are redirected to presigned URLs of the object store.
  const blobUrl = config.s3_redirect ? services.blobUrl : undefined;
  const app = new Koa();
  app.proxy = false;
  // Errors are answered by errorHandler; Koa's own handler would only print to stderr.
  app.silent = true;

  // Operations routes answer before authentication: they never look at user credentials.
  const ops = new Router();
  addOpsRoutes(ops, { health: services.health, metrics: services.metrics, metricsToken: config.metrics_token });

  const router = new Router();
  // The image routes are the hot ones (every pull asks for json and ancestry of each image);
  // a router of their own spares them matching the ~60 other routes.
  const imageRouter = new Router();
  const repoRoutes = new RepoRoutes();
  const common = { access: services.access, pulls: services.hub, maxJsonBytes: config.max_json_bytes };
  addRegistryRoutes(router, imageRouter, repoRoutes, {
    ...common,
    images: services.images,
    repos: services.repos,
    send,
    ...(blobUrl ? { blobUrl } : {}),
  });
  addIndexRoutes(router, repoRoutes, {
    ...common,
    repos: services.repos,
    tokens: services.tokens,
    search: services.search,
    endpoints: config.endpoints,
  });
  addUserRoutes(router, { users: services.users, maxJsonBytes: config.max_json_bytes });
  addAdminRoutes(router, {
    access: services.access,
    admin: services.admin,
    gc: services.gc,
    fsck: services.fsck,
    users: services.users,
    oauth: services.oauth,
    maxJsonBytes: config.max_json_bytes,
  });
  repoRoutes.mount(router);

  if (deps.first) app.use(deps.first);
  app.use(errorHandler());
  app.use(requestLog(logger, requestMetrics(services.metrics)));
  app.use(dockerHeaders(VERSION, config.flavor));
  // The web UI owns / and /-/… (no API path); it reads its own session cookie, never Authorization.
  const web = new WebSessions(services.sessions, services.keyRing);
  if (config.ui_enabled) {
    app.use(
      uiRoutes({
        web,
        catalog: services.catalog,
        console: services.console,
        oauth: services.oauth,
        access: services.access,
        endpoints: config.endpoints,
        gcGraceSeconds: config.gc_grace_seconds,
      }),
    );
  }
  // The ops and Hub routers only see their own paths: a registry request does not pay for
  // matching them (each router matches every route and reads Host on every request).
  app.use(onlyUnder((path) => !path.startsWith('/v1/') && !path.startsWith('/v2/'), ops.routes()));
  // The Docker Hub API double and the Registry API v2 read their own credentials (JWT,
  // Bearer), so they come before authenticate; each answers every path given to it.
  app.use(onlyUnder(isHubPath, hubRoutes({ hub: services.hub, users: services.users, maxJsonBytes: config.max_json_bytes })));
  app.use(
    onlyUnder((path) => path === '/v2' || path.startsWith('/v2/'), v2Face({
      access: services.access,
      users: services.users,
      tokens: services.registryTokens,
      blobs: services.blobService,
      uploads: services.uploads,
      manifests: services.manifests,
      pulls: services.hub,
      send,
      ...(blobUrl ? { blobUrl } : {}),
      maxManifestBytes: config.max_manifest_bytes,
      schemes: [oauthBearer(services.oauth)],
    })),
  );
  // The OAuth face reads its own credentials too: Basic on its token endpoint is a client's.
  app.use(
    onlyUnder(
      (path) => path.startsWith(OAUTH_PREFIX),
      oauthRoutes({
        oauth: services.oauth,
        users: services.users,
        tokens: services.tokens,
        access: services.access,
        keyRing: services.keyRing,
        maxJsonBytes: config.max_json_bytes,
        // Signed in to the web UI counts as logged in on the consent page.
        ...(config.ui_enabled ? { session: async (ctx: Context) => (await web.sessionOf(ctx))?.user ?? null } : {}),
      }),
    ),
  );
  // Session cookies are signed with a key of the registry's key ring (see session.ts).
  const sessions = new SessionCookies(services.keyRing, config.token_ttl_seconds);
  app.use(authenticate(services.users, services.tokens, sessions, [oauthBearer(services.oauth)]));
  app.use(onlyUnder((path) => path.startsWith('/v1/images/'), both(imageRouter.routes(), imageRouter.allowedMethods())));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

/** Paths of the Docker Hub API double: its own routes, and what else lies under its prefixes. */
const HUB_PREFIX = /^\/v2\/(?:users|user|repositories)(?:\/|$)/;
const HUB_ROUTE = /^\/v2\/(?:users\/login|users\/[^/]+(?:\/repositories)?|user(?:\/orgs)?|repositories(?:\/[^/]+(?:\/[^/]+(?:\/privacy|\/tags(?:\/[^/]+)?)?)?)?)\/?$/;
/** A Registry API v2 repository path (by its suffix). */
const V2_SHAPED = /\/(?:manifests|blobs|referrers)\/[^/]+$|\/blobs\/uploads\/?$|\/blobs\/uploads\/[^/]+$|\/tags\/list$/;

/**
 * The Hub double owns `/v2/users…`, `/v2/user…` and `/v2/repositories…`; a v2 repository path
 * there that is none of its routes (`/v2/users/app/manifests/latest`) goes to the v2 face,
 * which refuses the name (NAME_INVALID): v2 names cannot start with those components.
 */
export function isHubPath(path: string): boolean {
  return HUB_PREFIX.test(path) && (HUB_ROUTE.test(path) || !V2_SHAPED.test(path));
}

/** `first`, then `second` where `first` calls next(). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- routers type their contexts more narrowly
function both(first: Middleware<any, any>, second: Middleware<any, any>): Middleware {
  return (ctx, next) => first(ctx, () => second(ctx, next));
}

/** Runs `middleware` for the paths `test` accepts; every other request passes by. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- routers type their contexts more narrowly
function onlyUnder(test: (path: string) => boolean, middleware: Middleware<any, any>): Middleware {
  return (ctx, next) => (test(ctx.path) ? middleware(ctx, next) : next());
}
