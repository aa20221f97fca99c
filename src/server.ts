/**
 * A running registry: services + app + HTTP server, with an orderly stop. Used by main.ts
 * and by the tests (which start it on port 0 and a temp storage root).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from './app.js';
import type { Config } from './config/schema.js';
import type { Logger } from './logger.js';
import { openServices, type Services } from './services/services.js';

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
  const app = createApp({ config, logger, services });
  const server = http.createServer(app.callback());
  // Layer uploads can take long; only idle connections are timed out.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 5_000;
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
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  services.webhooks.publicUrl = config.endpoints ? `http://${config.endpoints.split(',')[0].trim()}` : url;
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
