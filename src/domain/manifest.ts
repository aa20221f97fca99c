/**
 * Manifests of the Registry API v2: Docker schema 2 (image manifest and manifest list) and
 * OCI 1.1 (image manifest and image index). Parsing here only reads and validates the
 * structure; the bytes themselves are what the registry stores and serves, untouched.
 */
import { RegistryError } from './errors.js';
import { isSha256Digest, looksLikeDigest, type Digest } from './digest.js';

export const MEDIA = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerTar: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  ociLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  schema1: 'application/vnd.docker.distribution.manifest.v1+json',
  schema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

export const MANIFEST_TYPES: ReadonlySet<string> = new Set([MEDIA.dockerManifest, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.ociIndex]);
const INDEX_TYPES: ReadonlySet<string> = new Set([MEDIA.dockerList, MEDIA.ociIndex]);

/** Layers a registry does not hold (their bytes come from `urls`): never checked for existence. */
const FOREIGN_LAYER = /^application\/vnd\.(docker\.image\.rootfs\.foreign\.diff\.tar\.gzip|oci\.image\.layer\.nondistributable\.v1\.tar(\+gzip|\+zstd)?)$/;

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: Platform;
  urls?: string[];
}

export interface ParsedManifest {
  mediaType: string;
  kind: 'image' | 'index';
  /** Image manifests: the config. */
  config: Descriptor | null;
  /** Image manifests: the layers (may be empty for artifacts). */
  layers: Descriptor[];
  /** Indexes: the child manifests. */
  manifests: Descriptor[];
  subject: Descriptor | null;
  /** What the referrers API lists: `artifactType`, else (image manifests) the config's media type. */
  artifactType: string | null;
  annotations: Record<string, string> | null;
}

export function isIndexType(mediaType: string): boolean {
  return INDEX_TYPES.has(mediaType);
}

/** A layer whose bytes live elsewhere (`urls`): the registry need not have it. */
export function isForeignLayer(d: Descriptor): boolean {
  return FOREIGN_LAYER.test(d.mediaType);
}

/** The media type without parameters, lower-cased (RFC 9110: parameters are ignored). */
export function bareMediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0].trim().toLowerCase();
}

function invalid(message: string): RegistryError {
  return new RegistryError('MANIFEST_INVALID', message);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function stringMap(v: unknown, what: string): Record<string, string> | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v) || !Object.values(v).every((x) => typeof x === 'string')) throw invalid(`${what} must map strings to strings`);
  return v as Record<string, string>;
}

const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

function descriptor(v: unknown, what: string): Descriptor {
  if (!isObject(v)) throw invalid(`${what} is not a descriptor object`);
  const { mediaType, digest, size } = v;
  if (typeof mediaType !== 'string' || !MEDIA_TYPE.test(mediaType)) throw invalid(`${what}: invalid mediaType`);
  if (typeof digest !== 'string' || !looksLikeDigest(digest)) throw invalid(`${what}: invalid digest`);
  if (!isSha256Digest(digest)) throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `${what}: ${digest} is not stored here (only sha256 digests)`, { digest });
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(`${what}: invalid size`);
  const out: Descriptor = { mediaType, digest, size };
  if (v.artifactType !== undefined) {
    if (typeof v.artifactType !== 'string' || !MEDIA_TYPE.test(v.artifactType)) throw invalid(`${what}: invalid artifactType`);
    out.artifactType = v.artifactType;
  }
  const annotations = stringMap(v.annotations, `${what}.annotations`);
  if (annotations) out.annotations = annotations;
  if (v.urls !== undefined) {
    if (!Array.isArray(v.urls) || !v.urls.every((u) => typeof u === 'string')) throw invalid(`${what}.urls must be a list of strings`);
    out.urls = v.urls as string[];
  }
  if (v.platform !== undefined) {
    const p = v.platform;
    if (!isObject(p) || typeof p.architecture !== 'string' || typeof p.os !== 'string') throw invalid(`${what}.platform needs architecture and os`);
    out.platform = { architecture: p.architecture, os: p.os, ...(typeof p.variant === 'string' ? { variant: p.variant } : {}) };
  }
  return out;
}

