/**
 * The test double's faults, each shown to reach a client: answers instead of the route (in
 * each face's error shape), delays, connections dropped before the answer, answers cut off
 * mid-body (which `registry pull` resumes with Range, from the memory store and from the
 * disk store, whose downloads would otherwise bypass JavaScript with sendfile), extra
 * headers; matching by method, exact path and pattern; `times`, `remove()`, `clear()`; and
 * rules that make no sense are refused.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTestRegistry, type Fault, type TestRegistry } from 'v1-registry/testing';
import { client, pyRead, sha256 } from '../client/helpers.js';
import { makeTempDir } from '../helpers/server.js';

/** GET with node:http (no retries, no pooling): the status and body, or the socket error. */
function rawGet(url: string): Promise<{ status: number; body: Buffer } | { error: NodeJS.ErrnoException }> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', (error) => resolve({ error }));
      res.on('aborted', () => resolve({ error: Object.assign(new Error('aborted'), { code: 'ECONNRESET' }) }));
    });
    req.on('error', (error) => resolve({ error }));
  });
}

describe('test double faults', { timeout: 60_000 }, () => {
  let reg: TestRegistry;
  let layerId: string;
  before(async () => {
    reg = await createTestRegistry();
    const seeded = await reg.seed({ repositories: [{ name: 'alice/app', tags: { latest: { layers: [Buffer.alloc(100_000, 3)] } } }] });
    layerId = seeded.repositories['alice/app'].tags.latest.layers[0].id;
  });
  after(() => reg.close());

  it('answers with the status instead of the route, in the error shape of the face', async () => {
    reg.faults.add({ path: '/v1/repositories/alice/app/tags', status: 500 });
    reg.faults.add({ path: '/v2/repositories/alice/', status: 502 });
    reg.faults.add({ path: '/v2/', status: 503 });
    try {
      const v1 = await fetch(`${reg.url}/v1/repositories/alice/app/tags`);
      assert.equal(v1.status, 500);
      assert.deepEqual(await v1.json(), { error: 'Injected fault (HTTP 500)' });
      const hub = await fetch(`${reg.url}/v2/repositories/alice/`);
      assert.equal(hub.status, 502);
      assert.deepEqual(await hub.json(), { detail: 'Injected fault (HTTP 502)', message: 'Injected fault (HTTP 502)' });
      const v2 = await fetch(`${reg.url}/v2/`);
      assert.equal(v2.status, 503);
      assert.match(v2.headers.get('content-type') ?? '', /application\/json/);
      assert.deepEqual(await v2.json(), { errors: [{ code: 'UNAVAILABLE', message: 'Injected fault (HTTP 503)', detail: null }] });
    } finally {
      reg.faults.clear();
    }
    assert.equal((await fetch(`${reg.url}/v1/repositories/alice/app/tags`)).status, 200, 'clear() removes every rule');
  });

  it('answers with the given body and headers', async () => {
    const handle = reg.faults.add({ method: 'get', path: '/v1/_ping', status: 429, headers: { 'Retry-After': '7' }, body: { detail: 'slow down' } });
    const text = reg.faults.add({ path: '/v1/search', status: 503, body: 'maintenance' });
    const bytes = reg.faults.add({ path: '/v1/users/', status: 500, body: Buffer.from([1, 2, 3]) });
    try {
      const res = await fetch(`${reg.url}/v1/_ping`);
      assert.equal(res.status, 429);
      assert.equal(res.headers.get('retry-after'), '7');
      assert.deepEqual(await res.json(), { detail: 'slow down' });
      assert.equal((await fetch(`${reg.url}/v1/_ping`, { method: 'HEAD' })).status, 200, 'another method passes');
      const search = await fetch(`${reg.url}/v1/search`);
      assert.equal(search.headers.get('content-type'), 'text/plain; charset=utf-8');
      assert.equal(await search.text(), 'maintenance');
      const users = await fetch(`${reg.url}/v1/users/`);
      assert.equal(users.headers.get('content-type'), 'application/octet-stream');
      assert.deepEqual([...Buffer.from(await users.arrayBuffer())], [1, 2, 3]);
    } finally {
      for (const h of [handle, text, bytes]) h.remove();
    }
    assert.equal((await fetch(`${reg.url}/v1/_ping`)).status, 200, 'remove() removes the rule');
  });

  it('adds headers to the route\'s own answer', async () => {
    const handle = reg.faults.add({ path: /^\/v1\/_ping$/, headers: { 'X-Injected': 'yes', 'Cache-Control': 'no-store' } });
    try {
      const res = await fetch(`${reg.url}/v1/_ping`);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'true');
      assert.equal(res.headers.get('x-injected'), 'yes');
    } finally {
      handle.remove();
    }
  });

  it('delays, then routes (or answers); the first matching rule applies; times counts requests', async () => {
    const slow = reg.faults.add({ path: { regex: '^/v1/repositories/[^/]+/app/tags$' }, delayMs: 150, times: 1 });
    const shadowed = reg.faults.add({ path: '/v1/repositories/alice/app/tags', status: 500, times: 1 });
    let started = Date.now();
    const first = await fetch(`${reg.url}/v1/repositories/alice/app/tags`);
    assert.equal(first.status, 200);
    assert.ok(Date.now() - started >= 150, `answered after ${Date.now() - started} ms`);
    assert.deepEqual([slow.hits, slow.spent, shadowed.hits], [1, true, 0]);
    assert.equal((await fetch(`${reg.url}/v1/repositories/alice/app/tags`)).status, 500, 'the next rule once the first is spent');
    assert.equal((await fetch(`${reg.url}/v1/repositories/alice/app/tags`)).status, 200);
    const slowError = reg.faults.add({ path: '/v1/_ping', delayMs: 100, status: 504, times: 1 });
    started = Date.now();
    assert.equal((await fetch(`${reg.url}/v1/_ping`)).status, 504);
    assert.ok(Date.now() - started >= 100);
    assert.equal(slowError.spent, true);
  });

  it('drops the connection before the answer', async () => {
    reg.faults.add({ path: '/v1/_ping', drop: 'before-headers', times: 1 });
    const got = await rawGet(`${reg.url}/v1/_ping`);
    assert.ok('error' in got, 'no answer');
    assert.match(got.error.code ?? got.error.message, /ECONNRESET|socket hang up/);
    const entry = reg.requests.filter((r) => r.path === '/v1/_ping').at(-1);
    assert.deepEqual([entry?.status, entry?.fault, entry?.done], [0, true, true]);
  });

  it('cuts an answer after afterBytes body bytes: the head and exactly those bytes arrive', async () => {
    reg.faults.add({ path: `/v1/images/${layerId}/layer`, drop: 'mid-body', afterBytes: 4321, times: 1 });
    const received: Buffer[] = [];
    const outcome = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; aborted: boolean }>((resolve) => {
      http.get(`${reg.url}/v1/images/${layerId}/layer`, { agent: false }, (res) => {
        res.on('data', (c: Buffer) => received.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, aborted: false }));
        res.on('error', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, aborted: true }));
      });
    });
    assert.equal(outcome.status, 200);
    assert.equal(outcome.headers['content-length'], '100000', 'the head announced the whole layer');
    assert.equal(outcome.aborted, true);
    assert.equal(Buffer.concat(received).length, 4321);
    const entry = reg.requests.filter((r) => r.path === `/v1/images/${layerId}/layer`).at(-1);
    assert.deepEqual([entry?.status, entry?.bytesOut, entry?.fault], [200, 4321, true]);
    // afterBytes 0: the head only; a JSON answer is cut as well as a streamed layer.
    reg.faults.add({ path: '/v1/repositories/alice/app/tags', drop: 'mid-body', times: 1 });
    const tags = await rawGet(`${reg.url}/v1/repositories/alice/app/tags`);
    assert.ok('error' in tags);
    assert.equal((await rawGet(`${reg.url}/v1/repositories/alice/app/tags`) as { status: number }).status, 200);
  });

  it('refuses rules that make no sense, saying why', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ path: '/x', status: 99 }, /status/],
      [{ path: '/x', body: 'no status' }, /needs a `status`/],
      [{ path: '/x', drop: 'sometimes' }, /drop/],
      [{ path: '/x', afterBytes: 10 }, /afterBytes/],
      [{ path: '/x', drop: 'mid-body', afterBytes: -1 }, /afterBytes/],
      [{ path: '/x', times: 0 }, /times/],
      [{ path: '/x', delayMs: 1.5 }, /delayMs/],
      [{ path: '/x', method: 'GET /' }, /method/],
      [{ path: '/x', headers: { 'Bad Name': 'x' } }, /header/],
      [{ path: 42 }, /path/],
      [{ path: { regex: '(' } }, /Invalid regular expression/],
    ];
    for (const [rule, message] of bad) assert.throws(() => reg.faults.add(rule as Fault), message, JSON.stringify(rule));
  });
});

