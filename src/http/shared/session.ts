/**
 * The session cookie of the v1 faces, as both reference servers keep a session (Flask's
 * signed cookie): after a request authenticated by an Index token or by Basic credentials,
 * the answer sets
 *
 *   registry_session=<payload>.<mac>; Path=/v1/; Max-Age=…; Expires=…; HttpOnly; SameSite=Strict[; Secure]
 *
 * and a later request that carries the cookie and no `Authorization` is authorized as that
 * same grant: the token's repository and access, or the Basic user, until the same expiry
 * (the token's; `token_ttl_seconds` for Basic). docker 1.x keeps a cookie jar, and clients
 * written against the reference servers tag an image after its upload with no token,
 * relying on it. <payload> is base64url JSON; <mac> is HMAC-SHA256 of it with a key derived
 * from the registry secret (the one Index tokens and Hub JWTs derive theirs from, with a
 * label of its own, so no other signed thing passes as a session). Stateless: it survives
 * restarts and works behind a load balancer.
 *
 * A cookie that is malformed, forged, expired, or whose user is gone, inactive or (for a
 * Basic session) has changed password since, is ignored: the request is anonymous. A
 * session never widens a grant: it is exactly what the request that opened it had.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { Context } from 'koa';
import type { UserRecord } from '../../domain/records.js';
import { parseRepoPath } from '../../domain/names.js';
import type { Principal } from '../../services/access.js';
import { passwordVersion } from '../../services/jwt.js';
import type { TokenAccess, TokenClaims } from '../../services/tokens.js';
import type { UserService } from '../../services/users.js';
import type { KeyRing } from '../../services/keyring.js';

export const SESSION_COOKIE = 'registry_session';
const KEY_LABEL = 'v1-registry/session-cookie/v1';
const VALUE = /^([A-Za-z0-9_-]{1,2048})\.([A-Za-z0-9_-]{43})$/;
const ACCESS = new Set<TokenAccess>(['read', 'write', 'delete']);

/** What authenticated a request: Basic credentials (the user), or an Index token. */
export type Authenticated = { kind: 'user'; user: UserRecord } | { kind: 'token'; claims: TokenClaims };

/** What a session carries: the grant of the request that opened it. */
type Grant =
  | { k: 'u'; u: string; p: string; e: number }
  | { k: 't'; u: string; r: string; a: TokenAccess; e: number };

export class SessionCookies {
  private readonly key: Buffer;

  constructor(
    keys: KeyRing,
    private readonly ttlSeconds: number,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.key = keys.key(KEY_LABEL);
  }

  /** The `Set-Cookie` value of the session a request authenticated by `by` opens. */
  open(by: Authenticated, secure: boolean): string {
    if (by.kind === 'user') {
      const expires = Math.floor(this.now() / 1000) + this.ttlSeconds;
      return this.cookie({ k: 'u', u: by.user.name, p: passwordVersion(by.user.passwordHash), e: expires }, secure);
    }
    const { claims } = by;
    return this.cookie({ k: 't', u: claims.user ?? '', r: claims.repo.full, a: claims.access, e: claims.expiresAt }, secure);
  }

  /**
   * The principal of the first session cookie in a `Cookie` header, or null when there is
   * none or it must be ignored (malformed, forged, expired, user gone or inactive, password
   * changed). Never throws for anything the client sent.
   */
  async principal(cookieHeader: string | undefined, users: UserService): Promise<Principal | null> {
    const grant = this.read(cookieHeader);
    if (!grant) return null;
    const user = grant.u ? await users.get(grant.u) : null;
    if (grant.u && (!user || !user.active)) return null;
    if (grant.k === 'u') {
      if (!user || !timingSafeEqualText(passwordVersion(user.passwordHash), grant.p)) return null;
      return { kind: 'user', user };
    }
    let repo;
    try {
      repo = parseRepoPath(grant.r);
    } catch {
      return null;
    }
    return { kind: 'token', user, repo, access: grant.a };
  }

  private cookie(grant: Grant, secure: boolean): string {
    const payload = Buffer.from(JSON.stringify(grant)).toString('base64url');
    const maxAge = Math.max(0, grant.e - Math.floor(this.now() / 1000));
    const expires = new Date(grant.e * 1000).toUTCString();
    return `${SESSION_COOKIE}=${payload}.${this.mac(payload)}; Path=/v1/; Max-Age=${maxAge}; Expires=${expires}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
  }

  private read(cookieHeader: string | undefined): Grant | null {
    const value = cookieValue(cookieHeader, SESSION_COOKIE);
    const m = value === null ? null : VALUE.exec(value);
    if (!m) return null;
    const [, payload, mac] = m;
    if (!timingSafeEqualText(this.mac(payload), mac)) return null;
    let grant: Partial<Grant> & Record<string, unknown>;
    try {
      grant = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return null;
    }
    if (grant === null || typeof grant !== 'object' || typeof grant.u !== 'string' || typeof grant.e !== 'number') return null;
    if (grant.e * 1000 <= this.now()) return null;
    if (grant.k === 'u' && grant.u !== '' && typeof grant.p === 'string') return grant as Grant;
    if (grant.k === 't' && typeof grant.r === 'string' && ACCESS.has(grant.a as TokenAccess)) return grant as Grant;
    return null;
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }
}

/**
 * Requests a session may authorize: the repository and image routes. Not the accounts
 * (a password change or a login check needs the password), search, nor the registry-wide
 * admin routes (`DELETE /v1/images/:id`, `/_admin/…`), which need real credentials.
 */
export function sessionApplies(method: string, path: string): boolean {
  if (path.startsWith('/v1/repositories/')) return true;
  return path.startsWith('/v1/images/') && !(method === 'DELETE' && path.indexOf('/', '/v1/images/'.length) === -1);
}

/**
 * Answers that set the session: every authenticated `/v1/` request except the cacheable
 * image reads (`GET|HEAD /v1/images/…` are `Cache-Control: public`; a shared cache must never
 * store a cookie with them) and the ping.
 */
export function sessionIsSet(method: string, path: string): boolean {
  if (!path.startsWith('/v1/') || path === '/v1/_ping') return false;
  return !((method === 'GET' || method === 'HEAD') && path.startsWith('/v1/images/'));
}

/** The request arrived over TLS (here, or at a proxy that says so): the cookie is `Secure`. */
export function isSecure(ctx: Context): boolean {
  return (ctx.req.socket as TLSSocket).encrypted === true || ctx.get('X-Forwarded-Proto').toLowerCase() === 'https';
}

/** The value of the first cookie called `name` in a `Cookie` header, or null. */
function cookieValue(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
  }
  return null;
}

function timingSafeEqualText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
