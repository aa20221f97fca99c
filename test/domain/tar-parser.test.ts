/**
 * TarParser against Python 3's tarfile: Python writes real archives (ustar, GNU, PAX) and
 * lists what it reads back; the parser must report the same entries whatever the chunking.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TarParser, type TarHeader } from '../../src/domain/tar-parser.js';
import { isRegistryError } from '../../src/domain/errors.js';

/** Writes the fixture archives into argv[1] and a listing of each, as Python reads them. */
const GENERATE = String.raw`
import io, json, os, sys, tarfile

out = sys.argv[1]
MTIME = 1400000000

def content(n, seed):
    return bytes((i * 31 + seed * 7 + i // 251) & 0xff for i in range(n))

def info(name, type=tarfile.REGTYPE, **kw):
    ti = tarfile.TarInfo(name)
    ti.type = type
    ti.mtime = MTIME
    ti.mode = 0o755 if type == tarfile.DIRTYPE else 0o644
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti

def add(t, name, data=None, type=tarfile.REGTYPE, **kw):
    ti = info(name, type, **kw)
    if data is not None:
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    else:
        t.addfile(ti)

def write(name, fmt, build, **kw):
    path = os.path.join(out, name)
    with tarfile.open(path, 'w', format=fmt, **kw) as t:
        build(t)
    return path

def ustar(t):
    add(t, 'etc/', type=tarfile.DIRTYPE, uname='root', gname='root')
    add(t, 'etc/hello.txt', b'hello world\n', uid=1000, gid=1001, uname='user', gname='staff')
    add(t, 'empty', b'')
    add(t, 'block512.bin', content(512, 1))
    add(t, 'block1024.bin', content(1024, 2))
    add(t, 'odd1000.bin', content(1000, 3), mode=0o600)
    # 212 characters: only fits with the ustar prefix field
    add(t, 'a' * 60 + '/' + 'b' * 60 + '/' + 'c' * 90, content(33, 4))
    add(t, 'etc/link', type=tarfile.SYMTYPE, linkname='hello.txt')
    add(t, 'hardlink', type=tarfile.LNKTYPE, linkname='etc/hello.txt')
    add(t, 'fifo', type=tarfile.FIFOTYPE)
    add(t, 'dev/null', type=tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
    add(t, 'dev/sda', type=tarfile.BLKTYPE, devmajor=8, devminor=0)
    add(t, 'bin/su', content(700, 5), mode=0o4755)
    add(t, 'v7file', b'old style', type=tarfile.AREGTYPE)
    add(t, 'v7dir/', type=tarfile.AREGTYPE)
    # not UTF-8: the raw byte 0xe9
    add(t, 'caf\udce9.txt', b'latin1 name')

def gnu(t):
    long = 'd/' + 'x' * 300 + '.txt'
    add(t, 'short.txt', b'short')
    add(t, long, content(2000, 6))
    add(t, 'longdir_' + 'y' * 150 + '/', type=tarfile.DIRTYPE)
    add(t, 'symlong', type=tarfile.SYMTYPE, linkname='t' * 200)
    add(t, 'hardlong', type=tarfile.LNKTYPE, linkname=long)
    add(t, 'bigids', content(10, 7), uid=2 ** 21 + 5, gid=3000000, uname='u' * 31, gname='g')
    add(t, 'empty', b'')

def pax(t):
    cap = b'\x01\x00\x00\x02\x00\x20\x00\x00\xff\xfe\n=x'.decode('utf-8', 'surrogateescape')
    add(t, 'p/' + 'z' * 250, content(1536, 8))
    add(t, 'ünïcødé/日本語.txt', 'ünï'.encode())
    add(t, 'slink', type=tarfile.SYMTYPE, linkname='/' + 'l' * 150)
    add(t, 'xattrs.bin', content(100, 9), pax_headers={
        'SCHILY.xattr.user.foo': 'bar',
        'SCHILY.xattr.security.capability': cap,
        'SCHILY.xattr.user.a': '1',
    })
    add(t, 'fraction', b'f', mtime=1234567890.75)
    add(t, 'bigid', b'', uid=3000000, uname='jösé')
    add(t, 'q' * 120 + '/', type=tarfile.DIRTYPE)
    add(t, 'emptyx', b'', pax_headers={'SCHILY.xattr.user.empty': ''})

def one(t):
    add(t, 'one.txt', b'0123456789')

def two(t):
    add(t, 'two.txt', b'abcdefghij')

def enc(s):
    return s.encode('utf-8', 'surrogateescape').hex()

def listing(path):
    entries = []
    with tarfile.open(path, 'r') as t:
        for m in t:
            e = {
                'name': enc(m.name), 'type': m.type.decode('latin1'), 'size': m.size,
                'mode': m.mode, 'uid': m.uid, 'gid': m.gid, 'mtime': int(m.mtime),
                'linkname': enc(m.linkname), 'uname': enc(m.uname), 'gname': enc(m.gname),
                'devmajor': m.devmajor, 'devminor': m.devminor, 'isdir': m.isdir(), 'isreg': m.isreg(),
                'xattrs': {k[len('SCHILY.xattr.'):]: enc(v) for k, v in m.pax_headers.items()
                           if k.startswith('SCHILY.xattr.')},
                'content': t.extractfile(m).read().hex() if m.isreg() else '',
            }
            entries.append(e)
    return entries

result = {}
for name, fmt, build, kw in [
    ('ustar.tar', tarfile.USTAR_FORMAT, ustar, {}),
    ('gnu.tar', tarfile.GNU_FORMAT, gnu, {}),
    ('pax.tar', tarfile.PAX_FORMAT, pax, {'pax_headers': {'comment': 'global record'}}),
    ('one.tar', tarfile.USTAR_FORMAT, one, {}),
    ('two.tar', tarfile.USTAR_FORMAT, two, {}),
]:
    result[name] = listing(write(name, fmt, build, **kw))
json.dump(result, open(os.path.join(out, 'listing.json'), 'w'))
`;