describe('registry pull resumes a layer download the double cuts', { timeout: 60_000 }, () => {
  let dir: string;
  before(async () => {
    dir = await makeTempDir('test-double-resume-');
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  for (const store of ['memory', 'disk'] as const) {
    it(`cut at afterBytes, resumed with Range (${store} store)`, async () => {
      const reg = await createTestRegistry(store === 'disk' ? { store: { root: path.join(dir, 'root') } } : {});
      try {
        const big = Buffer.alloc(300_000);
        for (let i = 0; i < big.length; i++) big[i] = (i * 7) % 251;
        const seeded = (await reg.seed({ repositories: [{ name: 'alice/resume', tags: { latest: { layers: ['base', big] } } }] })).repositories['alice/resume'].tags.latest;
        const cutLayer = seeded.layers[1];
        const fault = reg.faults.add({ method: 'GET', path: `/v1/images/${cutLayer.id}/layer`, drop: 'mid-body', afterBytes: 123_456, times: 1 });
        reg.requests.clear();
        const out = path.join(dir, `${store}.tar`);
        const res = await client('pull', [`${reg.host}/alice/resume:latest`, '-o', out, '--json', '--progress', 'lines']);
        assert.equal(res.code, 0, res.stderr);
        assert.equal(fault.spent, true);
        assert.match(res.stderr, /interrupted after .*resuming \(1\/5\)/);
        const gets = reg.requests.filter((r) => r.path === `/v1/images/${cutLayer.id}/layer`);
        assert.equal(gets.length, 2, JSON.stringify(gets));
        assert.deepEqual([gets[0].status, gets[0].bytesOut, gets[0].fault], [200, 123_456, true], 'the double sent exactly afterBytes');
        // The client resumes from what it had read when the connection closed: all of it, or
        // less when bytes still waiting in its buffers went with the connection.
        const from = Number(/^bytes=(\d+)-$/.exec(String(gets[1].headers.range))?.[1]);
        assert.ok(from > 0 && from <= 123_456, `resumed at ${gets[1].headers.range}`);
        assert.deepEqual([gets[1].status, gets[1].bytesOut, gets[1].fault], [206, 300_000 - from, false]);
        const members = pyRead(out);
        const manifest = JSON.parse((members.get('manifest.json')?.data as Buffer).toString()) as Array<{ Layers: string[] }>;
        const layer = members.get(manifest[0].Layers[1])?.data as Buffer;
        assert.equal(sha256(layer), sha256(big), 'the resumed layer is whole');
      } finally {
        await reg.close();
      }
    });
  }
});
