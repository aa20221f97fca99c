/**
 * The web UI in Chromium: the OAuth applications a user authorized (issue 17: "a user can list
 * and revoke the apps they authorized (HTTP and the web UI)"). The application is played by
 * oauth4webapi and the consent by the scripted browser (test/oauth/helpers.ts); the user then
 * opens "Applications", sees what the app may do, and revokes it: its tokens stop working on
 * the Accounts API and on the registry at once. Only the user sees their list; the form needs
 * the session's CSRF token.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readProfile, refusal, registerApp, tokensFor, type App } from '../oauth/helpers.js';
import { ALICE, BOB, browserSuite, logIn, signIn, tableRows } from './helpers.js';

describe('web UI: authorized applications', () => {
  let app: App;
  const suite = browserSuite({
    seed: async (srv) => {
      app = await registerApp(srv, 'Build Bot');
    },
  });

  test('"Applications" lists the apps the user authorized with what they may do; "Revoke" ends every token at once', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    const tokens = await tokensFor(app, 'profile_read repo_read', ALICE);
    assert.equal((await readProfile(srv, tokens.access_token)).status, 200);
    assert.equal((await fetch(`${srv.url}/v1/search?q=x`, { headers: { Authorization: `Bearer ${tokens.access_token}` } })).status, 200);

    await logIn(page, srv.url, ALICE);
    await page.getByRole('link', { name: 'Applications' }).click();
    await page.getByRole('heading', { level: 1, name: 'Authorized applications' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/-/account/apps');
    const rows = await tableRows(page, 'Authorized applications');
    assert.equal(rows.length, 1);
    assert.equal(rows[0][0], 'Build Bot');
    assert.match(rows[0][1], /Read your profile/);
    assert.match(rows[0][1], /Pull from the repositories you may read/);
    assert.doesNotMatch(rows[0][1], /Push to/, 'only the scopes granted');
    assert.match(rows[0][2], /^\d{4}-\d\d-\d\d \d\d:\d\d UTC$/);
    await browser.screenshot('authorized-apps');

    await page.getByRole('button', { name: 'Revoke Build Bot' }).click();
    await page.getByRole('status').filter({ hasText: 'Access revoked' }).waitFor();
    await page.getByText('You have not authorized any application.').waitFor();

    const refused = await refusal(readProfile(srv, tokens.access_token));
    assert.deepEqual([refused.status, refused.error], [401, 'invalid_token'], 'the access token stopped working');
    assert.equal((await fetch(`${srv.url}/v2/_catalog`, { headers: { Authorization: `Bearer ${tokens.access_token}` } })).status, 401, 'on the registry too');
    const refresh = await fetch(`${srv.url}/api/v1.1/o/token/`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: String(tokens.refresh_token), client_id: app.client.client_id, client_secret: app.secret }).toString(),
    });
    assert.equal(refresh.status, 400, 'the refresh token is revoked too');
    assert.equal(((await refresh.json()) as { error: string }).error, 'invalid_grant');
  });

  test("another user sees only their own list; anonymous visitors are sent to log in; an OAuth token is no way in", async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    const tokens = await tokensFor(app, 'profile_read', ALICE);
    await signIn(suite, BOB);
    await page.goto(`${srv.url}/-/account/apps`);
    await page.getByText('You have not authorized any application.').waitFor();

    await suite.browser.forgetCookies();
    await page.goto(`${srv.url}/-/account/apps`);
    assert.equal(new URL(page.url()).pathname, '/-/login');
    assert.equal(new URL(page.url()).searchParams.get('next'), '/-/account/apps');

    const withToken = await fetch(`${srv.url}/-/account/apps`, { headers: { Authorization: `Bearer ${tokens.access_token}` }, redirect: 'manual' });
    assert.ok(withToken.status === 303 || withToken.status === 403, `an OAuth token: ${withToken.status}`);
    assert.doesNotMatch(await withToken.text(), /Build Bot/);
  });

  test('revoking needs the session and its CSRF token; an app the user never authorized: 404', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await tokensFor(app, 'profile_read', ALICE);
    await signIn(suite, ALICE);
    await page.goto(`${srv.url}/-/account/apps`);
    const token = await page.locator('form[action$="/revoke"] input[name="_csrf"]').first().inputValue();
    const cookies = await browser.context.cookies(srv.url);
    const cookie = cookies.map((c) => `${c.name}=${c.value}`).join('; ');
    const post = (path: string, fields: Record<string, string>) =>
      fetch(`${srv.url}${path}`, { method: 'POST', redirect: 'manual', headers: { Cookie: cookie, Origin: srv.url, 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
    const revoke = `/-/account/apps/${encodeURIComponent(app.client.client_id)}/revoke`;
    assert.equal((await post(revoke, {})).status, 403, 'no CSRF token');
    assert.equal((await srv.running.services.oauth.listApps(ALICE.username)).length, 1, 'nothing revoked');
    assert.equal((await post('/-/account/apps/not-a-client/revoke', { _csrf: token })).status, 404);
    const done = await post(revoke, { _csrf: token });
    assert.equal(done.status, 303);
    assert.equal(done.headers.get('location'), '/-/account/apps?done=app-revoked');
    assert.deepEqual(await srv.running.services.oauth.listApps(ALICE.username), []);
  });
});
