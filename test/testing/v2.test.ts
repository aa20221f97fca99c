/**
 * The test double over the Registry API v2: what `reg.seed` made pulls over v2 with clients
 * we did not write (npm `docker-registry-client`'s v2 client, and skopeo), under the digests
 * the seed returned (`manifestDigest`, `configDigest`, the layers' `digest`); and the faults
 * reach v2 clients: v2 paths get the v2 error envelope while the Hub double's `/v2/users…`,
 * `/v2/repositories…` keep the Hub's, two 503s on a manifest that a caller retrying skopeo
 * rides out, and a blob download cut after `afterBytes` that the v2 client sees as short and
 * skopeo reports as an unexpected EOF (then gets whole once the rule is spent). skopeo 1.9's
 * own `--retry-times` retries neither a 503 nor a cut body (containers/common's retry takes
 * only network errors), so the retrying is the test's, as a CI script's would be.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import drc, { type ClientError, type ManifestV2, type RegistryClientV2 } from 'docker-registry-client';
import { createTestRegistry, type SeedResult, type TestRegistry } from 'v1-registry/testing';
import { hasSkopeo, skopeo } from '../client/helpers.js';
import { makeTempDir } from '../helpers/server.js';
import { call, silentLogger } from '../helpers/third-party.js';
import { MEDIA } from '../helpers/v2.js';

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const BIG = Buffer.alloc(400_000, 7);

/** The whole body of a v2 blob stream, or the error the client raised on it. */
function drain(stream: NodeJS.ReadableStream): Promise<{ bytes: Buffer } | { error: Error }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => setImmediate(() => resolve({ bytes: Buffer.concat(chunks) })));
    stream.on('error', (error: Error) => resolve({ error }));
    stream.on('aborted', () => resolve({ error: new Error('aborted') }));
    stream.resume();
  });
}

