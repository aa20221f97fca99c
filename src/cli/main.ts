#!/usr/bin/env node
/**
 * `registry`: the command line for operators.
 *
 *   registry serve [--host H] [--port N] [--storage DIR]
 *   registry user add NAME [--admin] [--email E]      password: first line of stdin
 *   registry user passwd NAME                           password: first line of stdin
 *   registry user enable|disable NAME
 *   registry user list [--json]
 *   registry user import-htpasswd FILE                 bcrypt entries (htpasswd -B)
 *   registry gc [--dry-run] [--grace SECONDS] [--json]  frees unreferenced images and layers
 *   registry fsck [--repair] [--json]                  checks blobs, images, tags, lists
 *   registry config print                              effective config, secrets masked
 *   registry login|logout|push|pull|search|tags|history|inspect|tag|rm …   the v1 client (src/client/commands.ts)
 *
 * Configuration comes from REGISTRY_CONFIG / config/default.yaml / REGISTRY_* as for the
 * server. LevelDB allows one process per storage root: stop the server before running
 * commands that open the store (user …).
 */
import fs from 'node:fs';
import { ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { isRegistryError } from '../domain/errors.js';
import { isMain } from '../is-main.js';
import { createLogger } from '../logger.js';
import { runServer } from '../main.js';
import { Fsck } from '../services/fsck.js';
import { Gate } from '../services/gate.js';
import { GarbageCollector } from '../services/gc.js';
import { openStores } from '../services/services.js';
import { UserService } from '../services/users.js';
import { redactUrl } from '../services/webhooks.js';
import { runClient } from '../client/commands.js';

const SECRET_KEYS = new Set(['admin_password', 'metrics_token']);

/** A config value as `config print` shows it: secrets masked, webhook credentials too. */
function printable(key: string, value: unknown): string {
  if (SECRET_KEYS.has(key) && value) return '********';
  if (key === 'webhooks' && Array.isArray(value)) return JSON.stringify(value.map((url) => redactUrl(String(url))));
  return JSON.stringify(value);
}

export class UsageError extends Error {}

interface Parsed {
  positional: string[];
  flags: Map<string, string | true>;
}

function parseArgs(argv: string[]): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      if (eq !== -1) flags.set(arg.slice(2, eq), arg.slice(eq + 1));
      else if (i + 1 < argv.length && !argv[i + 1].startsWith('--') && VALUE_FLAGS.has(arg.slice(2))) flags.set(arg.slice(2), argv[++i]);
      else flags.set(arg.slice(2), true);
    } else {
      positional.push(arg);
    }
  }
  return { positional, flags };
}

const VALUE_FLAGS = new Set(['host', 'port', 'storage', 'email', 'grace']);

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

async function withUsers<T>(config: Config, fn: (users: UserService) => Promise<T>): Promise<T> {
  const { meta } = await openStores(config, createLogger('warn'));
  try {
    return await fn(new UserService(meta, { bcryptCost: config.bcrypt_cost, signupEnabled: config.signup_enabled }));
  } finally {
    await meta.close();
  }
}

export async function run(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const { positional, flags } = parseArgs(argv);
  const [command, sub, arg] = positional;
  const print = (line: string) => out.write(line + '\n');
  const config = () => loadConfig({ overrides: overridesFrom(flags) });

  switch (command) {
    case 'serve':
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
    case 'login': case 'logout': case 'push': case 'pull': case 'search': case 'tags': case 'history': case 'inspect': case 'tag': case 'rm':
      return runClient(command, argv.slice(argv.indexOf(command) + 1), { stdout: out });
    default:
      throw new UsageError('usage: registry serve | user add|passwd|enable|disable|list|import-htpasswd | gc | fsck | config print | login|logout|push|pull|search|tags|history|inspect|tag|rm (client)');
  }
}

/** gc and fsck on a stopped registry: the stores are opened here, nothing is uploading. */
async function maintenance(
  command: 'gc' | 'fsck',
  config: Config,
  flags: Map<string, string | true>,
  print: (line: string) => void,
): Promise<number> {
  const { meta, blobs } = await openStores(config, createLogger('warn'));
  try {
    const gate = new Gate();
    if (command === 'gc') {
      const grace = flags.get('grace');
      const graceSeconds = typeof grace === 'string' ? Number(grace) : config.gc_grace_seconds;
      if (!Number.isInteger(graceSeconds) || graceSeconds < 0) throw new UsageError('--grace takes a number of seconds');
      const idle = { isWriting: () => false, forget: () => undefined, isUploading: () => false };
      const report = await new GarbageCollector(meta, blobs, gate, idle).run({
        dryRun: flags.has('dry-run'),
        graceMs: graceSeconds * 1000,
        uploadExpiryMs: config.upload_expiry_seconds * 1000,
      });
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
    const report = await new Fsck(meta, blobs, gate).run(flags.has('repair'));
    if (flags.has('json')) print(JSON.stringify(report));
    else {
      print(`checked ${report.blobs.checked} blobs (${report.blobs.bytes} bytes), ${report.images.checked} images (${report.images.pending} pending), ${report.tags.checked} tags`);
      print(`orphan blobs: ${report.blobs.orphans.length}; unreferenced images: ${report.images.unreferenced.length} (registry gc frees them)`);
      for (const p of report.problems) print(`${p.repaired ? 'repaired' : 'PROBLEM'} ${p.kind} ${p.subject}: ${p.detail}`);
      print(report.ok ? 'ok' : `${report.problems.filter((p) => !p.repaired).length} problem(s) left`);
    }
    return report.ok ? 0 : 1;
  } finally {
    await meta.close();
  }
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
      const password = await readPassword();
      return withUsers(config, async (users) => {
        const existing = await users.get(user);
        if (sub === 'passwd' && !existing) throw new UsageError(`no such user: ${user}`);
        const email = typeof flags.get('email') === 'string' ? (flags.get('email') as string) : existing?.email ?? `${user}@localhost`;
        const admin = flags.has('admin') || (existing?.admin ?? false);
        const result = await users.upsert({ username: user, password, email, admin });
        print(`${result} user ${user}${admin ? ' (admin)' : ''}`);
        return 0;
      });
    }
    case 'enable':
    case 'disable': {
      const user = needName();
      return withUsers(config, async (users) => {
        await users.setActive(user, sub === 'enable');
        print(`${sub}d user ${user}`);
        return 0;
      });
    }
    case 'list':
      return withUsers(config, async (users) => {
        const rows = [];
        for await (const u of users.list()) rows.push({ name: u.name, email: u.email, admin: u.admin, active: u.active, createdAt: u.createdAt });
        if (flags.has('json')) print(JSON.stringify(rows));
        else for (const r of rows) print(`${r.name}\t${r.email}\t${r.admin ? 'admin' : 'user'}\t${r.active ? 'active' : 'inactive'}`);
        return 0;
      });
    case 'import-htpasswd': {
      const file = needName();
      const text = fs.readFileSync(file, 'utf8');
      return withUsers(config, async (users) => {
        const { imported, skipped } = await users.importHtpasswd(text);
        print(`imported ${imported.length} user(s)${imported.length ? ': ' + imported.join(', ') : ''}`);
        for (const s of skipped) print(`skipped line ${s.line}: ${s.reason}`);
        return skipped.length > 0 ? 1 : 0;
      });
    }
    default:
      throw new UsageError('usage: registry user add|passwd|enable|disable|list|import-htpasswd');
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
      } else {
        process.stderr.write(`registry: ${(err as Error).stack ?? String(err)}\n`);
        process.exitCode = 1;
      }
    },
  );
}
