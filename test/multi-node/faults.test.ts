/**
 * Faults of the shared engines, on the real app: a PostgreSQL that restarts and an object
 * store that goes away. Requests meanwhile are 503 in each face's own envelope with a
 * Retry-After (never a 500, never a 401 for a password nobody could check); the node heals
 * by itself when the engine is back (the pool reconnects, nothing restarts); an upload cut
 * by the object store leaves no image half-written, and the push runs again.
 *
 * PostgreSQL here is a private server of this file (halting the run's shared one would
 * break the files running beside it); S3 is the run's gateway behind a TCP proxy that this
 * file takes down and brings back.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import { useEngines } from '../helpers/engines.js';
import { eventually } from '../helpers/eventually.js';
import { startPostgres, type PostgresEngine } from '../helpers/postgres-engine.js';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { imageJson, payloadChecksum, put, type TestImage } from '../helpers/v1.js';
import { digestOf, pushBlob } from '../helpers/v2.js';
import { RegistryError } from '../../src/domain/errors.js';
import { PostgresLocks } from '../../src/store/locks/postgres-locks.js';
import { ADMIN, adminAuth as auth, pushAs, tagAs, TOKEN_SECRET } from './nodes.js';

const engines = useEngines();

describe('faults of the shared engines', () => {
  let postgres: PostgresEngine;
  let s3: TcpProxy;
  let node: TestServer;

  before(async () => {
    [postgres, s3] = await Promise.all([startPostgres(), startTcpProxy(engines.s3.endpoint)]);
    node = await startTestServer({
      overrides: {
        standalone: false,
        admin_username: ADMIN.username,
        admin_password: ADMIN.password,
        metadata_store: 'postgres',
        postgres_url: postgres.url,
        blob_store: 's3',
        s3_endpoint: s3.url,
        s3_region: engines.s3.region,
        s3_bucket: `faults-${randomBytes(4).toString('hex')}`,
        s3_access_key_id: engines.s3.accessKeyId,
        s3_secret_access_key: engines.s3.secretAccessKey,
        s3_force_path_style: true,
        token_secret: TOKEN_SECRET,
      },
    });
  });

  // A test that failed with an engine down leaves it up for the next one.
  beforeEach(async () => {
    await s3?.up();
    await postgres?.resume();
  });

  after(async () => {
    await node?.destroy();
    await s3?.close();
    await postgres?.stop();
  });

  const image = (size = 40_000): TestImage => ({ id: newImageId(), layer: randomBytes(size) });
  const get = (path: string, headers: Record<string, string> = auth) => fetch(`${node.url}${path}`, { headers });

  /** A 503 with Retry-After and a JSON body; returns the body. */
  async function unavailable(res: Response, what: string): Promise<Record<string, unknown>> {
    const text = await res.text();
    assert.equal(res.status, 503, `${what}: ${res.status} ${text}`);
    assert.equal(res.headers.get('retry-after'), '1', what);
    assert.match(res.headers.get('content-type') ?? '', /json/, what);
    return JSON.parse(text) as Record<string, unknown>;
  }

  it('PostgreSQL restarting: 503 in every face with Retry-After, then the node recovers by itself', async () => {
    const img = image();
    await pushAs(node.url, auth, 'faults/app', 'latest', [img]);
    assert.equal((await get('/v1/repositories/faults/app/tags')).status, 200);
    // The locks every node takes (one writer per image, the GC gate) on the same server.
    const locks = new PostgresLocks(postgres.url);
    await locks.open();

    await postgres.halt();

    const v1 = await unavailable(await get('/v1/repositories/faults/app/tags'), 'v1 tags');
    assert.deepEqual(v1, { error: 'The metadata database is unavailable; retry later' });
    // A password nobody could check is not a wrong one: 503, not 401 (and not counted by the throttle).
    await unavailable(await get('/v1/users/'), 'v1 login');
    const v2 = await unavailable(await get('/v2/faults/app/tags/list'), 'v2 tags');
    assert.deepEqual((v2.errors as Array<{ code: string }>).map((e) => e.code), ['UNAVAILABLE']);
    const hub = await unavailable(await get('/v2/repositories/faults/app/', {}), 'Hub repository');
    assert.equal(hub.detail, 'The metadata database is unavailable; retry later');
    await unavailable(await get(`/v1/images/${img.id}/json`), 'v1 image json');
    assert.equal((await get('/_status', {})).status, 503);
    // Writes too, and nothing of them lands.
    await unavailable(await tagAs(node.url, auth, 'faults/app', 'other', img.id), 'v1 tag write');
    // Taking a lock is UNAVAILABLE too (503 where a request meets it), not a raw driver error.
    const isUnavailable = (err: unknown) => err instanceof RegistryError && err.code === 'UNAVAILABLE';
    let ran = false;
    await assert.rejects(locks.keyed(`image:${img.id}`, async () => (ran = true)), isUnavailable);
    await assert.rejects(locks.shared(async () => (ran = true)), isUnavailable);
    await assert.rejects(locks.isKeyHeld(`image:${img.id}`), isUnavailable);
    assert.equal(ran, false, 'nothing runs without its lock');

    await postgres.resume();

    // The same node, not restarted: every face answers again.
    await eventually(async () => assert.equal((await get('/_status', {})).status, 200), 10_000);
    assert.deepEqual(await (await get('/v1/repositories/faults/app/tags')).json(), { latest: img.id });
    assert.equal((await get('/v1/users/')).status, 200);
    assert.deepEqual(await (await get('/v2/faults/app/tags/list')).json(), { name: 'faults/app', tags: ['latest'] });
    assert.equal((await get('/v2/repositories/faults/app/', {})).status, 200);
    await eventually(async () => assert.deepEqual(await locks.keyed('after', async () => 'held'), { acquired: true, value: 'held' }), 10_000);
    await locks.close();
    const again = image();
    await pushAs(node.url, auth, 'faults/app', 'v2', [again]);
    assert.deepEqual(await (await get('/v1/repositories/faults/app/tags')).json(), { latest: img.id, v2: again.id });
  });

  it('the object store refusing or resetting: 503 with Retry-After, no image half-written, the push runs again', async () => {
    const pushed = image();
    await pushAs(node.url, auth, 'faults/blobs', 'latest', [pushed]);

    for (const fault of ['refuse', 'reset'] as const) {
      await s3.down(fault);
      const layer = await unavailable(await get(`/v1/images/${pushed.id}/layer`), `v1 layer GET (${fault})`);
      assert.deepEqual(layer, { error: 'The blob store is unavailable; retry later' });

      // A new image: its JSON is metadata (PostgreSQL is up), its layer cannot be stored.
      const fresh = image();
      const json = imageJson(fresh);
      assert.equal((await put(`${node.url}/v1/images/${fresh.id}/json`, json, { ...auth, 'Content-Type': 'application/json' })).status, 200);
      await unavailable(await put(`${node.url}/v1/images/${fresh.id}/layer`, fresh.layer, { ...auth, 'Content-Type': 'application/octet-stream' }), `v1 layer PUT (${fault})`);
      // Not served: it is not complete.
      assert.equal((await get(`/v1/images/${fresh.id}/json`)).status, 400);
      await s3.up();

      // The client pushes the layer again: it completes, and is served byte for byte.
      assert.equal((await put(`${node.url}/v1/images/${fresh.id}/layer`, fresh.layer, { ...auth, 'Content-Type': 'application/octet-stream' })).status, 200);
      assert.equal(
        (await put(`${node.url}/v1/images/${fresh.id}/checksum`, undefined, { ...auth, 'X-Docker-Checksum-Payload': payloadChecksum(json, fresh.layer) })).status,
        200,
      );
      const served = await get(`/v1/images/${fresh.id}/layer`);
      assert.equal(served.status, 200);
      assert.ok(Buffer.from(await served.arrayBuffer()).equals(fresh.layer));
    }

    // v2's envelope for a blob the store cannot serve, and for one it cannot take.
    const blob = randomBytes(30_000);
    const digest = await pushBlob(node.url, 'faults/blobs', blob, { authorization: auth.Authorization });
    await s3.down('refuse');
    try {
      const v2 = await unavailable(await get(`/v2/faults/blobs/blobs/${digest}`), 'v2 blob GET');
      assert.deepEqual((v2.errors as Array<{ code: string }>).map((e) => e.code), ['UNAVAILABLE']);
      const upload = await fetch(`${node.url}/v2/faults/blobs/blobs/uploads/?digest=${digestOf(randomBytes(10))}`, { method: 'POST', headers: auth, body: randomBytes(10) });
      const refused = await unavailable(upload, 'v2 monolithic upload');
      assert.deepEqual((refused.errors as Array<{ code: string }>).map((e) => e.code), ['UNAVAILABLE']);
    } finally {
      await s3.up();
    }
    const served = await get(`/v2/faults/blobs/blobs/${digest}`);
    assert.equal(served.status, 200);
    assert.ok(Buffer.from(await served.arrayBuffer()).equals(blob));
  });

  it('an upload the object store cuts mid-way is never served, and goes through when pushed again', async () => {
    const big = image(24 * 1024 * 1024);
    const json = imageJson(big);
    assert.equal((await put(`${node.url}/v1/images/${big.id}/json`, json, { ...auth, 'Content-Type': 'application/json' })).status, 200);
    // Cut every connection to the store while the layer is streaming out to it.
    const cutting = setInterval(() => s3.cut(), 150);
    let status: number | string;
    try {
      status = (await put(`${node.url}/v1/images/${big.id}/layer`, big.layer, { ...auth, 'Content-Type': 'application/octet-stream' })).status;
    } catch (err) {
      status = String(err);
    } finally {
      clearInterval(cutting);
    }
    assert.notEqual(status, 500);
    if (status !== 200) {
      assert.equal(status, 503);
      assert.equal((await get(`/v1/images/${big.id}/json`)).status, 400, 'not served while incomplete');
      assert.equal((await put(`${node.url}/v1/images/${big.id}/layer`, big.layer, { ...auth, 'Content-Type': 'application/octet-stream' })).status, 200);
    }
    assert.equal((await put(`${node.url}/v1/images/${big.id}/checksum`, undefined, { ...auth, 'X-Docker-Checksum-Payload': payloadChecksum(json, big.layer) })).status, 200);
    const served = await get(`/v1/images/${big.id}/layer`);
    assert.ok(Buffer.from(await served.arrayBuffer()).equals(big.layer), 'the layer is whole');
  });
});
