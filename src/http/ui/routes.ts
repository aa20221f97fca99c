/**
 * The web UI: server-rendered HTML pages on the registry's own port, one more face over the
 * services (like the Hub double), with its own error pages. It owns `/` and every path
 * under `/-/` (a prefix no API uses: the APIs live under /v1/, /v2/ and /_…):
 *
 *   GET  /                                   repositories (newest first), ?q= search, ?page=
 *   GET  /-/r/:ns/:repo                      a repository: tags, pull commands, owners' controls
 *   GET  /-/r/:ns/:repo/tags/:tag            an image's history (layers, a chart of their sizes)
 *   POST /-/r/:ns/:repo/description          owners: the description
 *   POST /-/r/:ns/:repo/visibility           owners: private / public
 *   POST /-/r/:ns/:repo/collaborators[/remove]  owners: grant / take away
 *   GET|POST /-/r/:ns/:repo/tags/:tag/delete  confirm, then delete a tag
 *   GET|POST /-/r/:ns/:repo/delete           confirm (type the name), then delete the repository
 *   GET|POST /-/login, POST /-/logout        the session
 *   GET  /-/account/apps                     the OAuth applications the user authorized
 *   POST /-/account/apps/:client/revoke      revoke one (every token it holds stops working)
 *   GET  /-/admin, /-/admin/users|gc|fsck|storage, POST …  administrators
 *   GET  /-/static/:file                     CSS, JS, icon (static.ts)
 *
 * Who may see and do what is decided by the services (access.ts); this file only turns
 * requests into service calls and answers into pages. Every POST carries the session's CSRF
 * token and a same-site Origin (session.ts) and answers with a redirect (303) to the page
 * that shows the result, or with the page itself for GC and fsck reports.
 *
 * Every answer carries a strict Content-Security-Policy (nothing but this origin's own
 * files: no inline script or style, no frames, forms post only here), and pages are never
 * cached (they depend on who is signed in).
 */
import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { invalidInput, RegistryError } from '../../domain/errors.js';
import { parseStoredName, type RepoName } from '../../domain/names.js';
import type { OAuthScope, Permission } from '../../domain/records.js';
import type { AccessService } from '../../services/access.js';
import type { CatalogService } from '../../services/catalog.js';
import type { ConsoleService } from '../../services/console.js';
import { OAUTH_SCOPES, type OAuthService } from '../../services/oauth.js';
import { STATUS_BY_CODE } from '../shared/error-map.js';
import type { RegistryState } from '../shared/middleware.js';
import { requestHost } from '../shared/request-host.js';
import type { WebSessions } from '../shared/web-session.js';
import { html } from './html.js';
import { layout, loginHref, repoPath, type PageOptions, type View } from './layout.js';
import { authorizedAppsPage, loginPage } from './pages/account.js';
import { adminHome, EMPTY_USER_FORM, fsckPage, gcPage, storagePage, usersPage } from './pages/admin.js';
import { confirmRepoDelete, confirmTagDelete, historyPage, repositoryList, repositoryPage } from './pages/browse.js';
import { StaticAssets, STATIC_PREFIX } from './static.js';

export interface UiDeps {
  /** The browser session and CSRF checks (shared with the OAuth consent page). */
  web: WebSessions;
  catalog: CatalogService;
  console: ConsoleService;
  /** The user's authorized OAuth applications (listed and revoked on /-/account/apps). */
  oauth: OAuthService;
  access: AccessService;
  /** config.endpoints: the host:port in pull commands (empty: the Host the browser used). */
  endpoints: string;
  gcGraceSeconds: number;
  /** Where the static files are (default: static/ next to this module). */
  staticDir?: string;
}

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const HTML_TYPE = 'text/html; charset=utf-8';

/** Is `path` the web UI's? */
export function isUiPath(path: string): boolean {
  return path === '/' || path.startsWith('/-/');
}

/** Confirmations shown after a change (`?done=<key>`): fixed texts, nothing from the URL is echoed. */
const NOTICES: Record<string, string> = {
  'logged-out': 'You are logged out.',
  description: 'Description saved.',
  private: 'The repository is now private.',
  public: 'The repository is now public.',
  'collaborator-added': 'Collaborator saved.',
  'collaborator-removed': 'Collaborator removed.',
  'tag-deleted': 'Tag deleted.',
  'repo-deleted': 'Repository deleted.',
  'user-created': 'User created.',
  'user-changed': 'User updated.',
  'app-revoked': 'Access revoked: the application can no longer act for you.',
};

