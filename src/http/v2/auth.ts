/**
 * Who calls the Registry API v2, and the token realm.
 *
 * - `Authorization: Bearer <token>`: a token from the realm below (registry-tokens.ts), or
 *   an OAuth access token (`oat_…`, the `schemes` given: issue 17's repo_read / repo_write
 *   act for their user within the user's permissions, as on the v1 routes).
 * - `Authorization: Basic …`: straight on every v2 route too (curl, simple clients).
 * - nothing: anonymous (public repositories may be read; `GET /v2/` asks for credentials
 *   unless the registry is standalone, which is how docker learns where to log in).
 *
 * The realm is `GET|POST /v2/token`. It cannot be mistaken for a repository: every
 * repository route has a suffix (`/v2/token/manifests/…`, `/v2/token/tags/list`), so
 * `/v2/token` itself is never a repository path and a repository may be named `token`.
 */
import type { Context } from 'koa';
import { RegistryError } from '../../domain/errors.js';
import type { AccessService, Principal, RepoAction } from '../../services/access.js';
import type { RegistryTokenService } from '../../services/registry-tokens.js';
import type { UserService } from '../../services/users.js';
import type { UserRecord } from '../../domain/records.js';
import type { RepoName } from '../../domain/names.js';
import { basicUser, parseAuthorization, principalOf, type AuthScheme } from '../shared/authenticate.js';
import { readRawBody } from '../shared/body.js';
import { NO_CACHE, sendJson } from '../shared/respond.js';
import { originOf } from '../shared/origin.js';

export const REALM_PATH = '/v2/token';

/** What a 401 challenge names: the repository and the actions the request needs. */
interface ChallengeScope {
  name: string;
  actions: string;
}

interface V2State {
  principal?: Principal;
  v2scope?: ChallengeScope;
  v2insufficient?: boolean;
}

const ACTIONS_OF: Record<RepoAction, string> = { read: 'pull', write: 'pull,push', untag: 'delete', delete: 'delete', admin: '*' };

export interface V2AuthDeps {
  users: UserService;
  tokens: RegistryTokenService;
  access: AccessService;
  /** Bearer schemes besides the realm's tokens (OAuth access tokens). */
  schemes?: readonly AuthScheme[];
}

/** Reads the caller's credentials into ctx.state.principal (bad ones: 401 at once). */
export async function authenticateV2(ctx: Context, deps: V2AuthDeps): Promise<void> {
  const header = ctx.get('Authorization');
  if (!header) return;
  const { scheme, value } = parseAuthorization(header);
  let principal: Principal;
  const extra = deps.schemes?.find((s) => s.accepts(scheme, value));
  if (extra) principal = await extra.principal(value);
  else if (scheme === 'bearer' && value) principal = await deps.tokens.principalOf(value);
  else if (scheme === 'basic') principal = { kind: 'user', user: await basicUser(value, deps.users, ctx.ip) };
  else throw new RegistryError('UNAUTHORIZED', 'Unsupported authorization scheme (use Bearer or Basic)');
  (ctx.state as V2State).principal = principal;
}

/**
 * access.authorizeRepo, remembering what the request needs so that a 401 can say it in its
 * challenge (the client then asks the realm for exactly that scope).
 */
export async function authorizeV2(ctx: Context, access: AccessService, name: RepoName, rawName: string, action: RepoAction): Promise<void> {
  (ctx.state as V2State).v2scope = { name: rawName, actions: ACTIONS_OF[action] };
  try {
    await access.authorizeRepo(principalOf(ctx), name, action);
  } catch (err) {
    if (err instanceof RegistryError && err.details.insufficientScope) (ctx.state as V2State).v2insufficient = true;
    throw err;
  }
}

/** The `WWW-Authenticate` of a 401 from the v2 face. */
export function challengeOf(ctx: Context, service: string): string {
  const state = ctx.state as V2State;
  let value = `Bearer realm="${originOf(ctx)}${REALM_PATH}",service="${service}"`;
  if (state.v2scope) value += `,scope="repository:${state.v2scope.name}:${state.v2scope.actions}"`;
  if (state.v2insufficient) value += ',error="insufficient_scope"';
  return value;
}

/** GET|POST /v2/token: docker's token protocol (and the OAuth2 password/refresh grants). */
export async function tokenRealm(ctx: Context, deps: V2AuthDeps): Promise<void> {
  const params = new URLSearchParams(ctx.querystring);
  let user: UserRecord | null = null;
  const header = ctx.get('Authorization');
  if (ctx.method === 'POST') {
    // application/x-www-form-urlencoded, as docker sends it.
    const form = new URLSearchParams((await readRawBody(ctx, 64 * 1024)).toString('utf8'));
    for (const [k, v] of form) params.append(k, v);
    const grant = params.get('grant_type');
    if (grant === 'password') {
      const username = params.get('username') ?? '';
      const password = params.get('password') ?? '';
      if (!username || !password) throw new RegistryError('INVALID_INPUT', 'grant_type=password needs username and password');
      user = await deps.users.authenticate(username.toLowerCase(), password, ctx.ip);
    } else if (grant === 'refresh_token') {
      const refresh = params.get('refresh_token');
      if (!refresh) throw new RegistryError('INVALID_INPUT', 'grant_type=refresh_token needs refresh_token');
      user = await deps.tokens.userOfRefreshToken(refresh);
    } else {
      throw new RegistryError('INVALID_INPUT', 'grant_type must be password or refresh_token');
    }
  } else if (header) {
    const { scheme, value } = parseAuthorization(header);
    if (scheme !== 'basic') throw new RegistryError('UNAUTHORIZED', 'The token realm takes Basic credentials');
    user = await basicUser(value, deps.users, ctx.ip);
  }
  if (user && !user.active) throw new RegistryError('INACTIVE_ACCOUNT', 'Account is not active');
  const offline = params.get('offline_token') === 'true' || params.get('access_type') === 'offline' || (ctx.method === 'POST' && params.get('grant_type') === 'password');
  const answer = await deps.tokens.issue({
    user,
    service: params.get('service') ?? undefined,
    scopes: params.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean),
    offline,
  });
  ctx.res.setHeader('Cache-Control', 'no-store');
  ctx.res.setHeader('Pragma', NO_CACHE);
  sendJson(ctx, 200, answer);
}
