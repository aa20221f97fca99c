/**
 * v1 image ids and image JSON for images that only have a config and a layer chain (the
 * current `docker save` layout, OCI layouts), derived exactly as docker ≥ 1.10 did when it
 * pushed to a v1 registry (moby `distribution/push_v1.go`):
 *
 *   diff_i   = config.rootfs.diff_ids[i]          ("sha256:<hex>" of the uncompressed layer)
 *   chain_0  = diff_0
 *   chain_i  = "sha256:" + sha256(chain_{i-1} + " " + diff_i)      (the layer ChainID)
 *   id_i     = hex(chain_i)                        for every layer below the top one
 *   id_top   = hex(sha256(config bytes))           the docker image ID
 *   parent   = id_{i-1}
 *
 * Pushing the same image again gives the same ids; images sharing base layers share their
 * parent images on the registry.
 *
 * JSON of a layer below the top: `{"id", "parent"}` as docker sent, plus `created` and
 * `container_config.Cmd = [created_by]` from the config's history entry for that layer
 * (the non-empty-layer entries, in order), so `history` has something to show.
 *
 * JSON of the top image: the config bytes themselves with `"id"` and `"parent"` spliced in
 * front: `{"id":"<id>","parent":"<parent>",` + config bytes after their opening `{`. The
 * registry keeps JSON byte-exact, so a pull gets the config back byte for byte: strip that
 * prefix, and the result hashes to the top id (that check is how `recoverConfig` knows).
 * Docker's MakeV1ConfigFromConfig also sent the config with id/parent set, minus rootfs
 * and history; keeping them is what makes the round trip exact. A config that itself has
 * a top-level `id` or `parent` key (the classic builder's local parent) cannot be spliced:
 * then the JSON is `{"id", "parent", …config without id/parent}` re-serialised, and a pull
 * rebuilds a config (same content, new digest).
 */
import { createHash } from 'node:crypto';

const DIGEST = /^sha256:[a-f0-9]{64}$/;

export interface DerivedImage {
  id: string;
  parent: string | null;
  json: Buffer;
  diffId: string;
}

function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    out.push(out.length === 0 ? d : `sha256:${sha256Hex(`${out[out.length - 1]} ${d}`)}`);
  }
  return out;
}

interface HistoryEntry {
  created?: unknown;
  created_by?: unknown;
  author?: unknown;
  comment?: unknown;
  empty_layer?: unknown;
}

export interface ImageConfig {
  rootfs?: { type?: unknown; diff_ids?: unknown };
  history?: unknown;
  [key: string]: unknown;
}

export function parseConfig(bytes: Buffer): ImageConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new Error('the image config is not valid JSON');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('the image config is not a JSON object');
  return doc as ImageConfig;
}

export function diffIdsOf(config: ImageConfig): string[] {
  const ids = config.rootfs?.diff_ids;
  if (!Array.isArray(ids) || !ids.every((d) => typeof d === 'string' && DIGEST.test(d))) {
    throw new Error('the image config has no valid rootfs.diff_ids (sha256 digests)');
  }
  return ids as string[];
}

/** The history entries of layers that exist (empty_layer entries dropped), in order. */
function layerHistory(config: ImageConfig): HistoryEntry[] {
  if (!Array.isArray(config.history)) return [];
  return (config.history as HistoryEntry[]).filter((h) => h && typeof h === 'object' && h.empty_layer !== true);
}

function topJson(configBytes: Buffer, config: ImageConfig, id: string, parent: string | null): Buffer {
  const head = `{"id":${JSON.stringify(id)}${parent ? `,"parent":${JSON.stringify(parent)}` : ''}`;
  const spliceable = configBytes[0] === 0x7b && !('id' in config) && !('parent' in config) && /^\s*"/.test(configBytes.subarray(1, 64).toString('utf8'));
  if (spliceable) return Buffer.concat([Buffer.from(head + ','), configBytes.subarray(1)]);
  const rest = Object.fromEntries(Object.entries(config).filter(([k]) => k !== 'id' && k !== 'parent'));
  return Buffer.from(JSON.stringify({ id, ...(parent ? { parent } : {}), ...rest }));
}

