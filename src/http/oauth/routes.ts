/**
 * The Docker OAuth 2 API and Accounts API (Hub API v1.1), under /api/v1.1/ only. Every
 * path works with and without its trailing slash.
 *
 *   GET  /api/v1.1/o/authorize/        the consent page (HTML), with login fields without a session
 *   POST /api/v1.1/o/authorize/        approve (302 redirect_uri?code&state) or deny (?error=access_denied&state)
 *   POST /api/v1.1/o/token/            authorization_code and refresh_token grants (JSON)
 *   POST /api/v1.1/o/revoke_token/     RFC 7009 revocation by the client
 *   GET  /api/v1.1/o/authorized_apps/  the caller's authorized applications (password or session)
 *   DELETE /api/v1.1/o/authorized_apps/:client_id/   revokes one of them
 *   GET|PATCH /api/v1.1/users/:username/             a profile (Bearer with profile_read / profile_write)
 *
 * Mounted before the registry's `authenticate`: the token endpoint's Basic credentials are
 * a client's, not a user's, and every answer here, errors included, is in this face's
 * shape: HTML pages for the authorize routes, RFC 6749/6750 JSON (errors.ts) for the rest.
 * Credentials are read here with the same identity module (authenticate.ts).
 */
import Router from '@koa/router';
import OAuth2Server from '@node-oauth/oauth2-server';
import type { Context, Middleware, Next } from 'koa';
import { isRegistryError, RegistryError } from '../../domain/errors.js';
import type { UserRecord } from '../../domain/records.js';
import type { AccessService } from '../../services/access.js';
import { numericId } from '../../services/jwt.js';
import type { KeyRing } from '../../services/keyring.js';
import { AuthorizeError, OAuthService, withQuery, type AuthorizeParams, type AuthorizeRequest } from '../../services/oauth.js';
import type { TokenService } from '../../services/tokens.js';
import { profileOf, type UserService } from '../../services/users.js';
import { oauthBearer, parseAuthorization, resolvePrincipal } from '../shared/authenticate.js';
import { jsonBody, readForm } from '../shared/body.js';
import { CsrfGuard } from '../shared/csrf.js';
import type { RegistryState } from '../shared/middleware.js';
import { sendJson } from '../shared/respond.js';
import { OAuthHttpError, oauthErrors } from './errors.js';
import { consentPage, errorPage, sendPage } from './pages.js';
import { tokenServer } from './token-server.js';

/** The user a browser session belongs to (the web UI's session), or null. */
export type SessionLookup = (ctx: Context) => Promise<UserRecord | null>;

export interface OAuthRouteDeps {
  oauth: OAuthService;
  users: UserService;
  tokens: TokenService;
  access: AccessService;
  keyRing: KeyRing;
  maxJsonBytes: number;
  /** The web UI's session, where there is one: it counts as logged in on the consent page. */
  session?: SessionLookup;
}

export const OAUTH_PREFIX = '/api/v1.1/';
const AUTHORIZE = '/api/v1.1/o/authorize/';
const FORM_LIMIT = 16 * 1024;
const SUPPORTED_GRANTS = new Set(['authorization_code', 'refresh_token']);
/** The authorization request's parameters, carried through the consent form. */
const AUTHORIZE_PARAMS = ['client_id', 'redirect_uri', 'response_type', 'scope', 'state', 'code_challenge', 'code_challenge_method'];

/** The profile as the Accounts API shows it; private fields only to their owner. */
export interface ProfileView {
  user_id: number;
  username: string;
  email: string;
  full_name: string;
  location: string;
  company: string;
  url: string;
  date_joined: string;
  gravatar_email: string;
}

function profileView(user: UserRecord, withPrivate: boolean): ProfileView {
  const { fullName, location, company, url } = profileOf(user);
  return {
    user_id: numericId(`user:${user.name}`),
    username: user.name,
    email: withPrivate ? user.email : '',
    full_name: fullName,
    location,
    company,
    url,
    date_joined: user.createdAt,
    gravatar_email: '',
  };
}

/** `path` and `path/` (Hub's paths end in a slash; clients send both). */
const slash = (path: string) => `${path}{/}`;

