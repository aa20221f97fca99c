/**
 * Who is calling: reads `Authorization` once per request (Basic user:password, or an
 * Index token `Token signature=…`) and leaves the principal in ctx.state. Bad credentials
 * are answered at once (401, or 403 for an inactive account), whatever the route;
 * no credentials make the caller anonymous. The ping routes never look. Password checks
 * are throttled per account and per client address (429 + Retry-After).
 */
import type { Context, Next } from 'koa';
import { RegistryError } from '../../domain/errors.js';
import { ANONYMOUS, type Principal } from '../../services/access.js';
import type { TokenService } from '../../services/tokens.js';
import type { UserService } from '../../services/users.js';
import type { UserRecord } from '../../domain/records.js';

const SKIP = new Set(['/_ping', '/v1/_ping']);

export function principalOf(ctx: Context): Principal {
  return (ctx.state as { principal?: Principal }).principal ?? ANONYMOUS;
}

/** The user name behind the request, for events and logs (null: anonymous). */
export function actorOf(ctx: Context): string | null {
  const principal = principalOf(ctx);
  return principal.kind === 'anonymous' ? null : principal.user?.name ?? null;
}

export function authenticate(users: UserService, tokens: TokenService) {
  return async (ctx: Context, next: Next) => {
    const header = ctx.get('Authorization');
    if (header && !SKIP.has(ctx.path)) {
      (ctx.state as { principal?: Principal }).principal = await resolve(header, users, tokens, ctx.ip);
    }
    await next();
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

async function resolve(header: string, users: UserService, tokens: TokenService, address: string): Promise<Principal> {
  const { scheme, value } = parseAuthorization(header);
  if (scheme === 'basic') return { kind: 'user', user: await basicUser(value, users, address) };
  if (scheme === 'token') {
    const claims = tokens.verify(value);
    let user = null;
    if (claims.user) {
      user = await users.get(claims.user);
      if (!user) throw new RegistryError('UNAUTHORIZED', 'Invalid token');
      if (!user.active) throw new RegistryError('INACTIVE_ACCOUNT', 'Account is not active');
    }
    return { kind: 'token', user, repo: claims.repo, access: claims.access };
  }
  throw new RegistryError('UNAUTHORIZED', 'Unsupported authorization scheme (use Basic or Token)');
}
