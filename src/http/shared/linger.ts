/**
 * Lingering close (RFC 9112 §9.6, as Apache and Go do it).
 *
 * A refused upload is answered before its body has arrived (409 "another request is
 * uploading this image", 401, 413 …). When that connection is then closed — the client
 * sent `Connection: close`, or the answer did — Node destroys the socket as soon as the
 * answer is written. The bytes the client is still sending then hit a closed socket and the
 * kernel answers them with a reset, which can overtake the answer: the client sees EPIPE or
 * ECONNRESET instead of the 4xx and its JSON error.
 *
 * So: when a connection closes with a request body still arriving, half-close it (the answer
 * goes out, followed by FIN), keep reading and discarding what the client sends (the HTTP
 * parser drops the rest of the body), and destroy the socket when the client closes its side
 * or after `lingerMs`, whichever comes first.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';

export const LINGER_MS = 2000;

export function lingerOnEarlyClose(server: Server, lingerMs = LINGER_MS): void {
  /** The last request seen on each connection. */
  const current = new WeakMap<Socket, IncomingMessage>();
  server.on('request', (req: IncomingMessage) => current.set(req.socket, req));
  // Over TLS the HTTP server writes to (and destroys) the TLS socket, not the TCP one.
  server.on('setSecureContext' in server ? 'secureConnection' : 'connection', (socket: Socket) => {
    const destroySoon = socket.destroySoon;
    // Node's HTTP server calls destroySoon() once the last answer on a connection is written.
    socket.destroySoon = function lingeringDestroySoon(this: Socket) {
      const req = current.get(this);
      if (!req || req.complete || this.destroyed || this.readableEnded) {
        destroySoon.call(this);
        return;
      }
      if (!req.readableFlowing) req.resume();
      this.end();
      const timer = setTimeout(() => this.destroy(), lingerMs);
      timer.unref();
      this.once('end', () => this.destroy());
      this.once('close', () => clearTimeout(timer));
    };
  });
}
