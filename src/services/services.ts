/** Wires stores and services together explicitly (no container): one place, in order. */
import type { Config } from '../config/schema.js';
import type { Logger } from '../logger.js';
import { FsBlobStore } from '../store/blobs/fs-blob-store.js';
import type { BlobStore } from '../store/blobs/blob-store.js';
import { LevelMetadataStore } from '../store/metadata/level-metadata-store.js';
import type { MetadataStore } from '../store/metadata/metadata-store.js';
import fs from 'node:fs/promises';
import { Metrics } from '../metrics.js';
import { AccessService } from './access.js';
import { AdminService } from './admin.js';
import { BlobIngest } from './blob-ingest.js';
import { BlobService } from './blobs.js';
import { ImageBridge } from './image-bridge.js';
import { ManifestService } from './manifests.js';
import { RegistryTokenService } from './registry-tokens.js';
import { UploadService } from './uploads.js';
import { Fsck } from './fsck.js';
import { WebhookService } from './webhooks.js';
import { EventBus } from './events.js';
import { GarbageCollector } from './gc.js';
import { Gate } from './gate.js';
import { HealthService } from './health.js';
import { HubService } from './hub.js';
import { ImageService } from './images.js';
import { JwtService } from './jwt.js';
import { RepositoryService } from './repositories.js';
import { SearchService } from './search.js';
import { TokenService } from './tokens.js';
import { UserService } from './users.js';

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
  close(): Promise<void>;
}

/** Opens the stores only (for CLI commands that need no HTTP). */
export async function openStores(config: Config, logger: Logger): Promise<{ meta: MetadataStore; blobs: FsBlobStore }> {
  const blobs = new FsBlobStore(config.storage_root);
  const { removedTemp } = await blobs.init();
  if (removedTemp > 0) logger.warn({ removedTemp }, 'removed unfinished uploads left by a previous run');
  const meta = new LevelMetadataStore(blobs.paths.db);
  try {
    await meta.open();
  } catch (err) {
    if ((err as { code?: string }).code === 'LEVEL_DATABASE_NOT_OPEN' && /LOCK/.test(String((err as { cause?: unknown }).cause))) {
      throw new Error(`the metadata database in ${blobs.paths.db} is in use by another process (one registry process per storage root)`);
    }
    throw err;
  }
  return { meta, blobs };
}

export async function openServices(config: Config, logger: Logger): Promise<Services> {
  const { meta, blobs } = await openStores(config, logger);
  const gate = new Gate();
  const ingest = new BlobIngest(blobs, gate);
  const images = new ImageService(meta, blobs, gate, ingest);
  const events = new EventBus((err, event) => logger.error({ err, event: event.type }, 'event listener failed'));
  const repos = new RepositoryService(meta, images, gate, events);
  const access = new AccessService(config.standalone, meta);
  const users = new UserService(meta, { bcryptCost: config.bcrypt_cost, signupEnabled: config.signup_enabled });
  const tokens = new TokenService(TokenService.loadSecret(config.storage_root), config.token_ttl_seconds);
  const search = new SearchService(meta, access);
  const health = new HealthService(meta, async () => {
    const probe = blobs.paths.newTemp();
    try {
      await fs.writeFile(probe, 'status');
      if ((await fs.readFile(probe, 'utf8')) !== 'status') throw new Error('storage read back different bytes');
    } finally {
      await fs.rm(probe, { force: true });
    }
  });
  const metrics = new Metrics(async () => {
    let total = 0;
    for await (const digest of blobs.list()) total += (await blobs.stat(digest))?.size ?? 0;
    return total;
  });
  if (config.admin_username) {
    const created = await users.ensureAdmin(
      config.admin_username,
      config.admin_password,
      config.admin_email || `${config.admin_username}@localhost`,
    );
    if (created) logger.info({ user: config.admin_username }, 'created the configured admin account');
  }
  const gc = new GarbageCollector(meta, blobs, gate, {
    isWriting: (id) => images.isWriting(id),
    forget: (id) => images.forget(id),
    isUploading: (id) => ingest.isBusy(id),
  });
  const fsck = new Fsck(meta, blobs, gate);
  const admin = new AdminService(meta, gate);
  const webhooks = new WebhookService(
    meta,
    {
      urls: config.webhooks,
      maxAttempts: config.webhook_max_attempts,
      retryBaseMs: config.webhook_retry_base_ms,
      timeoutMs: config.webhook_timeout_ms,
    },
    logger,
  );
  events.on((event) => webhooks.onEvent(event));
  const jwt = new JwtService(TokenService.loadSecret(config.storage_root), config.token_ttl_seconds);
  const hub = new HubService(meta, repos, access, users, jwt);
  events.on((event) => hub.onEvent(event));
  const blobService = new BlobService(meta, blobs, gate);
  const uploads = new UploadService(meta, ingest, blobService);
  const bridge = new ImageBridge(meta, blobs, blobService, images, ingest, gate);
  const manifests = new ManifestService(meta, repos, blobService, access, gate, bridge, config.max_manifest_bytes);
  const registryTokens = new RegistryTokenService(TokenService.loadSecret(config.storage_root), config.token_service, config.token_ttl_seconds, access, users, jwt);
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
    async close() {
      await webhooks.stop();
      await hub.flushPulls().catch((err) => logger.error({ err }, 'could not write the last pull statistics'));
      await meta.close();
    },
  };
}