interface PyEntry {
  name: string;
  type: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  isdir: boolean;
  isreg: boolean;
  xattrs: Record<string, string>;
  content: string;
}

interface Entry {
  header: TarHeader;
  content: Buffer;
}

/** Parses `archive` fed in pieces of `chunk` bytes (or the sizes `chunk` returns). */
function parse(archive: Buffer, chunk: number | (() => number) = archive.length): Entry[] {
  const entries: Entry[] = [];
  let open: { header: TarHeader; parts: Buffer[] } | null = null;
  const parser = new TarParser({
    header(h) {
      assert.equal(open, null, 'header() while an entry is open');
      open = { header: h, parts: [] };
    },
    data(c) {
      assert.ok(open, 'data() outside an entry');
      assert.ok(c.length > 0, 'empty data chunk');
      // copy: the parser may hand out views of the caller's buffer
      open.parts.push(Buffer.from(c));
    },
    entryEnd() {
      assert.ok(open, 'entryEnd() outside an entry');
      entries.push({ header: open.header, content: Buffer.concat(open.parts) });
      open = null;
    },
  });
  let off = 0;
  while (off < archive.length) {
    const n = Math.max(1, typeof chunk === 'number' ? chunk : chunk());
    parser.write(archive.subarray(off, off + n));
    off += n;
  }
  parser.end();
  assert.equal(open, null, 'an entry was left open');
  return entries;
}

