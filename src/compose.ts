/**
 * The composition root: the one place that opens the stores the config names
 * (`openStores`) and wires the services on them, explicitly and in order (no container).
 * `openServices` is what a running registry serves with (src/server.ts, so main.ts and the
 * test double, src/testing/); `openLocalServices` is what the CLI's local admin backend runs
 * on (src/cli/admin.ts). Services take only the metadata ports they use
 * (src/store/metadata/ports.ts); one backend implements them all.
 */
import type { Config } from './config/schema.js';
import type { Logger } from './logger.js';
import { BlobPaths } from './store/blobs/blob-paths.js';
import { FsBlobStore } from './store/blobs/fs-blob-store.js';
import type { BlobStore } from './store/blobs/blob-store.js';
import { MemoryBlobStore } from './store/blobs/memory-blob-store.js';
import { LevelMetadataStore } from './store/metadata/level-metadata-store.js';
import { MemoryMetadataStore } from './store/metadata/memory-metadata-store.js';
import type { MetadataStore } from './store/metadata/metadata-store.js';
import { InProcessLocks } from './store/locks/in-process-locks.js';
import type { Locks } from './store/locks/locks.js';
import { withImageCache } from './store/metadata/image-cache.js';
import type { AccountStore, EndedSessionStore, LoginFailureStore, OAuthStore } from './store/metadata/ports.js';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { Metrics } from './metrics.js';
import { AccessService } from './services/access.js';
import { AdminService } from './services/admin.js';
import { CatalogService } from './services/catalog.js';
import { ConsoleService } from './services/console.js';
import { KeyRing } from './services/keyring.js';
import { SessionService } from './services/sessions.js';
import { BlobIngest } from './services/blob-ingest.js';
import { BlobService } from './services/blobs.js';
import { ImageBridge } from './services/image-bridge.js';
import { ManifestService } from './services/manifests.js';
import { RegistryTokenService } from './services/registry-tokens.js';
import { UploadService } from './services/uploads.js';
import { Fsck } from './services/fsck.js';
import { WebhookService } from './services/webhooks.js';
import { EventBus } from './services/events.js';
import { GarbageCollector, type GcRetention, type UploadTracker } from './services/gc.js';
import { HealthService } from './services/health.js';
import { HubService } from './services/hub.js';
import { ImageService } from './services/images.js';
import { JwtService } from './services/jwt.js';
import { RepositoryService } from './services/repositories.js';
import { SearchService } from './services/search.js';
import { TokenService } from './services/tokens.js';
import { UserService } from './services/users.js';
import { OAuthService } from './services/oauth.js';
import { LoginThrottle } from './services/throttle.js';
import { InMemoryLoginFailures } from './store/login-failures.js';
import { InMemoryEndedSessions } from './store/ended-sessions.js';

export interface Services {
  meta: MetadataStore;
  blobs: BlobStore;
  images: ImageService;
  repos: RepositoryService;
  access: AccessService;
  users: UserService;
  tokens: TokenService;
  search: SearchService;
  health: HealthService;
  metrics: Metrics;
  gc: GarbageCollector;
  fsck: Fsck;
  admin: AdminService;
  events: EventBus;
  webhooks: WebhookService;
  /** The Docker Hub REST API double (views, JWT logins, pull statistics). */
  hub: HubService;
  /** Registry API v2: blob ingest, blobs, uploads, manifests, tokens, and the v1 ↔ v2 bridge. */
  ingest: BlobIngest;
  blobService: BlobService;
  uploads: UploadService;
  manifests: ManifestService;
  bridge: ImageBridge;
  registryTokens: RegistryTokenService;
  /** A presigned GET URL of a blob, when the blob store hands them out (s3_redirect). */
  blobUrl?: (digest: string, expiresInSeconds: number) => Promise<string>;
  /** OAuth 2 clients, consent, codes and tokens (the OAuth face, src/http/oauth/). */
  oauth: OAuthService;
  /** Keys for every signed thing, derived from the token secret. */
  keyRing: KeyRing;
  /** Browser sessions of the web UI (the OAuth consent page counts them as logged in). */
  sessions: SessionService;
  /** What the web UI shows and what owners change there. */
  catalog: CatalogService;
  /** The web UI's admin pages: accounts, GC, fsck. */
  console: ConsoleService;
  close(): Promise<void>;
}