/** The OAuth face as one middleware (requests outside /api/v1.1/ pass by untouched). */
export function oauthRoutes(deps: OAuthRouteDeps): Middleware {
  const { oauth, users, access } = deps;
  const server = tokenServer(oauth.model, oauth.options);
  const csrf = new CsrfGuard(deps.keyRing, 'oauth_csrf', '/api/v1.1/o/');
  const session: SessionLookup = deps.session ?? (async () => null);
  const bearer = [oauthBearer(oauth)];
  const json = jsonBody(deps.maxJsonBytes);
  const router = new Router();

  const principal = (ctx: Context) => {
    const header = ctx.get('Authorization');
    return header ? resolvePrincipal(header, users, deps.tokens, ctx.ip, bearer) : Promise.resolve({ kind: 'anonymous' } as const);
  };
  const ok = (ctx: Context, status: number, body: unknown) => {
    ctx.res.setHeader('Cache-Control', 'no-store');
    sendJson(ctx, status, body);
  };

  // ── authorization (HTML) ──────────────────────────────────────────────────────────
  const renderConsent = async (ctx: Context, request: AuthorizeRequest, params: AuthorizeParams, status = 200, refusal?: { error: string; username?: string }) => {
    const user = await session(ctx);
    const carried: Record<string, string> = {};
    for (const name of AUTHORIZE_PARAMS) if (params[name] !== undefined) carried[name] = params[name] as string;
    sendPage(
      ctx,
      status,
      consentPage({ request, action: AUTHORIZE, params: carried, csrfToken: csrf.issue(ctx), user: user?.name ?? null, host: ctx.host, error: refusal?.error, username: refusal?.username }),
    );
  };

  router.get(slash('/api/v1.1/o/authorize'), authorizePage(), async (ctx) => {
    const params = singleValued(ctx.query);
    await renderConsent(ctx, await oauth.checkAuthorize(params), params);
  });

  router.post(slash('/api/v1.1/o/authorize'), authorizePage(), async (ctx) => {
    const form = await readForm(ctx, FORM_LIMIT);
    if (!form) throw new OAuthHttpError(400, 'invalid_request', 'Send the consent form (application/x-www-form-urlencoded).');
    if (!csrf.check(ctx, form.csrf_token)) {
      throw new OAuthHttpError(403, 'access_denied', 'This form expired or did not come from this site. Go back to the application and start again.');
    }
    const request = await oauth.checkAuthorize(form);
    if (form.decision === 'deny') return redirect(ctx, oauth.deny(request));
    if (form.decision !== 'approve') throw new OAuthHttpError(400, 'invalid_request', 'Choose Authorize or Deny.');
    let user = await session(ctx);
    if (!user) {
      if (!form.username || !form.password) return renderConsent(ctx, request, form, 401, { error: 'Log in to authorize the application.', username: form.username });
      try {
        // Account names are lower case; people type them as they like.
        user = await users.authenticate(form.username.trim().toLowerCase(), form.password, ctx.ip);
      } catch (err) {
        if (!isRegistryError(err)) throw err;
        if (typeof err.details.retryAfter === 'number') ctx.res.setHeader('Retry-After', String(err.details.retryAfter));
        const status = err.code === 'TOO_MANY_REQUESTS' ? 429 : err.code === 'INACTIVE_ACCOUNT' ? 403 : 401;
        const message = status === 401 ? 'Wrong username or password.' : err.message;
        return renderConsent(ctx, request, form, status, { error: message, username: form.username });
      }
    }
    redirect(ctx, await oauth.approve(request, user));
  });

  // ── tokens (JSON) ─────────────────────────────────────────────────────────────────
  router.post(slash('/api/v1.1/o/token'), oauthErrors(), async (ctx) => {
    const form = (await readForm(ctx, FORM_LIMIT)) ?? {};
    // The library knows the password and client_credentials grants too; this server does not.
    if (form.grant_type && !SUPPORTED_GRANTS.has(form.grant_type)) {
      throw new OAuth2Server.UnsupportedGrantTypeError('Unsupported grant type: use authorization_code or refresh_token');
    }
    const request = new OAuth2Server.Request({ method: ctx.method, headers: ctx.headers as Record<string, string>, query: {}, body: form });
    const response = new OAuth2Server.Response();
    await server.token(request, response);
    for (const [name, value] of Object.entries(response.headers ?? {})) ctx.res.setHeader(name, value);
    // The library derives expires_in from the expiry time, rounded down (3599, or 0 and
    // then left out for a 1-second token): the lifetime just given is the configured one.
    ok(ctx, 200, { ...response.body, expires_in: oauth.options.accessTokenTtlSeconds });
  });

  router.post(slash('/api/v1.1/o/revoke_token'), oauthErrors(), async (ctx) => {
    const form = await readForm(ctx, FORM_LIMIT);
    if (!form) throw new OAuthHttpError(400, 'invalid_request', 'Send application/x-www-form-urlencoded parameters.');
    const client = await authenticateClient(ctx, form, oauth);
    if (!form.token) throw new OAuthHttpError(400, 'invalid_request', 'Missing parameter: `token`');
    await oauth.revokeToken(client, form.token);
    ok(ctx, 200, {});
  });

  // ── the user's authorized applications (JSON; the user's own credentials) ───────
  const accountOwner = async (ctx: Context) => {
    const user = await session(ctx);
    return access.accountOwner(user ? { kind: 'user', user } : await principal(ctx));
  };
  router.get(slash('/api/v1.1/o/authorized_apps'), oauthErrors(), async (ctx) => {
    ok(ctx, 200, await oauth.listApps((await accountOwner(ctx)).name));
  });
  router.delete(slash('/api/v1.1/o/authorized_apps/:client'), oauthErrors(), async (ctx) => {
    const user = await accountOwner(ctx);
    await oauth.revokeApp(user.name, (ctx.params as { client: string }).client);
    ctx.res.setHeader('Cache-Control', 'no-store');
    ctx.status = 204;
  });

  // ── profiles (JSON; Bearer) ───────────────────────────────────────────────────────
  router.get(slash('/api/v1.1/users/:username'), oauthErrors(), async (ctx) => {
    const name = (ctx.params as { username: string }).username;
    const seen = access.authorizeProfile(await principal(ctx), name, 'read');
    const user = await users.get(name);
    if (!user) throw new RegistryError('NOT_FOUND', `No user ${name}`);
    ok(ctx, 200, profileView(user, seen.private));
  });
  router.patch(slash('/api/v1.1/users/:username'), oauthErrors(), json, async (ctx) => {
    const name = (ctx.params as { username: string }).username;
    access.authorizeProfile(await principal(ctx), name, 'write');
    ok(ctx, 200, profileView(await users.updateProfile(name, ctx.request.body), true));
  });

  // Everything else under /api/v1.1/: 405 for a known path, else 404, in the JSON envelope.
  router.all('/api/v1.1{/*rest}', oauthErrors(), async (ctx) => {
    const allowed = new Set<string>();
    for (const layer of router.match(ctx.path, ctx.method).path) {
      if ((layer.path as string) === '/api/v1.1{/*rest}') continue;
      for (const method of layer.methods) allowed.add(method);
    }
    if (allowed.size > 0) {
      ctx.res.setHeader('Allow', [...allowed].join(', '));
      throw new OAuthHttpError(405, 'invalid_request', `Method ${ctx.method} not allowed`);
    }
    throw new RegistryError('NOT_FOUND', 'Not found');
  });

  return router.routes() as unknown as Middleware;
}

