/**
 * Real Chromium (Debian's /usr/bin/chromium) driven by playwright-core, for the web UI
 * tests: one browser per test file (start it in `before`, close it in `after`), a fresh
 * user data directory each time, no browser download.
 *
 * The browser is strict: a page error (an uncaught exception in a page), a console error
 * (a failed resource load, a Content-Security-Policy violation, a script error) or any
 * request to another origin than the registry's is recorded, and `assertClean()` (call it
 * in `afterEach`) fails the test that caused it. Requests to other origins are also aborted,
 * so nothing leaves the machine. A step that expects an error status (a wrong password
 * answered 401) says so with `expectStatus`: Chromium logs every 4xx/5xx page load as a
 * console error.
 *
 * Screenshots go to test-artifacts/ui/ (git-ignored), one per main page.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
export const ARTIFACTS = path.resolve(import.meta.dirname, '..', '..', 'test-artifacts', 'ui');

export interface UiBrowser {
  context: BrowserContext;
  page: Page;
  origin: string;
  /** Fails (and forgets) what went wrong in the pages since the last call. */
  assertClean(): void;
  /** Runs `step` accepting the console error Chromium logs for a page answered `status`. */
  expectStatus<T>(status: number, step: () => Promise<T>): Promise<T>;
  /** Runs `step` accepting console errors that match `pattern` (and returns them). */
  expectConsoleError<T>(pattern: RegExp, step: () => Promise<T>): Promise<{ result: T; errors: string[] }>;
  /** A full-page PNG of the current page, as test-artifacts/ui/<name>.png. */
  screenshot(name: string): Promise<string>;
  /** Forgets every cookie (a new visitor). */
  forgetCookies(): Promise<void>;
  close(): Promise<void>;
}

export async function startBrowser(origin: string): Promise<UiBrowser> {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-ui-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 900 },
  });
  context.setDefaultTimeout(15_000);
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  const problems: string[] = [];
  const allowed: Array<{ pattern: RegExp; seen: string[] }> = [];
  await context.route('**/*', async (route) => {
    const url = route.request().url();
    if (url.startsWith(`${origin}/`) || url === origin) return route.continue();
    if (url.startsWith('data:')) return route.continue();
    problems.push(`request to another origin: ${route.request().method()} ${url}`);
    return route.abort('blockedbyclient');
  });
  const watch = (page: Page) => {
    page.on('pageerror', (err) => problems.push(`page error on ${page.url()}: ${err.message}`));
    page.on('console', (message) => {
      if (message.type() !== 'error') return;
      const text = message.text();
      const expected = allowed.find(({ pattern }) => pattern.test(text));
      if (expected) return void expected.seen.push(text);
      problems.push(`console error on ${page.url()}: ${text}`);
    });
  };
  context.on('page', watch);
  const page = context.pages()[0] ?? (await context.newPage());
  watch(page);
  const expectConsoleError = async <T>(pattern: RegExp, step: () => Promise<T>) => {
    const entry = { pattern, seen: [] as string[] };
    allowed.push(entry);
    try {
      return { result: await step(), errors: entry.seen };
    } finally {
      allowed.splice(allowed.indexOf(entry), 1);
    }
  };
  return {
    context,
    page,
    origin,
    assertClean() {
      const found = problems.splice(0);
      if (found.length > 0) throw new Error(`the browser saw problems:\n${found.join('\n')}`);
    },
    async expectStatus(status, step) {
      // Chromium logs a 4xx/5xx page load as a console error, sometimes after the response
      // and the page's content are there: wait for it, so that it cannot land after the step.
      const entry = { pattern: new RegExp(`the server responded with a status of ${status}\\b`), seen: [] as string[] };
      allowed.push(entry);
      try {
        const result = await step();
        const until = Date.now() + 5000;
        while (entry.seen.length === 0) {
          if (Date.now() > until) throw new Error(`expected a page answered ${status}, the browser logged none`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        return result;
      } finally {
        allowed.splice(allowed.indexOf(entry), 1);
      }
    },
    expectConsoleError,
    async screenshot(name) {
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      const file = path.join(ARTIFACTS, `${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      return file;
    },
    async forgetCookies() {
      await context.clearCookies();
    },
    async close() {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
