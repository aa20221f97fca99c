/**
 * The OAuth face's HTML: the consent page (with the login fields when the browser has no
 * session) and the error page. Plain server-rendered strings, every value escaped; no
 * script; a strict Content-Security-Policy (the one inline style is allowed by its hash),
 * and no framing (a consent page inside another site's frame could be clicked for the
 * user). `form-action` is left out on purpose: after the POST the browser must follow the
 * redirect to the application's redirect_uri, which form-action would block.
 */
import { createHash } from 'node:crypto';
import type { Context } from 'koa';
import type { OAuthScope } from '../../domain/records.js';
import { OAUTH_SCOPES, type AuthorizeRequest } from '../../services/oauth.js';
import { escapeHtml } from '../shared/escape-html.js';

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f6f8;color:#1b1f23}
main{max-width:30rem;margin:3rem auto;background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:1.5rem 2rem}
h1{font-size:1.4rem;margin-top:0}ul{padding-left:1.2rem}code{background:#eef1f4;padding:0 .25rem;border-radius:3px}
label{display:block;margin-top:.6rem;font-weight:600}input{width:100%;box-sizing:border-box;padding:.4rem;font:inherit}
fieldset{border:1px solid #d0d7de;border-radius:6px;margin:1rem 0}.actions{display:flex;gap:.75rem;margin-top:1.2rem}
button{font:inherit;padding:.5rem 1rem;border-radius:6px;border:1px solid #8c959f;background:#f6f8fa;cursor:pointer}
button.primary{background:#1f6feb;border-color:#1f6feb;color:#fff}.alert{color:#a40e26;font-weight:600}.note{color:#57606a;font-size:.9rem}`;

const CSP = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`,
  "img-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

/** Sends an HTML page with the security headers every page of this face carries. */
export function sendPage(ctx: Context, status: number, html: string): void {
  ctx.status = status;
  ctx.res.setHeader('Content-Type', 'text/html; charset=utf-8');
  ctx.res.setHeader('Content-Security-Policy', CSP);
  ctx.res.setHeader('X-Frame-Options', 'DENY');
  ctx.res.setHeader('X-Content-Type-Options', 'nosniff');
  ctx.res.setHeader('Referrer-Policy', 'no-referrer');
  ctx.res.setHeader('Cache-Control', 'no-store');
  ctx.body = html;
}

export interface ConsentPage {
  request: AuthorizeRequest;
  /** Where the form posts. */
  action: string;
  /** The request's parameters, sent back as hidden fields. */
  params: Record<string, string>;
  csrfToken: string;
  /** The logged-in user; null: the form holds the login fields. */
  user: string | null;
  /** The registry's host, as the user reached it. */
  host: string;
  /** A refusal to show (wrong password …). */
  error?: string;
  /** The user name to fill in again after a refusal. */
  username?: string;
}

export function consentPage(p: ConsentPage): string {
  const client = escapeHtml(p.request.client.name);
  const scopes = p.request.scopes
    .map((scope: OAuthScope) => `<li><code>${scope}</code>: ${escapeHtml(OAUTH_SCOPES[scope])}</li>`)
    .join('\n');
  const hidden = Object.entries(p.params)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('\n');
  const login = p.user
    ? `<p>You are logged in as <strong>${escapeHtml(p.user)}</strong>.</p>`
    : `<fieldset>
<legend>Log in to ${escapeHtml(p.host)}</legend>
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" value="${escapeHtml(p.username ?? '')}" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
</fieldset>`;
  const redirectTo = new URL(p.request.redirectUri);
  return page(
    `Authorize ${p.request.client.name}`,
    `<h1>Authorize ${client}</h1>
<p><strong>${client}</strong> asks to act for ${p.user ? 'you' : 'your account'} on ${escapeHtml(p.host)}:</p>
<ul>
${scopes}
</ul>
${p.error ? `<p class="alert" role="alert">${escapeHtml(p.error)}</p>` : ''}
<form method="post" action="${escapeHtml(p.action)}">
${hidden}
<input type="hidden" name="csrf_token" value="${escapeHtml(p.csrfToken)}">
${login}
<div class="actions">
<button class="primary" type="submit" name="decision" value="approve">Authorize ${client}</button>
<button type="submit" name="decision" value="deny" formnovalidate>Deny</button>
</div>
</form>
<p class="note">Either way you will be sent back to ${escapeHtml(redirectTo.origin)}. You can revoke this authorization at any time.</p>`,
  );
}

export function errorPage(title: string, message: string): string {
  return page(title, `<h1>${escapeHtml(title)}</h1>\n<p class="alert" role="alert">${escapeHtml(message)}</p>`);
}
