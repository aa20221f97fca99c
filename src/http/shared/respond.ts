/**
 * Response helpers: every JSON body is JSON-encoded, bare strings included.
 *
 * Headers are set with `ctx.res.setHeader`, here and in the routes: Koa 3's `ctx.set`
 * maps each call through three arrays and a lower-cased name (~650 bytes of garbage per
 * header; a small GET set six).
 */
import type { Context } from 'koa';

export function sendJson(ctx: Context, status: number, value: unknown): void {
  ctx.status = status;
  // The header itself: `ctx.type =` looks the value up in mime-types on every response.
  ctx.res.setHeader('Content-Type', JSON_TYPE);
  ctx.body = JSON.stringify(value);
}

/** What `ctx.type = 'application/json'` sets. */
export const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * Serialized bodies of values that never change (frozen lists the services share while
 * their data stays the same), keyed on the value itself: a new value means new data.
 */
const serialized = new WeakMap<object, Buffer>();

/**
 * Like sendJson, for a value that is never modified (deeply) once handed out: it is
 * serialized once, then its bytes are reused for every request that sends the same value.
 */
export function sendSharedJson(ctx: Context, status: number, value: object): void {
  let body = serialized.get(value);
  if (!body) {
    body = Buffer.from(JSON.stringify(value));
    serialized.set(value, body);
  }
  ctx.status = status;
  ctx.res.setHeader('Content-Type', JSON_TYPE);
  ctx.body = body;
}

export const NO_CACHE = 'no-cache';
export const IMMUTABLE = 'public, max-age=31536000, immutable';

/**
 * If-None-Match uses the weak comparison (RFC 9110 §13.1.2): `W/"x"` matches `"x"`, and
 * `*` matches any existing representation.
 */
export function noneMatch(header: string, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((candidate) => {
    const tag = candidate.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}