/**
 * Parses and validates a manifest. `contentType` is the request's Content-Type (parameters
 * ignored); when it names a manifest type, a `mediaType` field must agree with it; when it
 * does not (absent, application/json…), the field decides, else the structure (an OCI
 * manifest may leave `mediaType` out). Throws MANIFEST_INVALID, or UNSUPPORTED for schema 1.
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw invalid('Manifest is not valid UTF-8 JSON');
  }
  if (!isObject(doc)) throw invalid('Manifest is not a JSON object');
  const header = bareMediaType(contentType);
  const field = doc.mediaType;
  if (field !== undefined && typeof field !== 'string') throw invalid('mediaType must be a string');
  if (header === MEDIA.schema1 || header === MEDIA.schema1Signed || doc.schemaVersion === 1) {
    throw new RegistryError('UNSUPPORTED', 'Docker schema 1 manifests are not supported: push with a client from this decade (schema 2 or OCI)');
  }
  if (doc.schemaVersion !== 2) throw invalid('schemaVersion must be 2');
  let mediaType: string;
  if (MANIFEST_TYPES.has(header)) {
    if (field !== undefined && field !== header) throw invalid(`mediaType ${JSON.stringify(field)} does not match Content-Type ${header}`);
    mediaType = header;
  } else if (typeof field === 'string') {
    if (!MANIFEST_TYPES.has(field)) throw invalid(`Unsupported manifest mediaType ${JSON.stringify(field).slice(0, 100)}`);
    mediaType = field;
  } else if (Array.isArray(doc.manifests)) {
    mediaType = MEDIA.ociIndex;
  } else if (isObject(doc.config)) {
    mediaType = MEDIA.ociManifest;
  } else {
    throw invalid('Cannot tell the manifest type: send its Content-Type or a mediaType field');
  }
  const annotations = stringMap(doc.annotations, 'annotations') ?? null;
  const subject = doc.subject === undefined ? null : descriptor(doc.subject, 'subject');
  if (doc.artifactType !== undefined && (typeof doc.artifactType !== 'string' || !MEDIA_TYPE.test(doc.artifactType))) throw invalid('invalid artifactType');
  const artifactType = typeof doc.artifactType === 'string' ? doc.artifactType : null;

  if (isIndexType(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw invalid('An index needs a "manifests" list');
    const manifests = doc.manifests.map((m, i) => descriptor(m, `manifests[${i}]`));
    return { mediaType, kind: 'index', config: null, layers: [], manifests, subject, artifactType, annotations };
  }
  if (doc.manifests !== undefined) throw invalid('An image manifest has no "manifests" list');
  const config = descriptor(doc.config, 'config');
  if (doc.layers === undefined && mediaType === MEDIA.ociManifest) {
    throw invalid('An image manifest needs a "layers" list');
  }
  if (!Array.isArray(doc.layers)) throw invalid('An image manifest needs a "layers" list');
  const layers = doc.layers.map((l, i) => descriptor(l, `layers[${i}]`));
  return { mediaType, kind: 'image', config, layers, manifests: [], subject, artifactType: artifactType ?? config.mediaType, annotations };
}

/**
 * The entry of an index a client without index support gets: linux/amd64, as Docker
 * Distribution picks it (null when the index has none).
 */
export function defaultPlatformEntry(index: ParsedManifest): Descriptor | null {
  return index.manifests.find((m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64') ?? null;
}

/** Does an `Accept` header (a list of media ranges) take `mediaType`? No header: yes. */
export function accepts(accept: string | undefined, mediaType: string): boolean {
  if (!accept || accept.trim() === '') return true;
  for (const part of accept.split(',')) {
    const range = bareMediaType(part);
    if (range === mediaType || range === '*/*' || (range.endsWith('/*') && mediaType.startsWith(range.slice(0, -1)))) return true;
  }
  return false;
}
