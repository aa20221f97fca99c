/**
 * A small Registry API v2 client for tests: blob uploads (POST + PUT), image pushes
 * (config + layers + manifest), the v2 error envelope.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { RawResponse } from './http-raw.js';

export { MEDIA } from '../../src/domain/manifest.js';
import { MEDIA } from '../../src/domain/manifest.js';

export function digestOf(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** The first error of a v2 error body: `{"errors": [{code, message, detail}]}`. */
export function v2Error(body: Buffer | string): { code: string; message: string; detail: unknown } {
  const parsed = JSON.parse(body.toString()) as { errors?: Array<{ code: string; message: string; detail: unknown }> };
  if (!Array.isArray(parsed.errors) || parsed.errors.length === 0) throw new Error(`not a v2 error body: ${body.toString()}`);
  return parsed.errors[0];
}

export async function v2ErrorOf(res: Response | RawResponse): Promise<{ status: number; code: string; message: string }> {
  const body = 'body' in res && Buffer.isBuffer(res.body) ? res.body : Buffer.from(await (res as Response).text());
  const { code, message } = v2Error(body);
  return { status: res.status, code, message };
}

export interface Auth {
  /** The Authorization header value. */
  authorization?: string;
}

function headers(auth: Auth | undefined, extra: Record<string, string> = {}): Record<string, string> {
  return { ...extra, ...(auth?.authorization ? { Authorization: auth.authorization } : {}) };
}

/** POST then PUT with the whole blob; asserts 201 and returns the digest. */
export async function pushBlob(base: string, name: string, bytes: Buffer, auth?: Auth): Promise<string> {
  const start = await fetch(`${base}/v2/${name}/blobs/uploads/`, { method: 'POST', headers: headers(auth) });
  assert.equal(start.status, 202, `POST uploads: ${await start.text()}`);
  const location = start.headers.get('location');
  assert.ok(location, 'POST uploads has a Location');
  const digest = digestOf(bytes);
  const url = new URL(location, base);
  url.searchParams.set('digest', digest);
  const done = await fetch(url, { method: 'PUT', body: bytes, headers: headers(auth, { 'Content-Type': 'application/octet-stream' }) });
  assert.equal(done.status, 201, `PUT upload: ${await done.text()}`);
  assert.equal(done.headers.get('docker-content-digest'), digest);
  return digest;
}

export interface TestImageV2 {
  config: Buffer;
  layers: Buffer[];
  manifest: Buffer;
  digest: string;
  mediaType: string;
}

/** An image config whose rootfs names `diffIds` (the layers' uncompressed digests). */
export function imageConfig(diffIds: string[], extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/sh'] },
      created: '2024-05-06T07:08:09Z',
      history: diffIds.map((_, i) => ({ created: '2024-05-06T07:08:09Z', created_by: `layer ${i}` })),
      rootfs: { type: 'layers', diff_ids: diffIds },
      ...extra,
    }),
  );
}

/**
 * A manifest for `config` and `layers` (uncompressed layers: diff_id = digest), as
 * `mediaType` (Docker schema 2 or OCI).
 */
export function imageManifest(config: Buffer, layers: Buffer[], mediaType: string = MEDIA.dockerManifest, extra: Record<string, unknown> = {}): Buffer {
  const oci = mediaType === MEDIA.ociManifest;
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: oci ? MEDIA.ociConfig : MEDIA.dockerConfig, size: config.length, digest: digestOf(config) },
      layers: layers.map((l) => ({ mediaType: oci ? 'application/vnd.oci.image.layer.v1.tar' : MEDIA.dockerLayerTar, size: l.length, digest: digestOf(l) })),
      ...extra,
    }),
  );
}

/** Uploads the blobs and puts the manifest under `reference`; asserts 201. */
export async function pushImageV2(base: string, name: string, reference: string, layers: Buffer[], options: { mediaType?: string; auth?: Auth; config?: Buffer } = {}): Promise<TestImageV2> {
  const mediaType = options.mediaType ?? MEDIA.dockerManifest;
  const config = options.config ?? imageConfig(layers.map(digestOf));
  for (const layer of layers) await pushBlob(base, name, layer, options.auth);
  await pushBlob(base, name, config, options.auth);
  const manifest = imageManifest(config, layers, mediaType);
  const res = await putManifest(base, name, reference, manifest, mediaType, options.auth);
  assert.equal(res.status, 201, `PUT manifest: ${await res.text()}`);
  return { config, layers, manifest, digest: digestOf(manifest), mediaType };
}

export function putManifest(base: string, name: string, reference: string, manifest: Buffer, mediaType: string, auth?: Auth): Promise<Response> {
  return fetch(`${base}/v2/${name}/manifests/${reference}`, { method: 'PUT', body: manifest, headers: headers(auth, { 'Content-Type': mediaType }) });
}
