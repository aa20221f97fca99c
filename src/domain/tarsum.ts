/**
 * TarSum, the content checksum docker clients before 1.x (and 1.x in X-Docker-Checksum)
 * sent for a layer: for every tar entry, sha256(selected header fields + entry data);
 * the hex sums sorted; then sha256(image json + all sums) → `tarsum+sha256:<hex>`.
 * Version0 (`tarsum+sha256`) selects name, mode, uid, gid, size, mtime, typeflag,
 * linkname, uname, gname, devmajor, devminor; Version1 (`tarsum.v1+sha256`) drops mtime
 * and appends the entry's xattrs sorted by key. Gzip-compressed layers are inflated first.
 *
 * Streaming: write() returns when the chunk has been consumed, so a slow inflate slows the
 * upload instead of piling data up in memory.
 */
import { createHash, type Hash } from 'node:crypto';
import { createGunzip, type Gunzip } from 'node:zlib';
import { TarParser, type TarHeader } from './tar-parser.js';

export type TarsumVersion = 'tarsum' | 'tarsum.v1';

export function tarsumVersionOf(checksum: string): TarsumVersion | null {
  const prefix = checksum.slice(0, checksum.indexOf('+'));
  return prefix === 'tarsum' || prefix === 'tarsum.v1' ? prefix : null;
}

/**
 * The selected header fields as a binary string (one char per byte: the parser's text
 * fields are raw bytes). Directories are named with a trailing '/', as the reference
 * (docker-registry's checksums.py) re-adds the slash Python's tarfile strips.
 */
function headerString(h: TarHeader, version: TarsumVersion): string {
  const name = h.typeflag === '5' && !h.name.endsWith('/') ? `${h.name}/` : h.name;
  const fields: Array<[string, string | number]> = [
    ['name', name],
    ['mode', h.mode],
    ['uid', h.uid],
    ['gid', h.gid],
    ['size', h.size],
  ];
  if (version === 'tarsum') fields.push(['mtime', h.mtime]);
  fields.push(
    ['typeflag', h.typeflag],
    ['linkname', h.linkname],
    ['uname', h.uname],
    ['gname', h.gname],
    ['devmajor', h.devmajor],
    ['devminor', h.devminor],
  );
  if (version === 'tarsum.v1') {
    for (const key of Object.keys(h.xattrs).sort()) fields.push([key, h.xattrs[key]]);
  }
  return fields.map(([k, v]) => `${k}${v}`).join('');
}

export class TarsumStream {
  private readonly sums: string[] = [];
  private current: Hash | null = null;
  private readonly parser: TarParser;
  private gunzip: Gunzip | null = null;
  private decided = false;
  private head: Buffer = Buffer.alloc(0);
  private failure: Error | null = null;

  constructor(
    private readonly version: TarsumVersion,
    private readonly extra: Buffer,
  ) {
    this.parser = new TarParser({
      header: (h) => {
        this.current = createHash('sha256').update(headerString(h, this.version), 'latin1');
      },
      data: (chunk) => this.current?.update(chunk),
      entryEnd: () => {
        if (this.current) this.sums.push(this.current.digest('hex'));
        this.current = null;
      },
    });
  }

  /** Feeds layer bytes (compressed or not). Never rejects: a bad archive shows in digest(). */
  async write(chunk: Buffer): Promise<void> {
    if (this.failure) return;
    if (!this.decided) {
      this.head = Buffer.concat([this.head, chunk]);
      if (this.head.length < 2) return;
      chunk = this.head;
      this.head = Buffer.alloc(0);
      this.decide(chunk);
    }
    await this.push(chunk);
  }

  /** The tarsum, or null when the layer was not a readable (optionally gzipped) tar. */
  async digest(): Promise<string | null> {
    if (!this.decided) {
      const rest = this.head;
      this.head = Buffer.alloc(0);
      this.decide(rest);
      await this.push(rest);
    }
    if (this.gunzip && !this.failure) {
      const gz = this.gunzip;
      await settled(gz, (done) => {
        gz.once('end', done);
        gz.end();
      });
    }
    if (!this.failure) {
      try {
        this.parser.end();
      } catch (err) {
        this.failure = err as Error;
      }
    }
    if (this.failure) {
      this.gunzip?.destroy();
      return null;
    }
    const h = createHash('sha256').update(this.extra);
    for (const sum of [...this.sums].sort()) h.update(sum, 'latin1');
    return `${this.version}+sha256:${h.digest('hex')}`;
  }

  private async push(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    const gz = this.gunzip;
    if (!gz) {
      this.feed(chunk);
      return;
    }
    if (gz.destroyed) return;
    // A zlib error destroys the stream without calling the pending write callback, so
    // the write also ends on 'error' / 'close' (corrupt gzip used to hang the upload).
    await settled(gz, (done) => gz.write(chunk, () => done()));
  }

  private decide(first: Buffer): void {
    this.decided = true;
    if (first.length >= 2 && first[0] === 0x1f && first[1] === 0x8b) {
      const gz = createGunzip();
      gz.on('data', (out: Buffer) => this.feed(out));
      gz.on('error', (err) => {
        this.failure ??= err;
      });
      this.gunzip = gz;
    }
  }

  private feed(chunk: Buffer): void {
    if (this.failure) return;
    try {
      this.parser.write(chunk);
    } catch (err) {
      this.failure = err as Error;
    }
  }
}

/** Resolves when `start`'s callback runs, or when the stream errors or closes. */
function settled(stream: Gunzip, start: (done: () => void) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      stream.off('error', done);
      stream.off('close', done);
      resolve();
    };
    stream.once('error', done);
    stream.once('close', done);
    start(done);
  });
}