const PERMISSIONS = new Set<string>(['read', 'write', 'admin']);

/** The web UI as one middleware; requests outside isUiPath() pass by untouched. */
export function uiRoutes(deps: UiDeps): Middleware {
  const { web, catalog } = deps;
  const sessions = web.sessions;
  const admin = deps.console;
  const assets = new StaticAssets(deps.staticDir);
  const router = new Router();

  const principal = (ctx: Context) => web.principal(ctx);
  /** `forms`: the page has a form for anonymous visitors too (log in), so it needs a CSRF token. */
  const viewOf = async (ctx: Context, forms = false): Promise<View> => {
    const session = await web.sessionOf(ctx);
    return {
      user: session?.user ?? null,
      // Signed in, every page has a form: Log out.
      csrf: session || forms ? web.csrfToken(ctx) : null,
      here: ctx.originalUrl,
      query: typeof ctx.query.q === 'string' ? ctx.query.q : '',
      assets,
    };
  };
  const render = async (ctx: Context, status: number, page: PageOptions) => {
    const body = layout(await viewOf(ctx), page);
    ctx.status = status;
    ctx.res.setHeader('Content-Type', HTML_TYPE);
    ctx.body = body;
  };
  const redirect = (ctx: Context, location: string) => {
    ctx.status = 303;
    ctx.res.setHeader('Location', location);
    ctx.body = '';
  };
  const notice = (ctx: Context): string | null => {
    const done = ctx.query.done;
    return typeof done === 'string' && Object.hasOwn(NOTICES, done) ? NOTICES[done] : null;
  };
  const repoOf = (ctx: Context): RepoName => {
    const params = ctx.params as { ns: string; repo: string };
    // v1 names, and Registry API v2 names (`a/b/c`, see repoPathOf below).
    return parseStoredName(`${params.ns}/${params.repo}`);
  };
  const tagOf = (ctx: Context): string => (ctx.params as { tag: string }).tag;
  const host = (ctx: Context) => deps.endpoints.split(',')[0].trim() || requestHost(ctx);
  const posted = (ctx: Context) => web.readPostedForm(ctx);

  router.get(`${STATIC_PREFIX}:file`, (ctx) => {
    if (!assets.serve(ctx, (ctx.params as { file: string }).file)) throw new RegistryError('NOT_FOUND', 'No such file');
  });

  // ── browsing ────────────────────────────────────────────────────────────────────────
  router.get('/', async (ctx) => {
    const page = typeof ctx.query.page === 'string' ? Number(ctx.query.page) : 1;
    const q = typeof ctx.query.q === 'string' ? ctx.query.q.slice(0, 200) : '';
    await render(ctx, 200, repositoryList(await catalog.list(await principal(ctx), q, page), notice(ctx)));
  });
  router.get('/-/r/:ns/:repo', async (ctx) => {
    await render(ctx, 200, repositoryPage(await viewOf(ctx), await catalog.repository(await principal(ctx), repoOf(ctx)), host(ctx), notice(ctx)));
  });
  router.get('/-/r/:ns/:repo/tags/:tag', async (ctx) => {
    await render(ctx, 200, historyPage(await catalog.history(await principal(ctx), repoOf(ctx), tagOf(ctx)), host(ctx)));
  });

  // ── owners ──────────────────────────────────────────────────────────────────────────
  router.post('/-/r/:ns/:repo/description', async (ctx) => {
    const form = await posted(ctx);
    const name = repoOf(ctx);
    await catalog.setDescription(await principal(ctx), name, (form.description ?? '').replace(/\r\n/g, '\n'));
    redirect(ctx, `${repoPath(name)}?done=description`);
  });
  router.post('/-/r/:ns/:repo/visibility', async (ctx) => {
    const form = await posted(ctx);
    const name = repoOf(ctx);
    const value = form.private;
    if (value !== 'true' && value !== 'false') throw invalidInput('Expected private=true or private=false');
    await catalog.setPrivate(await principal(ctx), name, value === 'true');
    redirect(ctx, `${repoPath(name)}?done=${value === 'true' ? 'private' : 'public'}`);
  });
  router.post('/-/r/:ns/:repo/collaborators', async (ctx) => {
    const form = await posted(ctx);
    const name = repoOf(ctx);
    const permission = form.permission ?? '';
    if (!PERMISSIONS.has(permission)) throw invalidInput('Permission must be read, write or admin');
    await catalog.setCollaborator(await principal(ctx), name, form.user ?? '', permission as Permission);
    redirect(ctx, `${repoPath(name)}?done=collaborator-added`);
  });
  router.post('/-/r/:ns/:repo/collaborators/remove', async (ctx) => {
    const form = await posted(ctx);
    const name = repoOf(ctx);
    await catalog.setCollaborator(await principal(ctx), name, form.user ?? '', null);
    redirect(ctx, `${repoPath(name)}?done=collaborator-removed`);
  });
  router.get('/-/r/:ns/:repo/tags/:tag/delete', async (ctx) => {
    const name = repoOf(ctx);
    const repo = await catalog.repository(await principal(ctx), name);
    const row = repo.tags.find((t) => t.tag === tagOf(ctx));
    if (!row) throw new RegistryError('NOT_FOUND', 'Tag not found');
    if (!repo.can.untag) throw await refusal(ctx, `delete tags of ${name.full}`);
    await render(ctx, 200, confirmTagDelete(await viewOf(ctx), name, row.tag, row.imageId ?? row.manifest ?? ''));
  });
  router.post('/-/r/:ns/:repo/tags/:tag/delete', async (ctx) => {
    await posted(ctx);
    const name = repoOf(ctx);
    await catalog.deleteTag(await principal(ctx), name, tagOf(ctx));
    redirect(ctx, `${repoPath(name)}?done=tag-deleted`);
  });
  router.get('/-/r/:ns/:repo/delete', async (ctx) => {
    const name = repoOf(ctx);
    const repo = await catalog.repository(await principal(ctx), name);
    if (!repo.can.delete) throw await refusal(ctx, `delete ${name.full}`);
    await render(ctx, 200, confirmRepoDelete(await viewOf(ctx), repo.summary, null));
  });
  router.post('/-/r/:ns/:repo/delete', async (ctx) => {
    const form = await posted(ctx);
    const name = repoOf(ctx);
    const who = await principal(ctx);
    if ((form.confirm ?? '').trim() !== name.full) {
      const repo = await catalog.repository(who, name);
      await render(ctx, 400, confirmRepoDelete(await viewOf(ctx), repo.summary, `Type ${name.full} to confirm: the repository was not deleted.`));
      return;
    }
    await catalog.deleteRepository(who, name);
    redirect(ctx, '/?done=repo-deleted');
  });

  // ── the session ─────────────────────────────────────────────────────────────────────
  router.get('/-/login', async (ctx) => {
    const next = safeNext(ctx.query.next);
    if (await web.sessionOf(ctx)) return redirect(ctx, next);
    await render(ctx, 200, loginPage(await viewOf(ctx, true), { next, username: '', error: null }));
  });
  router.post('/-/login', async (ctx) => {
    const form = await posted(ctx);
    const next = safeNext(form.next);
    const username = (form.username ?? '').slice(0, 64);
    try {
      web.start(ctx, await sessions.login(username, form.password ?? '', ctx.ip));
    } catch (err) {
      if (!(err instanceof RegistryError)) throw err;
      const messages: Partial<Record<string, string>> = {
        UNAUTHORIZED: 'Wrong username or password.',
        INACTIVE_ACCOUNT: 'This account is deactivated: ask an administrator.',
        TOO_MANY_REQUESTS: `Too many failed logins: try again in ${retryAfter(err)} seconds.`,
      };
      const message = messages[err.code];
      if (!message) throw err;
      if (err.code === 'TOO_MANY_REQUESTS') ctx.res.setHeader('Retry-After', String(retryAfter(err)));
      await render(ctx, STATUS_BY_CODE[err.code], loginPage(await viewOf(ctx, true), { next, username, error: message }));
      return;
    }
    redirect(ctx, next);
  });
  router.post('/-/logout', async (ctx) => {
    await posted(ctx);
    await web.end(ctx);
    redirect(ctx, '/?done=logged-out');
  });

  // ── the account: OAuth applications the user authorized ───────────────────────────
  // Only the user, by password or session (access.accountOwner): never an OAuth token.
  router.get('/-/account/apps', async (ctx) => {
    const user = deps.access.accountOwner(await principal(ctx));
    const apps = (await deps.oauth.listApps(user.name)).map((app) => ({
      clientId: app.client_id,
      name: app.name,
      allows: app.scope.split(' ').filter((s): s is OAuthScope => Object.hasOwn(OAUTH_SCOPES, s)).map((s) => OAUTH_SCOPES[s]),
      authorizedAt: app.authorized_at,
    }));
    await render(ctx, 200, authorizedAppsPage(await viewOf(ctx), apps, notice(ctx)));
  });
  router.post('/-/account/apps/:client/revoke', async (ctx) => {
    await posted(ctx);
    const user = deps.access.accountOwner(await principal(ctx));
    await deps.oauth.revokeApp(user.name, (ctx.params as { client: string }).client);
    redirect(ctx, '/-/account/apps?done=app-revoked');
  });

  // ── administrators ──────────────────────────────────────────────────────────────────
  router.get('/-/admin', async (ctx) => {
    admin.authorize(await principal(ctx));
    await render(ctx, 200, adminHome());
  });
  router.get('/-/admin/users', async (ctx) => {
    await render(ctx, 200, usersPage(await viewOf(ctx), await admin.accounts(await principal(ctx)), EMPTY_USER_FORM, notice(ctx)));
  });
  router.post('/-/admin/users', async (ctx) => {
    const form = await posted(ctx);
    const who = await principal(ctx);
    const account = { username: form.username ?? '', email: form.email ?? '', password: form.password ?? '', admin: form.admin === 'true' };
    try {
      await admin.createAccount(who, account);
    } catch (err) {
      if (!(err instanceof RegistryError) || (err.code !== 'INVALID_INPUT' && err.code !== 'INVALID_NAME')) throw err;
      const retry = { username: account.username, email: account.email, admin: account.admin, error: err.message };
      await render(ctx, 400, usersPage(await viewOf(ctx), await admin.accounts(who), retry, null));
      return;
    }
    redirect(ctx, '/-/admin/users?done=user-created');
  });
  router.post('/-/admin/users/:name/active', async (ctx) => {
    const form = await posted(ctx);
    await admin.setActive(await principal(ctx), (ctx.params as { name: string }).name, flag(form.active));
    redirect(ctx, '/-/admin/users?done=user-changed');
  });
  router.post('/-/admin/users/:name/admin', async (ctx) => {
    const form = await posted(ctx);
    await admin.setAdmin(await principal(ctx), (ctx.params as { name: string }).name, flag(form.admin));
    redirect(ctx, '/-/admin/users?done=user-changed');
  });
  router.get('/-/admin/gc', async (ctx) => {
    admin.authorize(await principal(ctx));
    await render(ctx, 200, gcPage(await viewOf(ctx), deps.gcGraceSeconds, null));
  });
  router.post('/-/admin/gc', async (ctx) => {
    const form = await posted(ctx);
    const mode = form.mode;
    if (mode !== 'dry-run' && mode !== 'run') throw invalidInput('Expected mode=dry-run or mode=run');
    const report = await admin.collectGarbage(await principal(ctx), mode === 'dry-run');
    await render(ctx, 200, gcPage(await viewOf(ctx), deps.gcGraceSeconds, report));
  });
  router.get('/-/admin/fsck', async (ctx) => {
    admin.authorize(await principal(ctx));
    await render(ctx, 200, fsckPage(await viewOf(ctx), null));
  });
  router.post('/-/admin/fsck', async (ctx) => {
    await posted(ctx);
    await render(ctx, 200, fsckPage(await viewOf(ctx), await admin.check(await principal(ctx))));
  });
  router.get('/-/admin/storage', async (ctx) => {
    await render(ctx, 200, storagePage(await catalog.storage(await principal(ctx))));
  });

  /** A refusal shown on a GET page: anonymous visitors are sent to log in first. */
  async function refusal(ctx: Context, what: string): Promise<RegistryError> {
    const anonymous = (await principal(ctx)).kind === 'anonymous';
    return new RegistryError(anonymous ? 'UNAUTHORIZED' : 'FORBIDDEN', anonymous ? `Log in to ${what}` : `You may not ${what}`);
  }

  // Typed for router contexts; they run on the plain context like any Koa middleware.
  const routes = router.routes() as unknown as Middleware;
  const methods = router.allowedMethods() as unknown as Middleware;
  const pageNotFound = new RegistryError('NOT_FOUND', 'There is no page here.');
  return async (ctx, next) => {
    if (!isUiPath(ctx.path)) return next();
    const res = ctx.res;
    res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Referrer-Policy', 'same-origin');
    if (!ctx.path.startsWith(STATIC_PREFIX)) {
      res.setHeader('Cache-Control', 'no-store');
      res.setHeader('Vary', 'Cookie');
    }
    try {
      const repoPath = repoPathOf(ctx.path);
      if (repoPath) ctx.path = repoPath;
      await routes(ctx, () => methods(ctx, async () => undefined));
      if (ctx.body === undefined || ctx.body === null) {
        if (ctx.status === 405) throw new UiHttpError(405, 'Method not allowed', `${ctx.method} is not allowed here.`);
        if (ctx.status === 404) throw pageNotFound;
      }
    } catch (err) {
      await errorPage(ctx, err);
    }
  };

  async function errorPage(ctx: Context, err: unknown): Promise<void> {
    let status = 500;
    let message = 'Something went wrong on our side. Try again, or tell an administrator.';
    let title: string | null = null;
    if (err instanceof RegistryError) {
      status = STATUS_BY_CODE[err.code];
      message = err.message;
      if (typeof err.details.retryAfter === 'number') ctx.res.setHeader('Retry-After', String(err.details.retryAfter));
    } else if (err instanceof UiHttpError) {
      ({ status, title, message } = err);
    } else {
      const httpStatus = (err as { status?: unknown }).status;
      if (typeof httpStatus === 'number' && httpStatus >= 400 && httpStatus < 500) {
        status = httpStatus;
        message = (err as { expose?: boolean }).expose ? (err as Error).message : 'The request was not understood.';
      }
    }
    if (status >= 500) (ctx.state as RegistryState).log?.error({ err }, 'web UI request failed');
    if (ctx.headerSent || !ctx.writable) {
      ctx.req.socket.destroy();
      return;
    }
    // A page that needs a signed-in visitor: log in first, then come back.
    if (status === 401 && (ctx.method === 'GET' || ctx.method === 'HEAD') && !(await web.sessionOf(ctx))) {
      return redirect(ctx, loginHref(ctx.originalUrl));
    }
    const view = await viewOf(ctx);
    const body = html`<h1>${title ?? TITLES[status] ?? 'Error'}</h1>
<p class="error" role="alert">${message}</p>
<p>${status === 401 && !view.user ? html`<a href="${loginHref(ctx.method === 'GET' ? ctx.originalUrl : '/')}">Log in</a> · ` : ''}<a href="/">All repositories</a></p>`;
    ctx.remove('Content-Length');
    ctx.status = status;
    ctx.res.setHeader('Content-Type', HTML_TYPE);
    ctx.res.setHeader('Cache-Control', 'no-store');
    ctx.body = layout(view, { title: title ?? TITLES[status] ?? 'Error', body });
  }
}

