/**
 * The web UI's static files (src/http/ui/static/, copied next to the compiled code by
 * `npm run build`), read once at start-up and served from memory under /-/static/:
 *
 * - `/-/static/<name>.<hash>.<ext>` (the names pages link to; the hash is the first 10 hex
 *   digits of the file's sha256): cached for a year, immutable: a changed file gets a new name;
 * - `/-/static/<name>.<ext>`: the same bytes, revalidated on every use (no-cache).
 *
 * Both carry a strong ETag (the full sha256) and answer If-None-Match with 304, and the
 * Content-Type of the extension (mime-types).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context } from 'koa';
import mime from 'mime-types';
import { IMMUTABLE, NO_CACHE, noneMatch } from '../shared/respond.js';

export const STATIC_PREFIX = '/-/static/';

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
  immutable: boolean;
}

export class StaticAssets {
  private readonly byName = new Map<string, Asset>();
  private readonly hashed = new Map<string, string>();

  constructor(dir: string = fileURLToPath(new URL('./static/', import.meta.url))) {
    for (const name of fs.readdirSync(dir).sort()) {
      const body = fs.readFileSync(path.join(dir, name));
      const digest = createHash('sha256').update(body).digest('hex');
      const ext = path.extname(name);
      const type = mime.contentType(ext) || 'application/octet-stream';
      const versioned = `${name.slice(0, -ext.length || undefined)}.${digest.slice(0, 10)}${ext}`;
      this.byName.set(name, { body, type, etag: `"${digest}"`, immutable: false });
      this.byName.set(versioned, { body, type, etag: `"${digest}"`, immutable: true });
      this.hashed.set(name, versioned);
    }
  }

  /** The long-cached URL of a file (its name carries its hash). */
  url(name: string): string {
    const versioned = this.hashed.get(name);
    if (!versioned) throw new Error(`no static file ${name}`);
    return STATIC_PREFIX + versioned;
  }

  /** Answers a GET or HEAD of `file`; false when there is no such file. */
  serve(ctx: Context, file: string): boolean {
    const asset = this.byName.get(file);
    if (!asset) return false;
    const res = ctx.res;
    res.setHeader('ETag', asset.etag);
    res.setHeader('Cache-Control', asset.immutable ? IMMUTABLE : NO_CACHE);
    if (noneMatch(ctx.get('If-None-Match'), asset.etag)) {
      ctx.status = 304;
      return true;
    }
    ctx.status = 200;
    res.setHeader('Content-Type', asset.type);
    ctx.body = asset.body;
    return true;
  }
}
