/**
 * The Registry API v2 face (OCI distribution spec 1.1), on the registry's port under /v2/
 * (every /v2 path but the Docker Hub API double's, see app.ts). It has its own error
 * envelope (errors.ts), its own authentication (auth.ts), and a router of its own: v2
 * names contain slashes (`a/b/c`), so routes are matched by their suffix, longest name
 * first, as Docker Distribution's router does.
 *
 *   GET      /v2/                                  ping (401 + challenge when credentials are needed)
 *   GET|POST /v2/token                             the token realm
 *   GET      /v2/_catalog                          repositories the caller may read
 *   GET      /v2/<name>/tags/list
 *   GET|HEAD|PUT|DELETE  /v2/<name>/manifests/<tag|digest>
 *   GET|HEAD|DELETE      /v2/<name>/blobs/<digest>
 *   POST                 /v2/<name>/blobs/uploads/
 *   GET|PATCH|PUT|DELETE /v2/<name>/blobs/uploads/<uuid>
 *   GET      /v2/<name>/referrers/<digest>
 */
import type { Context, Middleware } from 'koa';
import { parseV2Name, type RepoName } from '../../domain/names.js';
import type { AccessService } from '../../services/access.js';
import type { BlobService } from '../../services/blobs.js';
import type { PullRecorder } from '../../services/hub.js';
import type { ManifestService } from '../../services/manifests.js';
import type { RegistryTokenService } from '../../services/registry-tokens.js';
import type { UploadService } from '../../services/uploads.js';
import type { UserService } from '../../services/users.js';
import { principalOf, type AuthScheme } from '../shared/authenticate.js';
import { sendJson } from '../shared/respond.js';
import type { SendOptions } from '../shared/send-blob.js';
import { authenticateV2, challengeOf, REALM_PATH, tokenRealm } from './auth.js';
import { addBlobRoutes } from './blobs.js';
import { addDiscoveryRoutes } from './discovery.js';
import { V2HttpError, v2Errors } from './errors.js';
import { addManifestRoutes } from './manifests.js';
import { RegistryError } from '../../domain/errors.js';

export interface V2Deps {
  access: AccessService;
  users: UserService;
  tokens: RegistryTokenService;
  blobs: BlobService;
  uploads: UploadService;
  manifests: ManifestService;
  pulls: PullRecorder;
  send: SendOptions;
  /** Presigned blob URLs (s3_redirect): blob GETs are redirected to the object store. */
  blobUrl?: (digest: string, expiresInSeconds: number) => Promise<string>;
  maxManifestBytes: number;
  /** Bearer schemes besides the realm's tokens (OAuth access tokens). */
  schemes?: readonly AuthScheme[];
}

/** What a repository route gets: the parsed name, the name as the client wrote it, the rest of the path. */
export interface V2Params {
  name: RepoName;
  rawName: string;
  /** The last path segment (reference, digest or upload id), decoded. */
  ref: string;
}

export type V2Handler = (ctx: Context, params: V2Params) => Promise<void>;
type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

interface Route {
  pattern: RegExp;
  /** The metrics label (`_matchedRoute`). */
  label: string;
  handlers: Partial<Record<Method, V2Handler>>;
}

/** The repository routes, matched in this order; `(.+)` is the name (greedy: the suffix is last). */
export class V2Routes {
  readonly routes: Route[] = [];

  add(suffix: 'blobs/uploads/' | 'blobs/uploads/:id' | 'blobs/:digest' | 'manifests/:reference' | 'tags/list' | 'referrers/:digest', method: Method, handler: V2Handler): void {
    const label = `/v2/:name/${suffix}`;
    let route = this.routes.find((r) => r.label === label);
    if (!route) {
      const tail = suffix.replace(/:[a-z]+$/, '([^/]+)').replace(/\/$/, '/?');
      route = { pattern: new RegExp(`^/v2/(.+)/${tail}$`), label, handlers: {} };
      this.routes.push(route);
      // Upload routes before blob routes: `…/blobs/uploads/x` is never a blob.
      this.routes.sort((a, b) => rank(a.label) - rank(b.label));
    }
    route.handlers[method] = handler;
  }
}