describe('the test double over the Registry API v2', { timeout: 180_000 }, () => {
  let reg: TestRegistry;
  let seeded: SeedResult;
  let dir: string;
  const clients: RegistryClientV2[] = [];
  const client = (name: string) => {
    const c = drc.createClientV2({ name: `${reg.host}/${name}`, scheme: 'http', maxSchemaVersion: 2, log: silentLogger });
    clients.push(c);
    return c;
  };

  before(async () => {
    reg = await createTestRegistry();
    dir = await makeTempDir('double-v2-');
    seeded = await reg.seed({
      repositories: [
        { name: 'alice/app', tags: { latest: { layers: ['base', BIG], config: { config: { Cmd: ['/bin/run'] } } }, old: { layers: ['base'] } } },
        { name: 'busybox', tags: { latest: { layers: ['busybox'] } } },
      ],
    });
  });
  after(async () => {
    for (const c of clients) c.close();
    await reg?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('docker-registry-client (v2): tags, the manifest under the seeded manifestDigest, the config and every layer byte for byte', async () => {
    const image = seeded.repositories['alice/app'].tags.latest;
    const c = client('alice/app');
    const tags = await call<{ name: string; tags: string[] }>((cb) => c.listTags(cb));
    assert.deepEqual(tags.result, { name: 'alice/app', tags: ['latest', 'old'] });
    const got = await call<ManifestV2>((cb) => c.getManifest({ ref: 'latest' }, cb));
    assert.equal(got.res.headers['docker-content-digest'], image.manifestDigest);
    assert.equal(got.result.mediaType, MEDIA.dockerManifest);
    assert.equal(got.result.config?.digest, image.configDigest);
    assert.deepEqual(got.result.layers?.map((l) => l.digest), image.layers.map((l) => l.digest));
    const byDigest = await call<ManifestV2>((cb) => c.getManifest({ ref: image.manifestDigest }, cb));
    assert.deepEqual(byDigest.result, got.result);
    for (const digest of [image.configDigest as string, ...image.layers.map((l) => l.digest)]) {
      const stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) => c.createBlobReadStream({ digest }, (err, s) => (err ? reject(err) : resolve(s))));
      const read = await drain(stream);
      assert.ok('bytes' in read, `blob ${digest}: ${'error' in read ? read.error.message : ''}`);
      assert.equal(sha256(read.bytes), digest);
    }
    // `busybox` is `library/busybox` on v1: one set of tags.
    const official = await call<ManifestV2>((cb) => client('busybox').getManifest({ ref: 'latest' }, cb));
    assert.equal(official.res.headers['docker-content-digest'], seeded.repositories.busybox.tags.latest.manifestDigest);
  });

  it('skopeo: inspect shows the seeded manifest digest and config; copy out gives the seeded layers', { skip: hasSkopeo() ? false : 'skopeo is not installed (apt-get install skopeo)' }, async () => {
    const image = seeded.repositories['alice/app'].tags.latest;
    const info = await skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/alice/app:latest`], 60_000);
    assert.equal(info.code, 0, info.stderr);
    const parsed = JSON.parse(info.stdout) as { Digest: string; Layers: string[]; Os: string };
    assert.equal(parsed.Digest, image.manifestDigest);
    assert.deepEqual(parsed.Layers, image.layers.map((l) => l.digest));
    const config = await skopeo(['inspect', '--tls-verify=false', '--raw', '--config', `docker://${reg.host}/alice/app:latest`], 60_000);
    assert.equal(sha256(config.stdout), image.configDigest);
    assert.deepEqual((JSON.parse(config.stdout) as { config: { Cmd: string[] } }).config.Cmd, ['/bin/run'], 'the config given to seed');
    const out = path.join(dir, 'inspect');
    const copy = await skopeo(['copy', '--src-tls-verify=false', `docker://${reg.host}/alice/app:latest`, `dir:${out}`], 60_000);
    assert.equal(copy.code, 0, copy.stderr);
    assert.equal(sha256(await fs.readFile(path.join(out, image.layers[1].digest.slice('sha256:'.length)))), image.layers[1].digest);
  });

  it('fault bodies: a v2 repository path gets the v2 envelope, the Hub double under /v2/ keeps its own shape', async () => {
    const rule = reg.faults.add({ path: /^\/v2\//, status: 503 });
    try {
      const v2 = await fetch(`${reg.url}/v2/alice/app/manifests/latest`);
      assert.equal(v2.status, 503);
      assert.deepEqual(await v2.json(), { errors: [{ code: 'UNAVAILABLE', message: 'Injected fault (HTTP 503)', detail: null }] });
      for (const hubPath of ['/v2/repositories/alice/app/', '/v2/users/login/', '/v2/user/']) {
        const hub = await fetch(`${reg.url}${hubPath}`);
        assert.equal(hub.status, 503);
        assert.deepEqual(await hub.json(), { detail: 'Injected fault (HTTP 503)', message: 'Injected fault (HTTP 503)' }, hubPath);
      }
      const err = await call((cb) => client('alice/app').listTags(cb)).then(
        () => assert.fail('expected a 503'),
        (e: ClientError) => e,
      );
      assert.equal(err.statusCode, 503, 'the v2 client sees the status');
      assert.ok(rule.hits >= 5);
    } finally {
      rule.remove();
    }
  });

  it('two 503s on the manifest, `times: 2`: skopeo sees each, a third try gets the manifest', { skip: hasSkopeo() ? false : 'skopeo is not installed (apt-get install skopeo)' }, async () => {
    const image = seeded.repositories['alice/app'].tags.old;
    const fault = reg.faults.add({ method: 'GET', path: '/v2/alice/app/manifests/old', status: 503, times: 2 });
    reg.requests.clear();
    const failures: string[] = [];
    let info = await skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/alice/app:old`], 60_000);
    while (info.code !== 0 && failures.length < 3) {
      failures.push(info.stderr);
      info = await skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/alice/app:old`], 60_000);
    }
    assert.equal(info.code, 0, info.stderr);
    assert.equal(failures.length, 2);
    for (const stderr of failures) assert.match(stderr, /503 Service Unavailable/);
    assert.equal((JSON.parse(info.stdout) as { Digest: string }).Digest, image.manifestDigest);
    assert.equal(fault.spent, true);
    const gets = reg.requests.filter((r) => r.method === 'GET' && r.path === '/v2/alice/app/manifests/old');
    assert.deepEqual(gets.map((r) => [r.status, r.fault]).slice(0, 3), [[503, true], [503, true], [200, false]]);
  });

  it('a blob cut after `afterBytes`: the v2 client sees it short; skopeo reports an unexpected EOF, then gets it whole', async () => {
    const layer = seeded.repositories['alice/app'].tags.latest.layers[1];
    const blobPath = `/v2/alice/app/blobs/${layer.digest}`;
    const cut = reg.faults.add({ method: 'GET', path: blobPath, drop: 'mid-body', afterBytes: 100_000, times: 1 });
    reg.requests.clear();
    const stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) => client('alice/app').createBlobReadStream({ digest: layer.digest }, (err, s) => (err ? reject(err) : resolve(s))));
    const read = await drain(stream);
    assert.ok('error' in read || read.bytes.length < BIG.length, 'the client did not get the whole blob');
    assert.equal(cut.spent, true);
    const first = reg.requests.filter((r) => r.path === blobPath);
    assert.deepEqual([first[0].status, first[0].bytesOut, first[0].fault], [200, 100_000, true], 'the double sent exactly afterBytes');

    if (!hasSkopeo()) return;
    reg.faults.add({ method: 'GET', path: blobPath, drop: 'mid-body', afterBytes: 50_000, times: 1 });
    reg.requests.clear();
    const out = path.join(dir, 'retried');
    const args = ['copy', '--src-tls-verify=false', `docker://${reg.host}/alice/app:latest`, `dir:${out}`];
    const broken = await skopeo(args, 120_000);
    assert.notEqual(broken.code, 0, 'the cut reached skopeo');
    assert.match(broken.stderr, /unexpected EOF/);
    const copy = await skopeo(args, 120_000);
    assert.equal(copy.code, 0, copy.stderr);
    const gets = reg.requests.filter((r) => r.method === 'GET' && r.path === blobPath);
    assert.equal(gets.length, 2, JSON.stringify(gets.map((g) => [g.status, g.bytesOut, g.fault])));
    assert.deepEqual([gets[0].bytesOut, gets[0].fault], [50_000, true]);
    assert.deepEqual([gets[1].status, gets[1].bytesOut, gets[1].fault], [200, BIG.length, false]);
    const bytes = await fs.readFile(path.join(out, layer.digest.slice('sha256:'.length)));
    assert.equal(sha256(bytes), layer.digest, 'the retried layer is whole');
  });
});

