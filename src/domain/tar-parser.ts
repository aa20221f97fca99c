/**
 * A streaming tar reader: feed it bytes in any chunking, it reports each entry's header,
 * its data in pieces, and the end of the entry. It keeps at most one 512-byte header
 * and one bounded metadata record (PAX / GNU long names) in memory; entry data is never
 * buffered. Formats: v7, ustar (prefix), GNU (long names, base-256 numbers), PAX
 * (per-entry and global records, including SCHILY.xattr.*).
 *
 * Text fields (names, link names, user/group names, xattr keys and values) are "binary
 * strings": one character per byte (latin1), exactly the bytes the archive holds. Tar
 * names need not be UTF-8 and xattr values (security.capability) are binary; TarSum hashes
 * the raw bytes, as the Go and Python implementations do. `Buffer.from(s, 'latin1')` gives
 * the bytes back.
 */
import { invalidInput } from './errors.js';

export interface TarHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch, truncated to an integer. */
  mtime: number;
  /**
   * The typeflag character. The old v7 '\0' is normalised: '5' when the name ends in '/'
   * (a v7 directory, as Python's tarfile and Go's archive/tar read it), '0' otherwise.
   */
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  xattrs: Record<string, string>;
}

export interface TarVisitor {
  header(h: TarHeader): void;
  data(chunk: Buffer): void;
  entryEnd(): void;
}

const BLOCK = 512;
const MAX_META = 1024 * 1024;
/** Types whose size field says nothing about data blocks: no data follows them. */
const HEADER_ONLY = new Set(['1', '2', '3', '4', '5', '6']);

type State = 'header' | 'data' | 'meta' | 'pad' | 'done';

export class TarParser {
  private state: State = 'header';
  private readonly block = Buffer.alloc(BLOCK);
  private filled = 0;
  private remaining = 0;
  private padding = 0;
  private meta: Buffer | null = null;
  private metaFilled = 0;
  private metaType = '';
  private pending: Partial<TarHeader> = {};
  private global: Partial<TarHeader> = {};
  private zeroBlocks = 0;

  constructor(private readonly visitor: TarVisitor) {}

  write(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && this.state !== 'done') {
      const avail = chunk.length - off;
      switch (this.state) {
        case 'header': {
          const n = Math.min(BLOCK - this.filled, avail);
          chunk.copy(this.block, this.filled, off, off + n);
          this.filled += n;
          off += n;
          if (this.filled === BLOCK) {
            this.filled = 0;
            this.onHeaderBlock();
          }
          break;
        }
        case 'data': {
          const n = Math.min(this.remaining, avail);
          this.visitor.data(chunk.subarray(off, off + n));
          this.remaining -= n;
          off += n;
          if (this.remaining === 0) {
            this.visitor.entryEnd();
            this.afterBody();
          }
          break;
        }
        case 'meta': {
          const meta = this.meta as Buffer;
          const n = Math.min(meta.length - this.metaFilled, avail);
          chunk.copy(meta, this.metaFilled, off, off + n);
          this.metaFilled += n;
          off += n;
          if (this.metaFilled === meta.length) {
            this.applyMeta(meta);
            this.meta = null;
            this.afterBody();
          }
          break;
        }
        case 'pad': {
          const n = Math.min(this.padding, avail);
          this.padding -= n;
          off += n;
          if (this.padding === 0) this.state = 'header';
          break;
        }
      }
    }
  }

  /** Call at end of input: throws if the archive stopped inside an entry. */
  end(): void {
    if (this.state === 'done') return;
    if (this.state === 'header' && this.filled === 0) return; // clean end (with or without end blocks)
    if (this.state === 'pad') return; // tolerated: some writers drop the final padding
    throw invalidInput('Layer is not a complete tar archive');
  }

  private afterBody(): void {
    this.state = this.padding > 0 ? 'pad' : 'header';
  }

  private onHeaderBlock(): void {
    const b = this.block;
    if (b.every((x) => x === 0)) {
      this.zeroBlocks += 1;
      if (this.zeroBlocks >= 2) this.state = 'done';
      return;
    }
    // A zero block is the end of the archive only when a second one follows (Go's
    // archive/tar rejects a lone zero block followed by a header, and so do we).
    if (this.zeroBlocks > 0) throw invalidInput('Layer is not a tar archive (zero block inside the archive)');
    if (!checksumOk(b)) throw invalidInput('Layer is not a tar archive (bad header checksum)');

    const typeflag = String.fromCharCode(b[156]);
    const size = readNumber(b, 124, 12);
    const magic = b.toString('latin1', 257, 263);
    // POSIX ustar/PAX ("ustar\0") or old GNU ("ustar "): both carry uname/gname/devices.
    const isUstar = magic === 'ustar\0' || magic === 'ustar ';
    let name = readString(b, 0, 100);
    // Only POSIX ustar has a name prefix; GNU keeps atime/ctime at offset 345.
    if (magic === 'ustar\0') {
      const prefix = readString(b, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      if (size > MAX_META) throw invalidInput('Tar metadata record too large');
      this.metaType = typeflag;
      this.meta = Buffer.alloc(size);
      this.metaFilled = 0;
      this.padding = pad(size);
      if (size === 0) this.afterBody();
      else this.state = 'meta';
      return;
    }
    const header: TarHeader = {
      name,
      mode: readNumber(b, 100, 8),
      uid: readNumber(b, 108, 8),
      gid: readNumber(b, 116, 8),
      size,
      mtime: readNumber(b, 136, 12),
      typeflag,
      linkname: readString(b, 157, 100),
      uname: isUstar ? readString(b, 265, 32) : '',
      gname: isUstar ? readString(b, 297, 32) : '',
      devmajor: isUstar ? readNumber(b, 329, 8) : 0,
      devminor: isUstar ? readNumber(b, 337, 8) : 0,
      xattrs: {},
    };
    const merged: TarHeader = {
      ...header,
      ...this.global,
      ...this.pending,
      xattrs: { ...(this.global.xattrs ?? {}), ...(this.pending.xattrs ?? {}) },
    };
    this.pending = {};
    if (typeflag === '\0') merged.typeflag = merged.name.endsWith('/') ? '5' : '0';
    this.visitor.header(merged);
    const dataBytes = HEADER_ONLY.has(merged.typeflag) ? 0 : merged.size;
    this.remaining = dataBytes;
    this.padding = pad(dataBytes);
    if (dataBytes === 0) {
      this.visitor.entryEnd();
      this.afterBody();
    } else {
      this.state = 'data';
    }
  }

  private applyMeta(meta: Buffer): void {
    if (this.metaType === 'L') {
      this.pending.name = cString(meta);
    } else if (this.metaType === 'K') {
      this.pending.linkname = cString(meta);
    } else {
      applyPax(parsePax(meta), this.metaType === 'g' ? this.global : this.pending);
    }
  }
}

