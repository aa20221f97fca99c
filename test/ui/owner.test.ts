/**
 * The web UI in Chromium: what a repository's owners (admin permission on it) do there:
 * edit the description, switch "Private", manage collaborators, delete a tag and the
 * repository after a confirmation; and what others (collaborators with less, strangers) do
 * not get to do.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseRepoPath } from '../../src/domain/names.js';
import { ALICE, BOB, browserSuite, CAROL, pushAs, signIn, signOut, tableRows } from './helpers.js';

describe('web UI: owners manage their repositories', () => {
  const repo = parseRepoPath('alice/shop');

  const suite = browserSuite({
    seed: async (srv) => {
      await pushAs(srv, ALICE, 'alice/shop', 'v1', [{ createdBy: 'echo v1', size: 400 }]);
      await pushAs(srv, ALICE, 'alice/shop', 'v2', [{ createdBy: 'echo v2', size: 500 }]);
      await pushAs(srv, ALICE, 'alice/shop', 'old', [{ createdBy: 'echo old', size: 600 }]);
    },
  });

  test('the owner edits the description', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await signIn(suite, ALICE);
    await page.goto(`${srv.url}/-/r/alice/shop`);
    await page.getByRole('heading', { level: 2, name: 'Manage' }).waitFor();
    await page.getByLabel('Description').fill('The shop <script>alert(1)</script>\nsecond line');
    await page.getByRole('button', { name: 'Save description' }).click();
    await page.getByRole('status').filter({ hasText: 'Description saved.' }).waitFor();
    assert.equal((await srv.running.services.repos.get(repo)).description, 'The shop <script>alert(1)</script>\nsecond line');
    // Shown as text on the page and in the list (no script ran: it would be a CSP console error).
    await page.locator('p.description').filter({ hasText: 'The shop <script>alert(1)</script>' }).waitFor();
    assert.equal(await page.getByLabel('Description').inputValue(), 'The shop <script>alert(1)</script>\nsecond line');
    await page.goto(`${srv.url}/`);
    const rows = await tableRows(page, 'Repositories, most recently pushed first');
    assert.equal(rows[0][1], 'The shop <script>alert(1)</script> second line');
    await page.goto(`${srv.url}/-/r/alice/shop`);
    await browser.screenshot('repository-owner');
  });

  test('the owner switches "Private": the repository disappears for anonymous visitors, and comes back', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await signIn(suite, ALICE);
    await page.goto(`${srv.url}/-/r/alice/shop`);
    const control = page.getByRole('switch', { name: 'Private' });
    assert.equal(await control.isChecked(), false);
    await control.click();
    await page.getByRole('status').filter({ hasText: 'The repository is now private.' }).waitFor();
    assert.equal(await page.getByRole('switch', { name: 'Private' }).isChecked(), true);
    assert.equal((await srv.running.services.repos.get(repo)).access, 'private');

    // Keyboard: the switch is a button; Space toggles it back below, after the check.
    await signOut(suite);
    const res = await browser.expectStatus(404, () => page.goto(`${srv.url}/-/r/alice/shop`));
    assert.equal(res?.status(), 404);
    await page.goto(`${srv.url}/`);
    await page.getByText('No repositories yet.').waitFor();

    await signIn(suite, ALICE);
    await page.goto(`${srv.url}/-/r/alice/shop`);
    await page.getByRole('switch', { name: 'Private' }).focus();
    await page.keyboard.press('Space');
    await page.getByRole('status').filter({ hasText: 'The repository is now public.' }).waitFor();
    assert.equal(await page.getByRole('switch', { name: 'Private' }).isChecked(), false);
    assert.equal((await srv.running.services.repos.get(repo)).access, 'public');
  });

  test('the owner manages collaborators: a write collaborator may delete tags but not manage; a read collaborator sees a private repository', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await signIn(suite, ALICE);
    await page.goto(`${srv.url}/-/r/alice/shop`);
    const add = page.getByRole('form', { name: 'Add a collaborator' });
    await add.getByLabel('User').fill(BOB.username);
    await add.getByLabel('Permission').selectOption('write');
    await add.getByRole('button', { name: 'Add collaborator' }).click();
    await page.getByRole('status').filter({ hasText: 'Collaborator saved.' }).waitFor();
    await add.getByLabel('User').fill(CAROL.username);
    await add.getByLabel('Permission').selectOption('read');
    await add.getByRole('button', { name: 'Add collaborator' }).click();
    await page.getByRole('status').filter({ hasText: 'Collaborator saved.' }).waitFor();
    assert.deepEqual(await tableRows(page, 'Collaborators of alice/shop'), [
      ['bobby', 'write', 'Remove'],
      ['carol', 'read', 'Remove'],
    ]);
    assert.deepEqual(await srv.running.services.repos.collaborators(repo), { bobby: 'write', carol: 'read' });

    // An unknown user is refused with the reason, and nothing changes.
    await add.getByLabel('User').fill('nobody_here');
    await browser.expectStatus(404, () => add.getByRole('button', { name: 'Add collaborator' }).click());
    await page.getByRole('alert').filter({ hasText: 'User not found' }).waitFor();
    assert.deepEqual(await srv.running.services.repos.collaborators(repo), { bobby: 'write', carol: 'read' });

    await page.goto(`${srv.url}/-/r/alice/shop`);
    await page.getByRole('switch', { name: 'Private' }).click();
    await page.getByRole('status').filter({ hasText: 'The repository is now private.' }).waitFor();
    await signOut(suite);

    // Carol (read) sees the private repository, and nothing to change.
    await signIn(suite, CAROL);
    await page.goto(`${srv.url}/-/r/alice/shop`);
    await page.getByRole('heading', { level: 1, name: 'alice/shop Private' }).waitFor();
    assert.equal(await page.getByRole('heading', { name: 'Manage' }).count(), 0);
    assert.equal(await page.getByRole('link', { name: /^Delete/ }).count(), 0);
    // The delete confirmation is refused to her.
    await browser.expectStatus(403, () => page.goto(`${srv.url}/-/r/alice/shop/tags/v1/delete`));
    await page.getByText('You may not delete tags of alice/shop').waitFor();
    await signOut(suite);

    // Bob (write) may delete tags, but sees no Manage section and no repository delete.
    await signIn(suite, BOB);
    await page.goto(`${srv.url}/-/r/alice/shop`);
    await page.getByRole('link', { name: 'Delete tag old' }).waitFor();
    assert.equal(await page.getByRole('heading', { name: 'Manage' }).count(), 0);
    assert.equal(await page.getByRole('link', { name: 'Delete repository…' }).count(), 0);
    await browser.expectStatus(403, () => page.goto(`${srv.url}/-/r/alice/shop/delete`));
    await signOut(suite);

    // Alice removes Carol; Carol no longer sees the (private) repository.
    await signIn(suite, ALICE);
    await page.goto(`${srv.url}/-/r/alice/shop`);
    await page.getByRole('button', { name: 'Remove collaborator carol' }).click();
    await page.getByRole('status').filter({ hasText: 'Collaborator removed.' }).waitFor();
    assert.deepEqual(await srv.running.services.repos.collaborators(repo), { bobby: 'write' });
    await page.getByRole('switch', { name: 'Private' }).click();
    await page.getByRole('status').filter({ hasText: 'The repository is now public.' }).waitFor();
  });

  test('deleting a tag asks for a confirmation first', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await signIn(suite, ALICE);
    await page.goto(`${srv.url}/-/r/alice/shop`);
    await page.getByRole('link', { name: 'Delete tag old' }).click();
    await page.getByRole('heading', { level: 1, name: 'Delete tag old?' }).waitFor();
    await browser.screenshot('confirm-tag-delete');
    // Cancel keeps it.
    await page.getByRole('link', { name: 'Cancel' }).click();
    await page.getByRole('link', { name: 'Delete tag old' }).waitFor();
    assert.ok('old' in (await srv.running.services.repos.listTags(repo)));
    await page.getByRole('link', { name: 'Delete tag old' }).click();
    await page.getByRole('button', { name: 'Delete tag old' }).click();
    await page.getByRole('status').filter({ hasText: 'Tag deleted.' }).waitFor();
    assert.deepEqual(Object.keys(await srv.running.services.repos.listTags(repo)).sort(), ['v1', 'v2']);
    assert.deepEqual(
      (await tableRows(page, 'Tags of alice/shop, most recently pushed first')).map((r) => r[0]).sort(),
      ['v1', 'v2'],
    );
  });

  test('deleting the repository asks to type its name first', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await signIn(suite, ALICE);
    await page.goto(`${srv.url}/-/r/alice/shop`);
    await page.getByRole('link', { name: 'Delete repository…' }).click();
    await page.getByRole('heading', { level: 1, name: 'Delete repository alice/shop?' }).waitFor();
    await page.getByLabel('Type the repository name (alice/shop) to confirm').fill('alice/shoe');
    await browser.expectStatus(400, () => page.getByRole('button', { name: 'Delete repository' }).click());
    await page.getByRole('alert').filter({ hasText: 'the repository was not deleted' }).waitFor();
    assert.ok(await srv.running.services.meta.getRepo(repo));
    await page.getByLabel('Type the repository name (alice/shop) to confirm').fill('alice/shop');
    await page.getByRole('button', { name: 'Delete repository' }).click();
    await page.getByRole('status').filter({ hasText: 'Repository deleted.' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/');
    assert.equal(await srv.running.services.meta.getRepo(repo), null);
    await page.getByText('No repositories yet.').waitFor();
  });
});
