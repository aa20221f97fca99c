/**
 * Hostile input against a live server (in-process, standalone, 127.0.0.1 only), with
 * fast-check: random and adversarial paths (`..`, %2F, %00, very long names, unicode),
 * ids, tags, headers (bad Range, huge Content-Length, bad Authorization) and bodies
 * (invalid JSON, deep nesting, huge JSON), sent as raw bytes over a socket so that nothing
 * is normalised on the way. After every batch:
 *
 * - no answer was a 5xx, and none carried the bytes of a sentinel file kept next to the
 *   storage root;
 * - the sentinel was neither modified nor read (its access time, set in the past, did not
 *   move — checked where the filesystem records reads), no file appeared outside the
 *   storage root, and the storage root holds only db/, blobs/sha256/<aa>/<hex>, tmp/, uploads/, secret;
 * - the server still answers _ping.
 *
 * Plus the limits: JSON bodies over max_json_bytes are 413 on every JSON route, a stalled
 * layer upload is 408 after upload_idle_timeout_seconds with its temp file removed and the
 * image still pending (and can be pushed again), a stalled JSON body is cut off.
 *
 * FUZZ_SEED=<n> replays a run (the default seed is fixed); FUZZ_RUNS scales the batches.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { openUpload } from '../helpers/http-raw.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { makeImage, prng, send, verifyPull, type HarnessImage } from './crash-harness.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261123);
const SCALE = Number(process.env.FUZZ_RUNS ?? 1);
const MAX_JSON = 65_536;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const portOf = (srv: TestServer) => Number(new URL(srv.url).port);

// ── raw HTTP over a socket ──────────────────────────────────────────────────────────
interface RawCase {
  method: string;
  /** Sent as is (UTF-8) in the request line. */
  target: string;
  headers: Array<[string, string]>;
  body: Buffer | null;
}

interface RawResult {
  /** null: the connection closed (or timed out) without a status line. */
  status: number | null;
  head: string;
  body: Buffer;
  timedOut: boolean;
}

