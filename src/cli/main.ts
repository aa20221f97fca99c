#!/usr/bin/env node
/**
 * `registry`: the command line for operators.
 *
 *   registry serve [--host H] [--port N] [--storage DIR]
 *   registry serve --memory [--seed FILE] [--faults FILE] [--port N] [--host H]   the test double (src/testing/serve.ts)
 *   registry user add NAME [--admin] [--email E]      password: first line of stdin
 *   registry user passwd NAME                           password: first line of stdin
 *   registry user enable|disable NAME
 *   registry user list [--json]
 *   registry user import-htpasswd FILE                 bcrypt entries (htpasswd -B)
 *   registry gc [--dry-run] [--grace SECONDS] [--json]  frees unreferenced images and layers
 *   registry fsck [--repair] [--json]                  checks blobs, images, tags, lists
 *   registry oauth-client add NAME --redirect-uri URI [--redirect-uri URI …]   prints {client_id, client_secret}
 *   registry oauth-client list [--json] | remove CLIENT_ID
 *   registry config print                              effective config, secrets masked
 *   registry migrate --to postgres+s3 [--postgres-url URL] [--s3-… ]   copies a stopped LevelDB + files
 *                                                      registry into PostgreSQL + S3, then fscks it (src/cli/migrate.ts)
 *   registry migrate --to level+fs --target-root DIR    and back
 *   registry login|logout|push|pull|search|tags|history|inspect|tag|rm …   the v1 client (src/client/commands.ts)
 *
 * Configuration comes from REGISTRY_CONFIG / config/default.yaml / REGISTRY_* as for the
 * server. The admin commands (user, gc, fsck, oauth-client) open the store themselves on a
 * stopped registry; when a running registry holds it (LevelDB allows one process), or with
 * `--url URL`, they go through that registry's admin API instead (src/cli/admin.ts).
 */
import fs from 'node:fs';
import { ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { isRegistryError } from '../domain/errors.js';
import { isMain } from '../is-main.js';
import { runServer } from '../main.js';
import { redactUrl } from '../services/webhooks.js';
import { prompt, runClient } from '../client/commands.js';
import { AdminApiError, openAdmin, type AdminBackend } from './admin.js';
import { serveDouble, ServeError } from '../testing/serve.js';
import { migrateCommand, MigrateUsageError, MIGRATE_OTHER_VALUE_FLAGS, MIGRATE_VALUE_FLAGS } from './migrate.js';

const SECRET_KEYS = new Set(['admin_password', 'metrics_token', 's3_secret_access_key', 'token_secret']);

/** A config value as `config print` shows it: secrets masked, webhook credentials too. */
function printable(key: string, value: unknown): string {
  if (SECRET_KEYS.has(key) && value) return '********';
  if (key === 'webhooks' && Array.isArray(value)) return JSON.stringify(value.map((url) => redactUrl(String(url))));
  if (key === 'postgres_url' && value) return JSON.stringify(redactUrl(String(value)));
  return JSON.stringify(value);
}

export class UsageError extends Error {}

interface Parsed {
  positional: string[];
  /** Each flag's last value (`true` for a flag without one). */
  flags: Map<string, string | true>;
  /** Every value of each flag, in order (repeatable flags: --redirect-uri). */
  repeated: Map<string, string[]>;
}

function parseArgs(argv: string[]): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  const repeated = new Map<string, string[]>();
  const set = (name: string, value: string | true) => {
    flags.set(name, value);
    if (value !== true) repeated.set(name, [...(repeated.get(name) ?? []), value]);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      if (eq !== -1) set(arg.slice(2, eq), arg.slice(eq + 1));
      else if (i + 1 < argv.length && !argv[i + 1].startsWith('--') && VALUE_FLAGS.has(arg.slice(2))) set(arg.slice(2), argv[++i]);
      else set(arg.slice(2), true);
    } else {
      positional.push(arg);
    }
  }
  return { positional, flags, repeated };
}

const VALUE_FLAGS = new Set([
  'host', 'port', 'storage', 'email', 'grace', 'url', 'redirect-uri', 'seed', 'faults',
  ...Object.keys(MIGRATE_VALUE_FLAGS), ...MIGRATE_OTHER_VALUE_FLAGS,
]);

function overridesFrom(flags: Map<string, string | true>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const host = flags.get('host');
  const port = flags.get('port');
  const storage = flags.get('storage');
  if (typeof host === 'string') out.host = host;
  if (typeof port === 'string') out.port = Number(port);
  if (typeof storage === 'string') out.storage_root = storage;
  return out;
}

async function readPassword(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('Password: ');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const line = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  if (!line) throw new UsageError('no password on standard input');
  return line;
}

/**
 * Runs an admin command on the store, opened here or through the running registry's admin
 * API (see admin.ts). Credentials for the API: the environment, saved logins, or a prompt.
 */
