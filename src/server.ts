/**
 * A running registry: services + app + HTTP server, with an orderly stop. Used by main.ts
 * and by the tests (which start it on port 0 and a temp storage root).
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createApp } from './app.js';
import type { Config } from './config/schema.js';
import { watchRequestBody } from './http/shared/body.js';
import { lingerOnEarlyClose } from './http/shared/linger.js';
import type { Logger } from './logger.js';
import { openServices, type Services } from './services/services.js';
import { LoginThrottle } from './services/throttle.js';

export interface RunningServer {
  url: string;
  port: number;
  services: Services;
  server: http.Server;
  /** Stops accepting, lets in-flight requests finish (up to `graceMs`), closes the stores. */
  stop(graceMs?: number): Promise<void>;
}

export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const services = await openServices(config, logger);
  services.users.setLoginThrottle(
    new LoginThrottle({
      maxFailuresPerUser: config.login_max_failures,
      maxFailuresPerAddress: config.login_max_failures_per_address,
      windowMs: config.login_window_seconds * 1000,
    }),
  );
  const app = createApp({ config, logger, services });
  const handle = app.callback();
  const idleMs = config.upload_idle_timeout_seconds * 1000;
  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    // A request body that stops arriving is cut off after upload_idle_timeout_seconds.
    watchRequestBody(req, idleMs);
    return handle(req, res);
  };
  let server: http.Server;
  try {
    server = config.tls_certificate ? https.createServer(readTls(config), listener) : http.createServer(listener);
  } catch (err) {
    await services.close();
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
    await services.close();
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const scheme = config.tls_certificate ? 'https' : 'http';
  const url = `${scheme}://${host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host}:${port}`;
  services.webhooks.publicUrl = config.endpoints ? `${scheme}://${config.endpoints.split(',')[0].trim()}` : url;
  let stopping: Promise<void> | null = null;
  return {
    url,
    port,
    services,
    server,
    stop(graceMs = 10_000) {
      stopping ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        await closed;
        clearTimeout(timer);
        await services.close();
      })();
      return stopping;
    },
  };
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