function rank(label: string): number {
  return label.includes('uploads') ? 0 : 1;
}

/** The v2 face as one middleware (every request it is given is answered here). */
export function v2Face(deps: V2Deps): Middleware {
  const routes = new V2Routes();
  addBlobRoutes(routes, deps);
  addManifestRoutes(routes, deps);
  addDiscoveryRoutes(routes, deps);
  const errors = v2Errors({ challenge: (ctx) => challengeOf(ctx, deps.tokens.service) });

  const base = async (ctx: Context) => {
    // Docker asks here first: a 401 tells it to log in (and where), a 200 that it may go on.
    if (!deps.access.isStandalone && principalOf(ctx).kind === 'anonymous') {
      throw new RegistryError('UNAUTHORIZED', 'Authentication required');
    }
    sendJson(ctx, 200, {});
  };

  // Every request given to this middleware is answered here: it never calls `next`.
  return (ctx) => {
    ctx.res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    return errors(ctx, async () => {
      const path = ctx.path;
      if (path === REALM_PATH) {
        label(ctx, REALM_PATH);
        if (ctx.method !== 'GET' && ctx.method !== 'POST') throw notAllowed(['GET', 'POST']);
        return tokenRealm(ctx, deps);
      }
      await authenticateV2(ctx, deps);
      if (path === '/v2/' || path === '/v2') {
        label(ctx, '/v2/');
        if (ctx.method !== 'GET' && ctx.method !== 'HEAD') throw notAllowed(['GET', 'HEAD']);
        return base(ctx);
      }
      if (path === '/v2/_catalog') {
        label(ctx, '/v2/_catalog');
        if (ctx.method !== 'GET') throw notAllowed(['GET']);
        return catalog(ctx, deps);
      }
      for (const route of routes.routes) {
        const m = route.pattern.exec(path);
        if (!m) continue;
        label(ctx, route.label);
        const method = ctx.method as Method;
        const handler = route.handlers[method] ?? (method === 'HEAD' ? route.handlers.GET : undefined);
        if (!handler) throw notAllowed(Object.keys(route.handlers));
        const rawName = m[1];
        const name = parseV2Name(rawName);
        return handler(ctx, { name, rawName, ref: m[2] === undefined ? '' : decodeSegment(m[2]) });
      }
      throw new V2HttpError(404, 'NAME_UNKNOWN', `Unknown Registry API v2 path: ${path.slice(0, 200)}`);
    });
  };
}

async function catalog(ctx: Context, deps: V2Deps): Promise<void> {
  const { n, last } = paging(ctx);
  const page = await deps.manifests.catalog(principalOf(ctx), n, last);
  if (page.next !== null && n !== null) ctx.res.setHeader('Link', `</v2/_catalog?n=${n}&last=${encodeURIComponent(page.next)}>; rel="next"`);
  sendJson(ctx, 200, { repositories: page.items });
}

/** `n` (a count, ≥ 0) and `last` of a listing; PAGINATION_NUMBER_INVALID for a bad `n`. */
export function paging(ctx: Context): { n: number | null; last: string | null } {
  const q = new URLSearchParams(ctx.querystring);
  const rawN = q.get('n');
  let n: number | null = null;
  if (rawN !== null && rawN !== '') {
    if (!/^\d{1,9}$/.test(rawN)) throw new V2HttpError(400, 'PAGINATION_NUMBER_INVALID', `Invalid n: ${JSON.stringify(rawN.slice(0, 20))} (a count of at least 0)`);
    n = Number(rawN);
  }
  const last = q.get('last');
  return { n, last: last === '' ? null : last };
}

function label(ctx: Context, route: string): void {
  (ctx as Context & { _matchedRoute?: string })._matchedRoute = route;
}

function notAllowed(methods: string[]): V2HttpError {
  const allow = [...new Set(methods.includes('GET') ? [...methods, 'HEAD'] : methods)].join(', ');
  return new V2HttpError(405, 'UNSUPPORTED', 'Method not allowed', { Allow: allow });
}

/** A path segment as the client meant it (`sha256%3A…` is `sha256:…`); undecodable stays as is. */
function decodeSegment(segment: string): string {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
