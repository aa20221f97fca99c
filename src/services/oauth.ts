/**
 * OAuth 2 (RFC 6749, authorization-code grant with refresh tokens; Docker Hub's OAuth API
 * v1.1): third-party applications act for a user, with the user's consent, within scopes.
 *
 * - **Clients** are registered by admins (`registry oauth-client add`, `/_admin/oauth/clients`):
 *   a random `client_id`, a secret shown once, and the redirect URIs codes may go to (a
 *   request's `redirect_uri` must equal one of them exactly).
 * - **Codes** come from the consent page (src/http/oauth/), live `oauth_code_ttl_seconds`
 *   and are single-use: a second exchange of a code fails and revokes the grant the first
 *   one started (RFC 6749 §4.1.2). PKCE (S256) is honoured when the client sends a challenge.
 * - **Grants**: one exchanged code = one grant = one family of tokens. Refresh tokens rotate
 *   (each refresh gives a new pair; the old refresh token is retired), and a retired
 *   refresh token that comes back revokes its grant. A user lists and revokes the apps
 *   they authorized (all grants of a client at once).
 * - **Tokens** are random (`oat_…` access, `ort_…` refresh, `oac_…` code; client secrets
 *   64 hex digits); the store keeps their SHA-256 only. An access token stops working when
 *   it expires, when its grant is revoked, when its client is removed, and when its user
 *   is disabled or deleted.
 *
 * The token endpoint's grant handling (client authentication, code and refresh checks,
 * PKCE, the RFC 6749 §5 answers) is `@node-oauth/oauth2-server`'s; `model` below is its
 * bridge to our store. What a token may do is decided in access.ts from its scopes.
 */
import { createHash, randomBytes } from 'node:crypto';
import OAuth2Server from '@node-oauth/oauth2-server';
import { invalidInput, notFound, RegistryError } from '../domain/errors.js';
import type { OAuthClientRecord, OAuthGrantRecord, OAuthScope, OAuthTokenRecord, UserRecord } from '../domain/records.js';
import type { OAuthStore } from '../store/metadata/ports.js';
import { safeEqual } from './keyring.js';
import type { UserService } from './users.js';

/** Every scope, with what the consent page says it allows. */
export const OAUTH_SCOPES: Readonly<Record<OAuthScope, string>> = Object.freeze({
  profile_read: 'Read your profile: name, e-mail, location, company and web site',
  profile_write: 'Change your profile: name, location, company and web site',
  repo_read: 'Pull from the repositories you may read, private ones included',
  repo_write: 'Push to, tag in and delete from the repositories you may write',
});

/** The scope of a request that names none. */
export const DEFAULT_SCOPES: readonly OAuthScope[] = Object.freeze(['profile_read'] as OAuthScope[]);

export interface OAuthOptions {
  codeTtlSeconds: number;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
}

/** A client as admins see it (never its secret). */
export interface OAuthClientView {
  client_id: string;
  name: string;
  redirect_uris: string[];
  created_at: string;
}

/** A checked authorization request (the consent page shows it, approval turns it into a code). */
export interface AuthorizeRequest {
  client: OAuthClientRecord;
  redirectUri: string;
  scopes: OAuthScope[];
  state: string | null;
  codeChallenge: string | null;
  codeChallengeMethod: string | null;
}

/** The raw query or form parameters of an authorization request. */
export type AuthorizeParams = Record<string, string | undefined>;

/**
 * A refused authorization request. With `redirectUri` the refusal goes back to the client
 * (RFC 6749 §4.1.2.1: `redirect_uri?error=…&state=…`); without one (unknown client, a
 * redirect URI that is not registered) it must never redirect: the user gets an error page.
 */
export class AuthorizeError extends Error {
  constructor(
    readonly error: string,
    message: string,
    readonly redirectUri: string | null = null,
    readonly state: string | null = null,
  ) {
    super(message);
    this.name = 'AuthorizeError';
  }
}

/** Who an access token acts for, and within which scopes. */
export interface OAuthIdentity {
  user: UserRecord;
  scopes: OAuthScope[];
  clientId: string;
}

/** An application a user authorized (their list of apps). */
export interface AuthorizedApp {
  client_id: string;
  name: string;
  scope: string;
  authorized_at: string;
}