/** The metadata store is held by another process (a running registry: LevelDB's lock). */
export class StoreInUseError extends Error {
  constructor(readonly location: string) {
    super(`the metadata database in ${location} is in use by another process (one registry process per storage root)`);
    this.name = 'StoreInUseError';
  }
}

/**
 * Where the data lives: `disk` (what the config names: `metadata_store` and `blob_store`,
 * LevelDB and files under storage_root by default) or `memory` (nothing on disk, gone with
 * the process: the test double, src/testing/).
 */
export type StoreKind = 'disk' | 'memory';

/** The stores the services run on, and what besides records lives with them. */
export interface Stores {
  meta: MetadataStore;
  blobs: BlobStore;
  /**
   * One writer per image / upload session and the GC write gate: in this process
   * (LevelDB, memory), or PostgreSQL advisory locks for every node on the database.
   */
  locks: Locks;
  /**
   * The login throttle's failures and the web UI's ended sessions: in this process for one
   * node, in PostgreSQL (the metadata store) when nodes share it.
   */
  loginFailures: LoginFailureStore;
  endedSessions: EndedSessionStore;
  /** The key of every signed thing: `token_secret`, else `<storage_root>/secret` (made on first use). */
  secret(): Buffer;
  /** GET /_status's storage check: a write/read/delete round trip where uploads go, or a question to the object store. */
  probe(): Promise<void>;
  /** A presigned GET URL of a blob, when the blob store hands them out (s3). */
  blobUrl?: (digest: string, expiresInSeconds: number) => Promise<string>;
}

/**
 * Opens the stores (also for CLI commands that need no HTTP). PostgreSQL and S3 clients are
 * loaded only when configured: a single-node registry does not pay their memory.
 */
export async function openStores(config: Config, logger: Logger, kind: StoreKind = 'disk'): Promise<Stores> {
  if (kind === 'memory') {
    const memory = new MemoryMetadataStore();
    await memory.open();
    const meta = withImageCache(memory);
    const secret = randomBytes(32);
    return { meta, blobs: new MemoryBlobStore(), locks: new InProcessLocks(), ...inProcessState(), secret: () => secret, probe: async () => undefined };
  }
  const shared = config.metadata_store === 'postgres';
  // Unfinished uploads a node finds at start are its own leftovers only when it is the one
  // node; on many, those idle for less than the upload expiry may be another node's.
  const abandonAfterMs = shared ? config.upload_expiry_seconds * 1000 : 0;
  let blobs: BlobStore;
  let probe: () => Promise<void>;
  let blobUrl: Stores['blobUrl'];
  if (config.blob_store === 's3') {
    const { S3BlobStore } = await import('./store/blobs/s3-blob-store.js');
    const s3 = new S3BlobStore({
      endpoint: config.s3_endpoint,
      region: config.s3_region,
      bucket: config.s3_bucket,
      accessKeyId: config.s3_access_key_id,
      secretAccessKey: config.s3_secret_access_key,
      forcePathStyle: config.s3_force_path_style,
      createBucket: true,
      abandonAfterMs,
    });
    blobs = s3;
    probe = () => s3.ping();
    blobUrl = (digest, expiresInSeconds) => s3.presignGet(digest, expiresInSeconds);
  } else {
    const fsBlobs = new FsBlobStore(config.storage_root, { abandonAfterMs });
    blobs = fsBlobs;
    probe = async () => {
      const file = fsBlobs.paths.newTemp();
      try {
        await fs.writeFile(file, 'status');
        if ((await fs.readFile(file, 'utf8')) !== 'status') throw new Error('storage read back different bytes');
      } finally {
        await fs.rm(file, { force: true });
      }
    };
  }
  const { removedTemp } = await blobs.init();
  if (removedTemp > 0) logger.warn({ removedTemp }, 'removed unfinished uploads left by a previous run');

  let meta: MetadataStore;
  let locks: Locks;
  let state = inProcessState();
  if (shared) {
    const onIdleError = (err: Error) => logger.warn({ err }, 'a pooled PostgreSQL connection failed; it will be replaced');
    const { PostgresMetadataStore } = await import('./store/metadata/postgres-metadata-store.js');
    const { PostgresLocks } = await import('./store/locks/postgres-locks.js');
    const pg = new PostgresMetadataStore(config.postgres_url, { onIdleError });
    await pg.open();
    const pgLocks = new PostgresLocks(config.postgres_url, { onIdleError });
    try {
      await pgLocks.open();
    } catch (err) {
      await pg.close();
      throw err;
    }
    meta = pg;
    locks = pgLocks;
    state = { loginFailures: pg, endedSessions: pg };
  } else {
    locks = new InProcessLocks();
    const db = new BlobPaths(config.storage_root).db;
    const level = new LevelMetadataStore(db);
    try {
      await level.open();
    } catch (err) {
      if ((err as { code?: string }).code === 'LEVEL_DATABASE_NOT_OPEN' && /LOCK/.test(String((err as { cause?: unknown }).cause))) {
        throw new StoreInUseError(db);
      }
      throw err;
    }
    // One process owns a LevelDB: caches in front of it see every write (see image-cache.ts).
    meta = withImageCache(level);
  }
  let secret: Buffer | null = null;
  return { meta, blobs, locks, ...state, secret: () => (secret ??= tokenSecret(config, logger)), probe, ...(blobUrl ? { blobUrl } : {}) };
}

