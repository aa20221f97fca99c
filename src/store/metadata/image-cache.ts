/**
 * A cache of complete v1 images in front of a metadata store, as a decorator that only a
 * registry of one node uses (compose.ts: LevelDB and the in-memory test double). A complete
 * image is immutable until it is deleted (garbage collection, DELETE /v1/images/:id, fsck
 * --repair), and on one node every such write goes through this decorator, which drops the
 * image at once. Nodes that share PostgreSQL do not use it: another node may delete an image
 * at any time, and a node serving it from memory would answer for an image that is gone (or
 * refuse a re-push of it as ALREADY_EXISTS). PostgreSQL answers these reads by primary key;
 * that is cheaper and simpler than invalidating every node's copy through LISTEN/NOTIFY.
 *
 * Cached: a complete image's record, its JSON bytes and its ancestry (frozen, the same array
 * while cached, so callers may key derived caches on it). Incomplete images are never
 * cached: their JSON may still be written again.
 */
import type { ImageId } from '../../domain/names.js';
import type { ImageRecord } from '../../domain/records.js';
import { Lru } from '../../domain/lru.js';
import type { ImageStore } from './ports.js';

class ImageCache {
  readonly records = new Lru<ImageId, ImageRecord>(20_000);
  readonly json = new Lru<ImageId, Buffer>(20_000, 8 * 1024 * 1024, (b) => b.length);
  readonly ancestry = new Lru<ImageId, readonly ImageId[]>(5_000, 4 * 1024 * 1024, (a) => a.length * 72);
  /** Bumped by every image write: a read that overlapped one is answered but not kept. */
  writes = 0;

  drop(id: ImageId): void {
    this.writes += 1;
    this.records.delete(id);
    this.json.delete(id);
    this.ancestry.delete(id);
  }

  /** Reads through `cache` unless `id`'s record is not known complete. */
  async read<V>(cache: Lru<ImageId, V>, id: ImageId, load: () => Promise<V | null>, keep: (value: V) => boolean): Promise<V | null> {
    const hit = cache.get(id);
    if (hit !== undefined) return hit;
    const before = this.writes;
    const value = await load();
    if (value !== null && this.writes === before && keep(value)) cache.set(id, value);
    return value;
  }
}

/** `store` with its image reads cached and its image writes dropping them (one node only). */
export function withImageCache<T extends ImageStore>(store: T): T {
  const cache = new ImageCache();
  const complete = (id: ImageId) => cache.records.peek(id) !== undefined;
  const overrides: Partial<ImageStore> = {
    getImage: (id) => cache.read(cache.records, id, () => store.getImage(id), (record) => record.status === 'complete'),
    getImageJson: (id) => cache.read(cache.json, id, () => store.getImageJson(id), () => complete(id)),
    getAncestry: async (id) =>
      (await cache.read(cache.ancestry, id, async () => Object.freeze(await store.getAncestry(id)) ?? null, () => complete(id))) as ImageId[] | null,
    async putImage(record, json, ancestry) {
      try {
        await store.putImage(record, json, ancestry);
      } finally {
        cache.drop(record.id);
      }
    },
    async updateImage(record) {
      try {
        await store.updateImage(record);
      } finally {
        cache.drop(record.id);
      }
    },
    async deleteImage(id) {
      try {
        await store.deleteImage(id);
      } finally {
        cache.drop(id);
      }
    },
  };
  // Every other method of the store, bound to it once (again if the method is replaced).
  const bound = new Map<PropertyKey, { of: unknown; method: unknown }>();
  return new Proxy(store, {
    get(target, key, receiver) {
      if (typeof key === 'string' && Object.hasOwn(overrides, key)) return overrides[key as keyof ImageStore];
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      let entry = bound.get(key);
      if (entry?.of !== value) bound.set(key, (entry = { of: value, method: value.bind(target) }));
      return entry.method;
    },
  });
}
