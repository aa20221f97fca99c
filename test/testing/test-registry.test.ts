/**
 * The test double as its users import it (`v1-registry/testing`): start, seed, accounts,
 * the request record, reset, close, the disk-store variant. Seeding is checked against the
 * real thing: what `registry push` makes of the same image, over HTTP, must be identical.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTestRegistry, type SeededImage, type TestRegistry } from 'v1-registry/testing';
import { deriveV1Images } from '../../src/domain/v1-ids.js';
import { client, dockerSaveTarball, makeImage, pyRead, sha256 } from '../client/helpers.js';
import { makeTempDir } from '../helpers/server.js';

/** Everything the v1 API serves about `repo`, with each image's JSON, headers and layer. */
async function snapshot(reg: TestRegistry, repo: string): Promise<Record<string, unknown>> {
  const get = async (p: string) => {
    const res = await fetch(reg.url + p);
    assert.equal(res.status, 200, `GET ${p}: ${res.status}`);
    return res;
  };
  const tags = (await (await get(`/v1/repositories/${repo}/tags`)).json()) as Record<string, string>;
  const list = (await (await get(`/v1/repositories/${repo}/images`)).json()) as Array<{ id: string }>;
  const images: Record<string, unknown> = {};
  for (const id of Object.values(tags)) {
    for (const ancestor of (await (await get(`/v1/images/${id}/ancestry`)).json()) as string[]) {
      const json = await get(`/v1/images/${ancestor}/json`);
      const layer = Buffer.from(await (await get(`/v1/images/${ancestor}/layer`)).arrayBuffer());
      images[ancestor] = {
        json: await json.text(),
        size: json.headers.get('x-docker-size'),
        checksum: json.headers.get('x-docker-checksum-payload'),
        layer: sha256(layer),
        ancestry: await (await get(`/v1/images/${ancestor}/ancestry`)).json(),
      };
    }
  }
  const tagInfo = Object.fromEntries(
    await Promise.all(
      Object.keys(tags).map(async (tag) => {
        const info = (await (await get(`/v1/repositories/${repo}/tags/${tag}/json`)).json()) as Record<string, unknown>;
        return [tag, { ...info, last_update: typeof info.last_update }];
      }),
    ),
  );
  return { tags, list: [...list].sort((a, b) => (a.id < b.id ? -1 : 1)), images, tagInfo };
}