/** Login failures and ended sessions kept in this process (one node). */
function inProcessState(): Pick<Stores, 'loginFailures' | 'endedSessions'> {
  return { loginFailures: new InMemoryLoginFailures(), endedSessions: new InMemoryEndedSessions() };
}

/** The secret that signs tokens and JWTs: token_secret, else the one kept in storage_root. */
function tokenSecret(config: Config, logger: Logger): Buffer {
  if (config.token_secret) return Buffer.from(config.token_secret, 'utf8');
  if (config.metadata_store === 'postgres') {
    logger.warn('token_secret is not set: this node signs tokens with its own secret, which other nodes of the registry will not accept');
  }
  return TokenService.loadSecret(config.storage_root);
}

export interface ServiceOptions {
  /** Default `disk`. */
  store?: StoreKind;
  /**
   * Process-wide figures (CPU, memory, GC, event loop) in /metrics; default true. Off for
   * the test double: their collectors stay registered for the life of the process.
   */
  processMetrics?: boolean;
}

export async function openServices(config: Config, logger: Logger, options: ServiceOptions = {}): Promise<Services> {
  const stores = await openStores(config, logger, options.store);
  const { meta, blobs, blobUrl, locks } = stores;
  const secret = stores.secret();
  const ingest = new BlobIngest(blobs, locks);
  const images = new ImageService(meta, blobs, locks, ingest);
  const events = new EventBus((err, event) => logger.error({ err, event: event.type }, 'event listener failed'));
  const repos = new RepositoryService(meta, images, locks, events);
  const access = new AccessService(config.standalone, meta);
  const users = userService(config, meta, stores.loginFailures);
  const tokens = new TokenService(secret, config.token_ttl_seconds);
  const search = new SearchService(meta, access);
  const health = new HealthService(meta, () => stores.probe());
  const metrics = new Metrics(async () => {
    let total = 0;
    for await (const digest of blobs.list()) total += (await blobs.stat(digest))?.size ?? 0;
    return total;
  }, options.processMetrics ?? true);
  if (config.admin_username) {
    const created = await users.ensureAdmin(
      config.admin_username,
      config.admin_password,
      config.admin_email || `${config.admin_username}@localhost`,
    );
    if (created) logger.info({ user: config.admin_username }, 'created the configured admin account');
  }
  const gc = new GarbageCollector(meta, blobs, locks, writesOf(images, ingest), gcRetention(config));
  const fsck = new Fsck(meta, blobs, locks);
  const admin = new AdminService(meta, locks);
  const webhooks = new WebhookService(
    meta,
    {
      urls: config.webhooks,
      maxAttempts: config.webhook_max_attempts,
      retryBaseMs: config.webhook_retry_base_ms,
      timeoutMs: config.webhook_timeout_ms,
      leaseMs: config.webhook_lease_ms,
    },
    logger,
  );
  events.on((event) => webhooks.onEvent(event));
  const jwt = new JwtService(secret, config.token_ttl_seconds);
  const hub = new HubService(meta, repos, access, users, jwt);
  events.on((event) => hub.onEvent(event));
  const keyRing = new KeyRing(secret);
  const oauth = oauthService(config, meta, users);
  oauth.startPruning((err) => logger.error({ err }, 'could not prune expired OAuth codes and tokens'));
  const sessions = new SessionService(keyRing, users, config.ui_session_ttl_seconds, undefined, stores.endedSessions);
  const catalog = new CatalogService(meta, blobs, images, repos, access, search);
  const adminConsole = new ConsoleService(access, users, gc, fsck);
  const blobService = new BlobService(meta, blobs, locks);
  const uploads = new UploadService(meta, ingest, blobService);
  const bridge = new ImageBridge(meta, blobs, blobService, images, ingest, locks);
  const manifests = new ManifestService(meta, repos, blobService, access, locks, bridge, config.max_manifest_bytes);
  const registryTokens = new RegistryTokenService(keyRing, config.token_service, config.token_ttl_seconds, access, users, jwt);
  webhooks.start();
  return {
    meta,
    blobs,
    images,
    repos,
    access,
    users,
    tokens,
    search,
    health,
    metrics,
    gc,
    fsck,
    admin,
    events,
    webhooks,
    hub,
    ingest,
    blobService,
    uploads,
    manifests,
    bridge,
    registryTokens,
    ...(blobUrl ? { blobUrl } : {}),
    oauth,
    keyRing,
    sessions,
    catalog,
    console: adminConsole,
    async close() {
      await webhooks.stop();
      await oauth.stop();
      await hub.flushPulls().catch((err) => logger.error({ err }, 'could not write the last pull statistics'));
      await meta.close();
      await locks.close();
    },
  };
}

