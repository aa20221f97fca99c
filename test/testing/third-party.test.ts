/**
 * Clients we did not write, against a seeded test double: npm `docker-registry-client` (v1)
 * pulls what was seeded, and npm `docker-hub-api` reads it through the Hub API; then the
 * double's faults reach them: two 503s that a retrying caller rides out, a dropped
 * connection, a Hub-shaped error body the Hub client recognises.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import drc, { type ClientError, type RegistryClientV1, type RepoImage } from 'docker-registry-client';
import { createTestRegistry, type SeedResult, type TestRegistry } from 'v1-registry/testing';
import { call, HUB_PACKAGE, hubErrorOf, layerOf, loadHubClient, pointHubClientAt, silentLogger, type DockerHubApi } from '../helpers/third-party.js';

const ALICE = { username: 'alice', password: 'alice-secret-1' };

/** Retries `fn` on a 503, as a careful client does; returns the result and the statuses it saw. */
async function retrying<T>(fn: () => Promise<T>, attempts: number): Promise<{ result: T; failures: number[] }> {
  const failures: number[] = [];
  for (;;) {
    try {
      return { result: await fn(), failures };
    } catch (err) {
      const status = (err as ClientError).statusCode ?? 0;
      if (status !== 503 || failures.length + 1 >= attempts) throw err;
      failures.push(status);
    }
  }
}

describe('docker-registry-client (npm, v1) against a seeded double', { timeout: 60_000 }, () => {
  let reg: TestRegistry;
  let seeded: SeedResult;
  const clients: RegistryClientV1[] = [];
  const client = (name: string) => {
    const c = drc.createClientV1({ name: `${reg.host}/${name}`, scheme: 'http', log: silentLogger });
    clients.push(c);
    return c;
  };

  before(async () => {
    reg = await createTestRegistry();
    seeded = await reg.seed({
      repositories: [
        { name: 'alice/app', tags: { latest: { layers: ['base', Buffer.alloc(300_000, 1), { files: { 'app/run': '#!/bin/sh\n' } }] }, old: { layers: ['base'] } } },
        { name: 'busybox', tags: { latest: { layers: ['busybox'] } } },
      ],
    });
  });
  after(async () => {
    for (const c of clients) c.close();
    await reg.close();
  });

  it('pulls every seeded tag: image list with checksums, tags, ancestry, byte-exact JSON and layers', async () => {
    const c = client('alice/app');
    const tags = seeded.repositories['alice/app'].tags;
    const list = await call<RepoImage[]>((cb) => c.listRepoImgs(cb));
    assert.equal(list.res.headers['x-docker-endpoints'], reg.host);
    const layers = [...tags.latest.layers, ...tags.old.layers];
    assert.deepEqual(
      list.result.map((e) => [e.id, e.checksum]).sort(),
      [...new Map(layers.map((l) => [l.id, l.payloadChecksum]))].sort(),
    );
    assert.deepEqual((await call<Record<string, string>>((cb) => c.listRepoTags(cb))).result, { latest: tags.latest.id, old: tags.old.id });
    const ancestry = await call<string[]>((cb) => c.getImgAncestry({ imgId: tags.latest.id }, cb));
    assert.deepEqual(ancestry.result, tags.latest.layers.map((l) => l.id).reverse());
    for (const layer of tags.latest.layers) {
      const json = await call<Record<string, unknown>>((cb) => c.getImgJson({ imgId: layer.id }, cb));
      assert.equal(json.result.id, layer.id);
      assert.equal(json.result.parent, layer.parent ?? undefined);
      assert.equal(json.res.headers['x-docker-checksum-payload'], layer.payloadChecksum);
      const got = await layerOf(c, layer.id);
      assert.equal(got.bytes.length, layer.size);
      assert.equal(`sha256:${createHash('sha256').update(got.bytes).digest('hex')}`, layer.digest);
    }
  });

  it('a single-name repository answers under both its names', async () => {
    const id = seeded.repositories.busybox.tags.latest.id;
    for (const name of ['busybox', 'library/busybox']) {
      assert.equal((await call<string>((cb) => client(name).getImgId({ tag: 'latest' }, cb))).result, id);
    }
  });

  it('two injected 503s reach the client; a caller that retries gets the answer the third time', async () => {
    const fault = reg.faults.add({ method: 'GET', path: '/v1/repositories/alice/app/tags', status: 503, times: 2 });
    const c = client('alice/app');
    const { result, failures } = await retrying(() => call<Record<string, string>>((cb) => c.listRepoTags(cb)), 3);
    assert.deepEqual(failures, [503, 503]);
    assert.equal(result.result.latest, seeded.repositories['alice/app'].tags.latest.id);
    assert.equal(fault.hits, 2);
    assert.equal(fault.spent, true);
    const seen = reg.requests.filter((r) => r.path === '/v1/repositories/alice/app/tags');
    assert.deepEqual(seen.slice(-3).map((r) => [r.status, r.fault]), [[503, true], [503, true], [200, false]]);
  });

  it('a connection dropped before the answer reaches the client as a network error', async () => {
    const id = seeded.repositories['alice/app'].tags.latest.id;
    reg.faults.add({ path: `/v1/images/${id}/json`, drop: 'before-headers', times: 1 });
    const c = client('alice/app');
    const err = await call((cb) => c.getImgJson({ imgId: id }, cb)).then(
      () => assert.fail('expected a network error'),
      (e: ClientError) => e,
    );
    assert.equal(err.statusCode, undefined, `no HTTP status: ${err.message}`);
    assert.match(String((err as { code?: string }).code ?? err.message), /ECONNRESET|socket hang up|ECONNREFUSED|EPIPE/i);
    const dropped = reg.requests.filter((r) => r.path === `/v1/images/${id}/json`).at(-1);
    assert.deepEqual([dropped?.status, dropped?.fault], [0, true]);
    // The next call goes through.
    assert.equal((await call<Record<string, unknown>>((cb) => c.getImgJson({ imgId: id }, cb))).result.id, id);
  });
});

