/**
 * What each layer of a v1 image chain was made by, as `docker history` shows it: a layer's
 * `container_config.Cmd` (joined by spaces), its `created` time and `comment`; for images
 * pushed from a current image config (see the README's "Image ids"), the top JSON's config
 * `history` fills what the per-layer JSON lacks, entry by entry, when it has exactly one
 * entry per layer (entries with `empty_layer: true` skipped).
 */
export interface LayerHistory {
  created: string | null;
  createdBy: string;
  comment: string | null;
}

/** `docs`: the image JSON of each image of an ancestry, newest (the top) first. */
export function layerHistory(docs: ReadonlyArray<Record<string, unknown>>): LayerHistory[] {
  const rows = docs.map((doc): LayerHistory => {
    const cmd = (doc.container_config as { Cmd?: unknown } | undefined)?.Cmd;
    return {
      created: typeof doc.created === 'string' ? doc.created : null,
      createdBy: Array.isArray(cmd) ? cmd.filter((c) => typeof c === 'string').join(' ') : '',
      comment: typeof doc.comment === 'string' ? doc.comment : null,
    };
  });
  const top = docs[0];
  if (top && Array.isArray(top.history)) {
    const entries = (top.history as Array<Record<string, unknown> | null>).filter((h) => h && h.empty_layer !== true) as Array<Record<string, unknown>>;
    if (entries.length === rows.length) {
      const oldestFirst = [...rows].reverse();
      entries.forEach((h, i) => {
        if (!oldestFirst[i].createdBy && typeof h.created_by === 'string') oldestFirst[i].createdBy = h.created_by;
        if (!oldestFirst[i].created && typeof h.created === 'string') oldestFirst[i].created = h.created;
      });
    }
  }
  return rows;
}