/** What the token endpoint needs (codes are saved by approve(), not by the library). */
export type TokenEndpointModel = Omit<OAuth2Server.AuthorizationCodeModel, 'saveAuthorizationCode'> & OAuth2Server.RefreshTokenModel;

/** The library's opaque "user": the account, and the grant its tokens belong to. */
interface Subject {
  username: string;
  grantId: string;
}

const GRANTS = ['authorization_code', 'refresh_token'];
const CLIENT_ID = /^[0-9a-f]{32}$/;
const PKCE_CHALLENGE = /^[A-Za-z0-9._~-]{43,128}$/;
const PRUNE_EVERY_MS = 3_600_000;

export function hashSecret(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

function randomToken(prefix: string): string {
  return prefix + randomBytes(32).toString('base64url');
}

export function isScope(value: string): value is OAuthScope {
  return Object.prototype.hasOwnProperty.call(OAUTH_SCOPES, value);
}

/** `base` with `params` added to its query (its own query parameters kept). */
export function withQuery(base: string, params: Record<string, string | null>): string {
  const url = new URL(base);
  for (const [name, value] of Object.entries(params)) if (value !== null) url.searchParams.set(name, value);
  return url.href;
}

export class OAuthService {
  private pruner: NodeJS.Timeout | null = null;
  private pruning: Promise<void> | null = null;

  constructor(
    private readonly meta: OAuthStore,
    private readonly users: UserService,
    readonly options: OAuthOptions,
  ) {}

  // ── clients (admins) ──────────────────────────────────────────────────────────────

  /** Registers a client; the secret is in the answer only (the store keeps its hash). */
  async addClient(name: unknown, redirectUris: unknown): Promise<OAuthClientView & { client_secret: string }> {
    if (typeof name !== 'string' || name.trim() === '' || name.length > 100 || /[\u0000-\u001f\u007f]/.test(name)) {
      throw invalidInput('Invalid client name: 1 to 100 printable characters');
    }
    if (!Array.isArray(redirectUris) || redirectUris.length === 0 || redirectUris.length > 20) {
      throw invalidInput('Give 1 to 20 redirect URIs');
    }
    const uris = redirectUris.map(checkRedirectUri);
    // Hex only: RFC 6749 §2.3.1 has clients form-encode the secret inside Basic, and some
    // (oauth4webapi) escape even `-` and `_`; hex needs no escaping at all.
    const secret = randomBytes(32).toString('hex');
    const client: OAuthClientRecord = {
      id: randomBytes(16).toString('hex'),
      name: name.trim(),
      secretHash: hashSecret(secret),
      redirectUris: [...new Set(uris)],
      createdAt: new Date().toISOString(),
    };
    await this.meta.putOAuthClient(client);
    return { ...clientView(client), client_secret: secret };
  }

  async listClients(): Promise<OAuthClientView[]> {
    const out: OAuthClientView[] = [];
    for await (const client of this.meta.listOAuthClients()) out.push(clientView(client));
    return out;
  }

  /** Removes a client: its tokens stop working at once. */
  async removeClient(id: string): Promise<void> {
    if (!CLIENT_ID.test(id) || !(await this.meta.deleteOAuthClient(id))) throw notFound(`No OAuth client ${id}`);
  }

  // ── authorization (the consent page) ─────────────────────────────────────────────

  /**
   * Checks an authorization request. The client and the redirect URI are checked first:
   * until both are known good, a refusal is an error page, never a redirect.
   */
  async checkAuthorize(params: AuthorizeParams): Promise<AuthorizeRequest> {
    const clientId = params.client_id ?? '';
    const client = CLIENT_ID.test(clientId) ? await this.meta.getOAuthClient(clientId) : null;
    if (!client) throw new AuthorizeError('invalid_client', 'Unknown application (client_id).');
    const redirectUri = params.redirect_uri;
    if (!redirectUri) throw new AuthorizeError('invalid_request', 'The request has no redirect_uri.');
    if (!client.redirectUris.includes(redirectUri)) {
      throw new AuthorizeError('invalid_request', `The redirect_uri is not registered for ${client.name}.`);
    }
    const state = params.state ? params.state : null;
    const refuse = (error: string, message: string) => new AuthorizeError(error, message, redirectUri, state);
    if (state !== null && (state.length > 2048 || /[^\x20-\x7e]/.test(state))) throw refuse('invalid_request', 'Invalid state');
    if (params.response_type !== 'code') throw refuse('unsupported_response_type', 'Only response_type=code is supported');
    const scopes = parseScopes(params.scope);
    if (!scopes) throw refuse('invalid_scope', `Unknown scope; known: ${Object.keys(OAUTH_SCOPES).join(' ')}`);
    let codeChallenge: string | null = null;
    let codeChallengeMethod: string | null = null;
    if (params.code_challenge !== undefined || params.code_challenge_method !== undefined) {
      if (params.code_challenge_method !== 'S256') throw refuse('invalid_request', 'code_challenge_method must be S256');
      if (!PKCE_CHALLENGE.test(params.code_challenge ?? '')) throw refuse('invalid_request', 'Invalid code_challenge');
      codeChallenge = params.code_challenge as string;
      codeChallengeMethod = 'S256';
    }
    return { client, redirectUri, scopes, state, codeChallenge, codeChallengeMethod };
  }

  /** The user approved: a new code, and where to send the browser with it. */
  async approve(request: AuthorizeRequest, user: UserRecord): Promise<string> {
    const code = randomToken('oac_');
    await this.meta.putOAuthCode({
      hash: hashSecret(code),
      clientId: request.client.id,
      user: user.name,
      redirectUri: request.redirectUri,
      scopes: request.scopes,
      expiresAt: new Date(Date.now() + this.options.codeTtlSeconds * 1000).toISOString(),
      codeChallenge: request.codeChallenge,
      codeChallengeMethod: request.codeChallengeMethod,
      grantId: randomBytes(16).toString('hex'),
      usedAt: null,
    });
    return withQuery(request.redirectUri, { code, state: request.state });
  }

  /** The user said no. */
  deny(request: AuthorizeRequest): string {
    return withQuery(request.redirectUri, { error: 'access_denied', error_description: 'The user denied access', state: request.state });
  }

  // ── tokens ────────────────────────────────────────────────────────────────────────

  /** Does `token` look like one of our access tokens (the authenticator's routing)? */
  static isAccessToken(token: string): boolean {
    return token.startsWith('oat_');
  }

  /** Who an access token acts for; UNAUTHORIZED when it is unknown, expired or revoked. */
  async authenticate(token: string): Promise<OAuthIdentity> {
    const record = OAuthService.isAccessToken(token) ? await this.meta.getOAuthToken(hashSecret(token)) : null;
    if (!record || record.kind !== 'access') throw new RegistryError('UNAUTHORIZED', 'The access token is invalid or was revoked');
    if (Date.parse(record.expiresAt) <= Date.now()) throw new RegistryError('UNAUTHORIZED', 'The access token expired');
    if (!(await this.meta.getOAuthClient(record.clientId))) throw new RegistryError('UNAUTHORIZED', 'The application was removed');
    const user = await this.users.get(record.user);
    if (!user || !user.active) throw new RegistryError('UNAUTHORIZED', 'The account is disabled or gone');
    return { user, scopes: record.scopes, clientId: record.clientId };
  }

  /**
   * RFC 7009 revocation by the client: a refresh token revokes its whole grant, an access
   * token only itself. Unknown tokens and other clients' tokens are ignored (the answer is
   * the same, so nothing is learnt from it).
   */
  async revokeToken(clientId: string, token: string): Promise<void> {
    const record = await this.meta.getOAuthToken(hashSecret(token));
    if (!record || record.clientId !== clientId) return;
    if (record.kind === 'refresh') await this.revokeGrant(record);
    else await this.meta.deleteOAuthToken(record.hash);
  }

  // ── the user's authorized applications ───────────────────────────────────────────

  async listApps(user: string): Promise<AuthorizedApp[]> {
    const byClient = new Map<string, AuthorizedApp>();
    for await (const grant of this.meta.listOAuthGrants(user)) {
      if (grant.revokedAt) continue;
      const client = await this.meta.getOAuthClient(grant.clientId);
      if (!client) continue;
      const seen = byClient.get(client.id);
      const scopes = new Set([...(seen ? seen.scope.split(' ') : []), ...grant.scopes]);
      byClient.set(client.id, {
        client_id: client.id,
        name: client.name,
        scope: Object.keys(OAUTH_SCOPES).filter((s) => scopes.has(s as OAuthScope)).join(' '),
        authorized_at: seen && seen.authorized_at < grant.createdAt ? seen.authorized_at : grant.createdAt,
      });
    }
    return [...byClient.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Revokes every grant `user` gave `clientId`; NOT_FOUND when there was none. */
  async revokeApp(user: string, clientId: string): Promise<void> {
    const at = new Date().toISOString();
    let revoked = 0;
    for (const grant of await collect(this.meta.listOAuthGrants(user))) {
      if (grant.clientId === clientId && !grant.revokedAt && (await this.meta.revokeOAuthGrant(grant, at))) revoked += 1;
    }
    if (revoked === 0) throw notFound('You have not authorized this application');
  }

  /** Revokes the grant a code or token belongs to (see OAuthStore.revokeOAuthGrant). */
  private revokeGrant(of: { user: string; grantId: string; clientId: string }): Promise<boolean> {
    return this.meta.revokeOAuthGrant({ id: of.grantId, user: of.user, clientId: of.clientId }, new Date().toISOString());
  }

  // ── housekeeping ──────────────────────────────────────────────────────────────────

  /** Deletes expired codes and tokens now and every hour (until stop()). */
  startPruning(onError: (err: unknown) => void): void {
    const prune = () => {
      this.pruning ??= this.meta
        .pruneOAuth(new Date(Date.now() - 60_000).toISOString())
        .then(() => undefined, onError)
        .finally(() => (this.pruning = null));
    };
    prune();
    this.pruner = setInterval(prune, PRUNE_EVERY_MS);
    this.pruner.unref();
  }

  /** Stops pruning; resolves once a pass under way has finished (before the store closes). */
  async stop(): Promise<void> {
    if (this.pruner) clearInterval(this.pruner);
    this.pruner = null;
    await this.pruning;
  }

  // ── the token endpoint's model (@node-oauth/oauth2-server) ───────────────────────

  /** The bridge between the library's grant handling and our store. */
  readonly model: TokenEndpointModel = {
    generateAccessToken: async () => randomToken('oat_'),
    generateRefreshToken: async () => randomToken('ort_'),

    // Every client is confidential: without its secret there is no client.
    // Basic credentials arrive form-encoded (RFC 6749 §2.3.1); ids and secrets are hex.
    getClient: async (rawId, rawSecret) => {
      const clientId = formDecode(rawId);
      const clientSecret = rawSecret ? formDecode(rawSecret) : '';
      if (!clientSecret || !CLIENT_ID.test(clientId)) return null;
      const client = await this.meta.getOAuthClient(clientId);
      if (!client || !safeEqual(hashSecret(clientSecret), client.secretHash)) return null;
      return { id: client.id, redirectUris: client.redirectUris, grants: GRANTS };
    },

    getAuthorizationCode: async (code) => {
      const record = await this.meta.getOAuthCode(hashSecret(code));
      if (!record) return null;
      if (record.usedAt !== null) {
        // A code that comes back: whoever holds it now, the tokens it gave are not safe.
        await this.revokeGrant(record);
        return null;
      }
      const subject: Subject = { username: record.user, grantId: record.grantId };
      return {
        authorizationCode: code,
        expiresAt: new Date(record.expiresAt),
        redirectUri: record.redirectUri,
        scope: record.scopes,
        client: { id: record.clientId, grants: GRANTS },
        user: subject,
        ...(record.codeChallenge ? { codeChallenge: record.codeChallenge, codeChallengeMethod: record.codeChallengeMethod ?? 'S256' } : {}),
      };
    },

    // Called once the code checked out: the first caller uses it, a concurrent second one
    // is a reuse (and revokes what the first one gets).
    revokeAuthorizationCode: async (code) => {
      const before = await this.meta.useOAuthCode(hashSecret(code.authorizationCode), new Date().toISOString());
      if (!before) return false;
      if (before.usedAt !== null) {
        await this.revokeGrant(before);
        return false;
      }
      return true;
    },

    // Authorization codes carry scopes checked at consent; nothing is widened here.
    validateScope: async (_user, _client, scope) => (scope && scope.length > 0 && scope.every(isScope) ? scope : null),

    getRefreshToken: async (refreshToken) => {
      const record = await this.meta.getOAuthToken(hashSecret(refreshToken));
      if (!record || record.kind !== 'refresh') return null;
      if (record.rotatedAt) {
        // A retired refresh token is back: someone kept a copy. End the whole grant.
        await this.revokeGrant(record);
        return null;
      }
      const subject: Subject = { username: record.user, grantId: record.grantId };
      return {
        refreshToken,
        refreshTokenExpiresAt: new Date(record.expiresAt),
        scope: record.scopes,
        client: { id: record.clientId, grants: GRANTS },
        user: subject,
      };
    },

    // Rotation: the used refresh token is retired (kept, to recognise a reuse).
    revokeToken: async (token) => {
      const hash = hashSecret(token.refreshToken);
      if (await this.meta.rotateOAuthToken(hash, new Date().toISOString())) return true;
      const record = await this.meta.getOAuthToken(hash);
      if (record) await this.revokeGrant(record);
      return false;
    },

    saveToken: async (token, client, user) => {
      const subject = user as Subject;
      const account = await this.users.get(subject.username);
      if (!account || !account.active) throw new OAuth2Server.InvalidGrantError('Invalid grant: the account is disabled or gone');
      const scopes = (token.scope ?? []).filter(isScope);
      const now = new Date().toISOString();
      const grant: OAuthGrantRecord = (await this.meta.getOAuthGrant(subject.username, subject.grantId)) ?? {
        id: subject.grantId,
        user: subject.username,
        clientId: client.id,
        scopes,
        createdAt: now,
        revokedAt: null,
      };
      const record = (value: string, kind: OAuthTokenRecord['kind'], expiresAt: Date): OAuthTokenRecord => ({
        hash: hashSecret(value),
        kind,
        grantId: grant.id,
        clientId: client.id,
        user: subject.username,
        scopes,
        expiresAt: expiresAt.toISOString(),
        rotatedAt: null,
      });
      const access = record(token.accessToken, 'access', token.accessTokenExpiresAt as Date);
      const tokens = token.refreshToken ? [access, record(token.refreshToken, 'refresh', token.refreshTokenExpiresAt as Date)] : [access];
      if (!(await this.meta.issueOAuthTokens(grant, tokens))) {
        throw new OAuth2Server.InvalidGrantError('Invalid grant: the authorization was revoked');
      }
      // `username` rides along to the answer (allowExtendedTokenAttributes): social-login
      // libraries read it from the token response.
      return {
        accessToken: token.accessToken,
        accessTokenExpiresAt: token.accessTokenExpiresAt,
        refreshToken: token.refreshToken,
        refreshTokenExpiresAt: token.refreshTokenExpiresAt,
        scope: scopes,
        client,
        user,
        username: subject.username,
      };
    },

    // Access tokens are checked by authenticate() above (the one identity module), not by the library.
    getAccessToken: async () => null,
  };
}

/** The scopes of a request (space-separated; none: the default); null when one is unknown. */
function parseScopes(raw: string | undefined): OAuthScope[] | null {
  const names = new Set((raw ?? '').split(' ').filter(Boolean));
  if (names.size === 0) return [...DEFAULT_SCOPES];
  if (![...names].every(isScope)) return null;
  return (Object.keys(OAUTH_SCOPES) as OAuthScope[]).filter((s) => names.has(s));
}

/** A form-encoded value decoded; a value that does not decode is kept as it is. */
function formDecode(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return value;
  }
}

function checkRedirectUri(value: unknown): string {
  let url: URL;
  try {
    if (typeof value !== 'string' || value.length > 2000) throw new Error('not a string');
    url = new URL(value);
  } catch {
    throw invalidInput(`Invalid redirect URI ${JSON.stringify(value)}: an absolute http:// or https:// URL`);
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.hash !== '' || value.includes('#') || url.username || url.password) {
    throw invalidInput(`Invalid redirect URI ${JSON.stringify(value)}: an absolute http:// or https:// URL without a fragment or credentials`);
  }
  return value;
}

function clientView(client: OAuthClientRecord): OAuthClientView {
  return { client_id: client.id, name: client.name, redirect_uris: client.redirectUris, created_at: client.createdAt };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}
