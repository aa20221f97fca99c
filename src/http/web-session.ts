/**
 * The browser session cookie and CSRF checks, for every face that serves HTML forms (the
 * web UI; the OAuth pages reuse the same login, session and checks). Signing, expiry and
 * CSRF tokens are services/sessions.ts's; this file only moves them in and out of HTTP.
 *
 * The cookie: `registry_web_session=<signed value>; Path=/; HttpOnly; SameSite=Lax; Max-Age=…`
 * (plus `Secure` on a TLS connection). Lax, not Strict: a person who follows a link to the
 * registry from elsewhere (an OAuth client sending them to the authorize page) arrives
 * signed in; cross-site POSTs never carry it, and every form that changes something also
 * carries the session's CSRF token, checked with the request's Origin (when the browser sends
 * one) before anything else happens. The API routes never read this cookie: they take
 * Basic, tokens and JWTs, so a browser's session cannot be borrowed by a cross-site request
 * to the API.
 */
import type { Context } from 'koa';
import { invalidInput, RegistryError } from '../domain/errors.js';
import { ANONYMOUS, type Principal } from '../services/access.js';
import type { IssuedSession, Session, SessionService } from '../services/sessions.js';
import { readRawBody } from './body.js';
import { requestHost } from './request-host.js';

export const SESSION_COOKIE = 'registry_web_session';
/** The form field that carries the CSRF token. */
export const CSRF_FIELD = '_csrf';
/** Largest form body accepted (a description is at most 4096 characters, ~36 KiB encoded). */
export const MAX_FORM_BYTES = 64 * 1024;

interface SessionState {
  /** undefined: not read yet; null: none (or not valid). */
  session?: Session | null;
}

/** The request's session (read and verified once per request), or null. */
export async function sessionOf(ctx: Context, sessions: SessionService): Promise<Session | null> {
  const state = ctx.state as SessionState;
  if (state.session === undefined) state.session = await sessions.open(ctx.cookies.get(SESSION_COOKIE));
  return state.session;
}

/** Who is asking, as the services see it: the session's account, else anonymous. */
export async function sessionPrincipal(ctx: Context, sessions: SessionService): Promise<Principal> {
  const user = (await sessionOf(ctx, sessions))?.user;
  return user ? { kind: 'user', user } : ANONYMOUS;
}

/**
 * The request's session, starting an anonymous one (and sending its cookie) when there is
 * none: a form shown to an anonymous visitor (log in) needs one for its CSRF token.
 */
export async function ensureSession(ctx: Context, sessions: SessionService): Promise<Session> {
  return (await sessionOf(ctx, sessions)) ?? startSession(ctx, sessions.issue(null));
}

/** Sends a new session's cookie; the rest of this request sees the new session. */
export function startSession(ctx: Context, issued: IssuedSession): Session {
  ctx.cookies.set(SESSION_COOKIE, issued.value, {
    path: '/',
    httpOnly: true,
    sameSite: 'lax',
    secure: ctx.secure,
    maxAge: issued.maxAgeSeconds * 1000,
    overwrite: true,
  });
  (ctx.state as SessionState).session = issued.session;
  return issued.session;
}

/** Removes the cookie from the browser. */
export function clearSession(ctx: Context): void {
  ctx.cookies.set(SESSION_COOKIE, '', { path: '/', httpOnly: true, sameSite: 'lax', secure: ctx.secure, maxAge: 0, overwrite: true });
  (ctx.state as SessionState).session = null;
}

/**
 * A form post may change something only if it came from one of our own pages: its Origin
 * (browsers send one with every POST) is this site, and it carries this session's CSRF
 * token. FORBIDDEN otherwise, before anything is changed.
 */
export async function checkFormOrigin(ctx: Context, sessions: SessionService, form: URLSearchParams): Promise<Session> {
  const origin = ctx.get('Origin');
  if (origin && origin !== `${ctx.protocol}://${requestHost(ctx)}`) {
    throw new RegistryError('FORBIDDEN', 'This form was sent from another site.');
  }
  const session = await sessionOf(ctx, sessions);
  sessions.checkCsrf(session, form.get(CSRF_FIELD));
  return session as Session;
}

/**
 * Reads a posted form (application/x-www-form-urlencoded, at most MAX_FORM_BYTES) and
 * checks that it came from one of our pages (checkFormOrigin).
 */
export async function readPostedForm(ctx: Context, sessions: SessionService): Promise<{ form: URLSearchParams; session: Session }> {
  if (!ctx.is('application/x-www-form-urlencoded')) throw invalidInput('Expected a form (application/x-www-form-urlencoded)');
  const form = new URLSearchParams((await readRawBody(ctx, MAX_FORM_BYTES)).toString('utf8'));
  return { form, session: await checkFormOrigin(ctx, sessions, form) };
}
