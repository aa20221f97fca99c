/**
 * Locks for registry nodes sharing one PostgreSQL: session advisory locks, each held on a
 * connection of its own for as long as its holder runs. A node that dies (kill -9, lost
 * network) loses its connections, and PostgreSQL releases their locks: nothing stays locked
 * by a dead node.
 *
 *   keyed(key)    pg_try_advisory_lock(k)          never waits: busy means { acquired: false }
 *   shared()      pg_advisory_lock_shared(gate)    any number, on all nodes
 *   exclusive()   pg_advisory_lock(gate)           PostgreSQL queues new shared requests
 *                                                  behind a waiting exclusive one, so a steady
 *                                                  stream of writes cannot starve it
 *
 * Lock ids are 64-bit: the first 8 bytes of sha256(schema, kind, key), so registries in
 * different schemas of one database never share a lock (the single-bigint advisory lock
 * space never meets the two-int4 one the migrations use, see pg-schema.ts).
 *
 * Cost: one pooled connection per lock held (at most `maxConnections` of each kind; more
 * holders wait for a connection). Keyed locks, the write gate and isKeyHeld's questions use
 * three separate pools: a writer holds a keyed lock and then waits for the gate, and a
 * gate holder asks isKeyHeld, so one shared pool could fill with holders each waiting for
 * a connection another holds. If a holder's connection breaks mid-way its lock is gone
 * while `fn` still runs (PostgreSQL restarted: the writes of `fn` fail too).
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { asUnavailable, openPool, withClient } from '../pg-pool.js';
import type { Keyed, Locks } from './locks.js';

export interface PostgresLocksOptions {
  /** Connections for held locks (one per holder), per kind (keyed, gate); default 32. */
  maxConnections?: number;
  /** Called when an idle pooled connection fails. */
  onIdleError?: (err: Error) => void;
}

export class PostgresLocks implements Locks {
  private keyedPool: pg.Pool | null = null;
  private gatePool: pg.Pool | null = null;
  private queryPool: pg.Pool | null = null;
  private namespace = '';

  constructor(
    private readonly url: string,
    private readonly options: PostgresLocksOptions = {},
  ) {}

  async open(): Promise<void> {
    const max = this.options.maxConnections ?? 32;
    const { onIdleError } = this.options;
    try {
      this.queryPool = await openPool(this.url, 4, onIdleError, async (pool) => {
        const { rows } = await pool.query<{ schema: string }>('SELECT current_schema() AS schema');
        this.namespace = rows[0]?.schema ?? '';
      });
      this.keyedPool = await openPool(this.url, max, onIdleError, async () => {});
      this.gatePool = await openPool(this.url, max, onIdleError, async () => {});
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    const pools = [this.keyedPool, this.gatePool, this.queryPool];
    this.keyedPool = this.gatePool = this.queryPool = null;
    await Promise.all(pools.map((pool) => pool?.end()));
  }

  private ready(pool: pg.Pool | null): pg.Pool {
    if (!pool) throw new Error('PostgresLocks is not open');
    return pool;
  }

  /** The advisory lock id of `key` (a signed 64-bit integer, as text). */
  lockId(kind: 'keyed' | 'gate', key: string): string {
    const digest = createHash('sha256').update(`${this.namespace}\0${kind}\0${key}`).digest();
    return digest.readBigInt64BE(0).toString();
  }

  /**
   * Takes a connection, runs `acquire` on it; if that returns true, runs `fn` and unlocks.
   * A connection whose unlock failed is thrown away (its session, and so its lock, ends).
   */
  private async hold<T>(pool: pg.Pool | null, acquire: (client: pg.PoolClient) => Promise<boolean>, unlock: string, id: string, fn: () => Promise<T>): Promise<Keyed<T>> {
    // Errors of `fn` pass as they are; a database that cannot be reached while taking the
    // lock is UNAVAILABLE (503), as for the metadata store. A cut session (the lock is gone
    // with it) is reported by withClient, not thrown.
    let running = false;
    try {
      return await withClient(this.ready(pool), async (client, discard) => {
        if (!(await acquire(client))) return { acquired: false };
        running = true;
        try {
          return { acquired: true, value: await fn() };
        } finally {
          await client.query(unlock, [id]).catch(discard);
        }
      });
    } catch (err) {
      throw running ? err : asUnavailable(err);
    }
  }

  keyed<T>(key: string, fn: () => Promise<T>): Promise<Keyed<T>> {
    const id = this.lockId('keyed', key);
    return this.hold(
      this.keyedPool,
      async (client) => (await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [id])).rows[0].ok,
      'SELECT pg_advisory_unlock($1::bigint)',
      id,
      fn,
    );
  }

  async isKeyHeld(key: string): Promise<boolean> {
    const id = BigInt.asUintN(64, BigInt(this.lockId('keyed', key)));
    const { rows } = await this.ready(this.queryPool).query(
      `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
         AND classid = $1::bigint::oid AND objid = $2::bigint::oid`,
      [(id >> 32n).toString(), (id & 0xffffffffn).toString()],
    ).catch((err: unknown) => {
      throw asUnavailable(err);
    });
    return rows.length > 0;
  }

  shared<T>(fn: () => Promise<T>): Promise<T> {
    return this.gate('_shared', fn);
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.gate('', fn);
  }

  /** Waits for the write gate in one mode (pg_advisory_lock_shared or pg_advisory_lock), runs `fn`. */
  private async gate<T>(mode: '_shared' | '', fn: () => Promise<T>): Promise<T> {
    const id = this.lockId('gate', 'write');
    const held = await this.hold(
      this.gatePool,
      async (client) => (await client.query(`SELECT pg_advisory_lock${mode}($1::bigint)`, [id]), true),
      `SELECT pg_advisory_unlock${mode}($1::bigint)`,
      id,
      fn,
    );
    return (held as { value: T }).value;
  }
}