const hubApi = loadHubClient();
const skipHub = hubApi ? false : `${HUB_PACKAGE} is not installed (npm install --no-save ${HUB_PACKAGE}@0.8.0)`;

describe('docker-hub-api (npm) against a seeded double', { skip: skipHub, timeout: 60_000 }, () => {
  let reg: TestRegistry;
  const hub = hubApi as DockerHubApi;
  let restore: () => void = () => undefined;

  before(async () => {
    reg = await createTestRegistry({ users: [ALICE] });
    restore = pointHubClientAt(hub, () => reg.url);
    await reg.seed({
      repositories: [
        { name: 'alice/app', description: 'seeded for the Hub client', tags: { '1.0': { layers: ['one'] }, '2.0': { layers: ['two'] } } },
        { name: 'alice/hidden', private: true, tags: { latest: { layers: ['secret'] } } },
      ],
    });
  });
  after(async () => {
    restore();
    await reg?.close();
  });

  it('logs in and reads the seeded repositories and tags, private ones included for their owner', async () => {
    assert.equal(typeof (await hub.login(ALICE.username, ALICE.password)).token, 'string');
    const repo = await hub.repository('alice', 'app');
    assert.equal(repo.description, 'seeded for the Hub client');
    assert.deepEqual((await hub.tags('alice', 'app')).map((t) => t.name).sort(), ['1.0', '2.0']);
    assert.deepEqual((await hub.repositories('alice')).results.map((r) => r.name).sort(), ['app', 'hidden']);
  });

  it('an injected 503 reaches the Hub client as a Hub error (detail), then it works again', async () => {
    reg.faults.add({ path: /^\/v2\/repositories\/alice\/app\/?$/, status: 503, times: 1 });
    const err = await hub.repository('alice', 'app').then(
      () => assert.fail('expected an error'),
      (e: unknown) => hubErrorOf(e),
    );
    assert.equal(err.detail, 'Injected fault (HTTP 503)');
    assert.equal((await hub.repository('alice', 'app')).name, 'app');
  });
});
