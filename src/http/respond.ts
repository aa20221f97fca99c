/** Response helpers: every JSON body is JSON-encoded, bare strings included. */
import type { Context } from 'koa';

export function sendJson(ctx: Context, status: number, value: unknown): void {
  ctx.status = status;
  // The header itself: `ctx.type =` looks the value up in mime-types on every response.
  ctx.set('Content-Type', JSON_TYPE);
  ctx.body = JSON.stringify(value);
}

/** What `ctx.type = 'application/json'` sets. */
export const JSON_TYPE = 'application/json; charset=utf-8';
export const NO_CACHE = 'no-cache';
export const IMMUTABLE = 'public, max-age=31536000, immutable';
