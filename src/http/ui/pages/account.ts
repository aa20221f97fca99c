/** The login page (its form is also the one the OAuth authorize page will show). */
import { html } from '../html.js';
import { postForm, time, type PageOptions, type View } from '../layout.js';

export interface LoginForm {
  /** Where to go after logging in (a path on this site). */
  next: string;
  username: string;
  error: string | null;
}

export function loginPage(view: View, form: LoginForm): PageOptions {
  const body = html`<h1>Log in</h1>
${form.error && html`<p class="error" role="alert">${form.error}</p>`}
${postForm(
  view,
  '/-/login',
  html`<input type="hidden" name="next" value="${form.next}">
<label for="login-username">Username</label>
<input type="text" id="login-username" name="username" value="${form.username}" required autocomplete="username" autocapitalize="none" spellcheck="false" maxlength="64"${form.username ? '' : html` autofocus`}>
<label for="login-password">Password</label>
<input type="password" id="login-password" name="password" required autocomplete="current-password" maxlength="200"${form.username ? html` autofocus` : ''}>
<div class="actions"><button type="submit" class="primary">Log in</button></div>`,
)}
<p class="hint">No account? Sign up with <code>registry login</code> (or <code>docker login</code>) when sign-up is open, or ask an administrator.</p>`;
  return { title: 'Log in', body };
}

/** One application the viewer authorized (services/oauth.ts listApps), with what its scopes allow. */
export interface AuthorizedAppRow {
  clientId: string;
  name: string;
  /** What each granted scope allows, in words. */
  allows: string[];
  authorizedAt: string;
}

/** The applications the signed-in user authorized (OAuth), each with a button that revokes it. */
export function authorizedAppsPage(view: View, apps: AuthorizedAppRow[], notice: string | null): PageOptions {
  const rows = apps.map(
    (app) => html`<tr>
<th scope="row">${app.name}</th>
<td><ul class="scopes">${app.allows.map((text) => html`<li>${text}</li>`)}</ul></td>
<td>${time(app.authorizedAt)}</td>
<td>${postForm(view, `/-/account/apps/${encodeURIComponent(app.clientId)}/revoke`, html`<button type="submit" class="danger" aria-label="Revoke ${app.name}">Revoke</button>`, 'inline')}</td>
</tr>`,
  );
  const body = html`<h1>Authorized applications</h1>
<p>Applications you allowed to act for you ("log in with" this registry). Revoking one ends its access at once: every token it holds stops working.</p>
${
  apps.length === 0
    ? html`<p class="muted">You have not authorized any application.</p>`
    : html`<table>
<caption>Authorized applications</caption>
<thead><tr><th scope="col">Application</th><th scope="col">May</th><th scope="col">Authorized</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
<tbody>${rows}</tbody>
</table>`
}`;
  return { title: 'Authorized applications', body, notice };
}