function redirect(ctx: Context, location: string): void {
  ctx.status = 302;
  ctx.res.setHeader('Location', location);
  ctx.res.setHeader('Cache-Control', 'no-store');
  ctx.body = '';
}

/** Query parameters, each at most once (RFC 6749 §3.1). */
function singleValued(query: Record<string, string | string[] | undefined>): AuthorizeParams {
  const out: AuthorizeParams = {};
  for (const [name, value] of Object.entries(query)) {
    if (Array.isArray(value)) throw new AuthorizeError('invalid_request', `Parameter ${name} is given more than once.`);
    out[name] = value;
  }
  return out;
}

/**
 * Errors of the authorize routes: a refusal the client must hear goes back to its
 * redirect_uri; everything else (unknown client, unregistered redirect_uri, a bad form) is
 * an HTML error page, never a redirect.
 */
function authorizePage(): Middleware {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (err) {
      if (ctx.headerSent || !ctx.writable) throw err;
      if (err instanceof AuthorizeError) {
        if (err.redirectUri) return redirect(ctx, withQuery(err.redirectUri, { error: err.error, error_description: err.message, state: err.state }));
        return sendPage(ctx, 400, errorPage('Authorization failed', err.message));
      }
      if (err instanceof OAuthHttpError) return sendPage(ctx, err.status, errorPage('Authorization failed', err.message));
      if (isRegistryError(err) && err.code !== 'UNAVAILABLE' && err.code !== 'INSUFFICIENT_STORAGE') {
        const status = err.code === 'PAYLOAD_TOO_LARGE' ? 413 : 400;
        return sendPage(ctx, status, errorPage('Authorization failed', err.message));
      }
      (ctx.state as RegistryState).log?.error({ err }, 'request failed');
      sendPage(ctx, 500, errorPage('Something went wrong', 'The registry could not answer; try again later.'));
    }
  };
}

/** The client of a revocation request (Basic, or client_id + client_secret in the form). */
async function authenticateClient(ctx: Context, form: Record<string, string>, oauth: OAuthService): Promise<string> {
  let id = form.client_id;
  let secret = form.client_secret;
  const header = ctx.get('Authorization');
  if (header) {
    const { scheme, value } = parseAuthorization(header);
    const decoded = scheme === 'basic' ? Buffer.from(value, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new OAuth2Server.InvalidClientError('Invalid client: use Basic client_id:client_secret');
    id = decoded.slice(0, colon);
    secret = decoded.slice(colon + 1);
  }
  const client = id && secret ? await oauth.model.getClient(id, secret) : null;
  if (!client) throw new OAuth2Server.InvalidClientError('Invalid client: client is invalid');
  return client.id;
}