function pad(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function cString(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return buf.toString('latin1', 0, nul === -1 ? buf.length : nul);
}

function readString(b: Buffer, off: number, len: number): string {
  return cString(b.subarray(off, off + len));
}

function readNumber(b: Buffer, off: number, len: number): number {
  if (b[off] & 0x80) {
    // GNU base-256: big-endian two's complement with the top bit as a marker.
    let value = b[off] & 0x7f;
    for (let i = off + 1; i < off + len; i++) value = value * 256 + b[i];
    return value;
  }
  const text = b.toString('latin1', off, off + len).replace(/[\0 ]+$/g, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw invalidInput('Layer is not a tar archive (bad numeric field)');
  return parseInt(text, 8);
}

function checksumOk(b: Buffer): boolean {
  const stored = b.toString('latin1', 148, 156).replace(/[\0 ]+$/g, '').trim();
  if (!/^[0-7]+$/.test(stored)) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 32 : b[i];
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  const want = parseInt(stored, 8);
  return want === unsigned || want === signed;
}

function parsePax(buf: Buffer): Map<string, string> {
  const records = new Map<string, string>();
  let off = 0;
  // Records are "<len> <key>=<value>\n", <len> counting the whole record. As Go's
  // archive/tar does, a record that does not end where its length says is an error; only
  // NUL padding may follow the last record.
  while (off < buf.length) {
    if (buf[off] === 0 && buf.subarray(off).every((x) => x === 0)) break;
    const space = buf.indexOf(0x20, off);
    const digits = space === -1 ? '' : buf.toString('latin1', off, space);
    const len = /^[0-9]{1,9}$/.test(digits) ? parseInt(digits, 10) : NaN;
    if (!Number.isFinite(len) || off + len > buf.length || space + 1 >= off + len || buf[off + len - 1] !== 0x0a) {
      throw invalidInput('Layer is not a tar archive (bad PAX record)');
    }
    const record = buf.toString('latin1', space + 1, off + len - 1); // drop trailing \n
    const eq = record.indexOf('=');
    if (eq <= 0) throw invalidInput('Layer is not a tar archive (bad PAX record)');
    records.set(record.slice(0, eq), record.slice(eq + 1));
    off += len;
  }
  return records;
}

function applyPax(records: Map<string, string>, into: Partial<TarHeader>): void {
  for (const [key, value] of records) {
    switch (key) {
      case 'path': into.name = value; break;
      case 'linkpath': into.linkname = value; break;
      case 'uname': into.uname = value; break;
      case 'gname': into.gname = value; break;
      case 'uid': into.uid = paxNumber(value); break;
      case 'gid': into.gid = paxNumber(value); break;
      case 'size': into.size = paxNumber(value); break;
      case 'mtime': into.mtime = Math.floor(paxNumber(value)); break;
      default:
        if (key.startsWith('SCHILY.xattr.')) {
          into.xattrs = { ...(into.xattrs ?? {}), [key.slice('SCHILY.xattr.'.length)]: value };
        }
    }
  }
}

function paxNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw invalidInput('Layer is not a tar archive (bad PAX number)');
  return n;
}
