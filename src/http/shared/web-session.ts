/**
 * The browser session and its form protection, for every face that serves HTML forms to
 * people (the web UI; the OAuth consent page counts the session as logged in). Signing,
 * expiry and logout are services/sessions.ts's, CSRF tokens csrf.ts's (the same guard the
 * consent page uses); this class only moves them in and out of HTTP.
 *
 * The session cookie: `registry_web_session=<signed value>; Path=/; HttpOnly; SameSite=Lax;
 * Max-Age=…` (plus `Secure` on a TLS connection). Lax, not Strict: a person who follows a
 * link to the registry from elsewhere (an OAuth client sending them to the consent page)
 * arrives signed in; cross-site POSTs never carry it. It is not the v1 clients' session
 * (`registry_session`, Path=/v1/, http/session.ts), and the API routes never read it: they
 * take Basic, tokens and JWTs, so a browser's session cannot be borrowed by a cross-site
 * request to the API.
 *
 * Every form that changes something carries a CSRF token (the `registry_csrf` cookie's
 * signature, see csrf.ts) and is refused, before anything changes, without it or when its
 * `Origin` (browsers send one with every POST) is another site.
 */
import type { Context } from 'koa';
import { invalidInput, RegistryError } from '../../domain/errors.js';
import { ANONYMOUS, type Principal } from '../../services/access.js';
import type { KeyRing } from '../../services/keyring.js';
import type { IssuedSession, Session, SessionService } from '../../services/sessions.js';
import { readForm } from './body.js';
import { CsrfGuard } from './csrf.js';
import { requestHost } from './request-host.js';

export const SESSION_COOKIE = 'registry_web_session';
export const CSRF_COOKIE = 'registry_csrf';
/** The form field that carries the CSRF token. */
export const CSRF_FIELD = '_csrf';
/** Largest form body accepted (a description is at most 4096 characters, ~36 KiB encoded). */
export const MAX_FORM_BYTES = 64 * 1024;

interface SessionState {
  /** undefined: not read yet; null: none (or not valid). */
  webSession?: Session | null;
  /** The CSRF token of this answer's forms, once made (it goes with the cookie it set). */
  csrfToken?: string;
}

export class WebSessions {
  private readonly csrf: CsrfGuard;

  constructor(
    readonly sessions: SessionService,
    keyRing: KeyRing,
  ) {
    this.csrf = new CsrfGuard(keyRing, CSRF_COOKIE, '/');
  }

  /**
   * The request's session (read and verified once per request), or null. A cookie that no
   * longer opens a session (expired, logged out, account deactivated or password changed) is
   * removed from the browser.
   */
  async sessionOf(ctx: Context): Promise<Session | null> {
    const state = ctx.state as SessionState;
    if (state.webSession === undefined) {
      const value = ctx.cookies.get(SESSION_COOKIE);
      state.webSession = await this.sessions.open(value);
      if (value && !state.webSession) this.clearCookie(ctx);
    }
    return state.webSession;
  }

  /** Who is asking, as the services see it: the session's account, else anonymous. */
  async principal(ctx: Context): Promise<Principal> {
    const session = await this.sessionOf(ctx);
    return session ? { kind: 'user', user: session.user } : ANONYMOUS;
  }

  /** Sends a new session's cookie; the rest of this request sees the new session. */
  start(ctx: Context, issued: IssuedSession): void {
    ctx.cookies.set(SESSION_COOKIE, issued.value, {
      path: '/',
      httpOnly: true,
      sameSite: 'lax',
      secure: ctx.secure,
      maxAge: issued.maxAgeSeconds * 1000,
      overwrite: true,
    });
    (ctx.state as SessionState).webSession = issued.session;
  }

  /** Ends the request's session (logout) and removes its cookie from the browser. */
  async end(ctx: Context): Promise<void> {
    const session = await this.sessionOf(ctx);
    if (session) await this.sessions.end(session);
    this.clearCookie(ctx);
    (ctx.state as SessionState).webSession = null;
  }

  private clearCookie(ctx: Context): void {
    ctx.cookies.set(SESSION_COOKIE, '', { path: '/', httpOnly: true, sameSite: 'lax', secure: ctx.secure, maxAge: 0, overwrite: true });
  }

  /**
   * The CSRF token for the forms of this answer (gives the browser its cookie if it has
   * none). The same for every form of the answer: a second issue() would set a second cookie.
   */
  csrfToken(ctx: Context): string {
    const state = ctx.state as SessionState;
    state.csrfToken ??= this.csrf.issue(ctx);
    return state.csrfToken;
  }

  /**
   * A posted form (application/x-www-form-urlencoded, at most MAX_FORM_BYTES): its fields,
   * once it is known to come from one of our pages (same-site Origin, this browser's CSRF
   * token). FORBIDDEN otherwise, before anything is changed.
   */
  async readPostedForm(ctx: Context): Promise<Record<string, string>> {
    const form = await readForm(ctx, MAX_FORM_BYTES);
    if (!form) throw invalidInput('Expected a form (application/x-www-form-urlencoded)');
    const origin = ctx.get('Origin');
    if (origin && origin !== `${ctx.protocol}://${requestHost(ctx)}`) throw new RegistryError('FORBIDDEN', 'This form was sent from another site.');
    if (!this.csrf.check(ctx, form[CSRF_FIELD])) {
      throw new RegistryError('FORBIDDEN', 'This form has expired or did not come from this site: reload the page and try again.');
    }
    return form;
  }
}
