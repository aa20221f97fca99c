/**
 * A private PostgreSQL server for the tests: Debian's `postgresql` (15) in a temp data dir,
 * on a free loopback port, trust authentication, started once per `npm test` (see
 * test/run.ts and engines.ts) or once per test file run on its own.
 *
 * The recipe (as root, PostgreSQL refuses to run as root, so as the `postgres` user):
 *
 *   initdb -D <dir>/data -U postgres -E UTF8 --locale=C --auth=trust --no-sync
 *   postgres -D <dir>/data -k <dir> -c listen_addresses=127.0.0.1 -p <port> \
 *            -c fsync=off -c synchronous_commit=off -c full_page_writes=off
 *
 * fsync is off because the data dir is thrown away: the tests check the registry's
 * transactions, not the disk's. Each test gets a schema of its own (`newSchema`), so test
 * files running at the same time never see each other's rows.
 *
 * Run it by hand: `node --import tsx test/helpers/postgres-engine.ts` prints the URL and
 * keeps the server until Ctrl-C.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { isMain } from '../../src/is-main.js';
import { freePort, run, startDaemon, waitUntil, type Daemon } from './daemon.js';

const BIN = '/usr/lib/postgresql/15/bin';

export interface PostgresEngine {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  dir: string;
  /** Stops the server (fast shutdown: sessions are cut) and keeps its data: a database gone away. */
  halt(): Promise<void>;
  /** Starts it again on the same port and data after halt(): a database restarted. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

/** Why this machine cannot run the engine, or null when it can. */
export function postgresUnavailable(): string | null {
  if (!existsSync(path.join(BIN, 'postgres'))) return `${BIN}/postgres is missing (apt-get install postgresql)`;
  return null;
}

/** The uid/gid to run as: PostgreSQL refuses root, so root runs it as `postgres`. */
async function runAs(): Promise<{ uid?: number; gid?: number }> {
  if (process.getuid?.() !== 0) return {};
  const passwd = await fs.readFile('/etc/passwd', 'utf8');
  const line = passwd.split('\n').find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('running as root, but there is no postgres user to run PostgreSQL as (apt-get install postgresql)');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

export async function startPostgres(options: { startTimeoutMs?: number } = {}): Promise<PostgresEngine> {
  const unavailable = postgresUnavailable();
  if (unavailable) throw new Error(`cannot start PostgreSQL: ${unavailable}`);
  const user = await runAs();
  // Short: the Unix socket path (<dir>/.s.PGSQL.<port>) must stay under ~107 bytes.
  const dir = await fs.mkdtemp(path.join('/tmp', 'pg-'));
  if (user.uid !== undefined) await fs.chown(dir, user.uid, user.gid as number);
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'postgres.log');
  const env = { ...process.env, LC_ALL: 'C', LANG: 'C' };
  await run(path.join(BIN, 'initdb'), ['-D', data, '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--auth=trust', '--no-sync'], { ...user, env, cwd: dir });
  if (user.uid !== undefined) await fs.writeFile(log, '').then(() => fs.chown(log, user.uid as number, user.gid as number));

  let daemon: Daemon | undefined;
  let url = '';
  let port = 0;
  const launch = () =>
    startDaemon(
      'postgres',
      path.join(BIN, 'postgres'),
      [
        '-D', data,
        '-k', dir,
        '-p', String(port),
        '-c', 'listen_addresses=127.0.0.1',
        '-c', 'fsync=off',
        '-c', 'synchronous_commit=off',
        '-c', 'full_page_writes=off',
        '-c', 'max_connections=300',
        '-c', 'shared_buffers=32MB',
        '-c', 'log_min_messages=warning',
      ],
      log,
      { ...user, env, cwd: dir },
    );
  // The port is free when picked but may be taken before postgres binds it: try again then.
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    daemon = await launch();
    try {
      await waitUntil('PostgreSQL', () => probe(url), [daemon], options.startTimeoutMs ?? 60_000);
      break;
    } catch (err) {
      await daemon.stop();
      if (attempt >= 2 || !/could not bind|Address already in use/.test(await daemon.logTail())) {
        await fs.rm(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
  let running = daemon;
  const halt = async () => {
    // SIGINT: "fast" shutdown (rolls back open transactions, does not wait for clients).
    if (!running.exited) running.child.kill('SIGINT');
    await running.stop(10_000);
  };
  return {
    url,
    dir,
    halt,
    async resume() {
      if (!running.exited) return;
      running = await launch();
      await waitUntil('PostgreSQL', () => probe(url), [running], options.startTimeoutMs ?? 60_000);
    },
    async stop() {
      await halt();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

async function probe(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } finally {
    await client.end().catch(() => {});
  }
}

/** One connection per server URL for creating and dropping schemas (connecting costs a fork). */
const admins = new Map<string, Promise<pg.Client>>();

/** The socket of a pg client (unref'd while idle: it never keeps a test process alive). */
function socketOf(client: pg.Client): { ref(): void; unref(): void } {
  return (client as unknown as { connection: { stream: { ref(): void; unref(): void } } }).connection.stream;
}

/** Runs `sql` on the shared admin connection of `url`. */
async function adminQuery(url: string, sql: string): Promise<void> {
  let connecting = admins.get(url);
  if (!connecting) {
    const c = new pg.Client({ connectionString: url });
    // The server may go away at the end of a run while this idle connection is open.
    c.on('error', () => admins.delete(url));
    connecting = c.connect().then(() => c);
    admins.set(url, connecting);
    connecting.catch(() => admins.delete(url));
  }
  const client = await connecting;
  // Referenced while a query is out, or the process could end with the query pending.
  socketOf(client).ref();
  try {
    await client.query(sql);
  } finally {
    socketOf(client).unref();
  }
}

/**
 * A fresh, empty schema on `url`, and a URL whose connections use it (search_path), so that
 * a store under test sees only its own tables. `drop()` removes it with everything in it.
 */
export async function newSchema(url: string): Promise<{ url: string; schema: string; drop(): Promise<void> }> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  await adminQuery(url, `CREATE SCHEMA ${schema}`);
  const scoped = new URL(url);
  scoped.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: scoped.toString(),
    schema,
    async drop() {
      await adminQuery(url, `DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    },
  };
}

if (isMain(import.meta.url)) {
  const started = Date.now();
  const engine = await startPostgres();
  console.log(`PostgreSQL ready in ${Date.now() - started} ms: ${engine.url} (data in ${engine.dir}); Ctrl-C stops it`);
  const stop = () => void engine.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
