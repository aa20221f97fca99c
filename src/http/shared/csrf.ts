/**
 * CSRF protection for HTML forms: a signed double submit. The browser gets a random
 * cookie (HttpOnly, SameSite=Lax, on `path`); each form carries
 * `sign("csrf/<cookie name>", cookie)` from the key ring. A submitted form is accepted only
 * with its browser's cookie and the matching signature: another site can neither read the
 * cookie nor compute the signature, and a cookie planted by a neighbour does not come with
 * a signature. No server state; the key survives restarts.
 *
 * Shared by every face that renders forms (the OAuth consent page; the web UI's forms can
 * use the same guard on their own cookie and path).
 */
import { randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import type { KeyRing } from '../../services/keyring.js';

const COOKIE_VALUE = /^[A-Za-z0-9_-]{22,64}$/;

export class CsrfGuard {
  constructor(
    private readonly keyRing: KeyRing,
    private readonly cookie: string,
    private readonly path: string,
  ) {}

  /** The token for a form on this response (gives the browser its cookie if it has none). */
  issue(ctx: Context): string {
    let value = this.cookieOf(ctx);
    if (!value) {
      value = randomBytes(18).toString('base64url');
      ctx.cookies.set(this.cookie, value, { httpOnly: true, sameSite: 'lax', path: this.path, secure: ctx.secure, overwrite: true });
    }
    return this.keyRing.sign(`csrf/${this.cookie}`, value);
  }

  /** Does the submitted `token` belong to this browser's cookie? */
  check(ctx: Context, token: unknown): boolean {
    const value = this.cookieOf(ctx);
    return value !== null && typeof token === 'string' && this.keyRing.verify(`csrf/${this.cookie}`, value, token);
  }

  private cookieOf(ctx: Context): string | null {
    const value = ctx.cookies.get(this.cookie);
    return value && COOKIE_VALUE.test(value) ? value : null;
  }
}
