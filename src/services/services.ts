/** Wires stores and services together explicitly (no container): one place, in order. */
import type { Config } from '../config/schema.js';
import type { Logger } from '../logger.js';
import { FsBlobStore } from '../store/blobs/fs-blob-store.js';
import type { BlobStore } from '../store/blobs/blob-store.js';
import { LevelMetadataStore } from '../store/metadata/level-metadata-store.js';
import type { MetadataStore } from '../store/metadata/metadata-store.js';
import { AccessService } from './access.js';
import { ImageService } from './images.js';
import { RepositoryService } from './repositories.js';

export interface Services {
  meta: MetadataStore;
  blobs: BlobStore;
  images: ImageService;
  repos: RepositoryService;
  access: AccessService;
  close(): Promise<void>;
}

export async function openServices(config: Config, logger: Logger): Promise<Services> {
  const blobs = new FsBlobStore(config.storage_root);
  const { removedTemp } = await blobs.init();
  if (removedTemp > 0) logger.warn({ removedTemp }, 'removed unfinished uploads left by a previous run');
  const meta = new LevelMetadataStore(blobs.paths.db);
  await meta.open();
  const images = new ImageService(meta, blobs);
  const repos = new RepositoryService(meta, images);
  const access = new AccessService(config.standalone);
  return {
    meta,
    blobs,
    images,
    repos,
    access,
    close: () => meta.close(),
  };
}