/** The v1 images of one image, base first. */
export function deriveV1Images(configBytes: Buffer): { images: DerivedImage[]; config: ImageConfig; configDigest: string } {
  const config = parseConfig(configBytes);
  const diffIds = diffIdsOf(config);
  if (diffIds.length === 0) throw new Error('the image has no layers: a v1 registry cannot hold it');
  const chains = chainIds(diffIds);
  const history = layerHistory(config);
  const configDigest = `sha256:${sha256Hex(configBytes)}`;
  const images: DerivedImage[] = [];
  let parent: string | null = null;
  for (let i = 0; i < diffIds.length; i++) {
    const top = i === diffIds.length - 1;
    const id = top ? configDigest.slice('sha256:'.length) : chains[i].slice('sha256:'.length);
    let json: Buffer;
    if (top) {
      json = topJson(configBytes, config, id, parent);
    } else {
      const h = history[i];
      const doc: Record<string, unknown> = { id };
      if (parent) doc.parent = parent;
      if (h && typeof h.created === 'string') doc.created = h.created;
      if (h && typeof h.created_by === 'string') doc.container_config = { Cmd: [h.created_by] };
      if (h && typeof h.author === 'string') doc.author = h.author;
      if (h && typeof h.comment === 'string') doc.comment = h.comment;
      json = Buffer.from(JSON.stringify(doc));
    }
    images.push({ id, parent, json, diffId: diffIds[i] });
    parent = id;
  }
  return { images, config, configDigest };
}

/** Keys of v1 image JSON that an image config does not have. */
const V1_ONLY = new Set(['id', 'parent', 'Size', 'checksum', 'parent_id', 'layer_id', 'throwaway']);

export interface PulledMeta {
  id: string;
  /** The image JSON as the registry served it (byte-exact). */
  json: Buffer;
}

function createdBy(doc: Record<string, unknown>): string | undefined {
  const cmd = (doc.container_config as { Cmd?: unknown } | undefined)?.Cmd;
  if (Array.isArray(cmd) && cmd.every((c) => typeof c === 'string')) return cmd.join(' ');
  return undefined;
}

/**
 * The image config for a pulled chain (base first) whose uncompressed layer digests are
 * `diffIds`: the original config bytes when the top JSON carries them (see above and the
 * sha256 check), else a config rebuilt from the v1 JSON: the top JSON without the v1-only
 * keys, `architecture`/`os` defaulted to amd64/linux, `rootfs` from the computed diff ids,
 * `history` kept if it matches the layers, else made from each layer's created and
 * container_config.Cmd.
 */
export function recoverConfig(chain: PulledMeta[], diffIds: string[]): { bytes: Buffer; exact: boolean } {
  const top = chain[chain.length - 1];
  const parentId = chain.length > 1 ? chain[chain.length - 2].id : null;
  const head = Buffer.from(`{"id":${JSON.stringify(top.id)}${parentId ? `,"parent":${JSON.stringify(parentId)}` : ''},`);
  if (top.json.length > head.length && top.json.subarray(0, head.length).equals(head)) {
    const candidate = Buffer.concat([Buffer.from('{'), top.json.subarray(head.length)]);
    if (sha256Hex(candidate) === top.id) {
      try {
        const cfg = parseConfig(candidate);
        const ids = diffIdsOf(cfg);
        if (ids.length === diffIds.length && ids.every((d, i) => d === diffIds[i])) return { bytes: candidate, exact: true };
      } catch {
        // not a usable config: rebuild below
      }
    }
  }
  const docs = chain.map((m) => JSON.parse(m.json.toString('utf8')) as Record<string, unknown>);
  const topDoc = docs[docs.length - 1];
  const config: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(topDoc)) if (!V1_ONLY.has(k)) config[k] = v;
  if (typeof config.architecture !== 'string' || !config.architecture) config.architecture = 'amd64';
  if (typeof config.os !== 'string' || !config.os) config.os = 'linux';
  config.rootfs = { type: 'layers', diff_ids: diffIds };
  const keptHistory = Array.isArray(config.history) ? (config.history as HistoryEntry[]).filter((h) => h && h.empty_layer !== true).length === diffIds.length : false;
  if (!keptHistory) {
    config.history = docs.map((doc) => {
      const h: Record<string, unknown> = {};
      if (typeof doc.created === 'string') h.created = doc.created;
      if (typeof doc.author === 'string') h.author = doc.author;
      const by = createdBy(doc);
      if (by !== undefined) h.created_by = by;
      if (typeof doc.comment === 'string') h.comment = doc.comment;
      return h;
    });
  }
  return { bytes: Buffer.from(JSON.stringify(config)), exact: false };
}