describe('the test double over the Registry API v2: reset', { timeout: 60_000 }, () => {
  it('reset() forgets v2 manifests, tags and uploads; the same seed gives the same manifest digest again', async () => {
    const reg = await createTestRegistry();
    try {
      const spec = { repositories: [{ name: 'alice/app', tags: { latest: { layers: ['one', 'two'] } } }] };
      const first = (await reg.seed(spec)).repositories['alice/app'].tags.latest;
      const upload = await fetch(`${reg.url}/v2/alice/app/blobs/uploads/`, { method: 'POST' });
      assert.equal(upload.status, 202);
      const location = new URL(upload.headers.get('location') as string, reg.url).href;
      await reg.reset();
      assert.equal((await fetch(`${reg.url}/v2/alice/app/manifests/${first.manifestDigest}`)).status, 404);
      assert.deepEqual(await (await fetch(`${reg.url}/v2/_catalog`)).json(), { repositories: [] });
      assert.equal((await fetch(location)).status, 404, 'the upload session is gone');
      const again = (await reg.seed(spec)).repositories['alice/app'].tags.latest;
      assert.equal(again.manifestDigest, first.manifestDigest);
      const res = await fetch(`${reg.url}/v2/alice/app/manifests/latest`, { headers: { Accept: MEDIA.dockerManifest } });
      assert.equal(res.headers.get('docker-content-digest'), first.manifestDigest);
    } finally {
      await reg.close();
    }
  });
});
