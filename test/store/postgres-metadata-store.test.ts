/**
 * PostgresMetadataStore: the shared MetadataStore contract on a real PostgreSQL (one schema
 * per test), plus what only this backend promises: versioned migrations that two nodes can
 * run at once, a refused newer schema, and stores on two connections seeing each other's
 * writes at once (no cache in between).
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import pg from 'pg';
import { parseRepoName, parseTag } from '../../src/domain/names.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/store/metadata/pg-schema.js';
import { PostgresMetadataStore } from '../../src/store/metadata/postgres-metadata-store.js';
import { useEngines } from '../helpers/engines.js';
import { newSchema } from '../helpers/postgres-engine.js';
import { freePort } from '../helpers/daemon.js';
import type { RegistryError } from '../../src/domain/errors.js';
import { makeDelivery, makeImage, makeRepo, makeTag, makeUser, metadataStoreContract, newId, type MetadataStoreFactory } from './metadata-store.contract.js';
import { oauthStoreContract } from './oauth-store.contract.js';

const engines = useEngines({ s3: false });

const postgresStores: MetadataStoreFactory = async () => {
  const schema = await newSchema(engines.postgres.url);
  const opened: PostgresMetadataStore[] = [];
  const openOne = async () => {
    const store = new PostgresMetadataStore(schema.url);
    opened.push(store);
    await store.open();
    return store;
  };
  return {
    store: await openOne(),
    reopen: openOne,
    async cleanup() {
      for (const store of opened) await store.close();
      await schema.drop();
    },
  };
};
metadataStoreContract('PostgresMetadataStore', postgresStores);
oauthStoreContract('PostgresMetadataStore', postgresStores);

describe('PostgresMetadataStore on PostgreSQL', () => {
  let schema: Awaited<ReturnType<typeof newSchema>>;
  const stores: PostgresMetadataStore[] = [];

  async function open(): Promise<PostgresMetadataStore> {
    const store = new PostgresMetadataStore(schema.url);
    stores.push(store);
    await store.open();
    return store;
  }

  async function sql<R extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<R[]> {
    const client = new pg.Client({ connectionString: schema.url });
    await client.connect();
    try {
      return (await client.query<R>(text, params)).rows;
    } finally {
      await client.end();
    }
  }

  beforeEach(async () => {
    schema = await newSchema(engines.postgres.url);
  });

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    await schema.drop();
  });

  it('a new database gets every migration, recorded once each', async () => {
    await open();
    const rows = await sql<{ version: number; name: string }>('SELECT version, name FROM schema_migrations ORDER BY version');
    assert.deepEqual(rows, MIGRATIONS.map(({ version, name }) => ({ version, name })));
    assert.equal(rows[rows.length - 1].version, SCHEMA_VERSION);
  });

  it('nodes starting at once migrate once and all open (advisory lock around migrations)', async () => {
    const nodes = await Promise.all(Array.from({ length: 6 }, () => open()));
    assert.equal(nodes.length, 6);
    const rows = await sql<{ n: string }>('SELECT count(*) AS n FROM schema_migrations');
    assert.equal(Number(rows[0].n), MIGRATIONS.length);
    await nodes[0].putUser(makeUser('alice'));
    assert.deepEqual(await nodes[5].getUser('alice'), makeUser('alice'));
  });

  it('reopening an up-to-date database applies nothing and keeps the data', async () => {
    const first = await open();
    await first.putUser(makeUser('alice'));
    await first.close();
    const before = await sql('SELECT version, applied_at FROM schema_migrations ORDER BY version');
    const again = await open();
    assert.deepEqual(await sql('SELECT version, applied_at FROM schema_migrations ORDER BY version'), before);
    assert.deepEqual(await again.getUser('alice'), makeUser('alice'));
  });

  it('refuses a database migrated by a newer registry, with a clear error, and changes nothing', async () => {
    await (await open()).close();
    await sql("INSERT INTO schema_migrations (version, name) VALUES ($1, 'from the future')", [SCHEMA_VERSION + 1]);
    const store = new PostgresMetadataStore(schema.url);
    await assert.rejects(store.open(), {
      message: `metadata schema version ${SCHEMA_VERSION + 1} is not supported (expected ${SCHEMA_VERSION} at most): this registry is older than the database`,
    });
    const rows = await sql<{ n: string }>('SELECT count(*) AS n FROM schema_migrations');
    assert.equal(Number(rows[0].n), MIGRATIONS.length + 1);
  });

  it('fails to open with the server’s reason when the database cannot be reached', async () => {
    const url = new URL(engines.postgres.url);
    url.pathname = '/no_such_database';
    const store = new PostgresMetadataStore(url.toString());
    await assert.rejects(store.open(), /database "no_such_database" does not exist/);
    await store.close();
  });

  it('two stores on one database (two nodes) see each other’s writes at once', async () => {
    const [a, b] = [await open(), await open()];
    const name = parseRepoName('ns', 'app');
    const id = newId();
    await a.putImage(makeImage(id), Buffer.from('{}'), [id]);
    await a.putTag(name, parseTag('latest'), makeTag(id), makeRepo(name), [id]);
    assert.deepEqual((await b.listTags(name)).map(([t]) => t), ['latest']);
    assert.deepEqual(await b.getRepoImages(name), [{ id }]);
    assert.equal((await b.allRepos()).length, 1);
    await b.putTag(name, parseTag('v2'), makeTag(id), makeRepo(name));
    await b.deleteTag(name, parseTag('latest'));
    assert.deepEqual((await a.listTags(name)).map(([t]) => t), ['v2']);
    assert.equal(await b.deleteRepo(name), true);
    assert.equal(await a.getRepo(name), null);
    assert.deepEqual(await a.allRepos(), []);
  });

  it('counts every one of many concurrent pulls made through two nodes', async () => {
    const [a, b] = [await open(), await open()];
    const name = parseRepoName('alice', 'app');
    await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).addRepoPull(name, new Date(1000 * i).toISOString())));
    assert.equal((await a.getRepoPulls(name))?.count, 40);
    await a.setTagsPulled(name, [parseTag('x'), parseTag('y')], '2030-01-01T00:00:00.000Z');
    await b.setTagPusher(name, parseTag('y'), 'bobby');
    assert.deepEqual(await b.getTagStats(name, [parseTag('y'), parseTag('x'), parseTag('z')]), [
      { lastPulledAt: '2030-01-01T00:00:00.000Z', pusher: 'bobby' },
      { lastPulledAt: '2030-01-01T00:00:00.000Z', pusher: null },
      { lastPulledAt: null, pusher: null },
    ]);
    await a.deleteRepoStats(name);
    assert.equal(await b.getRepoPulls(name), null);
    assert.deepEqual(await b.getTagStats(name, [parseTag('y')]), [{ lastPulledAt: null, pusher: null }]);
  });

  it('webhook claims by three nodes at once never take one delivery twice (FOR UPDATE SKIP LOCKED)', async () => {
    const nodes = [await open(), await open(), await open()];
    const T = 1_700_000_000_000;
    const deliveries = Array.from({ length: 60 }, (_, i) => makeDelivery(T + i));
    await nodes[0].enqueueWebhooks(deliveries);
    const claims = await Promise.all(Array.from({ length: 30 }, (_, i) => nodes[i % 3].claimWebhooks(T + 100, 4, 60_000)));
    const ids = claims.flat().map((d) => d.id);
    assert.equal(new Set(ids).size, ids.length, 'no delivery claimed twice');
    assert.deepEqual(ids.sort(), deliveries.map((d) => d.id).sort());
  });

  it('a database that cannot be reached is UNAVAILABLE (503) for every operation, not an internal error', async () => {
    const url = new URL(engines.postgres.url);
    url.port = String(await freePort());
    // open() would fail (it migrates): a store opened on the real server, then pointed at nothing.
    const store = await open();
    const held = store as unknown as { pool: pg.Pool };
    const real = held.pool;
    held.pool = new pg.Pool({ connectionString: url.toString() });
    const name = parseRepoName('ns', 'app');
    try {
      for (const op of [() => store.getRepo(name), () => store.putRepo(name, makeRepo(name)), () => store.deleteRepo(name), () => store.claimWebhooks(0, 1, 1000)]) {
        await assert.rejects(op(), (err: RegistryError) => err.code === 'UNAVAILABLE' && err.details.retryAfter === 1);
      }
    } finally {
      await held.pool.end();
      held.pool = real;
    }
  });

  it('lists more rows than one page, each once, in order', async () => {
    const store = await open();
    const ids = Array.from({ length: 1203 }, newId);
    await sql(
      `INSERT INTO images (id, record, json, ancestry) SELECT id, json_build_object('id', id), '\\x7b7d', json_build_array(id) FROM unnest($1::text[]) AS id`,
      [ids],
    );
    const listed: string[] = [];
    for await (const record of store.listImages()) listed.push(record.id);
    assert.deepEqual(listed, [...ids].sort());
  });
});
