/**
 * Content digests (OCI image-spec "descriptor.md#digests"): `algorithm:encoded`. Blobs and
 * manifests are stored by sha256 only; a well-formed digest of another algorithm is known
 * to be absent (never stored), a malformed one is DIGEST_INVALID.
 */
import { createHash } from 'node:crypto';
import { RegistryError } from './errors.js';

export type Digest = string & { readonly __brand: 'Digest' };

const SHA256 = /^sha256:[a-f0-9]{64}$/;
/** The spec's general grammar: algorithm (components joined by + . _ -) ":" encoded. */
const ANY = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export function isSha256Digest(value: unknown): value is Digest {
  return typeof value === 'string' && SHA256.test(value);
}

/** A `sha256:<64 hex>` digest; DIGEST_INVALID for anything else (other algorithms included). */
export function parseDigest(value: unknown): Digest {
  if (isSha256Digest(value)) return value;
  if (typeof value === 'string' && ANY.test(value) && value.length <= 200 && !value.startsWith('sha256:')) {
    throw new RegistryError('UNSUPPORTED', `Unsupported digest algorithm: ${value.slice(0, value.indexOf(':'))} (only sha256)`);
  }
  throw new RegistryError('DIGEST_INVALID', `Invalid digest: ${JSON.stringify(String(value).slice(0, 80))}`);
}

/** Is it a digest by the general grammar (whatever the algorithm)? */
export function looksLikeDigest(value: string): boolean {
  return value.length <= 200 && ANY.test(value);
}

export function sha256Of(bytes: Buffer | string): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
}