async function withAdmin<T>(config: Config, flags: Map<string, string | true>, fn: (admin: AdminBackend) => Promise<T>): Promise<T> {
  const url = flags.get('url');
  if (url === true) throw new UsageError('--url needs a value (http://HOST:PORT of the running registry)');
  const stdin = process.stdin as typeof process.stdin & { isTTY?: boolean };
  const admin = await openAdmin(config, url, {
    env: process.env,
    stderr: process.stderr,
    prompt: stdin.isTTY ? (question, secret) => prompt({ stdin, stderr: process.stderr }, question, secret) : null,
  });
  try {
    return await fn(admin);
  } finally {
    await admin.close();
  }
}

export async function run(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const { positional, flags, repeated } = parseArgs(argv);
  const [command, sub, arg] = positional;
  const print = (line: string) => out.write(line + '\n');
  const config = () => loadConfig({ overrides: overridesFrom(flags) });

  switch (command) {
    case 'serve':
      if (flags.has('memory')) return serveMemory(flags);
      await runServer(config());
      return -1; // keeps running
    case 'config':
      if (sub !== 'print') throw new UsageError('usage: registry config print');
      for (const [key, value] of Object.entries(config())) {
        print(`${key}: ${printable(key, value)}`);
      }
      return 0;
    case 'user':
      return userCommand(config(), sub, arg, flags, print);
    case 'gc':
    case 'fsck':
      return maintenance(command, config(), flags, print);
    case 'oauth-client':
      return oauthClientCommand(config(), sub, arg, flags, repeated.get('redirect-uri') ?? [], print);
    case 'migrate':
      try {
        return await migrateCommand(flags, overridesFrom(flags), { stdout: out, stderr: process.stderr });
      } catch (err) {
        if (err instanceof MigrateUsageError) throw new UsageError(err.message);
        throw err;
      }
    case 'login': case 'logout': case 'push': case 'pull': case 'search': case 'tags': case 'history': case 'inspect': case 'tag': case 'rm':
      return runClient(command, argv.slice(argv.indexOf(command) + 1), { stdout: out });
    default:
      throw new UsageError('usage: registry serve [--memory] | user add|passwd|enable|disable|list|import-htpasswd | gc | fsck | oauth-client add|list|remove | config print | migrate --to postgres+s3|level+fs | login|logout|push|pull|search|tags|history|inspect|tag|rm (client)');
  }
}

/** The test double: in memory, seeded and faulted from files; runs until a signal. */
async function serveMemory(flags: Map<string, string | true>): Promise<number> {
  const file = (name: string) => {
    const value = flags.get(name);
    if (value === true) throw new UsageError(`--${name} takes a file`);
    return value;
  };
  const port = flags.get('port');
  if (port !== undefined && !(typeof port === 'string' && /^\d+$/.test(port) && Number(port) <= 65535)) throw new UsageError('--port takes a port number (0: a free one)');
  const host = flags.get('host');
  try {
    await serveDouble({
      seedFile: file('seed'),
      faultsFile: file('faults'),
      port: port === undefined ? 0 : Number(port),
      host: typeof host === 'string' ? host : undefined,
    });
  } catch (err) {
    if (err instanceof ServeError) throw new UsageError(err.message);
    throw err;
  }
  return 0;
}

/** gc and fsck: on the store opened here (nothing uploads meanwhile), or by the running registry. */
async function maintenance(
  command: 'gc' | 'fsck',
  config: Config,
  flags: Map<string, string | true>,
  print: (line: string) => void,
): Promise<number> {
  const grace = flags.get('grace');
  const graceSeconds = typeof grace === 'string' ? Number(grace) : config.gc_grace_seconds;
  if (!Number.isInteger(graceSeconds) || graceSeconds < 0) throw new UsageError('--grace takes a number of seconds');
  return withAdmin(config, flags, async (admin) => {
    if (command === 'gc') {
      const report = await admin.gc({ dryRun: flags.has('dry-run'), graceSeconds });
      if (flags.has('json')) print(JSON.stringify(report));
      else {
        const verb = report.dryRun ? 'would delete' : 'deleted';
        print(
          `${verb} ${report.images.deleted} of ${report.images.scanned} images, ${report.manifests.deleted} of ${report.manifests.scanned} manifests and ` +
            `${report.blobs.deleted} of ${report.blobs.scanned} blobs (${report.blobs.bytesFreed} bytes); ${report.uploads.reclaimed} abandoned upload(s) reclaimed (${report.uploads.bytesFreed} bytes)`,
        );
      }
      return 0;
    }
    const report = await admin.fsck(flags.has('repair'));
    if (flags.has('json')) print(JSON.stringify(report));
    else {
      print(`checked ${report.blobs.checked} blobs (${report.blobs.bytes} bytes), ${report.images.checked} images (${report.images.pending} pending), ${report.tags.checked} tags`);
      print(`orphan blobs: ${report.blobs.orphans.length}; unreferenced images: ${report.images.unreferenced.length} (registry gc frees them)`);
      for (const p of report.problems) print(`${p.repaired ? 'repaired' : 'PROBLEM'} ${p.kind} ${p.subject}: ${p.detail}`);
      print(report.ok ? 'ok' : `${report.problems.filter((p) => !p.repaired).length} problem(s) left`);
    }
    return report.ok ? 0 : 1;
  });
}

