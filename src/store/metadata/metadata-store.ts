/**
 * The metadata store: one backend that implements every metadata port (ports.ts), so a
 * transaction may span aggregates where the domain needs it. LevelMetadataStore,
 * PostgresMetadataStore and MemoryMetadataStore implement it; services take only the
 * ports they use. test/store/metadata-store.contract.ts (and oauth-store.contract.ts) is
 * the behaviour every implementation must pass.
 */
import type {
  AccountStore,
  BlobLinkStore,
  ImageListStore,
  ImageManifestStore,
  ImageStore,
  LayerFactsStore,
  ManifestStore,
  OAuthStore,
  PullStatsStore,
  RepositoryStore,
  StoreLifecycle,
  TagStore,
  UploadSessionStore,
  WebhookQueue,
} from './ports.js';

export interface MetadataStore
  extends StoreLifecycle,
    ImageStore,
    RepositoryStore,
    TagStore,
    ImageListStore,
    AccountStore,
    WebhookQueue,
    PullStatsStore,
    ManifestStore,
    BlobLinkStore,
    UploadSessionStore,
    LayerFactsStore,
    ImageManifestStore,
    OAuthStore {}