/** A small deterministic PRNG, so a failing chunking can be reproduced. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const hex = (s: string) => Buffer.from(s, 'latin1').toString('hex');

function assertSameAsPython(got: Entry[], want: PyEntry[]): void {
  assert.equal(got.length, want.length, 'entry count');
  got.forEach(({ header: h, content }, i) => {
    const w = want[i];
    const label = `entry ${i} (${Buffer.from(w.name, 'hex').toString('utf8')})`;
    // Python's tarfile strips the trailing '/' of directory names; the archive has it.
    const name = h.typeflag === '5' ? h.name.replace(/\/+$/, '') : h.name;
    assert.equal(hex(name), w.name, `${label}: name`);
    // Python keeps the v7 '\0' typeflag of a regular file; the parser normalises it to '0'.
    assert.equal(h.typeflag, w.type === '\0' ? '0' : w.type, `${label}: typeflag`);
    assert.equal(h.typeflag === '5', w.isdir, `${label}: is a directory`);
    assert.equal(h.size, w.size, `${label}: size`);
    assert.equal(h.mode, w.mode, `${label}: mode`);
    assert.equal(h.uid, w.uid, `${label}: uid`);
    assert.equal(h.gid, w.gid, `${label}: gid`);
    assert.equal(h.mtime, w.mtime, `${label}: mtime`);
    assert.equal(hex(h.linkname), w.linkname, `${label}: linkname`);
    assert.equal(hex(h.uname), w.uname, `${label}: uname`);
    assert.equal(hex(h.gname), w.gname, `${label}: gname`);
    assert.equal(h.devmajor, w.devmajor, `${label}: devmajor`);
    assert.equal(h.devminor, w.devminor, `${label}: devminor`);
    assert.deepEqual(
      Object.fromEntries(Object.entries(h.xattrs).map(([k, v]) => [hex(k), hex(v)])),
      Object.fromEntries(Object.entries(w.xattrs).map(([k, v]) => [Buffer.from(k, 'utf8').toString('hex'), v])),
      `${label}: xattrs`,
    );
    if (w.isreg) assert.equal(content.toString('hex'), w.content, `${label}: content`);
    else assert.equal(content.length, 0, `${label}: a ${w.type} entry has no data`);
  });
}

function assertRejected(fn: () => unknown, what: string): void {
  assert.throws(fn, (err: unknown) => isRegistryError(err, 'INVALID_INPUT'), what);
}

describe('TarParser', () => {
  let dir = '';
  let listing: Record<string, PyEntry[]> = {};
  const archives: Record<string, Buffer> = {};
  const FORMATS = ['ustar.tar', 'gnu.tar', 'pax.tar'];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tar-parser-test-'));
    execFileSync('python3', ['-c', GENERATE, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    listing = JSON.parse(readFileSync(join(dir, 'listing.json'), 'utf8')) as Record<string, PyEntry[]>;
    for (const name of Object.keys(listing)) archives[name] = readFileSync(join(dir, name));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const name of FORMATS) {
    it(`reads ${name} as Python's tarfile does`, () => {
      assertSameAsPython(parse(archives[name]), listing[name]);
    });
  }

  it('the fixtures exercise what they claim to', () => {
    const ustar = parse(archives['ustar.tar']);
    const byName = new Map(ustar.map((e) => [e.header.name, e.header]));
    assert.equal(byName.get('block512.bin')?.size, 512);
    assert.equal(byName.get('etc/')?.typeflag, '5');
    assert.equal(byName.get('etc/link')?.typeflag, '2');
    assert.equal(byName.get('hardlink')?.typeflag, '1');
    assert.equal(byName.get('v7dir/')?.typeflag, '5', 'a v7 directory (typeflag \\0 and a trailing slash)');
    assert.equal(byName.get('v7file')?.typeflag, '0');
    assert.ok(ustar.some((e) => e.header.name.length > 200), 'a name built from the ustar prefix');
    assert.ok(byName.has('caf\u00e9.txt'), 'the raw byte 0xe9 reads as one latin1 character');

    const gnu = parse(archives['gnu.tar']);
    assert.ok(gnu.some((e) => e.header.name.length > 300 && e.header.typeflag === '0'), 'GNU long name');
    assert.ok(gnu.some((e) => e.header.linkname === 't'.repeat(200)), 'GNU long link name');
    assert.ok(gnu.some((e) => e.header.uid === 2 ** 21 + 5), 'GNU base-256 number');
    assert.ok(archives['gnu.tar'].includes('././@LongLink'), 'written with GNU long-name records');

    const pax = parse(archives['pax.tar']);
    const xa = pax.find((e) => e.header.name === 'xattrs.bin')?.header;
    assert.equal(xa?.xattrs['user.foo'], 'bar');
    assert.equal(
      Buffer.from(xa?.xattrs['security.capability'] ?? '', 'latin1').toString('hex'),
      '0100000200200000fffe0a3d78',
      'a binary xattr value keeps its bytes, newline and "=" included',
    );
    assert.equal(pax.find((e) => e.header.name === 'fraction')?.header.mtime, 1234567890, 'fractional PAX mtime is truncated');
    assert.equal(
      Buffer.from(pax.find((e) => e.header.name.startsWith('\u00c3'))?.header.name ?? '', 'latin1').toString('utf8'),
      'ünïcødé/日本語.txt',
    );
  });

  for (const name of FORMATS) {
    it(`gives the same entries for every chunking of ${name}`, () => {
      const whole = parse(archives[name]);
      for (const size of [1, 7, 512, 513]) {
        assert.deepEqual(parse(archives[name], size), whole, `chunks of ${size}`);
      }
      const random = prng(name.length * 7919);
      for (let round = 0; round < 5; round++) {
        assert.deepEqual(parse(archives[name], () => Math.floor(random() * 1500)), whole, `random chunking ${round}`);
      }
    });
  }

  it('rejects an archive truncated anywhere inside an entry', () => {
    const archive = archives['ustar.tar'];
    // the end of the last entry's data: everything after it is end-of-archive zeros
    const lastData = archive.length - [...archive].reverse().findIndex((b) => b !== 0);
    const cuts = [100, 511, 513, 512 + 5, 2048 + 300, 4096, lastData - 1];
    for (const cut of cuts) {
      for (const chunk of [cut, 7]) {
        assertRejected(() => parse(archive.subarray(0, cut), chunk), `cut at ${cut}, chunks of ${chunk}`);
      }
    }
    // a PAX record cut short
    const pax = archives['pax.tar'];
    assertRejected(() => parse(pax.subarray(0, 512 + 10)), 'cut inside a PAX record');
    // a GNU long name cut short
    const gnu = archives['gnu.tar'];
    const longLink = gnu.indexOf('././@LongLink');
    assertRejected(() => parse(gnu.subarray(0, longLink + 512 + 100)), 'cut inside a GNU long name');
  });

  it('rejects garbage', () => {
    const random = prng(42);
    const garbage = Buffer.from(Array.from({ length: 4096 }, () => Math.floor(random() * 256)));
    assertRejected(() => parse(garbage), '4 KiB of random bytes');
    assertRejected(() => parse(garbage, 1), '4 KiB of random bytes, byte by byte');
    assertRejected(() => parse(garbage.subarray(0, 100)), 'less than a block');
    assertRejected(() => parse(Buffer.from('{"not": "a tar"}\n'.repeat(64))), 'JSON text');

    // one flipped bit in a header breaks its checksum
    const corrupt = Buffer.from(archives['one.tar']);
    corrupt[3] ^= 0x01;
    assertRejected(() => parse(corrupt), 'a header with a bad checksum');

    // a PAX record whose length runs past the record
    const pax = Buffer.from(archives['pax.tar']);
    const rec = pax.indexOf('SCHILY.xattr.user.foo=bar\n');
    const lenAt = pax.lastIndexOf(' ', rec) - 2;
    pax.write('99', lenAt, 'latin1');
    assertRejected(() => parse(pax), 'a PAX record longer than its header');
  });

  it('ends the archive at two zero blocks; ignores what follows', () => {
    const one = archives['one.tar'].subarray(0, 1024); // header + one data block
    const two = archives['two.tar'].subarray(0, 1024);
    const names = (entries: Entry[]) => entries.map((e) => e.header.name);
    const zeros = (blocks: number) => Buffer.alloc(512 * blocks);
    const junk = Buffer.from('trailing junk that is not a tar header'.repeat(40));

    assert.deepEqual(names(parse(Buffer.concat([one, zeros(2), junk]))), ['one.txt']);
    assert.deepEqual(names(parse(Buffer.concat([one, zeros(2), two, zeros(2)]), 7)), ['one.txt'], 'entries after the end are not read');
    assert.deepEqual(names(parse(Buffer.concat([one, two]))), ['one.txt', 'two.txt'], 'no end blocks: ends cleanly at EOF');
    assert.deepEqual(names(parse(Buffer.concat([one, zeros(1)]))), ['one.txt'], 'a single end block at EOF');
    assert.deepEqual(names(parse(zeros(2))), [], 'an empty archive');
    assert.deepEqual(names(parse(Buffer.alloc(0))), [], 'no bytes at all');
    assertRejected(() => parse(Buffer.concat([one, zeros(1), two, zeros(2)])), 'a lone zero block followed by a header');
    // what the end-of-archive zeros look like in Python's own output: it pads to 10 KiB
    assert.equal(archives['one.tar'].length % 10240, 0);
    assert.deepEqual(names(parse(Buffer.concat([archives['one.tar'], archives['two.tar']]))), ['one.txt']);
  });

  it('does not treat the atime/ctime of an old GNU header as a name prefix', () => {
    const gnu = Buffer.from(archives['gnu.tar'].subarray(0, 1024)); // 'short.txt'
    assert.equal(gnu.toString('latin1', 257, 265), 'ustar  \0');
    gnu.write('14000000000\0', 345, 'latin1'); // atime
    gnu.write('14000000001\0', 357, 'latin1'); // ctime
    gnu.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += gnu[i];
    gnu.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    const [entry] = parse(gnu);
    assert.equal(entry.header.name, 'short.txt');
    assert.equal(entry.content.toString(), 'short');
  });

  it('hands out data without buffering a whole entry', () => {
    const archive = archives['ustar.tar'];
    let largest = 0;
    const parser = new TarParser({ header() {}, data: (c) => void (largest = Math.max(largest, c.length)), entryEnd() {} });
    for (let off = 0; off < archive.length; off += 100) parser.write(archive.subarray(off, off + 100));
    parser.end();
    assert.ok(largest <= 100, `a data chunk of ${largest} bytes from 100-byte writes`);
  });
});
