/**
 * The web UI in Chromium with what the Registry API v2 pushed: a deeper name (`alice/team/app`,
 * which v1 cannot spell) and a one-letter namespace are listed, open, show their tags with
 * the pull command and history, take the owner's changes (the forms post to paths with the
 * whole name), and the administrators' storage page counts them. Before this, their links led
 * to 404/400 pages and one such repository made the storage page a 400.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { pushImageV2 } from '../helpers/v2.js';
import { ADMIN, ALICE, assertIncludes, browserSuite, signIn, tableRows } from './helpers.js';

const basic = (who: { username: string; password: string }) => ({ authorization: `Basic ${Buffer.from(`${who.username}:${who.password}`).toString('base64')}` });

describe('web UI: repositories pushed over the Registry API v2', () => {
  const suite = browserSuite({
    seed: async (srv) => {
      await pushImageV2(srv.url, 'alice/team/app', '1.0', [randomBytes(3000)], { auth: basic(ALICE) });
      await pushImageV2(srv.url, 'x/tool', 'latest', [randomBytes(500)], { auth: basic(ADMIN) });
    },
  });

  test('a deeper v2 name is listed and opens: tags, the docker pull command, the history', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    const host = new URL(srv.url).host;
    await page.goto(`${srv.url}/`);
    await page.getByRole('link', { name: 'alice/team/app' }).click();
    await page.getByRole('heading', { level: 1, name: 'alice/team/app' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/-/r/alice/team/app');
    assert.equal(await page.getByRole('textbox', { name: 'Pull command for 1.0' }).inputValue(), `docker pull ${host}/alice/team/app:1.0`);
    await page.getByRole('link', { name: '1.0', exact: true }).click();
    await page.waitForURL(`${srv.url}/-/r/alice/team/app/tags/1.0`);
    const history = await page.locator('main').innerText();
    assertIncludes(history, '3.00 kB', 'the layer size');
    assertIncludes(history, 'layer 0', "what created the layer (the v2 config's history)");

    await page.goto(`${srv.url}/`);
    await page.getByRole('link', { name: 'x/tool' }).click();
    await page.getByRole('heading', { level: 1, name: 'x/tool' }).waitFor();
  });

  test('the owner edits the description of a deeper name; the delete confirmation names it', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await signIn(suite, ALICE);
    await page.goto(`${srv.url}/-/r/alice/team/app`);
    await page.getByLabel('Description').fill('a v2-only name');
    await page.getByRole('button', { name: 'Save description' }).click();
    await page.getByRole('status').filter({ hasText: 'Description saved.' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/-/r/alice/team/app');
    const hub = (await (await fetch(`${srv.url}/v2/repositories/alice/team/app/`)).json()) as { description?: string };
    assert.equal((await srv.running.services.repos.get({ namespace: 'alice', repository: 'team/app', full: 'alice/team/app' })).description, 'a v2-only name', JSON.stringify(hub));
    await page.getByRole('link', { name: 'Delete repository…' }).click();
    await page.waitForURL(`${srv.url}/-/r/alice/team/app/delete`);
    assertIncludes(await page.locator('main').innerText(), 'alice/team/app', 'the confirmation');
  });

  test("the administrators' storage page counts v2 names", async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await signIn(suite, ADMIN);
    await page.goto(`${srv.url}/-/admin/storage`);
    const rows = await tableRows(page, 'Every repository, largest first');
    const names = rows.map((r) => r[0]);
    assert.ok(names.includes('alice/team/app') && names.includes('x/tool'), JSON.stringify(rows));
  });
});
