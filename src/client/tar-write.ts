/**
 * A streaming tar writer (POSIX ustar, with PAX records for names over 100 bytes that
 * cannot be split into prefix/name and for sizes of 8 GiB and more). Entry data is written
 * in pieces as it arrives, honouring the destination's backpressure; nothing is buffered
 * beyond one header. Output is deterministic: uid/gid 0, mtime given (default 0).
 */
import type { Writable } from 'node:stream';

const BLOCK = 512;
const MAX_OCTAL_SIZE = 0o77777777777; // 11 octal digits

export interface EntryOptions {
  mode?: number;
  mtime?: number;
}

function pad(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return Buffer.from(`${len}${body}`);
}

/** Splits a long name into ustar prefix (≤155) and name (≤100) at a '/', if possible. */
function splitName(name: string): { prefix: string; name: string } | null {
  const bytes = Buffer.byteLength(name);
  if (bytes <= 100) return { prefix: '', name };
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue;
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest.length > 0) return { prefix, name: rest };
  }
  return null;
}

function headerBlock(name: string, prefix: string, size: number, type: string, mode: number, mtime: number): Buffer {
  // From the shared pool (a fresh zeroed ArrayBuffer per header is slow when archives are made in bulk).
  const b = Buffer.allocUnsafe(BLOCK).fill(0);
  b.write(name, 0, 100, 'utf8');
  b.write(octal(mode, 8), 100, 'latin1');
  b.write(octal(0, 8), 108, 'latin1');
  b.write(octal(0, 8), 116, 'latin1');
  if (size <= MAX_OCTAL_SIZE) {
    b.write(octal(size, 12), 124, 'latin1');
  } else {
    // GNU base-256 (readers that ignore the PAX size record still get it right).
    b[124] = 0x80;
    let v = size;
    for (let i = 135; i > 124; i--) {
      b[i] = v % 256;
      v = Math.floor(v / 256);
    }
  }
  b.write(octal(Math.max(0, Math.floor(mtime)), 12), 136, 'latin1');
  b.write('        ', 148, 'latin1');
  b.write(type, 156, 'latin1');
  b.write('ustar\0', 257, 'latin1');
  b.write('00', 263, 'latin1');
  b.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i];
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return b;
}

/** The header of an entry: a PAX record first when the name or size needs one. */
function headerBlocks(name: string, size: number, type: string, options: EntryOptions): Buffer[] {
  const mode = options.mode ?? (type === '5' ? 0o755 : 0o644);
  const mtime = options.mtime ?? 0;
  const split = splitName(name);
  const records: Buffer[] = [];
  if (!split) records.push(paxRecord('path', name));
  if (size > MAX_OCTAL_SIZE) records.push(paxRecord('size', String(size)));
  const blocks: Buffer[] = [];
  if (records.length) {
    const pax = Buffer.concat(records);
    const paxName = ('PaxHeaders.0/' + name.split('/').filter(Boolean).pop()).slice(0, 99);
    blocks.push(headerBlock(paxName, '', pax.length, 'x', 0o644, mtime), pax);
    if (pad(pax.length)) blocks.push(Buffer.alloc(pad(pax.length)));
  }
  const short = split ?? { prefix: '', name: name.slice(0, 100) };
  blocks.push(headerBlock(short.name, short.prefix, size, type, mode, mtime));
  return blocks;
}

/**
 * A small archive made at once in memory (the test double's seed layers): directories
 * (`data` absent) and files, in order, with the same headers TarWriter writes.
 */
export function tarOf(entries: Array<{ name: string; data?: Buffer }>): Buffer {
  const parts: Array<{ bytes: Buffer; padded: number }> = [];
  let size = BLOCK * 2;
  for (const { name, data } of entries) {
    const headers = data === undefined ? headerBlocks(name.endsWith('/') ? name : name + '/', 0, '5', {}) : headerBlocks(name, data.length, '0', {});
    for (const bytes of headers) parts.push({ bytes, padded: bytes.length });
    if (data) parts.push({ bytes: data, padded: data.length + pad(data.length) });
  }
  for (const part of parts) size += part.padded;
  // One zeroed buffer: the padding and the two end blocks are already there.
  const out = Buffer.alloc(size);
  let at = 0;
  for (const { bytes, padded } of parts) {
    bytes.copy(out, at);
    at += padded;
  }
  return out;
}

export class TarWriter {
  private open: { name: string; size: number; written: number } | null = null;
  private finished = false;
  /** Bytes written so far. */
  bytes = 0;

  /** The first error the output reported (EPIPE, ENOSPC, …): every later write fails with it. */
  private failed: Error | null = null;

  constructor(private readonly out: Writable) {
    // Keep a listener for the whole life of the writer: an output error must fail the
    // next write, never crash the process as an unhandled 'error' event.
    out.on('error', (err: Error) => {
      this.failed ??= err;
    });
  }

  private put(buf: Buffer): Promise<void> {
    this.bytes += buf.length;
    if (this.failed) return Promise.reject(this.failed);
    if (this.out.destroyed || this.out.writableEnded) return Promise.reject(new Error('output closed'));
    if (this.out.write(buf)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        this.out.off('drain', onDrain);
        this.out.off('error', onError);
        this.out.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = () => done();
      const onError = (err: Error) => done(err);
      const onClose = () => done(new Error('output closed'));
      this.out.on('drain', onDrain);
      this.out.on('error', onError);
      this.out.on('close', onClose);
    });
  }

  private async header(name: string, size: number, type: string, options: EntryOptions): Promise<void> {
    if (this.finished) throw new Error('tar: already finished');
    if (this.open) throw new Error(`tar: entry ${this.open.name} is still open`);
    for (const block of headerBlocks(name, size, type, options)) await this.put(block);
  }

  async directory(name: string, options: EntryOptions = {}): Promise<void> {
    await this.header(name.endsWith('/') ? name : name + '/', 0, '5', options);
  }

  async file(name: string, data: Buffer | string, options: EntryOptions = {}): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    await this.begin(name, buf.length, options);
    if (buf.length) await this.write(buf);
    await this.end();
  }

  /** Starts a regular file of exactly `size` bytes; then write() the data and end(). */
  async begin(name: string, size: number, options: EntryOptions = {}): Promise<void> {
    await this.header(name, size, '0', options);
    this.open = { name, size, written: 0 };
  }

  async write(chunk: Buffer): Promise<void> {
    const open = this.open;
    if (!open) throw new Error('tar: no open entry');
    if (open.written + chunk.length > open.size) throw new Error(`tar: ${open.name} is longer than its announced ${open.size} bytes`);
    open.written += chunk.length;
    await this.put(chunk);
  }

  async end(): Promise<void> {
    const open = this.open;
    if (!open) throw new Error('tar: no open entry');
    if (open.written !== open.size) throw new Error(`tar: ${open.name} has ${open.written} of ${open.size} bytes`);
    this.open = null;
    if (pad(open.size)) await this.put(Buffer.alloc(pad(open.size)));
  }

  /** Writes the two end-of-archive blocks. */
  async finish(): Promise<void> {
    if (this.open) throw new Error(`tar: entry ${this.open.name} is still open`);
    await this.put(Buffer.alloc(BLOCK * 2));
    this.finished = true;
  }
}
