/**
 * Registry API v2 bearer tokens (Docker's token authentication, as `docker login` and every
 * v2 client speak it):
 *
 *   GET /v2/  ─▶ 401  WWW-Authenticate: Bearer realm="<this registry>/v2/token",service="…"
 *   GET|POST <realm>?service=…&scope=repository:<name>:pull,push  (Basic credentials, or
 *        a refresh token: docker's identity token)  ─▶ {token, access_token, expires_in,
 *        issued_at[, refresh_token]}
 *   then every request: Authorization: Bearer <token>
 *
 * The token is an HS256 JWT under a key of its own from the key ring (label below):
 * {iss, sub, aud, iat, nbf, exp, jti, access: [{type: "repository", name, actions}], pv}.
 * It grants what access.ts allows the user at issue time; the user must still be active,
 * with the same password, and still hold the rights when it is used. Refresh tokens are
 * the long-lived JWTs of jwt.ts (typ "refresh"): `docker login` stores one as its
 * identity token and trades it here for access tokens.
 */
import { randomBytes } from 'node:crypto';
import { RegistryError } from '../domain/errors.js';
import { isV2Name, parseV2Name } from '../domain/names.js';
import type { UserRecord } from '../domain/records.js';
import type { AccessService, Principal, V2Action } from './access.js';
import { HmacJwt, type JwtService } from './jwt.js';
import type { KeyRing } from './keyring.js';
import type { UserService } from './users.js';

const KEY_LABEL = 'registry-v2/bearer/v1';
const ACTIONS: ReadonlySet<string> = new Set(['pull', 'push', 'delete']);

export interface AccessEntry {
  type: 'repository' | 'registry';
  name: string;
  actions: string[];
}

export interface TokenAnswer {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
}

export interface TokenRequest {
  /** The account (Basic credentials or a refresh token), null: anonymous. */
  user: UserRecord | null;
  /** The `service` the client names; must be ours. */
  service: string | undefined;
  /** The `scope` values, each `type:name:actions` (several per request allowed). */
  scopes: string[];
  /** Also hand out a refresh token (docker login's `offline_token=true`, OAuth's access_type=offline). */
  offline: boolean;
}

export class RegistryTokenService {
  private readonly signer: HmacJwt;

  constructor(
    keyRing: KeyRing,
    readonly service: string,
    private readonly ttlSeconds: number,
    private readonly access: AccessService,
    private readonly users: UserService,
    private readonly refresh: JwtService,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.signer = new HmacJwt(keyRing.key(KEY_LABEL));
  }

  /** The realm's answer: a token granting, of what was asked, what the user may do. */
  async issue(request: TokenRequest): Promise<TokenAnswer> {
    if (request.service !== undefined && request.service !== '' && request.service !== this.service) {
      throw new RegistryError('INVALID_INPUT', `Unknown service ${JSON.stringify(request.service.slice(0, 100))}: this registry is ${JSON.stringify(this.service)}`);
    }
    const access: AccessEntry[] = [];
    for (const scope of request.scopes) {
      const entry = parseScope(scope);
      if (!entry) continue; // unknown resource types are not granted (and not an error)
      if (entry.type === 'registry') {
        if (entry.name === 'catalog' && this.access.grantsCatalog(request.user)) access.push({ type: 'registry', name: 'catalog', actions: ['*'] });
        continue;
      }
      const granted = await this.access.grantable(request.user, parseV2Name(entry.name), entry.actions as V2Action[]);
      const existing = access.find((a) => a.type === 'repository' && a.name === entry.name);
      if (existing) existing.actions = [...new Set([...existing.actions, ...granted])];
      else access.push({ type: 'repository', name: entry.name, actions: granted });
    }
    const iat = Math.floor(this.now() / 1000);
    const token = this.signer.sign({
      iss: this.service,
      sub: request.user?.name ?? '',
      aud: this.service,
      iat,
      nbf: iat - 1,
      exp: iat + this.ttlSeconds,
      jti: randomBytes(9).toString('base64url'),
      access,
      pv: request.user ? this.refresh.passwordVersionOf(request.user) : '',
    });
    const answer: TokenAnswer = { token, access_token: token, expires_in: this.ttlSeconds, issued_at: new Date(iat * 1000).toISOString() };
    if (request.offline && request.user) answer.refresh_token = this.refresh.issue(request.user, 'refresh');
    return answer;
  }

  /** The account behind a refresh token (docker's identity token). */
  userOfRefreshToken(token: string): Promise<UserRecord> {
    return this.refresh.userOf(token, 'refresh', this.users);
  }

  /**
   * The principal of `Authorization: Bearer <token>`: UNAUTHORIZED when malformed, forged,
   * expired, for another service, or when its account changed (disabled, new password).
   */
  async principalOf(token: string): Promise<Principal> {
    const { claims } = this.signer.verify(token);
    if (!claims) throw new RegistryError('UNAUTHORIZED', 'Invalid token');
    const now = this.now() / 1000;
    if (typeof claims.exp !== 'number' || claims.exp <= now) throw new RegistryError('UNAUTHORIZED', 'Token expired');
    if (claims.aud !== this.service) throw new RegistryError('UNAUTHORIZED', 'Token for another service');
    if (!Array.isArray(claims.access) || typeof claims.sub !== 'string') throw new RegistryError('UNAUTHORIZED', 'Invalid token');
    let user: UserRecord | null = null;
    if (claims.sub !== '') {
      user = await this.users.get(claims.sub);
      if (!user || claims.pv !== this.refresh.passwordVersionOf(user)) throw new RegistryError('UNAUTHORIZED', 'Invalid token: the account or its password changed');
      if (!user.active) throw new RegistryError('UNAUTHORIZED', 'User account is disabled');
    }
    const grants = new Map<string, Set<V2Action>>();
    let catalog = false;
    for (const entry of claims.access as AccessEntry[]) {
      if (entry?.type === 'registry' && entry.name === 'catalog') catalog = true;
      if (entry?.type !== 'repository' || typeof entry.name !== 'string' || !isV2Name(entry.name) || !Array.isArray(entry.actions)) continue;
      const full = parseV2Name(entry.name).full;
      const actions = grants.get(full) ?? new Set<V2Action>();
      for (const a of entry.actions) if (ACTIONS.has(a)) actions.add(a as V2Action);
      grants.set(full, actions);
    }
    return { kind: 'bearer', user, grants, catalog };
  }
}

/**
 * `repository:<name>:<actions>` (the name may hold no colon; actions comma-separated, `*` is
 * every action) or `registry:catalog:*`; null for anything else.
 */
export function parseScope(scope: string): { type: 'repository' | 'registry'; name: string; actions: string[] } | null {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return null;
  const type = scope.slice(0, first);
  const name = scope.slice(first + 1, last);
  const actions = scope.slice(last + 1).split(',').map((a) => a.trim()).filter(Boolean);
  if (type === 'registry') return { type, name, actions };
  if (type !== 'repository' || !isV2Name(name)) return null;
  try {
    parseV2Name(name);
  } catch {
    return null;
  }
  const wanted = actions.includes('*') ? ['pull', 'push', 'delete'] : actions.filter((a) => ACTIONS.has(a));
  return { type, name, actions: [...new Set(wanted)] };
}
