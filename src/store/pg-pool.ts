/**
 * What the PostgreSQL-backed stores share: opening a pool (closed again if its first use
 * fails) and holding one pooled connection safely.
 */
import pg from 'pg';
import { RegistryError } from '../domain/errors.js';

/** How long a request waits for a new connection before the database counts as unavailable. */
export const CONNECT_TIMEOUT_MS = 5000;

/** A pool on `url` that has passed `init` (a migration, a first query), or the reason it did not. */
export async function openPool(url: string, max: number, onIdleError: ((err: Error) => void) | undefined, init: (pool: pg.Pool) => Promise<void>): Promise<pg.Pool> {
  const pool = new pg.Pool({ connectionString: url, max, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
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

/** SQLSTATE classes and codes that mean "the server is not there right now", not "this statement is wrong". */
const UNAVAILABLE_STATES = /^(08|57P0[1-4]|53300|53400)/;
const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);
const UNAVAILABLE_MESSAGE = /Connection terminated|timeout exceeded when trying to connect|not queryable|Client was closed|connection error/i;

/**
 * Whether `err` says the database cannot be reached (down, restarting, refusing connections,
 * a session cut), as opposed to a fault of the statement. Such a request is answered 503 and
 * the pool reconnects by itself once the server is back.
 */
export function isUnavailable(err: unknown): boolean {
  if (err instanceof RegistryError) return false;
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && (UNAVAILABLE_STATES.test(code) || UNAVAILABLE_ERRNO.has(code))) return true;
  return UNAVAILABLE_MESSAGE.test(String((err as Error)?.message ?? ''));
}

/** The error a request sees: UNAVAILABLE (503, Retry-After) when the database cannot be reached, else `err` as it is. */
export function asUnavailable(err: unknown): unknown {
  if (!isUnavailable(err)) return err;
  return new RegistryError('UNAVAILABLE', 'The metadata database is unavailable; retry later', {
    retryAfter: 1,
    cause: String((err as Error)?.message ?? err),
  });
}
