/**
 * `import { createTestRegistry } from 'v1-registry/testing'`: the real registry (every face,
 * every service) as a test double, started in a few milliseconds on in-memory stores,
 * seeded in-process, with faults and a record of the requests it received. README "Test
 * double" documents it with a complete example.
 */
import path from 'node:path';
import fs from 'node:fs/promises';
import { validateConfig, type Config } from '../config/schema.js';
import { createLogger } from '../logger.js';
import { startServer, type RunningServer } from '../server.js';
import { BlobPaths } from '../store/blobs/blob-paths.js';
import { doubleMiddleware } from './double-middleware.js';
import { Faults, type Fault, type FaultHandle } from './faults.js';
import { recordedRequests, type RecordedRequests } from './requests.js';
import { Seeder, type SeededImage, type SeedResult, type SeedSpec } from './seed.js';

export type { Fault, FaultHandle, FaultPath } from './faults.js';
export type { RecordedRequest, RecordedRequests } from './requests.js';
export type { SeededImage, SeededLayer, SeedImage, SeedLayer, SeedRepository, SeedResult, SeedSpec } from './seed.js';

export interface TestUser {
  username: string;
  password: string;
  admin?: boolean;
  /** Default `<username>@localhost`. */
  email?: string;
}

export interface TestRegistryOptions {
  /** Accounts made at start (and again by reset()). */
  users?: TestUser[];
  /** No authorization at all. Default: true without `users`, false with them. */
  standalone?: boolean;
  /** `memory` (default), or the registry's own disk stores under `root` (LevelDB + files). */
  store?: 'memory' | { root: string };
  /** Other configuration keys (README "Configuration"), e.g. `{ token_ttl_seconds: 60 }`. */
  config?: Record<string, unknown>;
  /** Keep `reg.requests` (default true; `registry serve --memory` does not). */
  recordRequests?: boolean;
  /** The port to listen on (default 0: a free one). */
  port?: number;
}

export interface Seed {
  /** Pushes the repositories' images through the services, as a push would; see SeedSpec. */
  (spec: SeedSpec): Promise<SeedResult>;
  /** Pushes an image of a `docker save` tarball as `ref` (`namespace/repository[:tag]`). */
  fromTarball(file: string, ref: string, options?: { image?: string; layout?: 'legacy' | 'current' }): Promise<SeededImage>;
}

export interface TestRegistry {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** `127.0.0.1:<port>`, the registry part of image references. */
  readonly host: string;
  readonly seed: Seed;
  readonly faults: {
    add(fault: Fault): FaultHandle;
    clear(): void;
  };
  /** Every request received, in arrival order; `clear()` empties it. */
  readonly requests: RecordedRequests;
  /** Empties every store (and makes the `users` again); faults and requests stay. */
  reset(): Promise<void>;
  /** Stops listening, ends open connections, closes the stores. */
  close(): Promise<void>;
}

/** The double's configuration: the schema's defaults, then the double's, then `options.config`. */
function configOf(options: TestRegistryOptions): Config {
  const result = validateConfig({
    host: '127.0.0.1',
    port: options.port ?? 0,
    log_level: 'silent',
    standalone: options.standalone ?? !(options.users && options.users.length > 0),
    // The lowest cost: a login is ~1 ms instead of ~60.
    bcrypt_cost: 4,
    ...(typeof options.store === 'object' ? { storage_root: path.resolve(options.store.root) } : {}),
    ...options.config,
  });
  if ('problems' in result) throw new TypeError(`createTestRegistry: invalid configuration: ${result.problems.join('; ')}`);
  return result.config;
}

export async function createTestRegistry(options: TestRegistryOptions = {}): Promise<TestRegistry> {
  const config = configOf(options);
  const onDisk = typeof options.store === 'object';
  const faults = new Faults();
  const requests = recordedRequests();
  const running: RunningServer = await startServer(config, createLogger('silent'), {
    store: onDisk ? 'disk' : 'memory',
    processMetrics: false,
    first: doubleMiddleware(faults, options.recordRequests === false ? null : requests),
  });
  const makeUsers = async () => {
    for (const user of options.users ?? []) {
      await running.services.users.upsert({ username: user.username, password: user.password, email: user.email ?? `${user.username}@localhost`, admin: user.admin ?? false });
    }
  };
  try {
    await makeUsers();
  } catch (err) {
    await running.stop(0);
    throw err;
  }
  const seeder = new Seeder(() => running.services);
  const seed: Seed = Object.assign((spec: SeedSpec) => seeder.seed(spec), {
    fromTarball: (file: string, ref: string, opts?: { image?: string; layout?: 'legacy' | 'current' }) => seeder.fromTarball(file, ref, opts),
  });
  return {
    url: running.url,
    host: new URL(running.url).host,
    seed,
    faults: { add: (fault) => faults.add(fault), clear: () => faults.clear() },
    requests,
    async reset() {
      await running.reopen(onDisk ? () => emptyRoot(config.storage_root) : undefined);
      await makeUsers();
    },
    close: () => running.stop(0),
  };
}

/**
 * Removes what the disk stores keep under `root` (README "Storage layout": db/, blobs/,
 * tmp/, uploads/, and the token secret, so a reset starts afresh), and nothing else there.
 */
async function emptyRoot(root: string): Promise<void> {
  const paths = new BlobPaths(root);
  for (const owned of [paths.db, path.dirname(paths.blobs), paths.tmp, paths.uploads, path.join(paths.root, 'secret')]) {
    await fs.rm(owned, { recursive: true, force: true });
  }
}