describe('createTestRegistry', { timeout: 60_000 }, () => {
  let reg: TestRegistry;
  let dir: string;
  before(async () => {
    reg = await createTestRegistry();
    dir = await makeTempDir('test-double-');
  });
  after(async () => {
    await reg.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('listens on 127.0.0.1 and answers every face', async () => {
    assert.match(reg.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(reg.host, new URL(reg.url).host);
    const ping = await fetch(`${reg.url}/v1/_ping`);
    assert.equal(ping.status, 200);
    assert.equal(ping.headers.get('x-docker-registry-standalone'), 'true', 'no users: standalone');
    assert.equal((await fetch(`${reg.url}/v1/search?q=`)).status, 200);
    assert.equal((await fetch(`${reg.url}/v2/repositories/library/`)).status, 200);
    assert.equal((await fetch(`${reg.url}/_status`)).status, 200);
  });

  it('seeds built images: ids derived as the CLI derives them, layers as tars, JSON byte-exact', async () => {
    const seeded = await reg.seed({
      repositories: [
        {
          name: 'alice/app',
          description: 'the app',
          tags: {
            latest: { layers: ['base layer', { files: { 'etc/app.conf': 'x=1\n', 'usr/bin/app': Buffer.from([0, 1, 2]) } }], config: { config: { Cmd: ['/usr/bin/app'] } } },
            v1: { layers: ['base layer'] },
          },
        },
      ],
    });
    const latest = seeded.repositories['alice/app'].tags.latest;
    assert.equal(latest.layers.length, 2);
    assert.equal(latest.configDigest, `sha256:${latest.id}`);
    // The base layer is the same bytes in both images: one blob. (v1's only layer is its top
    // image, whose id is its config's digest, so the v1 ids differ.)
    const v1 = seeded.repositories['alice/app'].tags.v1;
    assert.equal(v1.layers[0].digest, latest.layers[0].digest);
    assert.equal(v1.layers[0].id, v1.id);

    // What the registry serves is a config and tar layers a puller can rebuild exactly.
    const layerBytes = await Promise.all(latest.layers.map(async (l) => Buffer.from(await (await fetch(`${reg.url}/v1/images/${l.id}/layer`)).arrayBuffer())));
    layerBytes.forEach((bytes, i) => assert.equal(`sha256:${sha256(bytes)}`, latest.layers[i].digest));
    // Real tars, as an independent reader (Python's tarfile) sees them.
    const tars = await Promise.all(
      layerBytes.map(async (bytes, i) => {
        const file = path.join(dir, `layer${i}.tar`);
        await fs.writeFile(file, bytes);
        return pyRead(file);
      }),
    );
    assert.deepEqual([...tars[0]].map(([name, m]) => [name, m.data?.toString()]), [['layer0.txt', 'base layer']]);
    assert.deepEqual(
      [...tars[1]].map(([name, m]) => [name, m.type, m.data?.toString('hex')]),
      [
        ['etc', '5', undefined],
        ['etc/app.conf', '0', Buffer.from('x=1\n').toString('hex')],
        ['usr', '5', undefined],
        ['usr/bin', '5', undefined],
        ['usr/bin/app', '0', '000102'],
      ],
    );
    const top = Buffer.from(await (await fetch(`${reg.url}/v1/images/${latest.id}/json`)).arrayBuffer());
    const head = `{"id":"${latest.id}","parent":"${latest.layers[0].id}",`;
    assert.equal(top.subarray(0, head.length).toString(), head);
    const config = Buffer.concat([Buffer.from('{'), top.subarray(head.length)]);
    assert.equal(sha256(config), latest.id, 'the top JSON carries the config byte for byte');
    const derived = deriveV1Images(config).images;
    assert.deepEqual(derived.map((d) => d.id), latest.layers.map((l) => l.id));
    assert.deepEqual(JSON.parse(config.toString()).config, { Cmd: ['/usr/bin/app'] });

    const hub = (await (await fetch(`${reg.url}/v2/repositories/alice/app/`)).json()) as { description: string };
    assert.equal(hub.description, 'the app');
  });

  it('the same seed gives the same ids every time', async () => {
    const spec = { repositories: [{ name: 'library/same', tags: { latest: { layers: ['a', 'b'] } } }] };
    const one = await reg.seed(spec);
    const other = await createTestRegistry();
    try {
      assert.deepEqual((await other.seed(spec)).repositories, one.repositories);
    } finally {
      await other.close();
    }
  });

  it('a seeded image is exactly what `registry push` makes of it', async () => {
    const seeded = (await reg.seed({ repositories: [{ name: 'alice/same-as-push', tags: { '1.0': { layers: ['one', 'two', { files: { 'a/b': 'c' } }] } } }] }))
      .repositories['alice/same-as-push'].tags['1.0'];
    // Pull it to a tarball (the config comes back byte for byte), push that to a fresh double.
    const file = path.join(dir, 'seeded.tar');
    const pulled = await client('pull', [`${reg.host}/alice/same-as-push:1.0`, '-o', file, '-q']);
    assert.equal(pulled.code, 0, pulled.stderr);
    const fresh = await createTestRegistry();
    try {
      const pushed = await client('push', [file, `${fresh.host}/alice/same-as-push:1.0`, '-q', '--json']);
      assert.equal(pushed.code, 0, pushed.stderr);
      assert.equal((JSON.parse(pushed.text) as { id: string }).id, seeded.id);
      assert.deepEqual(await snapshot(fresh, 'alice/same-as-push'), await snapshot(reg, 'alice/same-as-push'));
    } finally {
      await fresh.close();
    }
  });

  it('seed.fromTarball pushes a docker save tarball as `registry push` does', async () => {
    const img = makeImage('double', 3);
    const file = path.join(dir, 'saved.tar');
    await fs.writeFile(file, dockerSaveTarball(img, 'example/double:1'));
    const seeded: SeededImage = await reg.seed.fromTarball(file, 'bobby/tarball:2.0');
    assert.equal(seeded.id, img.configHex, 'the docker image ID');
    assert.equal(seeded.configDigest, `sha256:${img.configHex}`);
    assert.deepEqual(seeded.layers.map((l) => l.diffId), img.diffIds);
    const fresh = await createTestRegistry();
    try {
      const pushed = await client('push', [file, `${fresh.host}/bobby/tarball:2.0`, '-q']);
      assert.equal(pushed.code, 0, pushed.stderr);
      assert.deepEqual(await snapshot(fresh, 'bobby/tarball'), await snapshot(reg, 'bobby/tarball'));
    } finally {
      await fresh.close();
    }
  });

  it('seed.fromTarball refuses a layer that is not what the config says, and tags nothing', async () => {
    const img = makeImage('broken', 1);
    img.layers[0] = Buffer.concat([img.layers[0].subarray(0, 600), Buffer.from('tampered'), img.layers[0].subarray(608)]);
    const file = path.join(dir, 'broken.tar');
    await fs.writeFile(file, dockerSaveTarball(img, 'example/broken:1'));
    await assert.rejects(reg.seed.fromTarball(file, 'alice/broken'), /does not match the image config/);
    assert.deepEqual(await (await fetch(`${reg.url}/v1/repositories/alice/broken/tags`)).json(), {});
  });

  it('refuses a spec it cannot build, with the reason', async () => {
    await assert.rejects(reg.seed({ repositories: [{ name: 'alice/x', tags: { latest: { layers: [] } } }] }), /at least one layer/);
    await assert.rejects(reg.seed({ repositories: [{ name: 'Alice/x' }] }), /Invalid namespace/);
    await assert.rejects(reg.seed({ repositories: [{ name: 'alice/x', tags: { 'bad tag': { layers: ['a'] } } }] }), /Invalid tag/);
    await assert.rejects(reg.seed({ repositories: [{ name: 'alice/x', tags: { latest: { layers: [{ files: { '../up': 'x' } }] } } }] }), /not a file path/);
  });

  it('records requests: method, path, query, status, redacted headers, bytes; clear() empties the record', async () => {
    reg.requests.clear();
    const layer = (await reg.seed({ repositories: [{ name: 'alice/rec', tags: { latest: { layers: ['recorded'] } } }] })).repositories['alice/rec'].tags.latest.layers[0];
    await fetch(`${reg.url}/v1/search?q=rec&n=5`, { headers: { Authorization: 'Basic YWxpY2U6c2VjcmV0', Cookie: 'session=abc' } });
    const body = Buffer.from(JSON.stringify({ access: 'public' }));
    await fetch(`${reg.url}/v1/repositories/alice/rec/properties`, { method: 'PUT', body, headers: { 'Content-Type': 'application/json' } });
    await fetch(`${reg.url}/v1/images/${layer.id}/layer`, { headers: { Range: 'bytes=10-19' } });
    assert.equal(reg.requests.length, 3, 'seeding makes no request');
    const [search, put, get] = reg.requests;
    assert.deepEqual(
      { method: search.method, path: search.path, query: search.query, status: search.status, fault: search.fault, done: search.done },
      { method: 'GET', path: '/v1/search', query: { q: 'rec', n: '5' }, status: 401, fault: false, done: true },
    );
    assert.equal(search.headers.authorization, 'Basic [redacted]');
    assert.equal(search.headers.cookie, '[redacted]');
    assert.equal(put.status, 200);
    assert.equal(put.bytesIn, body.length);
    assert.equal(get.status, 206);
    assert.equal(get.bytesOut, 10);
    assert.equal(get.headers.range, 'bytes=10-19');
    reg.requests.clear();
    assert.equal(reg.requests.length, 0);
  });

  it('serves layers from memory: whole, ranges, HEAD (no file descriptor, so streamed)', async () => {
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 5, 7);
    const layer = (await reg.seed({ repositories: [{ name: 'alice/big', tags: { latest: { layers: [bytes] } } }] })).repositories['alice/big'].tags.latest.layers[0];
    const whole = await fetch(`${reg.url}/v1/images/${layer.id}/layer`);
    assert.ok(Buffer.from(await whole.arrayBuffer()).equals(bytes));
    const tail = await fetch(`${reg.url}/v1/images/${layer.id}/layer`, { headers: { Range: `bytes=${bytes.length - 3}-` } });
    assert.equal(tail.status, 206);
    assert.equal(tail.headers.get('content-range'), `bytes ${bytes.length - 3}-${bytes.length - 1}/${bytes.length}`);
    assert.equal((await tail.arrayBuffer()).byteLength, 3);
    const head = await fetch(`${reg.url}/v1/images/${layer.id}/layer`, { method: 'HEAD' });
    assert.equal(head.headers.get('content-length'), String(bytes.length));
  });
});

describe('createTestRegistry with users', { timeout: 60_000 }, () => {
  it('makes the accounts, enforces permissions, and reset() empties everything but keeps the accounts and faults', async () => {
    const reg = await createTestRegistry({ users: [{ username: 'alice', password: 'alice-pw-1' }, { username: 'admin1', password: 'admin-pw-1', admin: true }] });
    try {
      const ping = await fetch(`${reg.url}/v1/_ping`);
      assert.equal(ping.headers.get('x-docker-registry-standalone'), 'false', 'with users: authorization on');
      const seeded = await reg.seed({ repositories: [{ name: 'alice/secret', private: true, tags: { latest: { layers: ['hidden'] } } }] });
      const id = seeded.repositories['alice/secret'].tags.latest.id;
      const alice = { Authorization: `Basic ${Buffer.from('alice:alice-pw-1').toString('base64')}` };
      assert.equal((await fetch(`${reg.url}/v1/repositories/alice/secret/tags`)).status, 401);
      assert.equal((await fetch(`${reg.url}/v1/repositories/alice/secret/tags`, { headers: alice })).status, 200);
      const hubTags = (await (await fetch(`${reg.url}/v2/repositories/alice/secret/tags/`, { headers: alice })).json()) as { results: Array<{ name: string; last_updater_username: string }> };
      assert.deepEqual(hubTags.results.map((t) => [t.name, t.last_updater_username]), [['latest', 'alice']], 'the namespace owner pushed it');

      const fault = reg.faults.add({ path: '/v1/_ping', status: 418 });
      await reg.reset();
      assert.equal((await fetch(`${reg.url}/v1/repositories/alice/secret/tags`, { headers: alice })).status, 404);
      assert.equal((await fetch(`${reg.url}/v1/images/${id}/json`, { headers: alice })).status, 404, 'no image survives (nor a cached one)');
      assert.equal((await fetch(`${reg.url}/v1/users/`, { headers: alice })).status, 200, 'accounts are made again');
      assert.equal((await fetch(`${reg.url}/v1/_ping`)).status, 418, 'faults stay');
      fault.remove();
      assert.equal((await fetch(`${reg.url}/v1/_ping`)).status, 200);
      // Seeding again after a reset gives the same ids.
      const again = await reg.seed({ repositories: [{ name: 'alice/secret', private: true, tags: { latest: { layers: ['hidden'] } } }] });
      assert.equal(again.repositories['alice/secret'].tags.latest.id, id);
    } finally {
      await reg.close();
    }
  });

  it('refuses bad options', async () => {
    await assert.rejects(createTestRegistry({ config: { no_such_key: 1 } }), /no_such_key: unknown setting/);
    await assert.rejects(createTestRegistry({ users: [{ username: 'x', password: 'secret-1' }] }), /Invalid username/);
  });
});

describe('createTestRegistry on the disk stores', { timeout: 60_000 }, () => {
  it('keeps data under root; reset() removes only what the registry owns there', async () => {
    const root = await makeTempDir('test-double-disk-');
    await fs.writeFile(path.join(root, 'not-ours.txt'), 'stays');
    const reg = await createTestRegistry({ store: { root } });
    try {
      const seeded = await reg.seed({ repositories: [{ name: 'alice/disk', tags: { latest: { layers: ['on disk'] } } }] });
      const digest = seeded.repositories['alice/disk'].tags.latest.layers[0].digest;
      await fs.access(path.join(root, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7)));
      assert.equal((await fetch(`${reg.url}/v1/repositories/alice/disk/tags`)).status, 200);
      await reg.reset();
      assert.equal((await fetch(`${reg.url}/v1/repositories/alice/disk/tags`)).status, 404);
      assert.deepEqual((await fs.readdir(root)).sort(), ['blobs', 'db', 'not-ours.txt', 'secret', 'tmp', 'uploads']);
      assert.deepEqual(await fs.readdir(path.join(root, 'blobs', 'sha256')), []);
    } finally {
      await reg.close();
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});