function rawHttp(port: number, c: RawCase, timeoutMs = 20_000): Promise<RawResult> {
  const lines = [`${c.method} ${c.target} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Connection: close'];
  const named = new Set(c.headers.map(([k]) => k.toLowerCase()));
  for (const [k, v] of c.headers) lines.push(`${k}: ${v}`);
  if (c.body && !named.has('content-length') && !named.has('transfer-encoding')) lines.push(`Content-Length: ${c.body.length}`);
  const head = Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'utf8');
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, timeoutMs);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      const headText = all.subarray(0, end === -1 ? all.length : end).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(headText);
      resolve({ status: m ? Number(m[1]) : null, head: headText, body: end === -1 ? Buffer.alloc(0) : all.subarray(end + 4), timedOut });
    });
    socket.write(c.body ? Buffer.concat([head, c.body]) : head);
  });
}

// ── what must never change outside the storage root ─────────────────────────────────
interface Outside {
  /** path → "size:mtime:ino" of every entry outside the root (stat only: never read). */
  entries: Map<string, string>;
}

async function snapshotOutside(parent: string, root: string): Promise<Outside> {
  const entries = new Map<string, string>();
  const walk = async (dir: string) => {
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (full === root) continue;
      const st = await fs.lstat(full);
      entries.set(full, `${st.size}:${st.mtimeMs}:${st.ino}`);
      if (entry.isDirectory()) await walk(full);
    }
  };
  await walk(parent);
  return { entries };
}

/** The storage root holds only what the layout allows (src/store/blobs/blob-paths.ts). */
async function checkRootLayout(root: string): Promise<void> {
  for (const name of await fs.readdir(root)) assert.ok(['db', 'blobs', 'tmp', 'uploads', 'secret'].includes(name), `unexpected ${name} in the storage root`);
  const blobs = path.join(root, 'blobs');
  for (const algo of await fs.readdir(blobs)) {
    assert.equal(algo, 'sha256', `unexpected blobs/${algo}`);
    for (const prefix of await fs.readdir(path.join(blobs, algo))) {
      assert.match(prefix, /^[a-f0-9]{2}$/, `unexpected blobs/sha256/${prefix}`);
      for (const name of await fs.readdir(path.join(blobs, algo, prefix))) {
        assert.ok(/^[a-f0-9]{64}$/.test(name) && name.startsWith(prefix), `unexpected blobs/sha256/${prefix}/${name}`);
      }
    }
  }
  // Uploads that ended (or were cut off) leave no temp file behind.
  let left: string[] = [];
  for (let i = 0; i < 60; i++) {
    left = await fs.readdir(path.join(root, 'tmp'));
    if (left.length === 0) break;
    await sleep(50);
  }
  assert.deepEqual(left, [], 'no temp file is left in tmp/');
}

// ── arbitraries ─────────────────────────────────────────────────────────────────────
const HEX64 = fc.stringMatching(/^[a-f0-9]{64}$/);
const ADVERSARIAL = [
  '..', '.', '...', '%2e%2e', '%2E%2E', '.%2e', '%2e.', '..%2f', '..%2F..%2F..%2F', '%2F', '%2f', '%252F', '%00', 'a%00b',
  '%', '%zz', '%c0%af', '%c0%ae%c0%ae', '..\\..', '\\', '~', '~root', '', ' ', '%20', '?', '%3F', '#', '%23', ';', ':', '@',
  'sentinel.txt', '..%2fsentinel.txt', '../sentinel.txt', '%2e%2e%2fsentinel.txt', 'blobs', 'tmp', 'db', 'secret',
  'sha256:' + 'a'.repeat(64), 'library', 'admin', '_ping', 'null', 'undefined', '__proto__', 'constructor', 'prototype',
  '\u00e9t\u00e9', '\u202e', '\ufeff', '\u{1f433}', '\u0000', 'ａｄｍｉｎ', 'A'.repeat(300),
];

/** A path segment: adversarial tokens, ids, tags, unicode, long names, percent-junk. */
function segmentArb(sentinelPath: string): fc.Arbitrary<string> {
  const encoded = (s: string) => encodeURIComponent(s);
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...ADVERSARIAL, sentinelPath, encoded(sentinelPath), sentinelPath.replaceAll('/', '%2F')) },
    { weight: 2, arbitrary: HEX64 },
    { weight: 1, arbitrary: fc.stringMatching(/^[a-f0-9]{1,80}$/) },
    { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/) },
    { weight: 2, arbitrary: fc.string({ maxLength: 40 }).map(encoded) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }).map(encoded) },
    { weight: 1, arbitrary: fc.integer({ min: 256, max: 6000 }).map((n) => 'n'.repeat(n)) },
    { weight: 1, arbitrary: fc.array(fc.constantFrom('..', '%2e%2e', '..%2f', '%2F'), { minLength: 1, maxLength: 12 }).map((p) => p.join('/')) },
  );
}

const TEMPLATES = [
  '/v1/images/{}/json', '/v1/images/{}/layer', '/v1/images/{}/ancestry', '/v1/images/{}/checksum', '/v1/images/{}',
  '/v1/repositories/{}/{}/', '/v1/repositories/{}/', '/v1/repositories/{}/{}/tags', '/v1/repositories/{}/tags/{}',
  '/v1/repositories/{}/{}/tags/{}', '/v1/repositories/{}/{}/tags/{}/json', '/v1/repositories/{}/{}/json',
  '/v1/repositories/{}/{}/images', '/v1/repositories/{}/{}/properties', '/v1/repositories/{}/{}/auth',
  '/v1/repositories/{}/{}/collaborators', '/v1/repositories/{}/{}/collaborators/{}', '/v1/users/{}/', '/v1/users/{}',
  '/v1/search?q={}&n={}&page={}', '/_admin/{}', '/_admin/fsck?repair={}', '/_webhooks/callback/{}', '/v2/{}', '/v2/{}/{}',
  '/v2/repositories/{}/{}/tags/{}', '/{}', '/{}/{}/{}', '/v1/{}', '/v1/_ping/{}', '/_status/{}', '/metrics/{}',
  // Registry API v2: names with slashes, digests, upload ids, pagination, the realm.
  '/v2/{}/blobs/{}', '/v2/{}/{}/blobs/{}', '/v2/{}/{}/{}/manifests/{}', '/v2/{}/{}/manifests/{}', '/v2/{}/blobs/uploads/',
  '/v2/{}/{}/blobs/uploads/{}', '/v2/{}/{}/blobs/uploads/?digest={}', '/v2/{}/{}/blobs/uploads/?mount={}&from={}',
  '/v2/{}/{}/blobs/uploads/{}?digest={}', '/v2/{}/{}/tags/list?n={}&last={}', '/v2/_catalog?n={}&last={}',
  '/v2/{}/{}/referrers/{}?artifactType={}', '/v2/token?scope={}&service={}', '/v2/users/{}/manifests/{}', '/v2/{}/manifests/{}?tag={}',
];
const METHODS = ['GET', 'HEAD', 'PUT', 'DELETE', 'POST', 'PATCH', 'OPTIONS'];

function fill(template: string, segments: string[]): string {
  let i = 0;
  return template.replace(/\{\}/g, () => segments[i++ % segments.length]);
}

/** Authorization headers: garbage, wrong, unknown users, forged and malformed tokens. */
const authArb = fc.oneof(
  fc.constant('Basic '),
  fc.constant('Basic ' + Buffer.from(':').toString('base64')),
  fc.constant('Basic !!!not-base64!!!'),
  fc.tuple(fc.string({ maxLength: 40 }), fc.string({ maxLength: 80 })).map(([u, p]) => 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64')),
  fc.tuple(fc.string({ unit: 'grapheme', maxLength: 20 }), fc.string({ unit: 'grapheme', maxLength: 20 })).map(
    ([u, p]) => 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64'),
  ),
  fc.constant('Basic ' + Buffer.from(`fuzzer:${'x'.repeat(5000)}`).toString('base64')),
  fc.string({ maxLength: 100 }).map((s) => `Token ${s}`),
  fc.tuple(fc.base64String({ maxLength: 120 }), fc.base64String({ maxLength: 60 }), fc.string({ maxLength: 30 })).map(
    ([p, m, r]) => `Token signature=${p}.${m},repository="${r}",access=write`,
  ),
  fc.constant('Token signature=e30.e30,repository="fuzz/app",access=read'),
  fc.constant(`Bearer ${'z'.repeat(64)}`),
  fc.string({ maxLength: 60 }),
);

const rangeArb = fc.oneof(
  fc.tuple(fc.integer({ min: -5, max: 300_000 }), fc.integer({ min: -5, max: 300_000 })).map(([a, b]) => `bytes=${a}-${b}`),
  fc.integer({ min: -10, max: 300_000 }).map((n) => `bytes=-${n}`),
  fc.integer({ min: 0, max: 300_000 }).map((n) => `bytes=${n}-`),
  fc.constantFrom('bytes=', 'bytes=-', 'bytes=--1', 'bytes=0-0,5-9', 'bytes=99999999999999999999-', 'bytes=0-99999999999999999999', 'items=0-1', 'bytes=1e3-2e3', 'bytes=0x10-0x20', '=', 'bytes=\u0661-\u0662'),
  fc.string({ maxLength: 40 }),
);

/** Bodies: nothing, garbage, random JSON, deep nesting, JSON strings, objects with an id. */
function bodyArb(ids: string[]): fc.Arbitrary<Buffer | null> {
  return fc.oneof(
    fc.constant(null),
    fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a)),
    fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)),
    fc.jsonValue({ maxDepth: 6 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
    fc.integer({ min: 1, max: 30_000 }).map((n) => Buffer.from('['.repeat(n) + ']'.repeat(n))),
    fc.integer({ min: 1, max: 20_000 }).map((n) => Buffer.from('{"a":'.repeat(n) + '1' + '}'.repeat(n))),
    fc.integer({ min: 1, max: 30_000 }).map((n) => Buffer.from('['.repeat(n))),
    fc.constantFrom(...ids).map((id) => Buffer.from(JSON.stringify(id))),
    fc.tuple(fc.constantFrom(...ids), fc.jsonValue({ maxDepth: 4 })).map(([id, extra]) => Buffer.from(JSON.stringify({ id, parent: extra, extra }))),
    fc.constantFrom(...ids).map((id) => Buffer.from(`{"id":"${id}","x":"\udc00\ud800"}`)),
    fc.constant(Buffer.from([0xff, 0xfe, 0x7b, 0x7d])),
    fc.constant(Buffer.from('"' + 'j'.repeat(MAX_JSON + 10) + '"')),
    // Manifest-shaped JSON: wrong types, unknown blobs, bad digests, deep indexes.
    fc.record({
      schemaVersion: fc.oneof(fc.constant(2), fc.constant(1), fc.jsonValue({ maxDepth: 1 })),
      mediaType: fc.oneof(fc.constantFrom('application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'), fc.string({ maxLength: 30 })),
      config: fc.oneof(fc.record({ mediaType: fc.string({ maxLength: 20 }), digest: fc.oneof(HEX64.map((h) => `sha256:${h}`), fc.string({ maxLength: 30 })), size: fc.oneof(fc.integer(), fc.double()) }), fc.jsonValue({ maxDepth: 2 })),
      layers: fc.oneof(fc.array(fc.record({ mediaType: fc.string({ maxLength: 20 }), digest: HEX64.map((h) => `sha256:${h}`), size: fc.integer({ min: -1, max: 1e9 }) }), { maxLength: 4 }), fc.jsonValue({ maxDepth: 2 })),
      manifests: fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 3 }),
      subject: fc.jsonValue({ maxDepth: 2 }),
    }, { requiredKeys: [] }).map((m) => Buffer.from(JSON.stringify(m))),
  );
}

function headerArb(): fc.Arbitrary<Array<[string, string]>> {
  return fc
    .record(
      {
        authorization: authArb,
        range: rangeArb,
        ifRange: fc.oneof(fc.string({ maxLength: 80 }), fc.constant('"sha256:' + 'a'.repeat(64) + '"')),
        ifNoneMatch: fc.oneof(fc.string({ maxLength: 80 }), fc.constant('*'), fc.constant('W/"x", "y"')),
        checksum: fc.oneof(fc.string({ maxLength: 90 }), fc.constant('tarsum+sha256:' + 'a'.repeat(64)), fc.constant('sha256:' + 'A'.repeat(64))),
        payload: fc.oneof(fc.string({ maxLength: 90 }), fc.constant('sha256:'), fc.constant('md5:abc')),
        token: fc.constantFrom('true', 'TRUE', 'false', 'yes', ''),
        contentType: fc.oneof(fc.constantFrom('application/json', 'text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded'), fc.string({ maxLength: 40 })),
        userAgent: fc.oneof(fc.string({ maxLength: 200 }), fc.constant('docker/99999999999999999999.0 go/x os/../../etc arch/\u{1f433}')),
        endpoints: fc.string({ maxLength: 40 }),
        contentRange: fc.oneof(rangeArb, fc.tuple(fc.integer({ min: -5, max: 300_000 }), fc.integer({ min: -5, max: 300_000 })).map(([a, b]) => `${a}-${b}`)),
        accept: fc.oneof(fc.constantFrom('application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.oci.image.index.v1+json', '*/*', 'text/*'), fc.string({ maxLength: 60 })),
      },
      { requiredKeys: [] },
    )
    .map((h) => {
      const out: Array<[string, string]> = [];
      const names: Record<string, string> = {
        authorization: 'Authorization', range: 'Range', ifRange: 'If-Range', ifNoneMatch: 'If-None-Match', checksum: 'X-Docker-Checksum',
        payload: 'X-Docker-Checksum-Payload', token: 'X-Docker-Token', contentType: 'Content-Type', userAgent: 'User-Agent', endpoints: 'X-Docker-Endpoints',
        contentRange: 'Content-Range', accept: 'Accept',
      };
      for (const [k, v] of Object.entries(h)) out.push([names[k], (v as string).replace(/[\r\n]/g, ' ')]);
      return out;
    });
}

// ── the suite ───────────────────────────────────────────────────────────────────────
describe('hostile input (fast-check fuzz against a live server)', () => {
  let parent = '';
  let root = '';
  let sentinel = '';
  let marker = '';
  let srv: TestServer;
  let outsideBefore: Outside;
  let sentinelAtime = 0;
  let atimeWorks = false;
  let complete: HarnessImage;
  let pending: HarnessImage;
  let casesSent = 0;
  const rand = prng(SEED);

  before(async () => {
    parent = await fs.mkdtemp(path.join(os.tmpdir(), 'registry-fuzz-'));
    root = path.join(parent, 'root');
    marker = `SENTINEL-${randomBytes(16).toString('hex')}`;
    sentinel = path.join(parent, 'sentinel.txt');
    await fs.writeFile(sentinel, marker);
    await fs.mkdir(path.join(parent, 'outside', 'blobs', 'sha256'), { recursive: true });
    await fs.writeFile(path.join(parent, 'outside', 'secret'), marker);
    // An access time in the past: a read of the file would move it (relatime updates atime
    // when it is older than mtime). Whether this filesystem records reads is probed first.
    const probe = path.join(parent, 'atime-probe');
    await fs.writeFile(probe, 'x');
    await fs.utimes(probe, new Date(1_000_000), new Date());
    await fs.readFile(probe);
    atimeWorks = (await fs.stat(probe)).atimeMs !== 1_000_000;
    await fs.rm(probe);
    await fs.utimes(sentinel, new Date(1_000_000), new Date());
    sentinelAtime = (await fs.stat(sentinel)).atimeMs;

    // The fuzz sends thousands of wrong passwords from one address: the login throttle
    // (tested in auth-matrix.test.ts) is opened wide so that it does not answer for the code under test.
    srv = await startTestServer({
      root,
      overrides: { upload_idle_timeout_seconds: 1, max_json_bytes: MAX_JSON, login_max_failures: 1_000_000, login_max_failures_per_address: 1_000_000 },
    });
    complete = makeImage(rand, null, 100_000);
    pending = makeImage(rand, complete.id, 5000);
    const json = { 'Content-Type': 'application/json' };
    for (const img of [complete]) {
      assert.equal((await send(srv.url, 'PUT', `/v1/images/${img.id}/json`, { headers: json, body: img.json })).status, 200);
      assert.equal((await send(srv.url, 'PUT', `/v1/images/${img.id}/layer`, { body: img.layer })).status, 200);
      assert.equal((await send(srv.url, 'PUT', `/v1/images/${img.id}/checksum`, { headers: { 'X-Docker-Checksum-Payload': img.checksum } })).status, 200);
    }
    assert.equal((await send(srv.url, 'PUT', `/v1/images/${pending.id}/json`, { headers: json, body: pending.json })).status, 200);
    assert.equal((await send(srv.url, 'PUT', '/v1/repositories/fuzz/app/tags/latest', { headers: json, body: Buffer.from(JSON.stringify(complete.id)) })).status, 200);
    const signup = await send(srv.url, 'POST', '/v1/users/', { headers: json, body: Buffer.from(JSON.stringify({ username: 'fuzzer', password: 'fuzzer-pass', email: 'fuzz@example.test' })) });
    assert.equal(signup.status, 201);
    outsideBefore = await snapshotOutside(parent, root);
  });

  after(async () => {
    await srv?.destroy();
    await fs.rm(parent, { recursive: true, force: true });
    console.log(`fuzz: ${casesSent} cases sent (seed ${SEED})`);
  });

  /** One case: never a 5xx, never the sentinel's bytes, always an answer. */
  async function sendCase(c: RawCase): Promise<RawResult> {
    casesSent += 1;
    const res = await rawHttp(portOf(srv), c);
    const what = `${c.method} ${c.target.slice(0, 200)} [${c.headers.map(([k, v]) => `${k}: ${v.slice(0, 60)}`).join('; ')}] body ${c.body?.length ?? 0} bytes`;
    assert.equal(res.timedOut, false, `no answer within 20 s: ${what}`);
    assert.notEqual(res.status, null, `the connection closed without an answer: ${what}`);
    assert.ok(res.status! < 500, `${res.status} for ${what}: ${res.body.toString('utf8').slice(0, 300)}`);
    assert.ok(!res.body.includes(marker) && !res.head.includes(marker), `the answer carries the sentinel's bytes: ${what}`);
    return res;
  }

  /** After a batch: the server answers, nothing outside the root changed or was read. */
  async function afterBatch(name: string): Promise<void> {
    const ping = await send(srv.url, 'GET', '/v1/_ping');
    assert.equal(ping.status, 200, `${name}: _ping`);
    assert.equal(ping.body.toString(), 'true');
    const outside = await snapshotOutside(parent, root);
    assert.deepEqual([...outside.entries.keys()].sort(), [...outsideBefore.entries.keys()].sort(), `${name}: no file appeared or vanished outside the storage root`);
    for (const [p, sig] of outsideBefore.entries) assert.equal(outside.entries.get(p), sig, `${name}: ${p} is unchanged`);
    if (atimeWorks) assert.equal((await fs.stat(sentinel)).atimeMs, sentinelAtime, `${name}: the sentinel was never read`);
    await checkRootLayout(root);
    // The fixtures survived: the complete image pulls back byte-exact.
    await verifyPull(srv.url, 'fuzz/app', 'latest', complete.id, new Map([[complete.id, complete]]));
  }

  const fcParams = (runs: number) => ({ seed: SEED, numRuns: Math.max(1, Math.round(runs * SCALE)), interruptAfterTimeLimit: 60_000, markInterruptAsFailure: false });

  /** fc.assert, with the (possibly megabyte-long) counterexample cut short in the report. */
  async function check<Ts extends [unknown, ...unknown[]]>(property: fc.IAsyncProperty<Ts>, runs: number): Promise<void> {
    try {
      await fc.assert(property, fcParams(runs));
    } catch (err) {
      const message = String((err as Error).message);
      throw new Error(message.length > 4000 ? `${message.slice(0, 2000)}\n…\n${message.slice(-2000)}` : message);
    }
  }

  it('random and adversarial paths × methods (traversal, encoded slashes, NUL, long names, unicode)', async () => {
    const seg = segmentArb(sentinel);
    await check(
      fc.asyncProperty(
        fc.constantFrom(...TEMPLATES),
        fc.array(seg, { minLength: 1, maxLength: 4 }),
        fc.constantFrom(...METHODS),
        fc.option(authArb, { nil: undefined }),
        async (template, segments, method, auth) => {
          const target = fill(template, segments);
          const headers: Array<[string, string]> = auth === undefined ? [] : [['Authorization', auth.replace(/[\r\n]/g, ' ')]];
          const body = method === 'PUT' || method === 'POST' ? Buffer.from(JSON.stringify(complete.id)) : null;
          await sendCase({ method, target: target.startsWith('/') ? target : `/${target}`, headers, body });
        },
      ),
      220,
    );
    await afterBatch('paths');
  });

  it('random headers on real routes (Range, If-Range, checksums, Authorization, Content-Type, User-Agent)', async () => {
    const routes: Array<[string, string]> = [
      ['GET', `/v1/images/${complete.id}/layer`],
      ['HEAD', `/v1/images/${complete.id}/layer`],
      ['GET', `/v1/images/${complete.id}/json`],
      ['GET', `/v1/images/${complete.id}/ancestry`],
      ['PUT', `/v1/images/${pending.id}/checksum`],
      ['PUT', `/v1/images/${pending.id}/json`],
      ['GET', '/v1/repositories/fuzz/app/tags'],
      ['GET', '/v1/repositories/fuzz/app/images'],
      ['PUT', '/v1/repositories/fuzz/other/'],
      ['PUT', '/v1/repositories/fuzz/app/auth'],
      ['GET', '/v1/users/'],
      ['GET', '/v1/search?q=fuzz'],
    ];
    await check(
      fc.asyncProperty(fc.constantFrom(...routes), headerArb(), async ([method, target], headers) => {
        const body = method === 'PUT' ? (target.endsWith('/json') ? pending.json : Buffer.from('[]')) : null;
        await sendCase({ method, target, headers, body });
      }),
      160,
    );
    // Ranges against the layer, checked for exactness when the answer is 206.
    await check(
      fc.asyncProperty(rangeArb, async (range) => {
        const res = await sendCase({ method: 'GET', target: `/v1/images/${complete.id}/layer`, headers: [['Range', range.replace(/[\r\n]/g, ' ')]], body: null });
        if (res.status === 206) {
          const m = /content-range: bytes (\d+)-(\d+)\/(\d+)/i.exec(res.head);
          assert.ok(m, `206 without Content-Range for ${range}`);
          assert.ok(res.body.equals(complete.layer.subarray(Number(m[1]), Number(m[2]) + 1)), `206 bytes for ${range}`);
        } else if (res.status === 200) {
          assert.ok(res.body.equals(complete.layer), `200 is the whole layer for ${range}`);
        } else {
          assert.equal(res.status, 416, `a Range is answered 200, 206 or 416 (${range}: ${res.status})`);
        }
      }),
      80,
    );
    await afterBatch('headers');
  });

  it('random bodies on every JSON route (invalid JSON, deep nesting, huge JSON, binary, invalid UTF-8)', async () => {
    const ids = [complete.id, pending.id, 'a'.repeat(64), '../../sentinel.txt'];
    const routes: Array<[string, string]> = [
      ['PUT', `/v1/images/${pending.id}/json`],
      ['PUT', `/v1/images/${'b'.repeat(64)}/json`],
      ['PUT', '/v1/repositories/fuzz/app/tags/fuzzed'],
      ['PUT', '/v1/repositories/fuzz/bodies/'],
      ['PUT', '/v1/repositories/fuzz/bodies/images'],
      ['PUT', '/v1/repositories/fuzz/bodies/properties'],
      ['PUT', '/v1/repositories/fuzz/bodies/collaborators/fuzzer'],
      ['POST', '/v1/users/'],
      ['PUT', '/v1/users/fuzzer/'],
      ['PUT', `/v1/images/${pending.id}/layer`],
    ];
    await check(
      fc.asyncProperty(fc.constantFrom(...routes), bodyArb(ids), fc.boolean(), async ([method, target], body, chunked) => {
        const headers: Array<[string, string]> = [['Content-Type', 'application/json']];
        let payload = body;
        if (chunked && body) {
          headers.push(['Transfer-Encoding', 'chunked']);
          payload = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
        }
        if (target.startsWith('/v1/users/fuzzer')) headers.push(['Authorization', 'Basic ' + Buffer.from('fuzzer:fuzzer-pass').toString('base64')]);
        const res = await sendCase({ method, target, headers, body: payload });
        if (body && body.length > MAX_JSON && !target.endsWith('/layer')) assert.equal(res.status, 413, `a body over max_json_bytes is 413 (${target})`);
      }),
      160,
    );
    await afterBatch('bodies');
  });

  it('JSON bodies over max_json_bytes are 413 with a JSON error on every JSON route, declared or streamed', async () => {
    const over = Buffer.from('"' + 'x'.repeat(MAX_JSON) + '"');
    const routes: Array<[string, string]> = [
      ['PUT', `/v1/images/${'c'.repeat(64)}/json`],
      ['PUT', '/v1/repositories/fuzz/app/tags/big'],
      ['PUT', '/v1/repositories/fuzz/big/'],
      ['PUT', '/v1/repositories/fuzz/big/images'],
      ['PUT', '/v1/repositories/fuzz/app/properties'],
      ['PUT', '/v1/repositories/fuzz/app/collaborators/fuzzer'],
      ['POST', '/v1/users/'],
      ['PUT', '/v1/users/fuzzer/'],
    ];
    for (const [method, target] of routes) {
      const auth: Array<[string, string]> = [['Authorization', 'Basic ' + Buffer.from('fuzzer:fuzzer-pass').toString('base64')]];
      for (const [how, headers, body] of [
        ['Content-Length', auth, over],
        ['chunked', [...auth, ['Transfer-Encoding', 'chunked']], Buffer.concat([Buffer.from(`${over.length.toString(16)}\r\n`), over, Buffer.from('\r\n0\r\n\r\n')])],
        // Announced only: refused before a byte of the body is read.
        ['huge Content-Length, no body', [...auth, ['Content-Length', '999999999999999']], null],
      ] as Array<[string, Array<[string, string]>, Buffer | null]>) {
        const res = await sendCase({ method, target, headers: [['Content-Type', 'application/json'], ...headers], body });
        assert.equal(res.status, 413, `${method} ${target} (${how}): ${res.status} ${res.body.toString().slice(0, 200)}`);
        assert.match(res.body.toString(), /^\{"error":"/, `${method} ${target} (${how}): a JSON error`);
      }
    }
    await afterBatch('413');
  });

  it('a stalled layer upload is 408 after the idle timeout: temp file removed, image still pending, push again works', async () => {
    const img = makeImage(rand, complete.id, 600_000);
    assert.equal((await send(srv.url, 'PUT', `/v1/images/${img.id}/json`, { body: img.json })).status, 200);
    const upload = openUpload(`${srv.url}/v1/images/${img.id}/layer`);
    // Bytes flow (a piece every 50 ms) until the server has its temp file…
    let during: string[] = [];
    let sent = 0;
    for (let i = 0; i < 100 && during.length === 0; i++) {
      await upload.write(img.layer.subarray(sent, sent + 4096));
      sent += 4096;
      during = await fs.readdir(path.join(root, 'tmp'));
      if (during.length === 0) await sleep(50);
    }
    assert.equal(during.length, 1, 'the upload writes a temp file');
    // …then the client stops sending (and never ends the request).
    const res = await upload.response;
    assert.equal(res.status, 408, res.body.toString());
    assert.match(JSON.parse(res.body.toString()).error, /No data received/);
    assert.equal(res.headers.connection, 'close');
    upload.kill();
    assert.deepEqual(await fs.readdir(path.join(root, 'tmp')), [], 'the temp file is removed');
    assert.equal((await send(srv.url, 'GET', `/v1/images/${img.id}/json`)).status, 400, 'the image stays pending');
    // Pushing it again works.
    assert.equal((await send(srv.url, 'PUT', `/v1/images/${img.id}/layer`, { body: img.layer, pieceSize: 64 * 1024 })).status, 200);
    assert.equal((await send(srv.url, 'PUT', `/v1/images/${img.id}/checksum`, { headers: { 'X-Docker-Checksum-Payload': img.checksum } })).status, 200);
    const layer = await send(srv.url, 'GET', `/v1/images/${img.id}/layer`);
    assert.ok(layer.body.equals(img.layer));
    assert.equal(createHash('sha256').update(layer.body).digest('hex'), createHash('sha256').update(img.layer).digest('hex'));
  });

  it('a layer upload announcing more bytes than it sends, and a stalled JSON body, are cut off; the server stays healthy', async () => {
    const img = makeImage(rand, null, 1000);
    assert.equal((await send(srv.url, 'PUT', `/v1/images/${img.id}/json`, { body: img.json })).status, 200);
    casesSent += 2;
    const layer = await rawHttp(portOf(srv), {
      method: 'PUT',
      target: `/v1/images/${img.id}/layer`,
      headers: [['Content-Length', '999999999999']],
      body: Buffer.alloc(1000),
    });
    assert.equal(layer.timedOut, false, 'the server ends it by itself');
    assert.equal(layer.status, 408, `huge Content-Length, short body: ${layer.status} ${layer.body.toString()}`);
    const json = await rawHttp(portOf(srv), { method: 'PUT', target: `/v1/images/${img.id}/json`, headers: [['Content-Length', '1000']], body: Buffer.from('{"id": ') });
    assert.equal(json.timedOut, false, 'the server ends it by itself');
    // Cut off: either no answer at all (connection closed) or a client error.
    assert.ok(json.status === null || json.status < 500, `stalled JSON body: ${json.status}`);
    await afterBatch('stalls');
  });
});
