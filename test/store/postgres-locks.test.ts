/**
 * PostgresLocks against the Locks contract on a real PostgreSQL, plus what only it promises:
 * nodes (separate PostgresLocks on one database) exclude each other, a node that dies
 * releases its locks, and registries in different schemas never share a lock.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import pg from 'pg';
import { PostgresLocks } from '../../src/store/locks/postgres-locks.js';
import { useEngines } from '../helpers/engines.js';
import { eventually } from '../helpers/eventually.js';
import { newSchema } from '../helpers/postgres-engine.js';
import { holding, locksContract } from './locks.contract.js';

const engines = useEngines({ s3: false });

/** Resolves once `n` advisory lock requests of this schema's sessions are waiting. */
async function advisoryWaiters(url: string, n: number): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await eventually(async () => {
      const { rows } = await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND NOT l.granted AND a.query LIKE 'SELECT pg_advisory_lock%'
            AND a.datname = current_database()`,
      );
      assert.ok(Number(rows[0].n) >= n, `${rows[0].n} of ${n} lock requests waiting`);
    });
  } finally {
    await client.end();
  }
}

locksContract('PostgresLocks', async () => {
  const schema = await newSchema(engines.postgres.url);
  const locks = new PostgresLocks(schema.url);
  await locks.open();
  return {
    locks,
    queued: (n) => advisoryWaiters(schema.url, n),
    async cleanup() {
      await locks.close();
      await schema.drop();
    },
  };
});

describe('PostgresLocks across nodes', () => {
  let schema: Awaited<ReturnType<typeof newSchema>>;
  const opened: PostgresLocks[] = [];

  async function node(url = schema.url): Promise<PostgresLocks> {
    const locks = new PostgresLocks(url);
    opened.push(locks);
    await locks.open();
    return locks;
  }

  beforeEach(async () => {
    schema = await newSchema(engines.postgres.url);
  });

  afterEach(async () => {
    for (const locks of opened.splice(0)) await locks.close();
    await schema.drop();
  });

  it('a key one node holds is refused on another, which also sees it held', async () => {
    const [a, b] = [await node(), await node()];
    const held = await holding((body) => a.keyed('image-1', body));
    assert.deepEqual(await b.keyed('image-1', async () => 'b'), { acquired: false });
    assert.equal(await b.isKeyHeld('image-1'), true);
    held.release();
    await held.done;
    assert.equal(await b.isKeyHeld('image-1'), false);
    assert.deepEqual(await b.keyed('image-1', async () => 'b'), { acquired: true, value: 'b' });
  });

  it('garbage collection on one node waits for a write on another', async () => {
    const [a, b] = [await node(), await node()];
    const order: string[] = [];
    const write = await holding((body) => a.shared(async () => (await body(), order.push('write done'))));
    const gc = b.exclusive(async () => {
      order.push('gc');
    });
    await advisoryWaiters(schema.url, 1);
    write.release();
    await Promise.all([write.done, gc]);
    assert.deepEqual(order, ['write done', 'gc']);
  });

  it('a node that dies (its connections cut) releases what it held', async () => {
    const [a, b] = [await node(), await node()];
    const held = await holding((body) => a.keyed('image-2', body));
    assert.equal(await b.isKeyHeld('image-2'), true);
    // What kill -9 of the node does to its sessions.
    const admin = new pg.Client({ connectionString: schema.url });
    await admin.connect();
    try {
      await admin.query(
        // objsubid 1: single-bigint keys (the Locks'), not the two-int4 migration lock that a
        // store opening in a parallel test file may hold in the same database.
        `SELECT pg_terminate_backend(l.pid) FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
           AND l.pid <> pg_backend_pid() AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      );
    } finally {
      await admin.end();
    }
    await eventually(async () => assert.equal(await b.isKeyHeld('image-2'), false));
    assert.deepEqual(await b.keyed('image-2', async () => 'taken over'), { acquired: true, value: 'taken over' });
    held.release();
    await held.done.catch(() => {});
  });

  it('registries in different schemas do not share locks', async () => {
    const other = await newSchema(engines.postgres.url);
    try {
      const [a, elsewhere] = [await node(), await node(other.url)];
      assert.notEqual(a.lockId('keyed', 'image-3'), elsewhere.lockId('keyed', 'image-3'));
      const held = await holding((body) => a.keyed('image-3', body));
      assert.deepEqual(await elsewhere.keyed('image-3', async () => 'mine'), { acquired: true, value: 'mine' });
      held.release();
      await held.done;
    } finally {
      await other.drop();
    }
  });
});
