/**
 * The `host[:port]` a client used to reach us: its `Host` header when that is a plain host
 * name or address with an optional port, else the local address and port of the
 * connection. For X-Docker-Endpoints, the Hub double's `next` links and the web UI's pull
 * commands.
 */
import type { Context } from 'koa';

const HOST = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

export function requestHost(ctx: Context): string {
  const host = ctx.get('Host');
  if (HOST.test(host)) return host;
  const address = ctx.req.socket.localAddress ?? '127.0.0.1';
  return `${address.includes(':') ? `[${address}]` : address}:${ctx.req.socket.localPort}`;
}
