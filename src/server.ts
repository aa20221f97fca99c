/**
 * A running registry: services + app + HTTP server, with an orderly stop. Used by main.ts
 * and by the tests (which start it on port 0 and a temp storage root).
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Middleware } from 'koa';
import { createApp } from './app.js';
import type { Config } from './config/schema.js';
import { watchRequestBody } from './http/shared/body.js';
import { lingerOnEarlyClose } from './http/shared/linger.js';
import type { Logger } from './logger.js';
import { openServices, type ServiceOptions, type Services } from './compose.js';

export interface ServerOptions extends ServiceOptions {
  /** Runs before every other middleware (the test double's faults and request record). */
  first?: Middleware;
}

export interface RunningServer {
  url: string;
  port: number;
  /** The services requests are served with (replaced by reopen()). */
  services: Services;
  server: http.Server;
  /**
   * Closes the services and opens new ones, on the same port (the test double's reset):
   * `between` runs when the old ones are closed (to empty the storage). Requests that
   * arrive meanwhile are served by the new services once they are open.
   */
  reopen(between?: () => Promise<void>): Promise<void>;
  /** Stops accepting, lets in-flight requests finish (up to `graceMs`), closes the stores. */
  stop(graceMs?: number): Promise<void>;
}

/** The services, and the app that serves requests with them. */
interface Serving {
  services: Services;
  handle: http.RequestListener;
}

async function serve(config: Config, logger: Logger, options: ServerOptions): Promise<Serving> {
  const services = await openServices(config, logger, options);
  return { services, handle: createApp({ config, logger, services, first: options.first }).callback() };
}

export async function startServer(config: Config, logger: Logger, options: ServerOptions = {}): Promise<RunningServer> {
  // A promise while reopen() replaces the services: requests wait for the new ones.
  let current: Serving | Promise<Serving> = await serve(config, logger, options);
  const first = current;
  const idleMs = config.upload_idle_timeout_seconds * 1000;
  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    // A request body that stops arriving is cut off after upload_idle_timeout_seconds.
    watchRequestBody(req, idleMs);
    if (!(current instanceof Promise)) return current.handle(req, res);
    current.then((next) => next.handle(req, res), () => res.destroy());
  };
  let server: http.Server;
  try {
    server = config.tls_certificate ? https.createServer(readTls(config), listener) : http.createServer(listener);
  } catch (err) {
    await first.services.close();
    throw err;
  }
  // Layer uploads can take long; only idle connections and idle request bodies are timed out.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 5_000;
  // An upload refused before its body arrived gets its answer, not a reset (see linger.ts).
  lingerOnEarlyClose(server);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => resolve());
    });
  } catch (err) {
    await first.services.close();
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const scheme = config.tls_certificate ? 'https' : 'http';
  const url = `${scheme}://${host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host}:${port}`;
  const publicUrl = config.endpoints ? `${scheme}://${config.endpoints.split(',')[0].trim()}` : url;
  first.services.webhooks.publicUrl = publicUrl;
  let stopping: Promise<void> | null = null;
  const running: RunningServer = {
    url,
    port,
    services: first.services,
    server,
    async reopen(between) {
      const next = (async () => {
        await running.services.close();
        await between?.();
        const opened = await serve(config, logger, options);
        opened.services.webhooks.publicUrl = publicUrl;
        return opened;
      })();
      current = next;
      const opened = await next;
      current = opened;
      running.services = opened.services;
    },
    stop(graceMs = 10_000) {
      stopping ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        await closed;
        clearTimeout(timer);
        await (await current).services.close();
      })();
      return stopping;
    },
  };
  return running;
}

/** The certificate and key of `tls_certificate` / `tls_key`, checked to be a pair. */
function readTls(config: Config): https.ServerOptions {
  const read = (key: 'tls_certificate' | 'tls_key') => {
    try {
      return fs.readFileSync(config[key]);
    } catch (err) {
      throw new Error(`cannot read ${key} ${config[key]}: ${(err as Error).message}`);
    }
  };
  const options = { cert: read('tls_certificate'), key: read('tls_key') };
  try {
    // Refuses a key that is not the certificate's (or unreadable PEM) now, not at the first handshake.
    tls.createSecureContext(options);
  } catch (err) {
    throw new Error(`tls_certificate and tls_key are not a usable pair: ${(err as Error).message}`);
  }
  return options;
}
