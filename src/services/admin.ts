/**
 * Admin operations on images: detaching an image from every repository so that garbage
 * collection can free it. An image a tag still reaches (directly or as an ancestor of the
 * tagged image) is refused: delete the tag first.
 */
import { notFound, RegistryError } from '../domain/errors.js';
import type { ImageId, RepoName } from '../domain/names.js';
import type { ImageListStore, ImageStore, TagStore } from '../store/metadata/ports.js';
import type { WriteGate } from '../store/locks/locks.js';

export interface DetachReport {
  /** The image and every descendant removed from image lists. */
  detached: ImageId[];
  repositories: string[];
}

export class AdminService {
  constructor(
    private readonly meta: ImageStore & TagStore & ImageListStore,
    private readonly gate: WriteGate,
  ) {}

  async detachImage(id: ImageId): Promise<DetachReport> {
    return this.gate.shared(async () => {
      if (!(await this.meta.getImage(id))) throw notFound('Image not found');
      // The image and its descendants: images whose ancestry contains it.
      const doomed = new Set<ImageId>([id]);
      for await (const record of this.meta.listImages()) {
        if (record.id === id) continue;
        const ancestry = (await this.meta.getAncestry(record.id)) ?? [];
        if (ancestry.includes(id)) doomed.add(record.id);
      }
      const byRepo = new Map<string, { name: RepoName; ids: ImageId[] }>();
      for (const image of doomed) {
        for (const name of await this.meta.reposOfImage(image)) {
          for (const [tag, record] of await this.meta.listTags(name)) {
            if (record.imageId && doomed.has(record.imageId)) {
              throw new RegistryError('IN_USE', `Image is in use by ${name.full}:${tag}; delete that tag first`);
            }
          }
          const entry = byRepo.get(name.full) ?? { name, ids: [] };
          entry.ids.push(image);
          byRepo.set(name.full, entry);
        }
      }
      for (const { name, ids } of byRepo.values()) await this.meta.unlinkRepoImages(name, ids);
      return { detached: [...doomed].sort(), repositories: [...byRepo.keys()].sort() };
    });
  }
}
