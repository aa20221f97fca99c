/**
 * Random access to a tar file on disk: one pass over the headers only (entry data is
 * skipped with seeks, never read), giving each entry's name, type, link target and the
 * offset and size of its data. Header parsing (ustar prefix, GNU long names, PAX records,
 * base-256 numbers) is the domain TarParser's: each header, with the metadata records
 * before it, is fed to a fresh parser that reports the merged header.
 *
 * Paths are normalised (`./a//b` → `a/b`); symlinks and hardlinks are followed by
 * `resolve()` (skopeo writes `<id>/layer.tar` as a symlink to `../<digest>.tar`, and docker
 * links layers shared between images). A later entry with the same name replaces an
 * earlier one, as extraction would.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { TarParser, type TarHeader } from '../domain/tar-parser.js';

const BLOCK = 512;
const META = new Set(['x', 'g', 'L', 'K']);
const HEADER_ONLY = new Set(['1', '2', '3', '4', '5', '6']);
const MAX_META = 1024 * 1024;

export interface IndexedEntry {
  name: string;
  /** Typeflag: '0' file, '1' hardlink, '2' symlink, '5' directory, … */
  type: string;
  linkname: string;
  /** Offset of the entry's data in the file. */
  offset: number;
  size: number;
}

export class TarFormatError extends Error {
  override name = 'TarFormatError';
}

export function normalizePath(name: string): string {
  const n = path.posix.normalize(name.replace(/^\/+/, ''));
  return n === '.' ? '' : n.replace(/^\.\//, '').replace(/\/+$/, '');
}

function pad(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function rawSize(block: Buffer): number {
  if (block[124] & 0x80) {
    let v = block[124] & 0x7f;
    for (let i = 125; i < 136; i++) v = v * 256 + block[i];
    return v;
  }
  const text = block.toString('latin1', 124, 136).replace(/[\0 ]+$/g, '').trim();
  if (!/^[0-7]*$/.test(text)) throw new TarFormatError('not a tar archive (bad size field)');
  return text ? parseInt(text, 8) : 0;
}

export class TarIndex {
  private constructor(
    readonly file: string,
    readonly fileSize: number,
    private readonly entries: Map<string, IndexedEntry>,
  ) {}

  static async open(file: string): Promise<TarIndex> {
    const handle = await fs.open(file, 'r');
    try {
      const { size: fileSize } = await handle.stat();
      const entries = new Map<string, IndexedEntry>();
      const read = async (pos: number, len: number): Promise<Buffer> => {
        const buf = Buffer.alloc(len);
        const { bytesRead } = await handle.read(buf, 0, len, pos);
        return buf.subarray(0, bytesRead);
      };
      let pos = 0;
      let pendingMeta: Buffer[] = [];
      const globals: Buffer[] = [];
      for (;;) {
        const block = await read(pos, BLOCK);
        if (block.length === 0) break; // end of file without end blocks: tolerated
        if (block.length < BLOCK) throw new TarFormatError('not a tar archive (truncated header)');
        if (block.every((x) => x === 0)) break;
        const type = String.fromCharCode(block[156]);
        if (META.has(type)) {
          const size = rawSize(block);
          if (size > MAX_META) throw new TarFormatError('tar metadata record too large');
          const data = await read(pos + BLOCK, size + pad(size));
          if (data.length < size + pad(size)) throw new TarFormatError('not a complete tar archive');
          (type === 'g' ? globals : pendingMeta).push(block, data);
          pos += BLOCK + size + pad(size);
          continue;
        }
        let captured: TarHeader | null = null;
        const parser = new TarParser({ header: (h) => (captured = h), data: () => undefined, entryEnd: () => undefined });
        try {
          for (const b of [...globals, ...pendingMeta, block]) parser.write(b);
        } catch (err) {
          throw new TarFormatError((err as Error).message.replace(/^Layer is/, 'not a tar archive:').replace(/^not a tar archive: not a tar archive/, 'not a tar archive'));
        }
        pendingMeta = [];
        const h = captured as TarHeader | null;
        if (!h) throw new TarFormatError('not a tar archive');
        const dataSize = HEADER_ONLY.has(h.typeflag) ? 0 : h.size;
        if (pos + BLOCK + dataSize > fileSize) throw new TarFormatError(`not a complete tar archive (${h.name} is cut short)`);
        const name = normalizePath(h.name);
        if (name) entries.set(name, { name, type: h.typeflag, linkname: h.linkname, offset: pos + BLOCK, size: dataSize });
        pos += BLOCK + dataSize + pad(dataSize);
      }
      return new TarIndex(file, fileSize, entries);
    } finally {
      await handle.close();
    }
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.resolve(name) !== null;
  }

  /** The regular file `name` refers to, following links; null if there is none. */
  resolve(name: string): IndexedEntry | null {
    let current = normalizePath(name);
    for (let depth = 0; depth < 32; depth++) {
      const entry = this.entries.get(current);
      if (!entry) return null;
      if (entry.type === '2') {
        current = entry.linkname.startsWith('/')
          ? normalizePath(entry.linkname)
          : normalizePath(path.posix.join(path.posix.dirname(current), entry.linkname));
        continue;
      }
      if (entry.type === '1') {
        current = normalizePath(entry.linkname);
        continue;
      }
      return entry.type === '0' || entry.type === '7' ? entry : null;
    }
    throw new TarFormatError(`${name}: too many levels of links`);
  }

  /** Reads a small member whole (metadata: manifests, configs, image JSON). */
  async readSmall(name: string, limit = 64 * 1024 * 1024): Promise<Buffer> {
    const entry = this.resolve(name);
    if (!entry) throw new TarFormatError(`${name} is not in the archive`);
    if (entry.size > limit) throw new TarFormatError(`${name} is too large (${entry.size} bytes)`);
    return this.readRange(entry.offset, entry.size);
  }

  async readRange(offset: number, length: number): Promise<Buffer> {
    const handle = await fs.open(this.file, 'r');
    try {
      const buf = Buffer.alloc(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) throw new TarFormatError('archive ended early');
        done += bytesRead;
      }
      return buf;
    } finally {
      await handle.close();
    }
  }
}
