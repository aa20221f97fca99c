/**
 * What the one read of a layer proves before it is pushed (by `registry push`, and by the
 * test double's `seed.fromTarball`): its payload checksum, `sha256(json + "\n" + layer)`,
 * and, for current layouts, that its uncompressed bytes hash to the config's diff_id (gzip
 * layers are decompressed on the side). A mismatch must stop the push before `PUT
 * checksum`, so nothing broken ever becomes complete.
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import zlib from 'node:zlib';
import type { PlanImage } from './archive-read.js';
import { IntegrityError } from './errors.js';

export class LayerCheck {
  private readonly payload;
  private readonly diff;
  private readonly gunzip: zlib.Gunzip | null = null;
  private gzError: Error | null = null;
  private gzDone: Promise<void> | null = null;

  constructor(private readonly image: Pick<PlanImage, 'json' | 'diffId' | 'compression' | 'layer' | 'id'>) {
    this.payload = createHash('sha256').update(image.json).update('\n');
    this.diff = image.diffId ? createHash('sha256') : null;
    const diff = this.diff;
    if (diff && image.compression === 'gzip') {
      const gz = zlib.createGunzip();
      this.gunzip = gz;
      gz.on('data', (c: Buffer) => diff.update(c));
      this.gzDone = new Promise<void>((resolve) => {
        gz.once('end', resolve);
        gz.once('error', (err) => {
          this.gzError = err;
          resolve();
        });
      });
    }
  }

  /** A pass-through that checks every chunk going by; `onChunk` sees each one too (progress). */
  tap(onChunk?: (chunk: Buffer) => void): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        onChunk?.(chunk);
        this.update(chunk, () => cb(null, chunk));
      },
    });
  }

  /** Feeds one chunk; `next` runs once the check can take the next one (gunzip backpressure). */
  update(chunk: Buffer, next: () => void): void {
    this.payload.update(chunk);
    const gz = this.gunzip;
    if (!gz) {
      this.diff?.update(chunk);
      next();
      return;
    }
    if (this.gzError || gz.write(chunk)) {
      next();
      return;
    }
    const go = () => {
      gz.off('drain', go);
      gz.off('error', go);
      next();
    };
    gz.once('drain', go);
    gz.once('error', go);
  }

  /** After the last chunk: the payload checksum, or an IntegrityError if the layer is not the config's. */
  async finish(): Promise<string> {
    const { image, diff } = this;
    if (diff) {
      if (this.gunzip) {
        this.gunzip.end();
        await this.gzDone;
        if (this.gzError) throw new IntegrityError(`layer ${image.layer.path} is not valid gzip: ${this.gzError.message}`);
      }
      const got = `sha256:${diff.digest('hex')}`;
      if (got !== image.diffId) {
        throw new IntegrityError(
          `layer ${image.layer.path} does not match the image config: its content is ${got}, rootfs.diff_ids says ${image.diffId} (image ${image.id} left incomplete, not tagged)`,
        );
      }
    }
    return `sha256:${this.payload.digest('hex')}`;
  }
}
