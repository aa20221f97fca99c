/**
 * The OAuth 2 authorization-code flow end to end: oauth4webapi plays the third-party
 * application, a scripted browser (cookie jar, real form submits) plays the user. Consent,
 * code exchange, profile read, refresh, and every refusal: wrong secret, reused and
 * expired codes, redirect_uri mismatch, denied consent, bad password (and the throttle),
 * CSRF, revoked and expired tokens, wrong scope.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oauth from 'oauth4webapi';
import { Browser, parseForms } from '../helpers/browser.js';
import type { TestServer } from '../helpers/server.js';
import {
  ALICE,
  appFor,
  approve,
  authorizationUrl,
  BOB,
  CALLBACK,
  consent,
  exchange,
  INSECURE,
  readProfile,
  refusal,
  registerApp,
  startOAuthServer,
  tokensFor,
  type App,
} from './helpers.js';

let srv: TestServer;
let app: App;

before(async () => {
  srv = await startOAuthServer({ login_max_failures: 3 });
  app = await registerApp(srv);
});

after(async () => {
  await srv.destroy();
});

describe('[GET /api/v1.1/o/authorize/] the consent page', () => {
  it('200: names the application and every scope asked for; without a session the same form holds the login fields', async () => {
    const start = await authorizationUrl(app, 'profile_read repo_read');
    const page = await consent(new Browser(), start);
    assert.match(page.html, /<h1>Authorize Build Bot<\/h1>/);
    assert.match(page.html, /<code>profile_read<\/code>/);
    assert.match(page.html, /<code>repo_read<\/code>/);
    assert.doesNotMatch(page.html, /<code>repo_write<\/code>/);
    const [form] = parseForms(page);
    assert.equal(form.method, 'POST');
    assert.ok(form.fields.some((f) => f.name === 'username' && f.type === 'text'));
    assert.ok(form.fields.some((f) => f.name === 'password' && f.type === 'password'));
    assert.ok(form.fields.some((f) => f.name === 'csrf_token' && f.value.length > 20));
    assert.ok(form.buttons.some((b) => b.type.includes('Authorize')), 'a button whose text contains Authorize');
    assert.ok(form.buttons.some((b) => b.type === 'Deny'), 'a way to deny');
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'.*frame-ancestors 'none'/);
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
    assert.equal(page.headers.get('cache-control'), 'no-store');
  });

  it('escapes what it shows: an application name with markup', async () => {
    const odd = await registerApp(srv, '<script>alert(1)</script> & "co"');
    const page = await consent(new Browser(), await authorizationUrl(odd));
    assert.doesNotMatch(page.html, /<script>/);
    assert.match(page.html, /&#60;script&#62;alert\(1\)&#60;\/script&#62; &#38; &#34;co&#34;/);
  });

  const pages: Array<[string, (url: URL) => void]> = [
    ['an unknown client_id', (url) => url.searchParams.set('client_id', 'f'.repeat(32))],
    ['a malformed client_id', (url) => url.searchParams.set('client_id', '../../etc')],
    ['no client_id', (url) => url.searchParams.delete('client_id')],
    ['no redirect_uri', (url) => url.searchParams.delete('redirect_uri')],
    ['a redirect_uri that extends a registered one', (url) => url.searchParams.set('redirect_uri', `${CALLBACK}&x=2`)],
    ['a redirect_uri that is a prefix of a registered one', (url) => url.searchParams.set('redirect_uri', 'http://127.0.0.1:9/app/callback')],
    ['a redirect_uri on another host', (url) => url.searchParams.set('redirect_uri', 'http://evil.example/app/callback?tenant=1')],
    ['a redirect_uri differing in case', (url) => url.searchParams.set('redirect_uri', CALLBACK.replace('callback', 'Callback'))],
    ['a repeated client_id', (url) => url.searchParams.append('client_id', app.client.client_id)],
  ];
  for (const [title, change] of pages) {
    it(`400 error page, never a redirect: ${title}`, async () => {
      const start = await authorizationUrl(app);
      change(start.url);
      const page = await new Browser().open(start.url.href);
      assert.equal(page.status, 400, page.html);
      assert.equal(page.location, null);
      assert.match(page.headers.get('content-type') ?? '', /text\/html/);
      assert.match(page.html, /role="alert"/);
      assert.equal(parseForms(page).length, 0, 'no consent form');
    });
  }

  const redirects: Array<[string, Record<string, string>, string]> = [
    ['an unknown scope', { scope: 'profile_read admin' }, 'invalid_scope'],
    ['response_type=token', { response_type: 'token' }, 'unsupported_response_type'],
    ['PKCE with the plain method', { code_challenge_method: 'plain' }, 'invalid_request'],
  ];
  for (const [title, extra, error] of redirects) {
    it(`302 back to the application with error=${error}: ${title}`, async () => {
      const start = await authorizationUrl(app, 'profile_read', { extra });
      const page = await new Browser().open(start.url.href);
      assert.equal(page.status, 302);
      const back = new URL(page.location as string);
      assert.equal(back.origin + back.pathname, 'http://127.0.0.1:9/app/callback');
      assert.equal(back.searchParams.get('tenant'), '1', "the redirect_uri's own query is kept");
      assert.equal(back.searchParams.get('error'), error);
      assert.equal(back.searchParams.get('state'), start.state);
      assert.throws(() => oauth.validateAuthResponse(app.as, app.client, back, start.state), (err: unknown) => err instanceof oauth.AuthorizationResponseError && err.error === error);
    });
  }
});

describe('[POST /api/v1.1/o/authorize/ + POST /api/v1.1/o/token/] the whole flow', () => {
  it('login and approve in one submit → code → tokens with username → profile → refresh rotates', async () => {
    const start = await authorizationUrl(app, 'profile_read repo_read');
    const browser = new Browser();
    const callback = await approve(browser, start);
    assert.equal(callback.origin + callback.pathname, 'http://127.0.0.1:9/app/callback');
    assert.equal(callback.searchParams.get('tenant'), '1');
    assert.equal(callback.searchParams.get('state'), start.state);
    assert.match(callback.searchParams.get('code') ?? '', /^oac_[A-Za-z0-9_-]{43}$/);

    const tokens = await exchange(app, start, callback, app.basic);
    assert.equal(tokens.token_type, 'bearer');
    assert.equal(tokens.username, 'alice');
    assert.equal(tokens.scope, 'profile_read repo_read');
    assert.equal(tokens.expires_in, 3600);
    assert.match(tokens.access_token, /^oat_/);
    assert.match(tokens.refresh_token ?? '', /^ort_/);

    const profile = await readProfile(srv, tokens.access_token);
    assert.equal(profile.status, 200);
    assert.deepEqual(Object.keys(profile.json).sort(), ['company', 'date_joined', 'email', 'full_name', 'gravatar_email', 'location', 'url', 'user_id', 'username']);
    assert.equal(profile.json.username, 'alice');
    assert.equal(profile.json.email, 'alice@example.test');
    assert.equal(typeof profile.json.user_id, 'number');
    assert.equal(profile.json.full_name, '');

    // Refresh (client_secret_post this time): a new pair; both work, the old refresh token does not.
    const res = await oauth.refreshTokenGrantRequest(app.as, app.client, app.post, tokens.refresh_token as string, INSECURE);
    const refreshed = await oauth.processRefreshTokenResponse(app.as, app.client, res);
    assert.equal(refreshed.username, 'alice');
    assert.equal(refreshed.scope, 'profile_read repo_read');
    assert.notEqual(refreshed.access_token, tokens.access_token);
    assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
    assert.equal((await readProfile(srv, refreshed.access_token)).status, 200);

    // The retired refresh token comes back: refused, and the whole grant is revoked.
    const reused = await refusal(oauth.refreshTokenGrantRequest(app.as, app.client, app.post, tokens.refresh_token as string, INSECURE).then((r) => oauth.processRefreshTokenResponse(app.as, app.client, r)));
    assert.equal(reused.status, 400);
    assert.equal(reused.error, 'invalid_grant');
    const revoked = await refusal(readProfile(srv, refreshed.access_token));
    assert.equal(revoked.status, 401);
    assert.equal(revoked.error, 'invalid_token');
    assert.match(revoked.wwwAuthenticate ?? '', /^Bearer .*error="invalid_token"/);
    const next = await refusal(oauth.refreshTokenGrantRequest(app.as, app.client, app.post, refreshed.refresh_token as string, INSECURE).then((r) => oauth.processRefreshTokenResponse(app.as, app.client, r)));
    assert.equal(next.error, 'invalid_grant');
  });

  it('a refresh may narrow the scope, never widen it', async () => {
    const tokens = await tokensFor(app, 'profile_read repo_read');
    const wider = await refusal(
      oauth
        .refreshTokenGrantRequest(app.as, app.client, app.post, tokens.refresh_token as string, { ...INSECURE, additionalParameters: { scope: 'profile_read repo_write' } })
        .then((r) => oauth.processRefreshTokenResponse(app.as, app.client, r)),
    );
    assert.equal(wider.error, 'invalid_scope');
    const res = await oauth.refreshTokenGrantRequest(app.as, app.client, app.post, tokens.refresh_token as string, { ...INSECURE, additionalParameters: { scope: 'repo_read' } });
    const narrowed = await oauth.processRefreshTokenResponse(app.as, app.client, res);
    assert.equal(narrowed.scope, 'repo_read');
    const noProfile = await refusal(readProfile(srv, narrowed.access_token));
    assert.equal(noProfile.status, 403);
    assert.equal(noProfile.error, 'insufficient_scope');
  });

  it('deny: 302 to redirect_uri?error=access_denied&state, and no code exists', async () => {
    const start = await authorizationUrl(app);
    const browser = new Browser();
    const page = await consent(browser, start);
    const answer = await browser.submit(page, {}, 'Deny');
    assert.equal(answer.status, 302);
    const back = new URL(answer.location as string);
    assert.equal(back.searchParams.get('error'), 'access_denied');
    assert.equal(back.searchParams.get('state'), start.state);
    assert.equal(back.searchParams.get('code'), null);
    assert.throws(() => oauth.validateAuthResponse(app.as, app.client, back, start.state), (err: unknown) => err instanceof oauth.AuthorizationResponseError && err.error === 'access_denied');
  });

  it('a bad password: 401, the page again with an error, no redirect and no code; then the right one works', async () => {
    const start = await authorizationUrl(app);
    const browser = new Browser();
    const page = await consent(browser, start);
    const wrong = await browser.submit(page, { username: 'alice', password: 'not-her-password' }, 'Authorize');
    assert.equal(wrong.status, 401);
    assert.equal(wrong.location, null);
    assert.match(wrong.html, /role="alert">Wrong username or password\./);
    assert.match(wrong.html, /name="username"[^>]*value="alice"/, 'the user name stays filled in');
    const unknown = await browser.submit(wrong, { username: 'nobody_here', password: 'whatever-1' }, 'Authorize');
    assert.equal(unknown.status, 401);
    const right = await browser.submit(unknown, { username: ' Alice ', password: ALICE.password }, 'Authorize');
    assert.equal(right.status, 302);
    const tokens = await exchange(app, start, new URL(right.location as string));
    assert.equal(tokens.username, 'alice');
  });

  it('approving without logging in: 401, the page again', async () => {
    const start = await authorizationUrl(app);
    const browser = new Browser();
    const answer = await browser.submit(await consent(browser, start), { username: '', password: '' }, 'Authorize');
    assert.equal(answer.status, 401);
    assert.match(answer.html, /Log in to authorize/);
  });

  it('the login throttle applies: after login_max_failures wrong passwords, 429 with Retry-After even for the right one', async () => {
    await srv.running.services.users.upsert({ username: 'carol', password: 'carol-secret-1', email: 'carol@example.test', admin: false });
    const start = await authorizationUrl(app);
    const browser = new Browser();
    let page = await consent(browser, start);
    for (let i = 0; i < 3; i++) {
      page = await browser.submit(page, { username: 'carol', password: `wrong-${i}-x` }, 'Authorize');
      assert.equal(page.status, 401);
    }
    const throttled = await browser.submit(page, { username: 'carol', password: 'carol-secret-1' }, 'Authorize');
    assert.equal(throttled.status, 429);
    assert.ok(Number(throttled.headers.get('retry-after')) > 0);
    assert.equal(throttled.location, null);
    assert.match(throttled.html, /Too many failed logins/);
  });

  it('CSRF: a form posted without the browser’s cookie, or with another token, is refused (403 page, no redirect)', async () => {
    const start = await authorizationUrl(app);
    const browser = new Browser();
    const page = await consent(browser, start);
    const form = parseForms(page)[0];
    const body = new URLSearchParams();
    for (const f of form.fields) body.set(f.name, f.value);
    body.set('username', 'alice');
    body.set('password', ALICE.password);
    body.set('decision', 'approve');
    // Another site's page posting the form: the victim's browser would not send the SameSite cookie.
    const forged = await new Browser().open(form.action, { method: 'POST', body });
    assert.equal(forged.status, 403);
    assert.equal(forged.location, null);
    // Right cookie, a token made up.
    const tampered = await browser.submit(page, { csrf_token: 'A'.repeat(43), username: 'alice', password: ALICE.password }, 'Authorize');
    assert.equal(tampered.status, 403);
    assert.equal(tampered.location, null);
    // A token of another browser's cookie.
    const other = new Browser();
    const otherPage = await consent(other, start);
    const otherToken = parseForms(otherPage)[0].fields.find((f) => f.name === 'csrf_token')?.value as string;
    const swapped = await browser.submit(page, { csrf_token: otherToken, username: 'alice', password: ALICE.password }, 'Authorize');
    assert.equal(swapped.status, 403);
  });

  it('a consent form whose hidden redirect_uri was changed is refused like the request itself (400, no redirect)', async () => {
    const start = await authorizationUrl(app);
    const browser = new Browser();
    const answer = await browser.submit(await consent(browser, start), { redirect_uri: 'http://evil.example/cb', username: 'alice', password: ALICE.password }, 'Authorize');
    assert.equal(answer.status, 400);
    assert.equal(answer.location, null);
  });
});

describe('[POST /api/v1.1/o/token/] refusals (RFC 6749 §5.2 JSON)', () => {
  it('a wrong client secret: 401 invalid_client, in the body and as Basic; the code stays usable', async () => {
    const start = await authorizationUrl(app);
    const callback = await approve(new Browser(), start);
    const params = oauth.validateAuthResponse(app.as, app.client, callback, start.state);
    for (const auth of [oauth.ClientSecretPost('ocs_wrong'), oauth.ClientSecretBasic('ocs_wrong'), oauth.None()]) {
      const wrong = await refusal(oauth.authorizationCodeGrantRequest(app.as, app.client, auth, params, app.redirectUri, start.verifier, INSECURE).then((r) => oauth.processAuthorizationCodeResponse(app.as, app.client, r)));
      assert.equal(wrong.status, 401);
      assert.equal(wrong.error, 'invalid_client');
    }
    const res = await oauth.authorizationCodeGrantRequest(app.as, app.client, app.post, params, app.redirectUri, start.verifier, INSECURE);
    assert.equal((await oauth.processAuthorizationCodeResponse(app.as, app.client, res)).username, 'alice');
  });

  it('a reused code: invalid_grant, and the tokens the first exchange gave are revoked', async () => {
    const start = await authorizationUrl(app);
    const callback = await approve(new Browser(), start);
    const tokens = await exchange(app, start, callback);
    assert.equal((await readProfile(srv, tokens.access_token)).status, 200);
    const again = await refusal(exchange(app, start, callback));
    assert.equal(again.status, 400);
    assert.equal(again.error, 'invalid_grant');
    assert.equal((await refusal(readProfile(srv, tokens.access_token))).status, 401);
    const refresh = await refusal(oauth.refreshTokenGrantRequest(app.as, app.client, app.post, tokens.refresh_token as string, INSECURE).then((r) => oauth.processRefreshTokenResponse(app.as, app.client, r)));
    assert.equal(refresh.error, 'invalid_grant');
  });

  it('two exchanges of one code at the same moment: one gets tokens, and even those end up revoked', async () => {
    const start = await authorizationUrl(app);
    const callback = await approve(new Browser(), start);
    const results = await Promise.allSettled([exchange(app, start, callback), exchange(app, start, callback)]);
    const won = results.filter((r): r is PromiseFulfilledResult<oauth.TokenEndpointResponse> => r.status === 'fulfilled');
    assert.ok(won.length <= 1, 'at most one exchange succeeds');
    for (const w of won) assert.equal((await refusal(readProfile(srv, w.value.access_token))).status, 401);
  });

  it('a redirect_uri that differs from the authorization request’s: invalid_grant (and the code is spent)', async () => {
    const two = await registerApp(srv, 'Two Callbacks', [CALLBACK, 'http://127.0.0.1:9/other']);
    const start = await authorizationUrl(two);
    const callback = await approve(new Browser(), start);
    const params = oauth.validateAuthResponse(two.as, two.client, callback, start.state);
    const res = await oauth.authorizationCodeGrantRequest(two.as, two.client, two.post, params, 'http://127.0.0.1:9/other', start.verifier, INSECURE);
    const mismatch = await refusal(oauth.processAuthorizationCodeResponse(two.as, two.client, res));
    assert.equal(mismatch.error, 'invalid_grant');
    assert.equal((await refusal(exchange(two, start, callback))).error, 'invalid_grant');
  });

  it('PKCE: a wrong code_verifier is invalid_grant', async () => {
    const start = await authorizationUrl(app);
    const callback = await approve(new Browser(), start);
    const wrong = await refusal(exchange(app, { ...start, verifier: oauth.generateRandomCodeVerifier() }, callback));
    assert.equal(wrong.error, 'invalid_grant');
  });

  it('a code issued to another client: invalid_grant', async () => {
    const other = await registerApp(srv, 'Other App');
    const start = await authorizationUrl(app);
    const callback = await approve(new Browser(), start);
    const params = oauth.validateAuthResponse(app.as, app.client, callback, start.state);
    const res = await oauth.authorizationCodeGrantRequest(other.as, other.client, other.post, params, app.redirectUri, start.verifier, INSECURE);
    assert.equal((await refusal(oauth.processAuthorizationCodeResponse(other.as, other.client, res))).error, 'invalid_grant');
  });

  it('an unknown code and an unknown refresh token: invalid_grant', async () => {
    const code = await refusal(exchange(app, { url: new URL(CALLBACK), state: 's', verifier: oauth.generateRandomCodeVerifier() }, new URL(`${CALLBACK}&code=oac_nope&state=s`)));
    assert.equal(code.error, 'invalid_grant');
    const refresh = await refusal(oauth.refreshTokenGrantRequest(app.as, app.client, app.post, 'ort_nope', INSECURE).then((r) => oauth.processRefreshTokenResponse(app.as, app.client, r)));
    assert.equal(refresh.error, 'invalid_grant');
  });

  const raw = async (body: string, headers: Record<string, string> = { 'Content-Type': 'application/x-www-form-urlencoded' }) => {
    const res = await fetch(`${srv.url}/api/v1.1/o/token/`, { method: 'POST', body, headers });
    return { status: res.status, json: (await res.json()) as { error: string; error_description: string }, headers: res.headers };
  };
  const creds = () => `client_id=${app.client.client_id}&client_secret=${app.secret}`;

  it('unsupported_grant_type (password, client_credentials), invalid_request (no grant_type, JSON body, a repeated parameter)', async () => {
    for (const grant of ['password', 'client_credentials', 'urn:x:y']) {
      const res = await raw(`grant_type=${encodeURIComponent(grant)}&${creds()}&username=alice&password=${ALICE.password}`);
      assert.equal(res.status, 400);
      assert.equal(res.json.error, 'unsupported_grant_type', grant);
    }
    assert.equal((await raw(creds())).json.error, 'invalid_request');
    const json = await raw(JSON.stringify({ grant_type: 'authorization_code' }), { 'Content-Type': 'application/json' });
    assert.equal(json.status, 400);
    assert.equal(json.json.error, 'invalid_request');
    const repeated = await raw(`grant_type=refresh_token&grant_type=refresh_token&${creds()}&refresh_token=ort_x`);
    assert.equal(repeated.status, 400);
    assert.equal(repeated.json.error, 'invalid_request');
    assert.equal(repeated.headers.get('cache-control'), 'no-store');
  });

  it('GET on the token endpoint: 405 with Allow, in the JSON envelope; unknown paths: 404', async () => {
    const get = await fetch(`${srv.url}/api/v1.1/o/token/`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    assert.equal(((await get.json()) as { error: string }).error, 'invalid_request');
    const unknown = await fetch(`${srv.url}/api/v1.1/o/nothing/`);
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { error: string }).error, 'not_found');
  });
});

describe('[GET|PATCH /api/v1.1/users/:username/] profiles with a Bearer token', () => {
  it('401 without a token, with a made-up token, with a JWT-shaped one', async () => {
    const none = await fetch(`${srv.url}/api/v1.1/users/alice/`);
    assert.equal(none.status, 401);
    assert.equal(((await none.json()) as { error: string }).error, 'invalid_token');
    for (const token of ['oat_madeup', 'eyJhbGciOiJIUzI1NiJ9.e30.abc', 'ort_x']) {
      assert.equal((await refusal(readProfile(srv, token))).status, 401, token);
    }
  });

  it('403 insufficient_scope for a token without profile_read (and the scope it needs)', async () => {
    const tokens = await tokensFor(app, 'repo_read');
    const wrong = await refusal(readProfile(srv, tokens.access_token));
    assert.equal(wrong.status, 403);
    assert.equal(wrong.error, 'insufficient_scope');
    assert.match(wrong.wwwAuthenticate ?? '', /error="insufficient_scope", scope="profile_read"/);
  });

  it('another user’s profile: 200 without the e-mail; an unknown user: 404', async () => {
    const tokens = await tokensFor(app, 'profile_read');
    const bob = await readProfile(srv, tokens.access_token, BOB.username);
    assert.equal(bob.status, 200);
    assert.equal(bob.json.username, 'bobby');
    assert.equal(bob.json.email, '');
    const res = await oauth.protectedResourceRequest(tokens.access_token, 'GET', new URL(`${srv.url}/api/v1.1/users/nobody_here/`), undefined, undefined, INSECURE);
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { error: string }).error, 'not_found');
  });

  it('PATCH with profile_write changes the own profile (Hub’s /v2/users/ shows it too); other fields are ignored', async () => {
    const tokens = await tokensFor(app, 'profile_read profile_write', BOB);
    const body = JSON.stringify({ full_name: 'Bob Builder', location: 'Basel', company: 'ACME', url: 'https://bob.example', email: 'evil@example.test', admin: true });
    const res = await oauth.protectedResourceRequest(tokens.access_token, 'PATCH', new URL(`${srv.url}/api/v1.1/users/bobby/`), new Headers({ 'Content-Type': 'application/json' }), body, INSECURE);
    assert.equal(res.status, 200);
    const profile = (await res.json()) as Record<string, unknown>;
    assert.deepEqual(
      { full_name: profile.full_name, location: profile.location, company: profile.company, url: profile.url, email: profile.email },
      { full_name: 'Bob Builder', location: 'Basel', company: 'ACME', url: 'https://bob.example', email: 'bobby@example.test' },
    );
    const stored = await srv.running.services.users.get('bobby');
    assert.equal(stored?.email, 'bobby@example.test');
    assert.equal(stored?.admin, false);
    assert.equal((await readProfile(srv, tokens.access_token, 'bobby')).json.full_name, 'Bob Builder');
    const hub = (await (await fetch(`${srv.url}/v2/users/bobby/`)).json()) as Record<string, unknown>;
    assert.equal(hub.full_name, 'Bob Builder');
    assert.equal(hub.profile_url, 'https://bob.example');
  });

  it('PATCH refusals: 403 without profile_write, 403 on another user, 400 for a bad url or a non-object body', async () => {
    const patch = (token: string, user: string, body: string) =>
      fetch(`${srv.url}/api/v1.1/users/${user}/`, { method: 'PATCH', body, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' } });
    const readOnly = await tokensFor(app, 'profile_read');
    const noScope = await patch(readOnly.access_token, 'alice', '{"full_name":"x"}');
    assert.equal(noScope.status, 403);
    assert.equal(((await noScope.json()) as { error: string }).error, 'insufficient_scope');
    const writer = await tokensFor(app, 'profile_write');
    const other = await patch(writer.access_token, 'bobby', '{"full_name":"x"}');
    assert.equal(other.status, 403);
    assert.equal(((await other.json()) as { error: string }).error, 'access_denied');
    for (const body of ['{"url":"javascript:alert(1)"}', '{"full_name":42}', '["x"]', '{"location":"' + 'x'.repeat(101) + '"}', '{bad json']) {
      const res = await patch(writer.access_token, 'alice', body);
      assert.equal(res.status, 400, body);
      assert.equal(((await res.json()) as { error: string }).error, 'invalid_request', body);
    }
    assert.equal((await srv.running.services.users.get('alice'))?.profile?.fullName, undefined, 'nothing changed');
  });
});

describe('expiry (a server with 1-second codes and access tokens)', () => {
  let short: TestServer;
  let shortApp: App;
  before(async () => {
    short = await startOAuthServer({ oauth_code_ttl_seconds: 1, oauth_access_token_ttl_seconds: 1 });
    shortApp = await registerApp(short);
  });
  after(async () => {
    await short.destroy();
  });

  it('an expired code is invalid_grant; an expired access token is 401; the refresh token still gives a new one', async () => {
    const late = await authorizationUrl(shortApp);
    const lateCallback = await approve(new Browser(), late);
    const tokens = await tokensFor(shortApp);
    assert.equal(tokens.expires_in, 1);
    assert.equal((await readProfile(short, tokens.access_token)).status, 200);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const expiredCode = await refusal(exchange(shortApp, late, lateCallback));
    assert.equal(expiredCode.error, 'invalid_grant');
    assert.match(expiredCode.description, /expired/);
    const expired = await refusal(readProfile(short, tokens.access_token));
    assert.equal(expired.status, 401);
    assert.match(expired.description, /expired/);
    const res = await oauth.refreshTokenGrantRequest(shortApp.as, shortApp.client, shortApp.post, tokens.refresh_token as string, INSECURE);
    const fresh = await oauth.processRefreshTokenResponse(shortApp.as, shortApp.client, res);
    assert.equal((await readProfile(short, fresh.access_token)).status, 200);
  });
});

describe('revocation', () => {
  it('the user lists the applications they authorized and revokes one: its tokens stop working at once', async () => {
    const other = await registerApp(srv, 'Dashboard');
    await srv.running.services.users.upsert({ username: 'dave_user', password: 'dave-secret-1', email: 'dave@example.test', admin: false });
    const dave = { username: 'dave_user', password: 'dave-secret-1' };
    const auth = { Authorization: 'Basic ' + Buffer.from(`${dave.username}:${dave.password}`).toString('base64') };
    const first = await tokensFor(app, 'profile_read', dave);
    const second = await tokensFor(app, 'repo_read', dave);
    const dash = await tokensFor(other, 'profile_read', dave);
    const listed = await fetch(`${srv.url}/api/v1.1/o/authorized_apps/`, { headers: auth });
    assert.equal(listed.status, 200);
    const apps = (await listed.json()) as Array<{ client_id: string; name: string; scope: string; authorized_at: string }>;
    assert.deepEqual(
      apps.map((a) => [a.name, a.scope]),
      [
        ['Build Bot', 'profile_read repo_read'],
        ['Dashboard', 'profile_read'],
      ],
    );

    // An OAuth token is not the user: it may not manage the user's applications.
    const byToken = await fetch(`${srv.url}/api/v1.1/o/authorized_apps/`, { headers: { Authorization: `Bearer ${dash.access_token}` } });
    assert.equal(byToken.status, 403);
    assert.equal((await fetch(`${srv.url}/api/v1.1/o/authorized_apps/`)).status, 401);

    const revoke = await fetch(`${srv.url}/api/v1.1/o/authorized_apps/${app.client.client_id}/`, { method: 'DELETE', headers: auth });
    assert.equal(revoke.status, 204);
    assert.equal((await refusal(readProfile(srv, first.access_token, dave.username))).status, 401);
    const v1 = await fetch(`${srv.url}/v1/search?q=x`, { headers: { Authorization: `Bearer ${second.access_token}` } });
    assert.equal(v1.status, 401, 'revoked on the registry routes too');
    const refresh = await refusal(oauth.refreshTokenGrantRequest(app.as, app.client, app.post, second.refresh_token as string, INSECURE).then((r) => oauth.processRefreshTokenResponse(app.as, app.client, r)));
    assert.equal(refresh.error, 'invalid_grant');
    assert.equal((await readProfile(srv, dash.access_token, dave.username)).status, 200, 'the other application keeps working');
    const after = (await (await fetch(`${srv.url}/api/v1.1/o/authorized_apps/`, { headers: auth })).json()) as Array<{ name: string }>;
    assert.deepEqual(after.map((a) => a.name), ['Dashboard']);
    const again = await fetch(`${srv.url}/api/v1.1/o/authorized_apps/${app.client.client_id}/`, { method: 'DELETE', headers: auth });
    assert.equal(again.status, 404);
  });

  it('RFC 7009: the application revokes its refresh token (the grant ends) or an access token (only it)', async () => {
    const a = await tokensFor(app);
    const b = await tokensFor(app);
    const res = await oauth.revocationRequest(app.as, app.client, app.basic, a.access_token, INSECURE);
    await oauth.processRevocationResponse(res);
    assert.equal((await refusal(readProfile(srv, a.access_token))).status, 401);
    const refreshed = await oauth.processRefreshTokenResponse(app.as, app.client, await oauth.refreshTokenGrantRequest(app.as, app.client, app.post, a.refresh_token as string, INSECURE));
    assert.equal((await readProfile(srv, refreshed.access_token)).status, 200, 'revoking an access token leaves the grant');
    await oauth.processRevocationResponse(await oauth.revocationRequest(app.as, app.client, app.post, b.refresh_token as string, INSECURE));
    assert.equal((await refusal(readProfile(srv, b.access_token))).status, 401, 'revoking a refresh token ends the grant');
    // Another client's token, an unknown token: 200 and nothing happens; a wrong secret: 401.
    const other = await registerApp(srv, 'Revoker');
    await oauth.processRevocationResponse(await oauth.revocationRequest(other.as, other.client, other.post, refreshed.access_token, INSECURE));
    assert.equal((await readProfile(srv, refreshed.access_token)).status, 200);
    await oauth.processRevocationResponse(await oauth.revocationRequest(app.as, app.client, app.post, 'oat_unknown', INSECURE));
    const wrong = await refusal(oauth.revocationRequest(app.as, app.client, oauth.ClientSecretPost('ocs_wrong'), refreshed.access_token, INSECURE).then((r) => oauth.processRevocationResponse(r)));
    assert.equal(wrong.status, 401);
    assert.equal(wrong.error, 'invalid_client');
  });

  it('a disabled account, a removed application: their tokens stop working', async () => {
    await srv.running.services.users.upsert({ username: 'erin_user', password: 'erin-secret-1', email: 'erin@example.test', admin: false });
    const erin = { username: 'erin_user', password: 'erin-secret-1' };
    const tokens = await tokensFor(app, 'profile_read', erin);
    await srv.running.services.users.setActive('erin_user', false);
    assert.equal((await refusal(readProfile(srv, tokens.access_token, erin.username))).status, 401);
    const refresh = await refusal(oauth.refreshTokenGrantRequest(app.as, app.client, app.post, tokens.refresh_token as string, INSECURE).then((r) => oauth.processRefreshTokenResponse(app.as, app.client, r)));
    assert.equal(refresh.error, 'invalid_grant');

    const gone = await registerApp(srv, 'Short Lived');
    const goneTokens = await tokensFor(gone);
    assert.equal((await readProfile(srv, goneTokens.access_token)).status, 200);
    await srv.running.services.oauth.removeClient(gone.client.client_id);
    assert.equal((await refusal(readProfile(srv, goneTokens.access_token))).status, 401);
    const page = await new Browser().open((await authorizationUrl(appFor(srv, { client_id: gone.client.client_id, client_secret: gone.secret }))).url.href);
    assert.equal(page.status, 400, 'a removed application gets no consent page');
  });
});
