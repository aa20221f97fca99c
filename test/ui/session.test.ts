/**
 * The web UI in Chromium: logging in and out, the session cookie (HttpOnly, SameSite, signed
 * with the registry secret), the login throttle, CSRF tokens on every form that changes
 * something, and the Content-Security-Policy.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { parseRepoPath } from '../../src/domain/names.js';
import { KeyRing } from '../../src/services/keyring.js';
import { SessionService } from '../../src/services/sessions.js';
import { TokenService } from '../../src/services/tokens.js';
import { ALICE, BOB, browserSuite, CAROL, logIn, logOut, pushAs } from './helpers.js';

const MAX_FAILURES = 3;

describe('web UI: sessions and protections', () => {

  const suite = browserSuite({
    overrides: { login_max_failures: MAX_FAILURES },
    seed: async (srv) => {
      await pushAs(srv, ALICE, 'alice/app', 'v1', [{ createdBy: 'echo app', size: 200 }]);
    },
  });

  /** The session cookie the browser holds (undefined: none). */
  async function sessionCookie() {
    return (await suite.browser.context.cookies(suite.srv.url)).find((c) => c.name === 'registry_web_session');
  }

  /** GET `path` with `cookie` as the session (from Node, not the browser). */
  async function getWith(cookie: string | undefined, path: string): Promise<{ status: number; text: string; headers: Headers }> {
    const res = await fetch(`${suite.srv.url}${path}`, { headers: cookie ? { Cookie: `registry_web_session=${cookie}` } : {}, redirect: 'manual' });
    return { status: res.status, text: await res.text(), headers: res.headers };
  }

  test('"Log in" opens a form with Username and Password; a wrong password shows an error and makes no session', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await page.goto(`${srv.url}/`);
    await page.getByRole('link', { name: 'Log in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Log in' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/-/login');
    await page.getByLabel('Username').fill(ALICE.username);
    await page.getByLabel('Password').fill('not-the-password');
    const answer = await browser.expectStatus(401, async () => {
      const response = page.waitForResponse((r) => r.url() === `${srv.url}/-/login` && r.request().method() === 'POST');
      await page.getByRole('button', { name: 'Log in' }).click();
      return response;
    });
    assert.equal(answer.status(), 401);
    await page.getByRole('alert').filter({ hasText: 'Wrong username or password.' }).waitFor();
    // The username stays filled in; the header still offers to log in.
    assert.equal(await page.getByLabel('Username').inputValue(), ALICE.username);
    assert.equal(await page.getByRole('link', { name: 'Log in' }).count(), 1);
    assert.equal(await page.getByText('Signed in as').count(), 0);
    await browser.screenshot('login-error');
    // No session cookie; the only cookie is the one the form's CSRF token is bound to.
    assert.equal(await sessionCookie(), undefined, 'a wrong password makes no session');
    const cookies = await browser.context.cookies(srv.url);
    assert.deepEqual(cookies.map((c) => [c.name, c.httpOnly, c.sameSite]), [['registry_csrf', true, 'Lax']]);
    await page.goto(`${srv.url}/-/admin`);
    await page.getByRole('heading', { level: 1, name: 'Log in' }).waitFor();
  });

  test('a right password signs in with an HttpOnly, SameSite cookie signed with the registry secret; "Log out" ends the session', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await page.goto(`${srv.url}/-/r/alice/app`);
    await page.getByRole('link', { name: 'Log in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Log in' }).waitFor();
    await browser.screenshot('login');
    await page.getByLabel('Username').fill(ALICE.username);
    await page.getByLabel('Password').fill(ALICE.password);
    await page.getByRole('button', { name: 'Log in' }).click();
    // Back where the visitor was, signed in.
    await page.getByRole('heading', { level: 1, name: 'alice/app' }).waitFor();
    await page.getByText('Signed in as alice').waitFor();
    const cookie = await sessionCookie();
    assert.ok(cookie);
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Lax');
    assert.equal(cookie.path, '/');
    assert.ok(cookie.expires > Date.now() / 1000 + 3600, 'a persistent cookie with the session lifetime');
    assert.equal(await page.evaluate('document.cookie'), '', 'scripts cannot read the session');

    // Signed with the registry's secret: a session made with that secret is accepted, the
    // same session made with another secret, or with its payload changed, is not.
    const alice = (await srv.running.services.users.get(ALICE.username))!;
    const bob = (await srv.running.services.users.get(BOB.username))!;
    const ours = new SessionService(new KeyRing(TokenService.loadSecret(srv.root)), srv.running.services.users, 600).issue(alice);
    const theirs = new SessionService(new KeyRing(randomBytes(32)), srv.running.services.users, 600).issue(alice);
    assert.match((await getWith(ours.value, '/')).text, /Signed in as <strong>alice<\/strong>/);
    assert.doesNotMatch((await getWith(theirs.value, '/')).text, /Signed in as/);
    const [payload, mac] = cookie.value.split('.');
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), u: bob.name })).toString('base64url');
    assert.doesNotMatch((await getWith(`${forged}.${mac}`, '/')).text, /Signed in as/);
    assert.match((await getWith(cookie.value, '/')).text, /Signed in as <strong>alice<\/strong>/);

    await logOut(page);
    await page.getByRole('status').filter({ hasText: 'You are logged out.' }).waitFor();
    assert.equal(await sessionCookie(), undefined, 'the cookie is removed');
    // A copy of the old cookie is worth nothing now.
    assert.doesNotMatch((await getWith(cookie.value, '/')).text, /Signed in as/);
  });

  test('the login throttle applies to the form: after too many wrong passwords even the right one is refused (429)', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await page.goto(`${srv.url}/-/login`);
    for (let i = 0; i < MAX_FAILURES; i++) {
      await page.getByLabel('Username').fill(CAROL.username);
      await page.getByLabel('Password').fill(`wrong-${i}`);
      await browser.expectStatus(401, () => page.getByRole('button', { name: 'Log in' }).click());
      await page.getByRole('alert').filter({ hasText: 'Wrong username or password.' }).waitFor();
    }
    await page.getByLabel('Password').fill(CAROL.password);
    const answer = await browser.expectStatus(429, async () => {
      const response = page.waitForResponse((r) => r.url() === `${srv.url}/-/login` && r.request().method() === 'POST');
      await page.getByRole('button', { name: 'Log in' }).click();
      return response;
    });
    assert.equal(answer.status(), 429);
    assert.match((await answer.allHeaders())['retry-after'] ?? '', /^\d+$/);
    await page.getByRole('alert').filter({ hasText: /Too many failed logins: try again in \d+ seconds\./ }).waitFor();
    assert.equal(await page.getByText('Signed in as').count(), 0);
    // The same throttle as the API's: Basic auth for carol is refused too.
    const api = await fetch(`${srv.url}/v1/users/`, { headers: { Authorization: 'Basic ' + Buffer.from(`${CAROL.username}:${CAROL.password}`).toString('base64') } });
    assert.equal(api.status, 429);
  });

  test('every form that changes something carries a CSRF token; without it, with another session\'s, or from another site nothing changes', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await logIn(page, srv.url, ALICE);
    await page.goto(`${srv.url}/-/r/alice/app`);
    // Every POST form on the page (log out, description, visibility, collaborators) has the token.
    const forms = await page.locator('form[method="post"]').evaluateAll((list) =>
      list.map((form) => ({ action: form.getAttribute('action'), token: (form.querySelector('input[name="_csrf"]') as { value?: string } | null)?.value ?? '' })),
    );
    assert.ok(forms.length >= 4, JSON.stringify(forms));
    for (const form of forms) assert.match(form.token, /^[A-Za-z0-9_-]{43}$/, `${form.action}`);
    const token = forms[0].token;
    assert.ok(forms.every((f) => f.token === token), 'one token per browser');
    const cookie = (await sessionCookie())!.value;
    const csrfCookie = (await browser.context.cookies(srv.url)).find((c) => c.name === 'registry_csrf')!.value;

    const post = (fields: Record<string, string>, headers: Record<string, string> = {}, csrf = csrfCookie) =>
      fetch(`${srv.url}/-/r/alice/app/description`, {
        method: 'POST',
        redirect: 'manual',
        headers: { Cookie: `registry_web_session=${cookie}; registry_csrf=${csrf}`, 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams(fields).toString(),
      });
    const description = async () => (await srv.running.services.repos.get(parseRepoPath('alice/app'))).description;
    const before = await description();

    const missing = await post({ description: 'no token' });
    assert.equal(missing.status, 403);
    assert.match(await missing.text(), /This form has expired or did not come from this site/);
    // Another browser's token (and cookie) from the login form.
    const other = await fetch(`${srv.url}/-/login`);
    const otherToken = /name="_csrf" value="([^"]+)"/.exec(await other.text())![1];
    const otherCookie = /registry_csrf=([^;]+)/.exec(other.headers.get('set-cookie') ?? '')![1];
    assert.equal((await post({ description: "another browser's token", _csrf: otherToken })).status, 403);
    assert.equal((await post({ description: "the token with another browser's cookie", _csrf: token }, {}, otherCookie)).status, 403);
    assert.equal((await post({ description: 'another site', _csrf: token }, { Origin: 'http://attacker.example' })).status, 403);
    assert.equal(await description(), before, 'nothing changed');

    const ok = await post({ description: 'right token', _csrf: token }, { Origin: srv.url });
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.get('location'), '/-/r/alice/app?done=description');
    assert.equal(await description(), 'right token');

    // The login form itself is protected: no token, no login.
    const login = await fetch(`${srv.url}/-/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: ALICE.username, password: ALICE.password }).toString(),
    });
    assert.equal(login.status, 403);
    assert.equal(login.headers.get('set-cookie'), null);
  });

  test('pages send a strict Content-Security-Policy, and the browser enforces it', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    const response = await page.goto(`${srv.url}/`);
    const headers = await response!.allHeaders();
    const csp = headers['content-security-policy'];
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /style-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /form-action 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    assert.equal(headers['x-content-type-options'], 'nosniff');
    assert.equal(headers['cache-control'], 'no-store');
    // An inline script (what an injection would be) does not run.
    const { errors } = await browser.expectConsoleError(/Content Security Policy/, async () => {
      await page.addScriptTag({ content: 'window.injected = true;' }).catch(() => undefined);
    });
    assert.equal(await page.evaluate('window.injected === undefined'), true);
    assert.ok(errors.length > 0, 'the browser reported the blocked script');
    // The page's own script and stylesheet load (a violation would be a console error).
    assert.equal(await page.evaluate('document.documentElement.classList.contains("js")'), true);
    assert.equal(await page.evaluate('getComputedStyle(document.querySelector("header.top")).display'), 'flex');
  });

  test('a deactivated account cannot log in, and its open session ends at once', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await logIn(page, srv.url, BOB);
    await srv.running.services.users.setActive(BOB.username, false);
    await page.goto(`${srv.url}/`);
    await page.getByRole('link', { name: 'Log in' }).click();
    await page.getByLabel('Username').fill(BOB.username);
    await page.getByLabel('Password').fill(BOB.password);
    await browser.expectStatus(403, () => page.getByRole('button', { name: 'Log in' }).click());
    await page.getByRole('alert').filter({ hasText: 'This account is deactivated' }).waitFor();
    await srv.running.services.users.setActive(BOB.username, true);
    // A new password ends the sessions made with the old one.
    await logIn(page, srv.url, BOB);
    await srv.running.services.users.update(BOB.username, { password: 'bobby-secret-2' });
    await page.goto(`${srv.url}/`);
    await page.getByRole('link', { name: 'Log in' }).waitFor();
    assert.equal(await page.getByText('Signed in as').count(), 0);
    await srv.running.services.users.update(BOB.username, { password: BOB.password });
  });

  test('signed in to the web UI, the OAuth consent page knows who you are (no password asked)', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    const client = await srv.running.services.oauth.addClient('Build Bot', ['http://127.0.0.1:9/callback']);
    const authorize = `${srv.url}/api/v1.1/o/authorize/?${new URLSearchParams({ client_id: client.client_id, redirect_uri: 'http://127.0.0.1:9/callback', response_type: 'code', scope: 'repo_read', state: 'xyz' })}`;
    await page.goto(authorize);
    await page.getByLabel('Password').waitFor();
    await logIn(page, srv.url, ALICE);
    await page.goto(authorize);
    await page.getByText('You are logged in as alice').waitFor();
    assert.equal(await page.getByLabel('Password').count(), 0);
  });
});
