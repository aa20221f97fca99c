/**
 * The origin (`proto://host`) a client used to reach this server, for absolute URLs we hand
 * out (Hub's `next` links, the v2 token realm): the host of requestHost(), and https when the
 * connection is TLS or a TLS front says so with X-Forwarded-Proto.
 */
import type { Context } from 'koa';
import { requestHost } from './request-host.js';

export function originOf(ctx: Context): string {
  const forwarded = ctx.get('X-Forwarded-Proto').split(',')[0].trim().toLowerCase();
  const proto = forwarded === 'https' || forwarded === 'http' ? forwarded : ctx.protocol;
  return `${proto}://${requestHost(ctx)}`;
}