async function userCommand(
  config: Config,
  sub: string | undefined,
  name: string | undefined,
  flags: Map<string, string | true>,
  print: (line: string) => void,
): Promise<number> {
  const needName = () => {
    if (!name) throw new UsageError(`usage: registry user ${sub} NAME`);
    return name;
  };
  switch (sub) {
    case 'add':
    case 'passwd': {
      const user = needName();
      // The backend first: its credential prompt must come before stdin is read to its end.
      return withAdmin(config, flags, async (admin) => {
        const password = await readPassword();
        const email = flags.get('email');
        const { result, admin: isAdmin } = await admin.setAccount({
          username: user,
          password,
          email: typeof email === 'string' ? email : undefined,
          admin: flags.has('admin'),
          mustExist: sub === 'passwd',
        });
        print(`${result} user ${user}${isAdmin ? ' (admin)' : ''}`);
        return 0;
      });
    }
    case 'enable':
    case 'disable': {
      const user = needName();
      return withAdmin(config, flags, async (admin) => {
        await admin.setActive(user, sub === 'enable');
        print(`${sub}d user ${user}`);
        return 0;
      });
    }
    case 'list':
      return withAdmin(config, flags, async (admin) => {
        const rows = await admin.listUsers();
        if (flags.has('json')) print(JSON.stringify(rows));
        else for (const r of rows) print(`${r.name}\t${r.email}\t${r.admin ? 'admin' : 'user'}\t${r.active ? 'active' : 'inactive'}`);
        return 0;
      });
    case 'import-htpasswd': {
      const file = needName();
      const text = fs.readFileSync(file, 'utf8');
      return withAdmin(config, flags, async (admin) => {
        const { imported, skipped } = await admin.importHtpasswd(text);
        print(`imported ${imported.length} user(s)${imported.length ? ': ' + imported.join(', ') : ''}`);
        for (const s of skipped) print(`skipped line ${s.line}: ${s.reason}`);
        return skipped.length > 0 ? 1 : 0;
      });
    }
    default:
      throw new UsageError('usage: registry user add|passwd|enable|disable|list|import-htpasswd');
  }
}

/** OAuth 2 applications (src/services/oauth.ts): register, list, remove. */
async function oauthClientCommand(
  config: Config,
  sub: string | undefined,
  arg: string | undefined,
  flags: Map<string, string | true>,
  redirectUris: string[],
  print: (line: string) => void,
): Promise<number> {
  switch (sub) {
    case 'add': {
      if (!arg || redirectUris.length === 0) throw new UsageError('usage: registry oauth-client add NAME --redirect-uri URI [--redirect-uri URI …]');
      return withAdmin(config, flags, async (admin) => {
        const client = await admin.addOAuthClient(arg, redirectUris);
        // The secret is shown this once; the registry keeps only its hash.
        print(JSON.stringify({ client_id: client.client_id, client_secret: client.client_secret }));
        return 0;
      });
    }
    case 'list':
      return withAdmin(config, flags, async (admin) => {
        const clients = await admin.listOAuthClients();
        if (flags.has('json')) print(JSON.stringify(clients));
        else for (const c of clients) print(`${c.client_id}\t${c.name}\t${c.redirect_uris.join(' ')}`);
        return 0;
      });
    case 'remove':
      if (!arg) throw new UsageError('usage: registry oauth-client remove CLIENT_ID');
      return withAdmin(config, flags, async (admin) => {
        await admin.removeOAuthClient(arg);
        print(`removed OAuth client ${arg}`);
        return 0;
      });
    default:
      throw new UsageError('usage: registry oauth-client add NAME --redirect-uri URI … | list [--json] | remove CLIENT_ID');
  }
}

if (isMain(import.meta.url)) {
  run(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exitCode = code;
    },
    (err) => {
      if (err instanceof UsageError || err instanceof ConfigError || isRegistryError(err)) {
        process.stderr.write(`registry: ${(err as Error).message}\n`);
        process.exitCode = 2;
      } else if (err instanceof AdminApiError) {
        // The running registry refused the input: as the same refusal made locally (2).
        process.stderr.write(`registry: ${err.message}\n`);
        process.exitCode = err.refusedInput ? 2 : 1;
      } else {
        process.stderr.write(`registry: ${(err as Error).stack ?? String(err)}\n`);
        process.exitCode = 1;
      }
    },
  );
}
