/** Image ancestry as GC and fsck see it: following parent links from a set of roots. */
import type { ImageId } from './names.js';

/**
 * The roots and every ancestor reachable through `parentOf`. Walks parent links rather
 * than stored ancestry lists: cheaper, and right even when a stored list is damaged.
 */
export function withAncestors(roots: Iterable<ImageId>, parentOf: (id: ImageId) => ImageId | null | undefined): Set<ImageId> {
  const live = new Set<ImageId>();
  for (const root of roots) {
    let id: ImageId | null | undefined = root;
    while (id && !live.has(id)) {
      live.add(id);
      id = parentOf(id);
    }
  }
  return live;
}
