/**
 * The origin (`proto://host`) a client used to reach this server, for absolute URLs we hand
 * out (Hub's `next` links, the v2 token realm): the Host header when it is a plain
 * host[:port] (else the socket's local address), and https when the connection is TLS or a
 * TLS front says so with X-Forwarded-Proto.
 */
import type { Context } from 'koa';

const HOST = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

export function originOf(ctx: Context): string {
  const forwarded = ctx.get('X-Forwarded-Proto').split(',')[0].trim().toLowerCase();
  const proto = forwarded === 'https' || forwarded === 'http' ? forwarded : ctx.protocol;
  let host = ctx.get('Host');
  if (!HOST.test(host)) {
    const address = ctx.req.socket.localAddress ?? '127.0.0.1';
    host = `${address.includes(':') ? `[${address}]` : address}:${ctx.req.socket.localPort}`;
  }
  return `${proto}://${host}`;
}
