/** The login page (its form is also the one the OAuth authorize page will show). */
import { html } from '../html.js';
import { postForm, type PageOptions, type View } from '../layout.js';

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
