/**
 * The frame every page shares (header with the search field and the account controls, a
 * skip link, one <main>), and small pieces the pages reuse: forms that carry the CSRF
 * token, times, byte counts, links.
 */
import type { RepoName } from '../../domain/names.js';
import type { UserRecord } from '../../domain/records.js';
import { humanBytes } from '../../domain/units.js';
import { CSRF_FIELD } from '../shared/web-session.js';
import { html, toBytes, type Html } from './html.js';
import type { StaticAssets } from './static.js';

/** What every page needs to know about the request. */
export interface View {
  user: UserRecord | null;
  /** The CSRF token of the viewer's session (null: no session yet). */
  csrf: string | null;
  /** This page's path and query (where to come back to after logging in). */
  here: string;
  /** The search field's value. */
  query: string;
  assets: StaticAssets;
}

export interface PageOptions {
  title: string;
  body: Html;
  /** A confirmation to show above the content (role="status"). */
  notice?: string | null;
}

/** The whole page, as UTF-8 bytes. */
export function layout(view: View, options: PageOptions): Buffer {
  const { user, assets } = view;
  const account = user
    ? html`<span>Signed in as <strong>${user.name}</strong></span>
        <a href="/-/account/apps">Applications</a>
        ${user.admin && html`<a href="/-/admin">Admin</a>`}
        ${postForm(view, '/-/logout', html`<button type="submit">Log out</button>`, 'inline')}`
    : html`<a href="${loginHref(view.here)}">Log in</a>`;
  return toBytes(html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${options.title} · Registry</title>
<link rel="stylesheet" href="${assets.url('ui.css')}">
<link rel="icon" type="image/svg+xml" href="${assets.url('favicon.svg')}">
<script src="${assets.url('ui.js')}" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<a class="brand" href="/">Registry</a>
<form role="search" method="get" action="/">
<input type="search" name="q" value="${view.query}" aria-label="Search" placeholder="Search repositories" maxlength="200">
<button type="submit">Go</button>
</form>
<nav class="account" aria-label="Account">${account}</nav>
</header>
<main id="main" tabindex="-1">
${options.notice && html`<p class="notice" role="status">${options.notice}</p>`}
${options.body}
</main>
<p id="copy-status" class="sr-only" role="status" aria-live="polite"></p>
</body>
</html>
`);
}

/** A POST form carrying the CSRF token. */
export function postForm(view: View, action: string, content: Html, className = 'stack', label?: string): Html {
  return html`<form method="post" action="${action}" class="${className}"${label ? html` aria-label="${label}"` : ''}>
<input type="hidden" name="${CSRF_FIELD}" value="${view.csrf ?? ''}">
${content}
</form>`;
}

export function loginHref(next: string): string {
  return next === '/' || next.startsWith('/-/login') ? '/-/login' : `/-/login?next=${encodeURIComponent(next)}`;
}

export function repoPath(name: RepoName): string {
  return `/-/r/${name.namespace}/${name.repository}`;
}

export function tagPath(name: RepoName, tag: string): string {
  return `${repoPath(name)}/tags/${encodeURIComponent(tag)}`;
}

const CANONICAL_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** An ISO time as `2026-11-23 07:24 UTC`, machine-readable in `datetime`. */
export function time(iso: string | null): Html {
  if (!iso) return html`<span class="muted">unknown</span>`;
  // The services hand out toISOString() times: parsing each again cost more than the rest of a row.
  let canonical = iso;
  if (!CANONICAL_TIME.test(iso)) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return html`${iso}`;
    canonical = date.toISOString();
  }
  return html`<time datetime="${canonical}">${canonical.slice(0, 10)} ${canonical.slice(11, 16)} UTC</time>`;
}

export function bytes(n: number | null): Html {
  if (n === null) return html`<span class="muted">unknown</span>`;
  return html`<data value="${n}">${humanBytes(n)}</data>`;
}

export function shortId(id: string): Html {
  return html`<code title="${id}">${id.slice(0, 12)}</code>`;
}

export function plural(n: number, one: string, many: string): string {
  return `${n.toLocaleString('en')} ${n === 1 ? one : many}`;
}
