/**
 * Helpers for the OAuth tests: a registry with accounts and one registered application,
 * the application's side played by oauth4webapi (a real OAuth 2 client library), the user's
 * side by the scripted browser of test/helpers/browser.ts.
 */
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import { Browser, type Page } from '../helpers/browser.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

export const ADMIN = { username: 'oadmin', password: 'admin-secret-1' };
export const ALICE = { username: 'alice', password: 'alice-secret-1' };
export const BOB = { username: 'bobby', password: 'bobby-secret-1' };
export const CALLBACK = 'http://127.0.0.1:9/app/callback?tenant=1';

export async function startOAuthServer(overrides: Record<string, unknown> = {}): Promise<TestServer> {
  const srv = await startTestServer({
    overrides: { standalone: false, admin_username: ADMIN.username, admin_password: ADMIN.password, ...overrides },
  });
  for (const user of [ALICE, BOB]) {
    await srv.running.services.users.upsert({ ...user, email: `${user.username}@example.test`, admin: false });
  }
  return srv;
}

export function basic(user: { username: string; password: string }): string {
  return 'Basic ' + Buffer.from(`${user.username}:${user.password}`).toString('base64');
}

/** A registered application, as oauth4webapi sees it. */
export interface App {
  as: oauth.AuthorizationServer;
  client: oauth.Client;
  secret: string;
  redirectUri: string;
  /** Client authentication by the body (client_secret_post). */
  post: oauth.ClientAuth;
  /** Client authentication by Basic (client_secret_basic). */
  basic: oauth.ClientAuth;
}

/** Plain http on loopback: oauth4webapi refuses it unless told. */
export const INSECURE = { [oauth.allowInsecureRequests]: true } as const;

export function appFor(srv: TestServer, registered: { client_id: string; client_secret: string }, redirectUri = CALLBACK): App {
  return {
    as: {
      issuer: srv.url,
      authorization_endpoint: `${srv.url}/api/v1.1/o/authorize/`,
      token_endpoint: `${srv.url}/api/v1.1/o/token/`,
      revocation_endpoint: `${srv.url}/api/v1.1/o/revoke_token/`,
    },
    client: { client_id: registered.client_id },
    secret: registered.client_secret,
    redirectUri,
    post: oauth.ClientSecretPost(registered.client_secret),
    basic: oauth.ClientSecretBasic(registered.client_secret),
  };
}

export async function registerApp(srv: TestServer, name = 'Build Bot', uris = [CALLBACK]): Promise<App> {
  return appFor(srv, await srv.running.services.oauth.addClient(name, uris));
}

export interface AuthorizationStart {
  url: URL;
  state: string;
  verifier: string;
}

/** The URL the application sends the browser to (PKCE S256 unless `pkce: false`). */
export async function authorizationUrl(app: App, scope = 'profile_read', options: { pkce?: boolean; extra?: Record<string, string> } = {}): Promise<AuthorizationStart> {
  const state = oauth.generateRandomState();
  const verifier = oauth.generateRandomCodeVerifier();
  const url = new URL(app.as.authorization_endpoint as string);
  url.searchParams.set('client_id', app.client.client_id);
  url.searchParams.set('redirect_uri', app.redirectUri);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('scope', scope);
  url.searchParams.set('state', state);
  if (options.pkce !== false) {
    url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
    url.searchParams.set('code_challenge_method', 'S256');
  }
  for (const [k, v] of Object.entries(options.extra ?? {})) url.searchParams.set(k, v);
  return { url, state, verifier };
}

/** The consent page for `start` (asserts it is one). */
export async function consent(browser: Browser, start: AuthorizationStart): Promise<Page> {
  const page = await browser.open(start.url.href);
  assert.equal(page.status, 200, page.html);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  return page;
}

/** The whole user side: consent page, log in and approve in one submit; the redirect back. */
export async function approve(browser: Browser, start: AuthorizationStart, user = ALICE): Promise<URL> {
  const page = await consent(browser, start);
  const answer = await browser.submit(page, { username: user.username, password: user.password }, 'Authorize');
  assert.equal(answer.status, 302, answer.html);
  assert.ok(answer.location, 'a Location');
  return new URL(answer.location);
}

/** The application's side of a code: validate the callback, exchange the code. */
export async function exchange(app: App, start: AuthorizationStart, callback: URL, auth: oauth.ClientAuth = app.basic): Promise<oauth.TokenEndpointResponse> {
  const params = oauth.validateAuthResponse(app.as, app.client, callback, start.state);
  const res = await oauth.authorizationCodeGrantRequest(app.as, app.client, auth, params, app.redirectUri, start.verifier, INSECURE);
  return oauth.processAuthorizationCodeResponse(app.as, app.client, res);
}

/** Consent by ALICE (or `user`) and the code exchanged: the token response. */
export async function tokensFor(app: App, scope = 'profile_read', user = ALICE): Promise<oauth.TokenEndpointResponse> {
  const start = await authorizationUrl(app, scope);
  return exchange(app, start, await approve(new Browser(), start, user));
}

export interface OAuthRefusal {
  status: number;
  error: string;
  description: string;
  wwwAuthenticate: string | null;
}

/** The refusal a client-library call ended in (token endpoint or resource), read off its error. */
export async function refusal(promise: Promise<unknown>): Promise<OAuthRefusal> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof oauth.ResponseBodyError) {
      return { status: err.status, error: err.error, description: err.error_description ?? '', wwwAuthenticate: err.response.headers.get('www-authenticate') };
    }
    if (err instanceof oauth.WWWAuthenticateChallengeError) {
      const body = (await err.response.json()) as { error: string; error_description: string };
      return { status: err.response.status, error: body.error, description: body.error_description, wwwAuthenticate: err.response.headers.get('www-authenticate') };
    }
    throw err;
  }
  assert.fail('expected a refusal');
}

/** GET a profile with a Bearer token, as the application does (oauth4webapi). */
export async function readProfile(srv: TestServer, accessToken: string, username = ALICE.username): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await oauth.protectedResourceRequest(accessToken, 'GET', new URL(`${srv.url}/api/v1.1/users/${username}/`), undefined, undefined, INSECURE);
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}
