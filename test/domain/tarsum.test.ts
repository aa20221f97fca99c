/**
 * TarsumStream against an independent reference: a Python 3 port of the TarSum class of
 * docker-registry (lib/checksums.py), run with python3 over archives Python's tarfile wrote.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { TarsumStream, tarsumVersionOf, type TarsumVersion } from '../../src/domain/tarsum.js';

/**
 * The reference, ported to Python 3: usage `python3 -c REFERENCE <version> <json file>
 * <archive>...`, one tarsum (or "null" when tarfile cannot read the archive) per line.
 * Python 2 handled byte strings; Python 3's tarfile decodes text fields with
 * surrogateescape and returns the typeflag as bytes, so raw() gets the archive's bytes back.
 * Two deliberate additions: int(mtime) (docker, in Go, hashes whole seconds; Python 3 keeps
 * a PAX fraction) and the version 1 header (no mtime; xattrs sorted by key, key + value).
 */
const REFERENCE = String.raw`
import hashlib, sys, tarfile

def sha256_file(fp, data=b''):
    h = hashlib.sha256(data)
    if not fp:
        return h.hexdigest()
    while True:
        buf = fp.read(4096)
        if not buf:
            break
        h.update(buf)
    return h.hexdigest()

def sha256_string(s):
    return hashlib.sha256(s).hexdigest()

def raw(value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode('utf-8', 'surrogateescape')
    return str(value).encode('ascii')

class TarSum(object):
    def __init__(self, json_data, version):
        self.json_data = json_data
        self.version = version
        self.hashes = []
        fields = ['name', 'mode', 'uid', 'gid', 'size', 'mtime', 'type', 'linkname',
                  'uname', 'gname', 'devmajor', 'devminor']
        if version == 'tarsum.v1':
            fields.remove('mtime')
        self.header_fields = tuple(fields)

    def append(self, member, tarobj):
        header = b''
        for field in self.header_fields:
            value = getattr(member, field)
            if field == 'type':
                field = 'typeflag'
            elif field == 'name':
                if member.isdir() and not value.endswith('/'):
                    value += '/'
            elif field == 'mtime':
                value = int(value)
            header += field.encode('ascii') + raw(value)
        if self.version == 'tarsum.v1':
            prefix = 'SCHILY.xattr.'
            xattrs = dict((raw(k[len(prefix):]), raw(v)) for k, v in member.pax_headers.items()
                          if k.startswith(prefix))
            for key in sorted(xattrs):
                header += key + xattrs[key]
        h = None
        try:
            if member.size > 0:
                f = tarobj.extractfile(member)
                h = sha256_file(f, header)
            else:
                h = sha256_string(header)
        except KeyError:
            h = sha256_string(header)
        self.hashes.append(h)

    def compute(self):
        self.hashes.sort()
        data = self.json_data + ''.join(self.hashes).encode('ascii')
        return '{0}+sha256:{1}'.format(self.version, sha256_string(data))

def tarsum(path, json_data, version):
    ts = TarSum(json_data, version)
    try:
        with tarfile.open(path, mode='r|*') as tar:
            for member in tar:
                ts.append(member, tar)
    except tarfile.ReadError as e:
        # as the reference server: an empty layer still has a tarsum (of the json alone)
        if str(e) != 'empty file':
            return 'null'
    return ts.compute()

version, json_path = sys.argv[1], sys.argv[2]
json_data = open(json_path, 'rb').read()
for path in sys.argv[3:]:
    print(tarsum(path, json_data, version))
`;