const TITLES: Record<number, string> = {
  400: 'Bad request',
  401: 'Log in required',
  403: 'Not allowed',
  404: 'Not found',
  405: 'Method not allowed',
  408: 'Request timeout',
  409: 'Conflict',
  413: 'Too large',
  429: 'Too many requests',
  500: 'Something went wrong',
  503: 'Unavailable',
};

class UiHttpError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    message: string,
  ) {
    super(message);
  }
}

/** What may follow a repository's name in a UI path (`/-/r/NAME<suffix>`). */
const REPO_SUFFIX = /^(.+?)((?:\/tags\/[^/]+(?:\/delete)?)|\/description|\/visibility|\/collaborators(?:\/remove)?|\/delete)?$/;

/**
 * Registry API v2 names may have more than two components (`a/b/c`): the routes name a
 * repository `:ns/:repo`, so the rest of a deeper name is handed to `:repo` in one segment
 * (`/-/r/a/b%2Fc/tags/x`), and repoOf() reads the whole name back. The suffix is matched
 * first, so a repository whose own name ends in `/tags/<x>`, `/delete`, … is shadowed by
 * its parent's page (v2 allows such names; nobody pushes them). Null: nothing to rewrite.
 */
function repoPathOf(path: string): string | null {
  if (!path.startsWith('/-/r/')) return null;
  const m = REPO_SUFFIX.exec(path.slice('/-/r/'.length));
  if (!m) return null;
  const [ns, ...rest] = m[1].split('/');
  if (rest.length < 2) return null;
  return `/-/r/${ns}/${encodeURIComponent(rest.join('/'))}${m[2] ?? ''}`;
}

/** Where to go after logging in: a path of this site's UI, else the repository list. */
function safeNext(value: unknown): string {
  if (typeof value !== 'string' || !value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return '/';
  const path = value.split(/[?#]/, 1)[0];
  return isUiPath(path) && !path.startsWith('/-/login') && !path.startsWith('/-/logout') ? value : '/';
}

function flag(value: string | null): boolean {
  if (value !== 'true' && value !== 'false') throw invalidInput('Expected true or false');
  return value === 'true';
}

function retryAfter(err: RegistryError): number {
  return typeof err.details.retryAfter === 'number' ? err.details.retryAfter : 60;
}

