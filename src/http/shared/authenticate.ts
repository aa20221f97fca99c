/**
 * Who is calling: reads `Authorization` once per request (Basic user:password, an Index
 * token `Token signature=…`, or one of the extra `schemes`: OAuth `Bearer oat_…`) and
 * leaves the principal in ctx.state. Bad credentials
 * are answered at once (401, or 403 for an inactive account), whatever the route;
 * no credentials make the caller anonymous, unless a valid session cookie (session.ts)
 * carries a grant. An `/v1/` request authenticated by Basic or an Index token opens (or
 * renews) that session. The ping routes never look. Password checks are throttled per
 * account and per client address (429 + Retry-After).
 */
import type { Context, Next } from 'koa';
import { RegistryError } from '../../domain/errors.js';
import { ANONYMOUS, type Principal } from '../../services/access.js';
import { OAuthService } from '../../services/oauth.js';
import type { TokenService } from '../../services/tokens.js';
import type { UserService } from '../../services/users.js';
import type { UserRecord } from '../../domain/records.js';
import { isSecure, sessionApplies, sessionIsSet, type Authenticated, type SessionCookies } from './session.js';

const SKIP = new Set(['/_ping', '/v1/_ping']);

export function principalOf(ctx: Context): Principal {
  return (ctx.state as { principal?: Principal }).principal ?? ANONYMOUS;
}

/** The user name behind the request, for events and logs (null: anonymous). */
export function actorOf(ctx: Context): string | null {
  const principal = principalOf(ctx);
  return principal.kind === 'anonymous' ? null : principal.user?.name ?? null;
}

/** A credential scheme besides Basic and Token (the OAuth face's Bearer tokens, …). */
export interface AuthScheme {
  /** Does this scheme read `Authorization: <scheme> <value>` (`scheme` lower-cased)? */
  accepts(scheme: string, value: string): boolean;
  /** The principal, or UNAUTHORIZED / INACTIVE_ACCOUNT. */
  principal(value: string): Promise<Principal>;
}

export function authenticate(users: UserService, tokens: TokenService, sessions: SessionCookies, schemes: readonly AuthScheme[] = []) {
  return async (ctx: Context, next: Next) => {
    if (SKIP.has(ctx.path)) return next();
    const state = ctx.state as { principal?: Principal };
    const header = ctx.get('Authorization');
    if (header) {
      const { principal, session } = await resolve(header, users, tokens, ctx.ip, schemes);
      state.principal = principal;
      if (session && sessionIsSet(ctx.method, ctx.path)) ctx.res.setHeader('Set-Cookie', sessions.open(session, isSecure(ctx)));
    } else if (ctx.req.headers.cookie && sessionApplies(ctx.method, ctx.path)) {
      state.principal = (await sessions.principal(ctx.req.headers.cookie, users)) ?? undefined;
    }
    await next();
  };
}

/** OAuth access tokens (`Authorization: Bearer oat_…`): the user, within the token's scopes. */
export function oauthBearer(oauth: OAuthService): AuthScheme {
  return {
    accepts: (scheme, value) => scheme === 'bearer' && OAuthService.isAccessToken(value),
    principal: async (value) => ({ kind: 'oauth', ...(await oauth.authenticate(value)) }),
  };
}

/** Splits `Authorization` into its lower-cased scheme and the rest. */
export function parseAuthorization(header: string): { scheme: string; value: string } {
  const space = header.indexOf(' ');
  return {
    scheme: (space === -1 ? header : header.slice(0, space)).toLowerCase(),
    value: space === -1 ? '' : header.slice(space + 1).trim(),
  };
}

/**
 * The account behind Basic credentials (`value` is the base64 part). Password checks are
 * throttled per account and per client address (429 + Retry-After, services/throttle.ts).
 */
export async function basicUser(value: string, users: UserService, address: string): Promise<UserRecord> {
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) throw new RegistryError('UNAUTHORIZED', 'Invalid Basic credentials');
  return users.authenticate(decoded.slice(0, colon), decoded.slice(colon + 1), address);
}

/** The principal behind an `Authorization` header (see authenticate). */
export async function resolvePrincipal(
  header: string,
  users: UserService,
  tokens: TokenService,
  address: string,
  schemes: readonly AuthScheme[] = [],
): Promise<Principal> {
  return (await resolve(header, users, tokens, address, schemes)).principal;
}

/**
 * The principal behind an `Authorization` header, and the grant a session cookie may carry
 * for it (Basic and Index tokens; null for the extra schemes, which never open a session).
 */
async function resolve(
  header: string,
  users: UserService,
  tokens: TokenService,
  address: string,
  schemes: readonly AuthScheme[],
): Promise<{ principal: Principal; session: Authenticated | null }> {
  const { scheme, value } = parseAuthorization(header);
  for (const extra of schemes) if (extra.accepts(scheme, value)) return { principal: await extra.principal(value), session: null };
  if (scheme === 'basic') {
    const user = await basicUser(value, users, address);
    return { principal: { kind: 'user', user }, session: { kind: 'user', user } };
  }
  if (scheme === 'token') {
    const claims = tokens.verify(value);
    let user = null;
    if (claims.user) {
      user = await users.get(claims.user);
      if (!user) throw new RegistryError('UNAUTHORIZED', 'Invalid token');
      if (!user.active) throw new RegistryError('INACTIVE_ACCOUNT', 'Account is not active');
    }
    return { principal: { kind: 'token', user, repo: claims.repo, access: claims.access }, session: { kind: 'token', claims } };
  }
  throw new RegistryError('UNAUTHORIZED', `Unsupported authorization scheme (use Basic or Token${schemes.length > 0 ? ', or Bearer with an OAuth access token' : ''})`);
}
