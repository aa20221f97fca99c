/** The server entry point: config → logger → server; stops gracefully on SIGTERM/SIGINT. */
import { ConfigError, loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { isMain } from './is-main.js';
import { sendfileAvailable } from './http/shared/sendfile.js';
import { createLogger, flushLogger } from './logger.js';
import { startServer } from './server.js';

/** Starts the registry and keeps it running until a signal stops it. */
export async function runServer(config: Config): Promise<void> {
  const logger = createLogger(config.log_level);
  const running = await startServer(config, logger);
  const layerSend = config.layer_sendfile && sendfileAvailable && !config.tls_certificate ? 'sendfile' : 'stream';
  if (config.layer_sendfile && !sendfileAvailable) {
    logger.warn('the sendfile addon is not built (native/, see README): layers are streamed through Node buffers');
  }
  logger.info({ url: running.url, storage: config.storage_root, standalone: config.standalone, layerSend }, 'registry listening');
  flushLogger(logger);

  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    running.stop().then(
      () => {
        logger.info('stopped');
        flushLogger(logger);
        process.exit(0);
      },
      (err) => {
        logger.error({ err }, 'shutdown failed');
        flushLogger(logger);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

if (isMain(import.meta.url)) {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`registry: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  runServer(config).catch((err) => {
    process.stderr.write(`registry: failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