/** Writes the fixture archives (plain and .gz) into argv[1]. */
const GENERATE = String.raw`
import gzip, io, os, sys, tarfile

out = sys.argv[1]

def content(n, seed):
    return bytes((i * 13 + seed * 101 + i // 509) & 0xff for i in range(n))

def info(name, type=tarfile.REGTYPE, **kw):
    ti = tarfile.TarInfo(name)
    ti.type = type
    ti.mtime = kw.pop('mtime', 1420000000)
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

def save(name, data):
    open(os.path.join(out, name), 'wb').write(data)
    open(os.path.join(out, name + '.gz'), 'wb').write(gzip.compress(data, mtime=0))

def archive(name, fmt, build):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=fmt) as t:
        build(t)
    save(name, buf.getvalue())

def basic(t):
    add(t, 'etc/', type=tarfile.DIRTYPE, uname='root', gname='root')
    add(t, 'etc/hostname', b'registry\n', uid=1000, gid=50, uname='user', gname='staff')
    add(t, 'etc/empty', b'')
    add(t, 'etc/block', content(1024, 1))
    add(t, 'usr/bin/big', content(150000, 2), mode=0o755)
    add(t, 'etc/localtime', type=tarfile.SYMTYPE, linkname='/usr/share/zoneinfo/UTC')
    add(t, 'etc/hostname2', type=tarfile.LNKTYPE, linkname='etc/hostname')
    add(t, 'dev/console', type=tarfile.CHRTYPE, devmajor=5, devminor=1, mode=0o600)
    add(t, 'run/fifo', type=tarfile.FIFOTYPE)
    add(t, 'bin/su', content(300, 3), mode=0o4755)

def docker(t):
    add(t, './', type=tarfile.DIRTYPE)
    add(t, 'var/', type=tarfile.DIRTYPE)
    add(t, 'var/.wh..wh..opq', b'')
    add(t, 'var/.wh.removed', b'')
    add(t, 'var/log/', type=tarfile.DIRTYPE)
    add(t, 'var/log/app.log', content(777, 4))

def gnu(t):
    long = 'usr/lib/' + 'x' * 250 + '.so'
    add(t, long, content(4000, 5))
    add(t, 'usr/share/' + 'y' * 180 + '/', type=tarfile.DIRTYPE)
    add(t, 'usr/lib/short.so', type=tarfile.SYMTYPE, linkname='/' + 'x' * 150)
    add(t, 'usr/lib/hard.so', type=tarfile.LNKTYPE, linkname=long)
    add(t, 'bigids', content(10, 6), uid=2 ** 21 + 7, gid=2 ** 22)

def pax(t):
    cap = b'\x01\x00\x00\x02\x00\x20\x00\x00\xff\xfe\n=z'.decode('utf-8', 'surrogateescape')
    add(t, 'opt/' + 'p' * 200 + '/file', content(600, 7))
    add(t, 'opt/ünïcødé/日本語.txt', 'text'.encode())
    add(t, 'opt/caf\udce9', b'raw byte name')
    add(t, 'opt/frac', b'f', mtime=1420000000.75)
    add(t, 'opt/link', type=tarfile.SYMTYPE, linkname='../' + 'q' * 120)
    add(t, 'opt/uid', b'u', uid=5000000, uname='jösé')
    add(t, 'bin/ping', content(64, 8), pax_headers={
        'SCHILY.xattr.security.capability': cap,
        'SCHILY.xattr.user.b': '2',
        'SCHILY.xattr.user.a': '1',
    })
    add(t, 'opt/dir/', type=tarfile.DIRTYPE, pax_headers={'SCHILY.xattr.user.dir': 'd'})

def xattr_variant(value):
    def build(t):
        add(t, 'f', b'same', pax_headers={'SCHILY.xattr.user.k': value})
    return build

def mtime_variant(mtime):
    def build(t):
        add(t, 'f', b'same', mtime=mtime)
    return build

def reversed_basic(t):
    members = []
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.USTAR_FORMAT) as tmp:
        basic(tmp)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as src:
        for m in reversed(src.getmembers()):
            t.addfile(m, src.extractfile(m) if m.isreg() else None)

archive('basic.tar', tarfile.USTAR_FORMAT, basic)
archive('reversed.tar', tarfile.USTAR_FORMAT, reversed_basic)
archive('docker.tar', tarfile.USTAR_FORMAT, docker)
archive('gnu.tar', tarfile.GNU_FORMAT, gnu)
archive('pax.tar', tarfile.PAX_FORMAT, pax)
archive('xattr-a.tar', tarfile.PAX_FORMAT, xattr_variant('a'))
archive('xattr-b.tar', tarfile.PAX_FORMAT, xattr_variant('b'))
archive('mtime-a.tar', tarfile.USTAR_FORMAT, mtime_variant(1000))
archive('mtime-b.tar', tarfile.USTAR_FORMAT, mtime_variant(2000))

# Directories stored without the trailing slash, and a v7 directory ('\0' typeflag + slash):
# the reference names them with a slash.
def header(name, type, size=0):
    ti = info('placeholder', type)
    ti.size = size
    buf = bytearray(ti.tobuf(tarfile.USTAR_FORMAT))
    buf[0:100] = name.encode().ljust(100, b'\0')
    buf[148:156] = b' ' * 8
    buf[148:156] = b'%06o\0 ' % sum(buf)
    return bytes(buf)
save('noslash.tar', header('noslash', tarfile.DIRTYPE) + header('v7dir/', tarfile.AREGTYPE)
     + header('file', tarfile.REGTYPE, 3) + b'abc'.ljust(512, b'\0') + b'\0' * 1024)
`;

