/**
 * The web UI in Chromium: browsing. The repository list (what the viewer may read, newest
 * first, description, tags, size, pulls), the search field, a repository's page (tags with
 * image id, size, pushed at and by, a copyable pull command), an image's history (a row
 * per layer, a bar chart of the layer sizes), private repositories hidden from those who
 * may not read them, and the keyboard.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ALICE, BOB, browserSuite, pullAs, pushAs, signIn, signOut, tableRows } from './helpers.js';
import { parseRepoPath } from '../../src/domain/names.js';
import type { Docker1Image } from '../helpers/docker1.js';

/** Waits until the clock enters a new second (push times have a resolution of one second). */
async function nextSecond(): Promise<void> {
  const now = Date.now();
  await new Promise((resolve) => setTimeout(resolve, 1000 - (now % 1000) + 5));
}

describe('web UI: browsing', () => {
  let web: Docker1Image[];
  let host: string;

  const suite = browserSuite({
    seed: async (srv) => {
      host = new URL(srv.url).host;
      const services = srv.running.services;
      // Oldest first: tools, then web (two tags), then alice's private repository.
      await pushAs(srv, BOB, 'bobby/tools', 'v1', [{ createdBy: '#(nop) ADD file:tools in /', size: 1500 }]);
      await services.repos.setProperties(parseRepoPath('bobby/tools'), { description: 'Handy tools for builds' });
      await nextSecond();
      web = await pushAs(srv, ALICE, 'alice/web', '1.0', [
        { createdBy: '#(nop) ADD file:base in /', size: 3000 },
        { createdBy: 'apt-get install -y nginx', size: 1200 },
        { createdBy: '#(nop) COPY site /usr/share/nginx/html', size: 300 },
      ]);
      await services.repos.setProperties(parseRepoPath('alice/web'), { description: 'The <b>web</b> front end' });
      await nextSecond();
      await pushAs(srv, ALICE, 'alice/web', 'edge', [{ createdBy: 'echo edge', size: 100 }]);
      await pullAs(srv, null, 'alice/web', '1.0');
      await pullAs(srv, ALICE, 'alice/web', 'edge');
      await nextSecond();
      await pushAs(srv, ALICE, 'alice/secret', 'v1', [{ createdBy: 'echo secret', size: 50 }]);
      await services.repos.setProperties(parseRepoPath('alice/secret'), { access: 'private', description: 'hidden sauce' });
    },
  });

  test('the repository list shows what an anonymous visitor may read, newest first, with description, tags, size and pulls', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await page.goto(`${srv.url}/`);
    assert.equal(await page.title(), 'Repositories · Registry');
    await page.getByRole('heading', { level: 1, name: 'Repositories' }).waitFor();
    const rows = await tableRows(page, 'Repositories, most recently pushed first');
    assert.deepEqual(
      rows.map((r) => r.slice(0, 5)),
      [
        ['alice/web', 'The <b>web</b> front end', '2', '4.60 kB', '2'],
        ['bobby/tools', 'Handy tools for builds', '1', '1.50 kB', '0'],
      ],
    );
    // The description is text, not markup.
    assert.equal(await page.locator('main b').count(), 0);
    await browser.screenshot('repositories');
  });

  test('the search field ("Search") uses /v1/search matching and never shows private repositories to those who may not read them', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await page.goto(`${srv.url}/`);
    const search = page.getByRole('searchbox', { name: 'Search' });
    await search.fill('handy');
    await search.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Search results for “handy”' }).waitFor();
    assert.deepEqual((await tableRows(page, 'Repositories, most recently pushed first')).map((r) => r[0]), ['bobby/tools']);
    assert.equal(await page.getByRole('searchbox', { name: 'Search' }).inputValue(), 'handy');

    // The same answer as the API's search for the same query.
    const api = (await (await fetch(`${srv.url}/v1/search?q=alice`)).json()) as { results: Array<{ name: string }> };
    await page.getByRole('searchbox', { name: 'Search' }).fill('alice');
    await page.getByRole('searchbox', { name: 'Search' }).press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Search results for “alice”' }).waitFor();
    const shown = (await tableRows(page, 'Repositories, most recently pushed first')).map((r) => r[0]);
    assert.deepEqual(shown, ['alice/web']);
    assert.deepEqual(api.results.map((r) => r.name), shown);

    await page.getByRole('searchbox', { name: 'Search' }).fill('sauce');
    await page.getByRole('searchbox', { name: 'Search' }).press('Enter');
    await page.getByText('No repository matches your search.').waitFor();

    // Alice (the owner) finds it, and it is marked private.
    await signIn(suite, ALICE);
    await page.getByRole('searchbox', { name: 'Search' }).fill('sauce');
    await page.getByRole('searchbox', { name: 'Search' }).press('Enter');
    const rows = await tableRows(page, 'Repositories, most recently pushed first');
    assert.deepEqual(rows.map((r) => r[0]), ['alice/secret Private']);
    await page.goto(`${srv.url}/`);
    assert.deepEqual(
      (await tableRows(page, 'Repositories, most recently pushed first')).map((r) => r[0]),
      ['alice/secret Private', 'alice/web', 'bobby/tools'],
    );
    await signOut(suite);
  });

  test('a private repository does not exist for anonymous visitors and users without read: its page is 404', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    for (const who of [null, BOB]) {
      if (who) await signIn(suite, who);
      const res = await browser.expectStatus(404, () => page.goto(`${srv.url}/-/r/alice/secret`));
      assert.equal(res?.status(), 404);
      await page.getByRole('heading', { level: 1, name: 'Not found' }).waitFor();
      await page.getByText('Repository not found').waitFor();
      assert.equal(await page.getByText('hidden sauce').count(), 0);
      // The same answer as for a repository that does not exist at all.
      const missing = await browser.expectStatus(404, () => page.goto(`${srv.url}/-/r/alice/nothing-here`));
      assert.equal(missing?.status(), 404);
      await page.getByText('Repository not found').waitFor();
      const history = await browser.expectStatus(404, () => page.goto(`${srv.url}/-/r/alice/secret/tags/v1`));
      assert.equal(history?.status(), 404);
      if (who) await signOut(suite);
    }
    // Bob with read on it sees it.
    await srv.running.services.repos.setCollaborator(parseRepoPath('alice/secret'), BOB.username, 'read');
    await signIn(suite, BOB);
    await page.goto(`${srv.url}/-/r/alice/secret`);
    await page.getByText('hidden sauce').waitFor();
    await signOut(suite);
    await srv.running.services.repos.setCollaborator(parseRepoPath('alice/secret'), BOB.username, null);
  });

  test('a repository page lists its tags with image id, size, pushed at, pushed by and a pull command to copy', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await page.goto(`${srv.url}/`);
    await page.getByRole('link', { name: 'alice/web' }).click();
    await page.getByRole('heading', { level: 1, name: 'alice/web' }).waitFor();
    await page.getByText('The <b>web</b> front end').waitFor();
    const rows = await tableRows(page, 'Tags of alice/web, most recently pushed first');
    assert.equal(rows.length, 2);
    const tags = await srv.running.services.repos.listTags(parseRepoPath('alice/web'));
    const [edge, one] = rows;
    assert.deepEqual(edge.slice(0, 3), ['edge', tags.edge.slice(0, 12), '100 B']);
    assert.deepEqual(one.slice(0, 3), ['1.0', web[2].id.slice(0, 12), '4.50 kB']);
    assert.equal(edge[4], 'alice');
    assert.equal(one[4], 'alice');
    // Pushed at: a time element with the push time (to the second) of the tag.
    const pushedAt = await page.locator('table.tags tbody tr').nth(1).locator('time').getAttribute('datetime');
    const recorded = (await srv.running.services.repos.tagInfo(parseRepoPath('alice/web'), '1.0' as never)).last_update;
    assert.equal(pushedAt, new Date((recorded as number) * 1000).toISOString());

    const field = page.getByRole('textbox', { name: 'Pull command for 1.0' });
    assert.equal(await field.inputValue(), `docker pull ${host}/alice/web:1.0`);
    assert.equal(await field.getAttribute('readonly'), '');
    await page.getByRole('button', { name: 'Copy pull command for 1.0' }).click();
    await page.getByText(`Copied: docker pull ${host}/alice/web:1.0`).waitFor({ state: 'attached' });
    assert.equal(await page.evaluate('navigator.clipboard.readText()'), `docker pull ${host}/alice/web:1.0`);
    // Anonymous visitors get no owner controls.
    assert.equal(await page.getByRole('heading', { name: 'Manage' }).count(), 0);
    assert.equal(await page.getByRole('link', { name: /^Delete/ }).count(), 0);
    await browser.screenshot('repository');
  });

  test("an image's history: one row per layer with what created it and its size, and a bar chart of the sizes", async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await page.goto(`${srv.url}/-/r/alice/web`);
    await page.getByRole('link', { name: '1.0', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'alice/web:1.0' }).waitFor();
    const rows = await tableRows(page, 'Layers of alice/web:1.0, newest first');
    assert.deepEqual(
      rows.map((r) => [r[0], r[1], r[3], r[4]]),
      [
        ['3', web[2].id.slice(0, 12), '/bin/sh -c #(nop) COPY site /usr/share/nginx/html', '300 B'],
        ['2', web[1].id.slice(0, 12), '/bin/sh -c apt-get install -y nginx', '1.20 kB'],
        ['1', web[0].id.slice(0, 12), '/bin/sh -c #(nop) ADD file:base in /', '3.00 kB'],
      ],
    );
    const chart = page.getByRole('img', { name: 'Layer sizes of alice/web:1.0' });
    await chart.waitFor();
    assert.equal(await chart.evaluate((el) => el.tagName.toLowerCase()), 'svg');
    const widths = await chart.locator('rect.bar').evaluateAll((bars) => bars.map((b) => Number(b.getAttribute('width'))));
    assert.equal(widths.length, 3);
    // Proportional to the sizes: 300 : 1200 : 3000.
    assert.ok(widths[2] > widths[1] && widths[1] > widths[0] && widths[0] > 0, `bar widths ${widths}`);
    assert.ok(Math.abs(widths[1] / widths[2] - 0.4) < 0.02, `bar widths ${widths}`);
    const tips = await chart.locator('rect.bar title').allTextContents();
    assert.deepEqual(tips, [`3. ${web[2].id.slice(0, 12)}: 300 B`, `2. ${web[1].id.slice(0, 12)}: 1.20 kB`, `1. ${web[0].id.slice(0, 12)}: 3.00 kB`]);
    assert.equal(await page.getByRole('textbox', { name: 'Pull command for 1.0' }).inputValue(), `docker pull ${host}/alice/web:1.0`);
    await browser.screenshot('history');
  });

  test('the keyboard reaches everything: skip link, search, links', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await page.goto(`${srv.url}/`);
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate('document.activeElement?.textContent'), 'Skip to content');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate('document.activeElement?.id'), 'main');
    // Search by keyboard alone: the field is the first input after the brand link.
    await page.goto(`${srv.url}/`);
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate('document.activeElement?.getAttribute("aria-label")'), 'Search');
    await page.keyboard.type('tools');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Search results for “tools”' }).waitFor();
    // Tab to the first repository link and open it.
    const link = page.getByRole('link', { name: 'bobby/tools' });
    const focused = async () => (await page.evaluate('document.activeElement?.textContent')) === 'bobby/tools';
    for (let i = 0; i < 10 && !(await focused()); i++) await page.keyboard.press('Tab');
    assert.ok(await focused(), 'the repository link takes the focus');
    assert.equal(await link.getAttribute('href'), '/-/r/bobby/tools');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'bobby/tools' }).waitFor();
  });
});
