/**
 * Helpers for the web UI tests: a registry with authentication on and a few accounts,
 * images pushed through the real v1 protocol (the docker 1.x flow of helpers/docker1.ts),
 * and logging in through the real login form.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before } from 'node:test';
import type { Page } from 'playwright-core';
import { startBrowser, type UiBrowser } from '../helpers/chromium.js';
import { push, pull, type Credentials, type Docker1Image } from '../helpers/docker1.js';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';

export const ADMIN = { username: 'rootadmin', password: 'root-secret-1' };
export const ALICE = { username: 'alice', password: 'alice-secret-1' };
export const BOB = { username: 'bobby', password: 'bobby-secret-1' };
export const CAROL = { username: 'carol', password: 'carol-secret-1' };

export async function startUiServer(overrides: Record<string, unknown> = {}): Promise<TestServer> {
  const srv = await startTestServer({
    overrides: { standalone: false, admin_username: ADMIN.username, admin_password: ADMIN.password, ...overrides },
  });
  for (const user of [ALICE, BOB, CAROL]) {
    await srv.running.services.users.upsert({ ...user, email: `${user.username}@example.test`, admin: false });
  }
  return srv;
}

export interface LayerSpec {
  /** What built the layer (container_config.Cmd, as docker 1.x records it). */
  createdBy: string;
  size: number;
}

/** A chain of images (base first) whose layers have the given sizes and commands. */
export function imageChain(layers: LayerSpec[]): Docker1Image[] {
  const images: Docker1Image[] = [];
  let parent: string | undefined;
  layers.forEach((spec, i) => {
    const id = newImageId();
    const doc: Record<string, unknown> = {
      id,
      created: new Date(Date.UTC(2026, 0, 1 + i)).toISOString(),
      container_config: { Cmd: ['/bin/sh', '-c', spec.createdBy] },
      os: 'linux',
      architecture: 'amd64',
    };
    if (parent) doc.parent = parent;
    images.push({ id, parent, layer: randomBytes(spec.size), json: Buffer.from(JSON.stringify(doc)) });
    parent = id;
  });
  return images;
}

/** `docker push` of a fresh chain as `who`; returns the chain. */
export async function pushAs(srv: TestServer, who: Credentials, repo: string, tag: string, layers: LayerSpec[]): Promise<Docker1Image[]> {
  const images = imageChain(layers);
  await push(srv.url, who, repo, tag, images);
  return images;
}

/** `docker pull` (counts one pull of the repository). */
export async function pullAs(srv: TestServer, who: Credentials | null, repo: string, tag: string): Promise<void> {
  await pull(srv.url, who, repo, tag);
}

/** Logs in through the page's "Log in" link and form; asserts the header shows the account. */
export async function logIn(page: Page, origin: string, who: Credentials): Promise<void> {
  await page.goto(`${origin}/`);
  await page.getByRole('link', { name: 'Log in' }).click();
  await page.getByLabel('Username').fill(who.username);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByText(`Signed in as ${who.username}`).waitFor();
}

export async function logOut(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('link', { name: 'Log in' }).waitFor();
}

/** The texts of a table's body cells, row by row. */
export async function tableRows(page: Page, caption: string): Promise<string[][]> {
  const table = page.getByRole('table', { name: caption });
  await table.waitFor();
  return table.locator('tbody tr').evaluateAll((rows) =>
    rows.map((row) => [...row.querySelectorAll('th, td')].map((cell) => (cell.textContent ?? '').trim().replace(/\s+/g, ' '))),
  );
}

export function assertIncludes(haystack: string, needle: string, what = ''): void {
  assert.ok(haystack.includes(needle), `${what}: expected ${JSON.stringify(needle)} in ${JSON.stringify(haystack.slice(0, 500))}`);
}

export interface BrowserSuite {
  srv: TestServer;
  browser: UiBrowser;
}

/**
 * Registers the hooks of a browser test file (call it inside `describe`): a UI server and
 * one browser before the tests (then `seed`), both closed after them; after each test, what
 * the browser saw wrong fails it and its cookies are forgotten. The fields are set in `before`.
 */
export function browserSuite(options: { overrides?: Record<string, unknown>; seed?: (srv: TestServer) => Promise<void> } = {}): BrowserSuite {
  const suite = {} as BrowserSuite;
  before(async () => {
    suite.srv = await startUiServer(options.overrides);
    suite.browser = await startBrowser(suite.srv.url);
    await options.seed?.(suite.srv);
  });
  after(async () => {
    await suite.browser?.close();
    await suite.srv?.destroy();
  });
  afterEach(async () => {
    suite.browser.assertClean();
    await suite.browser.forgetCookies();
  });
  return suite;
}

/**
 * Signs `who` in without the form, for tests whose subject is not logging in: a session
 * issued by the registry's own SessionService, given to the browser as its cookie. The page
 * is not reloaded: the next navigation is signed in.
 */
export async function signIn(suite: BrowserSuite, who: Credentials): Promise<void> {
  const user = await suite.srv.running.services.users.get(who.username);
  assert.ok(user, `no account ${who.username}`);
  const issued = suite.srv.running.services.sessions.issue(user);
  await suite.browser.forgetCookies();
  await suite.browser.context.addCookies([{ name: 'registry_web_session', value: issued.value, url: suite.srv.url, httpOnly: true, sameSite: 'Lax' }]);
}

/** Forgets the browser's session (the next navigation is anonymous). */
export async function signOut(suite: BrowserSuite): Promise<void> {
  await suite.browser.forgetCookies();
}
