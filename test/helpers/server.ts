/**
 * Starts the real registry (services + app + HTTP) on 127.0.0.1, a free port and a fresh
 * temp storage root; stop() closes it, restart() reopens it on the same storage.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { startServer, type RunningServer } from '../../src/server.js';

export interface TestServer {
  url: string;
  root: string;
  config: Config;
  running: RunningServer;
  /** Log lines written by the server (JSON strings), when `captureLogs` was set. */
  logs: string[];
  stop(): Promise<void>;
  /** Stops and starts again on the same storage root (a new port). */
  restart(): Promise<void>;
  /** Stops and removes the storage root. */
  destroy(): Promise<void>;
}

export interface TestServerOptions {
  overrides?: Record<string, unknown>;
  root?: string;
  captureLogs?: boolean;
}

export async function makeTempDir(prefix = 'registry-test-'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const root = options.root ?? (await makeTempDir());
  const logs: string[] = [];
  const config = loadConfig({
    env: { REGISTRY_CONFIG: 'config/test.yaml' },
    overrides: {
      storage_root: root,
      port: 0,
      ...(options.captureLogs ? { log_level: 'info' } : {}),
      ...options.overrides,
    },
  });
  const logger: Logger = options.captureLogs
    ? createLogger(config.log_level, new Writable({
        write(chunk, _enc, cb) {
          logs.push(...String(chunk).split('\n').filter(Boolean));
          cb();
        },
      }))
    : createLogger(config.log_level);
  let running = await startServer(config, logger);
  const server: TestServer = {
    url: running.url,
    root,
    config,
    running,
    logs,
    async stop() {
      await running.stop(1000);
    },
    async restart() {
      await running.stop(1000);
      running = await startServer(config, logger);
      server.running = running;
      server.url = running.url;
    },
    async destroy() {
      await running.stop(1000);
      await fs.rm(root, { recursive: true, force: true });
    },
  };
  return server;
}

/** A random 64-hex image id, as docker makes them. */
export function newImageId(): string {
  return randomBytes(32).toString('hex');
}