const ARCHIVES = ['basic.tar', 'docker.tar', 'gnu.tar', 'pax.tar', 'noslash.tar'];
const JSON_TEXT = '{"id":"f1ee83f6b4a0d6b6b8ffd1b1b6a6c1d2b2e3a4c5d6e7f8091a2b3c4d5e6f7a8b","comment":"ünïcødé"}';

async function ours(version: TarsumVersion, json: Buffer, layer: Buffer, chunk = layer.length): Promise<string | null> {
  const ts = new TarsumStream(version, json);
  for (let off = 0; off < layer.length; off += Math.max(1, chunk)) {
    await ts.write(layer.subarray(off, off + Math.max(1, chunk)));
  }
  return ts.digest();
}

describe('TarsumStream', () => {
  let dir = '';
  const json = Buffer.from(JSON_TEXT, 'utf8');
  const files: Record<string, Buffer> = {};
  /** reference[version][file] */
  const reference: Record<string, Record<string, string>> = {};

  function referenceOf(version: TarsumVersion, paths: string[], jsonBytes: Buffer = json): string[] {
    const jsonPath = join(dir, `json-${jsonBytes.length}`);
    writeFileSync(jsonPath, jsonBytes);
    const out = execFileSync('python3', ['-c', REFERENCE, version, jsonPath, ...paths], { encoding: 'utf8' });
    return out.trim().split('\n');
  }

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tarsum-test-'));
    execFileSync('python3', ['-c', GENERATE, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const names = ['reversed.tar', 'xattr-a.tar', 'xattr-b.tar', 'mtime-a.tar', 'mtime-b.tar', ...ARCHIVES].flatMap((n) => [n, `${n}.gz`]);
    for (const name of names) files[name] = readFileSync(join(dir, name));
    for (const version of ['tarsum', 'tarsum.v1'] as const) {
      const sums = referenceOf(version, names.map((n) => join(dir, n)));
      reference[version] = Object.fromEntries(names.map((n, i) => [n, sums[i]]));
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const version of ['tarsum', 'tarsum.v1'] as const) {
    for (const name of ARCHIVES) {
      for (const file of [name, `${name}.gz`]) {
        it(`${version} of ${file} matches the reference, in one chunk and in small chunks`, async () => {
          const want = reference[version][file];
          assert.match(want, new RegExp(`^${version.replace('.', '\\.')}\\+sha256:[0-9a-f]{64}$`));
          assert.equal(await ours(version, json, files[file]), want, 'one chunk');
          for (const chunk of [1, 7, 512, 4099]) {
            if (chunk === 1 && files[file].length > 20000) continue; // byte by byte only on small inputs
            assert.equal(await ours(version, json, files[file], chunk), want, `chunks of ${chunk}`);
          }
        });
      }
    }
  }

  it('gzip and plain layers of the same archive have the same tarsum', async () => {
    for (const name of ARCHIVES) {
      assert.equal(await ours('tarsum', json, files[`${name}.gz`], 100), await ours('tarsum', json, files[name]), name);
    }
  });

  it('does not depend on the order of the entries, and does depend on the json', async () => {
    assert.equal(reference.tarsum['reversed.tar'], reference.tarsum['basic.tar'], 'the reference agrees');
    assert.equal(await ours('tarsum', json, files['reversed.tar'], 333), await ours('tarsum', json, files['basic.tar']));
    const other = Buffer.from(JSON_TEXT.replace('f1ee', 'f2ee'));
    const [want] = referenceOf('tarsum', [join(dir, 'basic.tar')], other);
    assert.equal(await ours('tarsum', other, files['basic.tar']), want);
    assert.notEqual(want, reference.tarsum['basic.tar']);
  });

  it('version 1 hashes xattrs and not mtime; version 0 the other way round', async () => {
    const sum = (v: TarsumVersion, f: string) => ours(v, json, files[f], 64);
    for (const v of ['tarsum', 'tarsum.v1'] as const) {
      for (const f of ['xattr-a.tar', 'xattr-b.tar', 'mtime-a.tar', 'mtime-b.tar']) {
        assert.equal(await sum(v, f), reference[v][f], `${v} ${f}`);
      }
    }
    assert.notEqual(await sum('tarsum.v1', 'xattr-a.tar'), await sum('tarsum.v1', 'xattr-b.tar'));
    assert.equal(await sum('tarsum', 'xattr-a.tar'), await sum('tarsum', 'xattr-b.tar'));
    assert.equal(await sum('tarsum.v1', 'mtime-a.tar'), await sum('tarsum.v1', 'mtime-b.tar'));
    assert.notEqual(await sum('tarsum', 'mtime-a.tar'), await sum('tarsum', 'mtime-b.tar'));
  });

  it('an empty layer (no bytes, only end blocks, or gzipped nothing) is the tarsum of the json alone', async () => {
    const jsonOnly = `tarsum+sha256:${createHash('sha256').update(json).digest('hex')}`;
    const empties: Record<string, Buffer> = {
      'empty': Buffer.alloc(0),
      'end-blocks': Buffer.alloc(1024),
      'python-empty.tar': Buffer.alloc(10240),
      'empty.gz': gzipSync(Buffer.alloc(0)),
    };
    for (const [name, bytes] of Object.entries(empties)) writeFileSync(join(dir, name), bytes);
    const refs = referenceOf('tarsum', Object.keys(empties).map((n) => join(dir, n)));
    Object.keys(empties).forEach((name, i) => assert.equal(refs[i], jsonOnly, `reference, ${name}`));
    for (const [name, bytes] of Object.entries(empties)) {
      assert.equal(await ours('tarsum', json, bytes), jsonOnly, name);
      assert.equal(await ours('tarsum', json, bytes, 1), jsonOnly, `${name}, byte by byte`);
    }
    assert.equal(
      await ours('tarsum.v1', Buffer.alloc(0), Buffer.alloc(0)),
      `tarsum.v1+sha256:${createHash('sha256').update('').digest('hex')}`,
      'empty json and empty layer',
    );
  });

  it('is null for input that is not a (gzipped) tar', async () => {
    let seed = 7;
    const random = Buffer.from(Array.from({ length: 5000 }, () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) & 0xff));
    const basicGz = files['basic.tar.gz'];
    const cases: Record<string, Buffer> = {
      'random bytes': random,
      'json text': Buffer.from(JSON_TEXT.repeat(20)),
      'one byte': Buffer.from([0x1f]),
      'gzip magic and garbage': Buffer.concat([Buffer.from([0x1f, 0x8b]), random]),
      'gzipped text': gzipSync(Buffer.from('hello, this is not a tar archive\n'.repeat(50))),
      'truncated gzip': basicGz.subarray(0, Math.floor(basicGz.length / 2)),
      'truncated tar': files['basic.tar'].subarray(0, 5000),
      'gzip of a truncated tar': gzipSync(files['basic.tar'].subarray(0, 5000)),
    };
    for (const [name, bytes] of Object.entries(cases)) {
      for (const chunk of [bytes.length, 13]) {
        assert.equal(await ours('tarsum', json, bytes, chunk), null, `${name}, chunks of ${chunk}`);
      }
    }
  });

  it('recognises the version of a checksum', () => {
    const hex = 'a'.repeat(64);
    assert.equal(tarsumVersionOf(`tarsum+sha256:${hex}`), 'tarsum');
    assert.equal(tarsumVersionOf(`tarsum.v1+sha256:${hex}`), 'tarsum.v1');
    assert.equal(tarsumVersionOf(`sha256:${hex}`), null);
    assert.equal(tarsumVersionOf(`tarsum.dev+sha256:${hex}`), null);
    assert.equal(tarsumVersionOf('tarsum'), null);
  });
});
