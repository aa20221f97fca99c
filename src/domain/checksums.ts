/**
 * Checksums of the v1 protocol, and the pass that computes them while a layer streams
 * (next to the blob digest, `sha256:` + sha256(layer bytes), which blob ingest computes):
 *
 * - the payload checksum: `sha256:` + sha256(json bytes + "\n" + layer bytes), sent by
 *   docker ≥ 0.10 in `X-Docker-Checksum-Payload`;
 * - optionally a tarsum (see tarsum.ts), when the client announced one.
 */
import { createHash, type Hash } from 'node:crypto';
import { invalidInput } from './errors.js';
import { TarsumStream, tarsumVersionOf } from './tarsum.js';

const SHA256 = /^sha256:[a-f0-9]{64}$/;
const TARSUM = /^tarsum(\.v1)?\+sha256:[a-f0-9]{64}$/;

/** Validates a checksum header value we can verify: `sha256:<hex>` or a tarsum. */
export function parseChecksum(value: string, header: string): string {
  const v = value.trim();
  if (SHA256.test(v) || TARSUM.test(v)) return v;
  throw invalidInput(`Invalid ${header}: expected sha256:<64 hex> or tarsum[.v1]+sha256:<64 hex>`);
}

export function isTarsum(checksum: string): boolean {
  return TARSUM.test(checksum);
}

export interface LayerDigests {
  payloadChecksum: string;
  tarsum: string | null;
}

/** Feeds every layer chunk to the v1 checksums (payload, tarsum) as it streams by. */
export class LayerDigester {
  private readonly payload: Hash;
  private readonly tarsum: TarsumStream | null;

  /** `claimed` is the X-Docker-Checksum announced with the json, if any. */
  constructor(json: Buffer, claimed: string | null) {
    this.payload = createHash('sha256').update(json).update('\n');
    const version = claimed ? tarsumVersionOf(claimed) : null;
    this.tarsum = version ? new TarsumStream(version, json) : null;
  }

  /** Returns a promise only when a tarsum is being computed (it may apply backpressure). */
  update(chunk: Buffer): Promise<void> | undefined {
    this.payload.update(chunk);
    return this.tarsum?.write(chunk);
  }

  async result(): Promise<LayerDigests> {
    return {
      payloadChecksum: `sha256:${this.payload.digest('hex')}`,
      tarsum: this.tarsum ? await this.tarsum.digest() : null,
    };
  }
}

/** True when `claimed` (sha256 payload or tarsum) matches what the layer produced. */
export function checksumMatches(claimed: string, got: { payloadChecksum: string | null; tarsum: string | null }): boolean {
  return claimed === got.payloadChecksum || (got.tarsum !== null && claimed === got.tarsum);
}

export function assertNonEmptyChecksum(value: string | undefined): void {
  if (value !== undefined && value.trim() === '') throw invalidInput("Missing Image's checksum");
}
