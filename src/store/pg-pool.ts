/**
 * What the PostgreSQL-backed stores share: opening a pool (closed again if its first use
 * fails) and holding one pooled connection safely.
 */
import pg from 'pg';

/** A pool on `url` that has passed `init` (a migration, a first query), or the reason it did not. */
export async function openPool(url: string, max: number, onIdleError: ((err: Error) => void) | undefined, init: (pool: pg.Pool) => Promise<void>): Promise<pg.Pool> {
  const pool = new pg.Pool({ connectionString: url, max });
  // An idle connection that breaks (server restart) must not crash the process.
  pool.on('error', (err) => onIdleError?.(err));
  try {
    await init(pool);
  } catch (err) {
    await pool.end().catch(() => {});
    throw err;
  }
  return pool;
}

/**
 * Runs `fn` on one pooled connection. A session cut while it is held (server restart,
 * terminated backend) is reported to the statement that next uses it, not thrown at the
 * process; such a connection, or one `fn` calls `discard` on, is closed instead of going
 * back to the pool.
 */
export async function withClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient, discard: (err: Error) => void) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const discard = (err: Error) => {
    broken ??= err;
  };
  client.on('error', discard);
  try {
    return await fn(client, discard);
  } finally {
    client.off('error', discard);
    client.release(broken);
  }
}