/** What a garbage collection run keeps unless it is told otherwise (the config). */
function gcRetention(config: Config): GcRetention {
  return { graceMs: config.gc_grace_seconds * 1000, uploadExpiryMs: config.upload_expiry_seconds * 1000 };
}

/** What garbage collection asks about writes in flight (on every node: the keyed locks). */
function writesOf(images: ImageService, ingest: BlobIngest): UploadTracker {
  return {
    isWriting: (id) => images.isWriting(id),
    forget: (id) => images.forget(id),
    isUploading: (id) => ingest.isBusy(id),
  };
}

function userService(config: Config, meta: AccountStore, loginFailures: LoginFailureStore): UserService {
  const loginThrottle = new LoginThrottle(
    {
      maxFailuresPerUser: config.login_max_failures,
      maxFailuresPerAddress: config.login_max_failures_per_address,
      windowMs: config.login_window_seconds * 1000,
    },
    undefined,
    loginFailures,
  );
  return new UserService(meta, { bcryptCost: config.bcrypt_cost, signupEnabled: config.signup_enabled, loginThrottle });
}

function oauthService(config: Config, meta: OAuthStore, users: UserService): OAuthService {
  return new OAuthService(meta, users, {
    codeTtlSeconds: config.oauth_code_ttl_seconds,
    accessTokenTtlSeconds: config.oauth_access_token_ttl_seconds,
    refreshTokenTtlSeconds: config.oauth_refresh_token_ttl_seconds,
  });
}

/** What the CLI's admin commands run on when no registry holds the stores (src/cli/admin.ts). */
export interface LocalServices {
  users: UserService;
  oauth: OAuthService;
  gc: GarbageCollector;
  fsck: Fsck;
  close(): Promise<void>;
}

/** Opens the stores and wires the admin services for the CLI; StoreInUseError when a running registry holds them. */
export async function openLocalServices(config: Config, logger: Logger): Promise<LocalServices> {
  const { meta, blobs, locks, loginFailures } = await openStores(config, logger);
  const users = userService(config, meta, loginFailures);
  const oauth = oauthService(config, meta, users);
  // On LevelDB nothing else writes while the CLI holds the store; on PostgreSQL the nodes
  // go on, and the locks are theirs too: GC waits for their writes and spares what they
  // are writing.
  const ingest = new BlobIngest(blobs, locks);
  const images = new ImageService(meta, blobs, locks, ingest);
  return {
    users,
    oauth,
    gc: new GarbageCollector(meta, blobs, locks, writesOf(images, ingest), gcRetention(config)),
    fsck: new Fsck(meta, blobs, locks),
    async close() {
      await meta.close();
      await locks.close();
    },
  };
}
