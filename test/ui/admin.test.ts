/**
 * The web UI in Chromium: the administrators' pages. Users (create, deactivate, make
 * admin), garbage collection (a dry run shows what would go and how many bytes, then the
 * run), the fsck report, storage per repository (a chart); and nobody else gets in.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseRepoPath } from '../../src/domain/names.js';
import { ADMIN, ALICE, BOB, browserSuite, logIn, logOut, pushAs, signIn, signOut, tableRows } from './helpers.js';

describe('web UI: administrators', () => {

  const suite = browserSuite({
    // No grace period: what nothing references is garbage at once; an upload session idle
    // for any time is abandoned.
    overrides: { gc_grace_seconds: 0, upload_expiry_seconds: 0 },
    seed: async (srv) => {
      // No grace period: what nothing references is garbage at once.
      await pushAs(srv, ALICE, 'alice/big', 'v1', [
        { createdBy: 'base', size: 5000 },
        { createdBy: 'more', size: 3000 },
      ]);
      await pushAs(srv, ALICE, 'alice/small', 'v1', [{ createdBy: 'small', size: 700 }]);
      await pushAs(srv, BOB, 'bobby/mid', 'v1', [{ createdBy: 'mid', size: 2000 }]);
    },
  });

  test('only administrators get in: anonymous visitors are sent to log in, other users are refused', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await page.goto(`${srv.url}/-/admin/users`);
    await page.getByRole('heading', { level: 1, name: 'Log in' }).waitFor();
    assert.equal(new URL(page.url()).searchParams.get('next'), '/-/admin/users');
    await page.getByLabel('Username').fill(ALICE.username);
    await page.getByLabel('Password').fill(ALICE.password);
    await browser.expectStatus(403, () => page.getByRole('button', { name: 'Log in' }).click());
    await page.getByRole('heading', { level: 1, name: 'Not allowed' }).waitFor();
    await page.getByText('Only administrators may do this').waitFor();
    assert.equal(await page.getByRole('link', { name: 'Admin' }).count(), 0);
    for (const path of ['/-/admin', '/-/admin/gc', '/-/admin/fsck', '/-/admin/storage']) {
      const res = await browser.expectStatus(403, () => page.goto(`${srv.url}${path}`));
      assert.equal(res?.status(), 403, path);
    }
    await signOut(suite);
  });

  test('users: create one, deactivate it, make it an administrator', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await signIn(suite, ADMIN);
    await page.goto(`${srv.url}/`);
    await page.getByRole('link', { name: 'Admin' }).click();
    await page.getByRole('heading', { level: 1, name: 'Admin' }).waitFor();
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByRole('heading', { level: 1, name: 'Users' }).waitFor();

    // A bad e-mail: the reason, the form kept, nobody created.
    await page.getByLabel('Username').fill('dave');
    await page.getByLabel('E-mail').fill('not-an-address');
    await page.getByLabel('Password').fill('dave-secret-1');
    await page.locator('#new-email').evaluate((el) => el.removeAttribute('type'));
    await browser.expectStatus(400, () => page.getByRole('button', { name: 'Create user' }).click());
    await page.getByRole('alert').filter({ hasText: 'Invalid e-mail address' }).waitFor();
    assert.equal(await page.getByLabel('Username').inputValue(), 'dave');
    assert.equal(await srv.running.services.users.get('dave'), null);

    await page.getByLabel('E-mail').fill('dave@example.test');
    await page.getByLabel('Password').fill('dave-secret-1');
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('status').filter({ hasText: 'User created.' }).waitFor();
    const rows = await tableRows(page, 'Accounts');
    const dave = rows.find((r) => r[0] === 'dave');
    assert.deepEqual(dave?.slice(0, 4), ['dave', 'dave@example.test', 'no', 'active']);
    // The same name again is refused.
    await page.getByLabel('Username').fill('dave');
    await page.getByLabel('E-mail').fill('dave2@example.test');
    await page.getByLabel('Password').fill('dave-secret-2');
    await browser.expectStatus(400, () => page.getByRole('button', { name: 'Create user' }).click());
    await page.getByRole('alert').filter({ hasText: 'Username or email already exists' }).waitFor();
    await browser.screenshot('admin-users');

    // Dave can log in (the password works).
    await signOut(suite);
    await logIn(page, srv.url, { username: 'dave', password: 'dave-secret-1' });
    await logOut(page);

    await signIn(suite, ADMIN);
    await page.goto(`${srv.url}/-/admin/users`);
    await page.getByRole('button', { name: 'Deactivate dave' }).click();
    await page.getByRole('status').filter({ hasText: 'User updated.' }).waitFor();
    assert.equal((await srv.running.services.users.get('dave'))?.active, false);
    assert.equal((await tableRows(page, 'Accounts')).find((r) => r[0] === 'dave')?.[3], 'inactive');
    await page.getByRole('button', { name: 'Activate dave' }).click();
    await page.getByRole('status').filter({ hasText: 'User updated.' }).waitFor();
    await page.getByRole('button', { name: 'Make dave admin' }).click();
    await page.getByRole('status').filter({ hasText: 'User updated.' }).waitFor();
    assert.equal((await srv.running.services.users.get('dave'))?.admin, true);
    // An administrator cannot deactivate or demote themselves from here.
    assert.equal(await page.getByRole('button', { name: `Deactivate ${ADMIN.username}` }).count(), 0);
    await signOut(suite);

    // Dave now sees the admin pages.
    await signIn(suite, { username: 'dave', password: 'dave-secret-1' });
    await page.goto(`${srv.url}/`);
    await page.getByRole('link', { name: 'Admin' }).click();
    await page.getByRole('heading', { level: 1, name: 'Admin' }).waitFor();
  });

  test('garbage collection: a dry run shows what would go and how many bytes, then the run frees them', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    // A v2 upload alice started and left (300 bytes received).
    const auth = { Authorization: `Basic ${Buffer.from(`${ALICE.username}:${ALICE.password}`).toString('base64')}` };
    const started = await fetch(`${srv.url}/v2/alice/big/blobs/uploads/`, { method: 'POST', headers: auth });
    assert.equal(started.status, 202);
    const session = new URL(started.headers.get('location') as string, srv.url).href;
    const chunk = await fetch(session, { method: 'PATCH', headers: { ...auth, 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(300, 7) });
    assert.equal(chunk.status, 202);
    // alice/small is deleted: its one image (700 bytes) becomes garbage.
    const small = await srv.running.services.repos.getTag(parseRepoPath('alice/small'), 'v1' as never);
    await srv.running.services.repos.delete(parseRepoPath('alice/small'), 'alice');
    await signIn(suite, ADMIN);
    await page.goto(`${srv.url}/-/admin/gc`);
    await page.getByRole('button', { name: 'Dry run' }).click();
    await page.getByRole('heading', { level: 2, name: 'Dry run: nothing was deleted' }).waitFor();
    const facts = page.locator('#gc-result + dl');
    assert.equal(await facts.locator('div', { hasText: 'Images that would be deleted' }).locator('dd').textContent(), '1 of 4');
    assert.equal(await facts.locator('div', { hasText: 'Layers that would be deleted' }).locator('dd').textContent(), '1 of 4');
    assert.equal(await facts.locator('div', { hasText: 'Space that would be freed' }).locator('dd').textContent(), '700 B');
    assert.equal(await facts.locator('div', { hasText: 'Unfinished uploads that would be reclaimed' }).locator('dd').textContent(), '1 (300 B)');
    assert.equal((await fetch(session, { headers: auth })).status, 204, 'a dry run keeps the session');
    await page.getByText('The images that would be deleted').click();
    await page.getByText(small).waitFor();
    assert.ok(await srv.running.services.meta.getImage(small), 'a dry run deletes nothing');
    await browser.screenshot('admin-gc');

    await page.getByRole('button', { name: 'Run garbage collection' }).click();
    await page.getByRole('heading', { level: 2, name: 'Garbage collection done' }).waitFor();
    assert.equal(await page.locator('#gc-result + dl div', { hasText: 'Space freed' }).locator('dd').textContent(), '700 B');
    assert.equal(await page.locator('#gc-result + dl div', { hasText: 'Unfinished uploads reclaimed' }).locator('dd').textContent(), '1 (300 B)');
    assert.equal(await srv.running.services.meta.getImage(small), null);
    const gone = await fetch(session, { headers: auth });
    assert.equal(gone.status, 404, 'the abandoned session is reclaimed');
    assert.equal(((await gone.json()) as { errors: Array<{ code: string }> }).errors[0].code, 'BLOB_UPLOAD_UNKNOWN');
  });

  test('fsck: the report of a consistency check', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await signIn(suite, ADMIN);
    await page.goto(`${srv.url}/-/admin`);
    await page.getByRole('link', { name: 'Consistency check' }).click();
    await page.getByRole('button', { name: 'Run check' }).click();
    await page.getByRole('heading', { level: 2, name: 'No problems found' }).waitFor();
    const facts = page.locator('#fsck-result + dl');
    assert.match((await facts.locator('div', { hasText: 'Layers checked' }).locator('dd').textContent()) ?? '', /^3 \(10\.0 kB\)$/);
    assert.equal(await facts.locator('div', { hasText: 'Images checked' }).locator('dd').textContent(), '3');
    await browser.screenshot('admin-fsck');

    // A broken record shows up as a problem.
    const image = await srv.running.services.repos.getTag(parseRepoPath('bobby/mid'), 'v1' as never);
    const record = (await srv.running.services.meta.getImage(image))!;
    await srv.running.services.blobs.delete(record.layer!.digest);
    await page.getByRole('button', { name: 'Run check' }).click();
    await page.getByRole('heading', { level: 2, name: '1 problem found' }).waitFor();
    const problems = await tableRows(page, 'Problems');
    assert.equal(problems.length, 1);
    assert.equal(problems[0][0], 'missing-blob');
  });

  test('storage per repository, largest first, with a chart', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await signIn(suite, ADMIN);
    await page.goto(`${srv.url}/-/admin`);
    await page.getByRole('link', { name: 'Storage' }).click();
    await page.getByRole('heading', { level: 1, name: 'Storage' }).waitFor();
    const rows = await tableRows(page, 'Every repository, largest first');
    assert.deepEqual(rows, [
      ['alice/big', '1', '8.00 kB'],
      ['bobby/mid', '1', '2.00 kB'],
    ]);
    const chart = page.getByRole('img', { name: 'Storage per repository' });
    const bars = await chart.locator('rect.bar title').allTextContents();
    assert.deepEqual(bars, ['alice/big: 8.00 kB', 'bobby/mid: 2.00 kB']);
    const widths = await chart.locator('rect.bar').evaluateAll((list) => list.map((b) => Number(b.getAttribute('width'))));
    assert.ok(Math.abs(widths[1] / widths[0] - 0.25) < 0.02, `bar widths ${widths}`);
    await browser.screenshot('admin-storage');
  });

  test('every page is accessible: language, one h1, landmarks, every control named, tables captioned, charts titled', async () => {
    const { srv, browser } = suite;
    const { page } = browser;
    await signIn(suite, ADMIN);
    const pages = ['/', '/?q=alice', '/-/r/alice/big', '/-/r/alice/big/tags/v1', '/-/r/alice/big/tags/v1/delete', '/-/r/alice/big/delete', '/-/admin', '/-/admin/users', '/-/admin/gc', '/-/admin/fsck', '/-/admin/storage'];
    for (const path of pages) {
      await page.goto(`${srv.url}${path}`);
      const report = (await page.evaluate(`(() => {
        const problems = [];
        const name = (el) => (el.getAttribute('aria-label') || (el.getAttribute('aria-labelledby') || '').split(' ').map((id) => document.getElementById(id)?.textContent || '').join(' ') || [...(el.labels || [])].map((l) => l.textContent).join(' ') || (el.tagName === 'BUTTON' || el.tagName === 'A' ? el.textContent : '') || '').trim();
        if (!document.documentElement.lang) problems.push('no lang');
        if (document.querySelectorAll('h1').length !== 1) problems.push('h1 count ' + document.querySelectorAll('h1').length);
        for (const sel of ['header', 'main', 'nav', 'form[role="search"]']) if (!document.querySelector(sel)) problems.push('no ' + sel);
        for (const el of document.querySelectorAll('input:not([type="hidden"]), select, textarea, button, a[href]')) if (!name(el)) problems.push('unnamed ' + el.outerHTML.slice(0, 80));
        for (const el of document.querySelectorAll('table')) if (!el.querySelector('caption') && !el.getAttribute('aria-label')) problems.push('table without caption');
        for (const el of document.querySelectorAll('svg')) if (el.getAttribute('role') !== 'img' || !name(el)) problems.push('svg without role/name');
        for (const el of document.querySelectorAll('th')) if (el.closest('thead') && el.getAttribute('scope') !== 'col') problems.push('column header without scope');
        const ids = [...document.querySelectorAll('[id]')].map((el) => el.id);
        if (new Set(ids).size !== ids.length) problems.push('duplicate ids');
        return problems;
      })()`)) as string[];
      assert.deepEqual(report, [], path);
    }
  });
});
