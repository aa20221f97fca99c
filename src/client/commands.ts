/**
 * The client commands of `registry` (wired into src/cli/main.ts):
 *
 *   registry login [HOST] [-u USER] [--password-stdin] [--email E]
 *   registry logout [HOST]
 *   registry push FILE|- REF [--layout legacy|current] [--image NAME]
 *   registry pull REF [-o FILE|-] [--retries N]
 *   registry search [HOST/]TERM [-n N] [--page P]
 *   registry tags REPO
 *   registry history REF [--no-trunc]
 *   registry inspect REF
 *   registry tag SRC DST
 *   registry rm REF
 *
 * Common flags: --json, -q/--quiet, --scheme http|https, --registry HOST (default host for
 * references without one; env V1_REGISTRY_HOST), --insecure (accept any TLS certificate),
 * --timeout SECONDS, --progress auto|bars|lines. Exit codes: 0 success, 1 failure (the
 * registry's own error message is printed), 2 usage.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { credentialsFor, removeCredentials, saveCredentials, type Credentials, authFilePath } from './credentials.js';
import { IntegrityError, UsageError } from './errors.js';
import { humanBytes, shortId, shortTime, table, truncate } from './format.js';
import { basicAuth, directSession, header, HttpClient, parseJsonBody, readSmall, RegistryHttpError, serverMessageOf, startPull, TransportError } from './http.js';
import { createProgress } from './progress.js';
import { pullImage } from './pull.js';
import { pushTarball } from './push.js';
import { parseHost, parseRef, RefError, refString, type RefOptions, type RepoRef, type Scheme } from './ref.js';

export const CLIENT_COMMANDS = ['login', 'logout', 'push', 'pull', 'search', 'tags', 'history', 'inspect', 'tag', 'rm'] as const;

export interface ClientIO {
  stdin?: Readable & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
  env?: NodeJS.ProcessEnv;
}

const USAGE: Record<string, string> = {
  login: 'registry login [HOST] [-u USER] [--password-stdin] [--email EMAIL]',
  logout: 'registry logout [HOST]',
  push: 'registry push FILE|- HOST/[NS/]REPO[:TAG] [--layout legacy|current] [--image NAME]',
  pull: 'registry pull HOST/[NS/]REPO[:TAG] [-o FILE|-] [--retries N]',
  search: 'registry search [HOST/]TERM [-n N] [--page P]',
  tags: 'registry tags HOST/[NS/]REPO',
  history: 'registry history HOST/[NS/]REPO[:TAG] [--no-trunc]',
  inspect: 'registry inspect HOST/[NS/]REPO[:TAG]',
  tag: 'registry tag SRC_REF DST_REF',
  rm: 'registry rm HOST/[NS/]REPO:TAG',
};

const VALUE_FLAGS: Record<string, string> = {
  o: 'output',
  output: 'output',
  u: 'username',
  username: 'username',
  email: 'email',
  scheme: 'scheme',
  layout: 'layout',
  image: 'image',
  registry: 'registry',
  retries: 'retries',
  n: 'limit',
  limit: 'limit',
  page: 'page',
  timeout: 'timeout',
  progress: 'progress',
};
const BOOL_FLAGS: Record<string, string> = {
  json: 'json',
  q: 'quiet',
  quiet: 'quiet',
  'password-stdin': 'password-stdin',
  insecure: 'insecure',
  'no-trunc': 'no-trunc',
  h: 'help',
  help: 'help',
};

interface Args {
  positional: string[];
  flags: Map<string, string | true>;
}

export function parseClientArgs(argv: string[]): Args {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '-' || !arg.startsWith('-')) {
      positional.push(arg);
      continue;
    }
    const long = arg.startsWith('--');
    const body = arg.slice(long ? 2 : 1);
    const eq = body.indexOf('=');
    const key = eq === -1 ? body : body.slice(0, eq);
    if (!long && key.length !== 1) throw new UsageError(`unknown option ${arg}`);
    if (VALUE_FLAGS[key]) {
      const value = eq !== -1 ? body.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new UsageError(`${arg} needs a value`);
      flags.set(VALUE_FLAGS[key], value);
    } else if (BOOL_FLAGS[key] && eq === -1) {
      flags.set(BOOL_FLAGS[key], true);
    } else {
      throw new UsageError(`unknown option ${arg}`);
    }
  }
  return { positional, flags };
}

class Context {
  readonly stdin: NonNullable<ClientIO['stdin']>;
  readonly stdout: NonNullable<ClientIO['stdout']>;
  readonly stderr: NonNullable<ClientIO['stderr']>;
  readonly env: NodeJS.ProcessEnv;
  readonly json: boolean;
  readonly quiet: boolean;
  private clientInstance: HttpClient | null = null;

  constructor(
    readonly command: string,
    readonly args: Args,
    io: ClientIO,
  ) {
    this.stdin = io.stdin ?? process.stdin;
    this.stdout = io.stdout ?? process.stdout;
    this.stderr = io.stderr ?? process.stderr;
    this.env = io.env ?? process.env;
    this.json = args.flags.has('json');
    this.quiet = args.flags.has('quiet');
  }

  flag(name: string): string | undefined {
    const v = this.args.flags.get(name);
    return typeof v === 'string' ? v : undefined;
  }

  number(name: string, fallback: number): number {
    const v = this.flag(name);
    if (v === undefined) return fallback;
    if (!/^\d+$/.test(v)) throw new UsageError(`--${name} takes a non-negative integer`);
    return Number(v);
  }

  print(text: string): void {
    this.stdout.write(text.endsWith('\n') ? text : text + '\n');
  }

  note(text: string): void {
    if (!this.quiet) this.stderr.write(text + '\n');
  }

  refOptions(): RefOptions {
    const scheme = this.flag('scheme');
    if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') throw new UsageError('--scheme is http or https');
    return { scheme: scheme as Scheme | undefined, defaultHost: this.flag('registry') ?? this.env.V1_REGISTRY_HOST };
  }

  ref(input: string | undefined): RepoRef {
    if (!input) throw new UsageError(`usage: ${USAGE[this.command]}`);
    return parseRef(input, this.refOptions());
  }

  get client(): HttpClient {
    if (!this.clientInstance) {
      const timeout = this.number('timeout', 60);
      this.clientInstance = new HttpClient({ insecure: this.args.flags.has('insecure'), timeoutMs: timeout * 1000 });
    }
    return this.clientInstance;
  }

  progress() {
    const mode = this.flag('progress') ?? 'auto';
    if (!['auto', 'bars', 'lines'].includes(mode)) throw new UsageError('--progress is auto, bars or lines');
    return createProgress(this.stderr as unknown as Writable & { isTTY?: boolean }, { quiet: this.quiet, tty: mode === 'auto' ? undefined : mode === 'bars' });
  }

  close(): void {
    this.clientInstance?.close();
  }
}

export async function runClient(command: string, argv: string[], io: ClientIO = {}): Promise<number> {
  const stderr = io.stderr ?? process.stderr;
  let ctx: Context | null = null;
  try {
    const args = parseClientArgs(argv);
    ctx = new Context(command, args, io);
    if (args.flags.has('help')) {
      ctx.print(`usage: ${USAGE[command] ?? Object.values(USAGE).join('\n       ')}`);
      return 0;
    }
    switch (command) {
      case 'login':
        return await login(ctx);
      case 'logout':
        return await logout(ctx);
      case 'push':
        return await push(ctx);
      case 'pull':
        return await pull(ctx);
      case 'search':
        return await search(ctx);
      case 'tags':
        return await tags(ctx);
      case 'history':
        return await history(ctx);
      case 'inspect':
        return await inspect(ctx);
      case 'tag':
        return await tag(ctx);
      case 'rm':
        return await rm(ctx);
      default:
        throw new UsageError(`unknown client command ${command}`);
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof RefError) {
      stderr.write(`registry: ${err.message}\n`);
      if (USAGE[command] && !err.message.startsWith('usage:')) stderr.write(`usage: ${USAGE[command]}\n`);
      return 2;
    }
    const message = err instanceof RegistryHttpError || err instanceof TransportError || err instanceof IntegrityError ? err.message : ((err as Error)?.message ?? String(err));
    stderr.write(`registry ${command}: ${message}\n`);
    return 1;
  } finally {
    ctx?.close();
  }
}

// ── login / logout ──────────────────────────────────────────────────────────────────

async function readLine(stdin: NonNullable<ClientIO['stdin']>): Promise<string> {
  let text = '';
  for await (const chunk of stdin) {
    text += String(chunk);
    if (text.includes('\n')) break;
  }
  return text.split(/\r?\n/)[0] ?? '';
}

/** Reads a line from a terminal; without echo for passwords (also the admin commands' prompt). */
export async function prompt(ctx: { stdin: NonNullable<ClientIO['stdin']>; stderr: NonNullable<ClientIO['stderr']> }, question: string, secret: boolean): Promise<string> {
  ctx.stderr.write(question);
  const stdin = ctx.stdin;
  if (!secret || !stdin.setRawMode) return readLine(stdin);
  stdin.setRawMode(true);
  try {
    let text = '';
    for await (const chunk of stdin) {
      for (const ch of String(chunk)) {
        if (ch === '\r' || ch === '\n') {
          ctx.stderr.write('\n');
          return text;
        }
        if (ch === '\u0003') throw new UsageError('interrupted');
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else text += ch;
      }
    }
    return text;
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
  }
}

function hostArg(ctx: Context): ReturnType<typeof parseHost> {
  const input = ctx.args.positional[0] ?? ctx.flag('registry') ?? ctx.env.V1_REGISTRY_HOST;
  if (!input) throw new UsageError(`usage: ${USAGE[ctx.command]}`);
  return parseHost(input, ctx.refOptions());
}

async function login(ctx: Context): Promise<number> {
  const host = hostArg(ctx);
  let username = ctx.flag('username') ?? ctx.env.V1_REGISTRY_USERNAME;
  if (!username) {
    if (!ctx.stdin.isTTY) throw new UsageError('no username: use -u USER or V1_REGISTRY_USERNAME');
    username = (await prompt(ctx, 'Username: ', false)).trim();
  }
  let password: string | undefined;
  if (ctx.args.flags.has('password-stdin')) password = await readLine(ctx.stdin);
  else password = ctx.env.V1_REGISTRY_PASSWORD;
  if (!password) {
    if (!ctx.stdin.isTTY) throw new UsageError('no password: use --password-stdin or V1_REGISTRY_PASSWORD');
    password = await prompt(ctx, 'Password: ', true);
  }
  if (!username || !password) throw new UsageError('username and password must not be empty');
  const credentials: Credentials = { username, password };
  const email = ctx.flag('email') ?? `${username}@localhost`;

  // docker 1.x: sign up (201), or "Username or email already exists" → check the password.
  const client = ctx.client;
  const signup = await client.open({
    method: 'POST',
    url: `${host.base}/v1/users/`,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password, email }),
  });
  const signupBody = await readSmall(signup, `${host.base}/v1/users/`);
  let created = false;
  if (signup.statusCode === 201) {
    created = true;
  } else if (signup.statusCode === 400 && !/already exists/i.test(signupBody.toString('utf8'))) {
    throw new RegistryHttpError('POST', `${host.base}/v1/users/`, 400, serverMessageOf(signupBody, header(signup.headers, 'content-type')));
  } else {
    // exists, or sign-up closed (401/403/404/405): is the password right?
    await client.call({ method: 'GET', url: `${host.base}/v1/users/`, headers: { Authorization: basicAuth(credentials) } }, [200]);
  }
  const file = await saveCredentials(host.host, credentials, ctx.env);
  if (ctx.json) ctx.print(JSON.stringify({ host: host.host, username, created, file }));
  else ctx.print(`${created ? 'Account created. ' : ''}Login Succeeded (${username}@${host.host}; credentials in ${file})`);
  return 0;
}

async function logout(ctx: Context): Promise<number> {
  const host = hostArg(ctx);
  const removed = await removeCredentials(host.host, ctx.env);
  if (ctx.json) ctx.print(JSON.stringify({ host: host.host, removed, file: authFilePath(ctx.env) }));
  else ctx.print(removed ? `Removed login credentials for ${host.host}` : `Not logged in to ${host.host}`);
  return 0;
}

// ── push / pull ────────────────────────────────────────────────────────────────────

function layoutFlag(ctx: Context): 'legacy' | 'current' | undefined {
  const layout = ctx.flag('layout');
  if (layout !== undefined && layout !== 'legacy' && layout !== 'current') throw new UsageError('--layout is legacy or current');
  return layout;
}

async function push(ctx: Context): Promise<number> {
  const [source, refInput] = ctx.args.positional;
  if (!source || !refInput || ctx.args.positional.length > 2) throw new UsageError(`usage: ${USAGE.push}`);
  const ref = ctx.ref(refInput);
  if (source === '-' && ctx.stdin.isTTY) throw new UsageError('standard input is a terminal: pipe a tarball in (docker save IMAGE | registry push - REF)');
  const progress = ctx.progress();
  try {
    const result = await pushTarball({
      source,
      stdin: ctx.stdin,
      ref,
      credentials: await credentialsFor(ref.host, ctx.env),
      client: ctx.client,
      progress,
      layout: layoutFlag(ctx),
      image: ctx.flag('image'),
    });
    progress.close();
    if (ctx.json) ctx.print(JSON.stringify(result));
    else {
      const uploaded = result.images.filter((i) => i.uploaded);
      const bytes = uploaded.reduce((n, i) => n + i.size, 0);
      ctx.print(`pushed ${result.ref} ${result.id} (${uploaded.length} of ${result.images.length} layer(s) uploaded, ${humanBytes(bytes)})`);
    }
    return 0;
  } finally {
    progress.close();
  }
}

async function pull(ctx: Context): Promise<number> {
  const [refInput] = ctx.args.positional;
  if (!refInput || ctx.args.positional.length > 1) throw new UsageError(`usage: ${USAGE.pull}`);
  const ref = ctx.ref(refInput);
  let output = ctx.flag('output');
  if (output === undefined) {
    if (ctx.stdout.isTTY) throw new UsageError('refusing to write a tarball to a terminal: use -o FILE (or -o - with a pipe)');
    output = '-';
  }
  const toStdout = output === '-';
  const partial = toStdout ? null : path.join(path.dirname(output), `.${path.basename(output)}.${process.pid}.part`);
  // Open the file first, so that a bad path is a clean error before anything is fetched.
  const out: Writable = partial ? (await fsp.open(partial, 'w', 0o644)).createWriteStream() : (ctx.stdout as unknown as Writable);
  const progress = ctx.progress();
  let ok = false;
  try {
    const result = await pullImage({
      ref,
      credentials: await credentialsFor(ref.host, ctx.env),
      client: ctx.client,
      progress,
      out,
      retries: ctx.number('retries', 5),
    });
    progress.close();
    if (partial) {
      await new Promise<void>((resolve, reject) => {
        out.once('error', reject);
        out.end(() => resolve());
      });
      await fsp.rename(partial, output);
    }
    ok = true;
    const summary = `pulled ${result.ref} ${result.id} (${result.layers.length} layer(s), image ${result.configDigest}) to ${toStdout ? 'standard output' : output}`;
    if (ctx.json) {
      const line = JSON.stringify({ ...result, output: toStdout ? '-' : output });
      if (toStdout) ctx.stderr.write(line + '\n');
      else ctx.print(line);
    } else if (toStdout) ctx.note(summary);
    else ctx.print(summary);
    return 0;
  } finally {
    progress.close();
    if (partial && !ok) {
      out.destroy();
      await fsp.rm(partial, { force: true });
    }
  }
}

// ── search / tags / history / inspect ───────────────────────────────────────────────

interface SearchAnswer {
  query?: string;
  num_results?: number;
  num_pages?: number;
  page?: number;
  results?: Array<{ name?: string; description?: string | null; star_count?: number; is_official?: boolean; is_automated?: boolean }>;
}

async function search(ctx: Context): Promise<number> {
  const input = ctx.args.positional[0] ?? '';
  if (ctx.args.positional.length > 1) throw new UsageError(`usage: ${USAGE.search}`);
  let hostInput = ctx.flag('registry') ?? ctx.env.V1_REGISTRY_HOST;
  let term = input;
  const withScheme = /^https?:\/\//i.exec(input);
  const bare = withScheme ? input.slice(withScheme[0].length) : input;
  const slash = bare.indexOf('/');
  const first = slash === -1 ? bare : bare.slice(0, slash);
  if (withScheme || (slash !== -1 && (first.includes('.') || first.includes(':') || first === 'localhost')) || (slash === -1 && /:\d+$/.test(first))) {
    hostInput = (withScheme ? withScheme[0] : '') + first;
    term = slash === -1 ? '' : bare.slice(slash + 1);
  }
  if (!hostInput) throw new UsageError('search: name the registry: registry search HOST/TERM (or --registry HOST)');
  const host = parseHost(hostInput, ctx.refOptions());
  const params = new URLSearchParams({ q: term });
  if (ctx.flag('limit')) params.set('n', String(ctx.number('limit', 25)));
  if (ctx.flag('page')) params.set('page', String(ctx.number('page', 1)));
  const credentials = await credentialsFor(host.host, ctx.env);
  const res = await ctx.client.call(
    { method: 'GET', url: `${host.base}/v1/search?${params}`, headers: credentials ? { Authorization: basicAuth(credentials) } : {} },
    [200],
  );
  const answer = parseJsonBody<SearchAnswer>(res, 'search');
  if (ctx.json) {
    ctx.print(res.body.toString('utf8').trim());
    return 0;
  }
  const rows = (answer.results ?? []).map((r) => [
    r.name ?? '',
    truncate((r.description ?? '').replace(/\s+/g, ' '), ctx.args.flags.has('no-trunc') ? 10_000 : 45),
    String(r.star_count ?? 0),
    r.is_official ? '[OK]' : '',
  ]);
  ctx.stdout.write(table(['NAME', 'DESCRIPTION', 'STARS', 'OFFICIAL'], rows));
  if ((answer.num_pages ?? 1) > 1) ctx.note(`page ${answer.page ?? 1} of ${answer.num_pages} (${answer.num_results} results): --page P`);
  return 0;
}

async function readSession(ctx: Context, ref: RepoRef) {
  const { session } = await startPull(ctx.client, ref, await credentialsFor(ref.host, ctx.env));
  return session;
}

async function tags(ctx: Context): Promise<number> {
  const [input] = ctx.args.positional;
  if (!input || ctx.args.positional.length > 1) throw new UsageError(`usage: ${USAGE.tags}`);
  const ref = ctx.ref(input);
  if (ref.tagGiven) throw new UsageError(`tags takes a repository, not a tag: ${ref.display}`);
  const session = await readSession(ctx, ref);
  const res = await session.registryCall('GET', session.repoUrl('/tags'), [200]);
  const map = parseJsonBody<Record<string, string>>(res, 'tags');
  if (ctx.json) {
    ctx.print(JSON.stringify(map));
    return 0;
  }
  const full = ctx.args.flags.has('no-trunc');
  const rows = Object.entries(map)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([t, id]) => [t, full ? id : shortId(id)]);
  ctx.stdout.write(table(['TAG', 'IMAGE ID'], rows));
  return 0;
}

interface HistoryRow {
  id: string;
  created: string | null;
  created_by: string;
  size: number | null;
  comment: string | null;
}

async function history(ctx: Context): Promise<number> {
  const [input] = ctx.args.positional;
  if (!input || ctx.args.positional.length > 1) throw new UsageError(`usage: ${USAGE.history}`);
  const ref = ctx.ref(input);
  const session = await readSession(ctx, ref);
  const id = await session.tagId(ref.tag);
  const ancestry = await session.getJson<string[]>(session.imageUrl(id, 'ancestry'), 'ancestry');
  const rows: HistoryRow[] = [];
  const docs: Array<Record<string, unknown>> = [];
  for (const imageId of ancestry) {
    const res = await session.registryCall('GET', session.imageUrl(imageId, 'json'), [200]);
    const doc = parseJsonBody<Record<string, unknown>>(res, `json of ${imageId}`);
    docs.push(doc);
    const size = header(res.headers, 'x-docker-size');
    const cmd = (doc.container_config as { Cmd?: unknown } | undefined)?.Cmd;
    rows.push({
      id: imageId,
      created: typeof doc.created === 'string' ? doc.created : null,
      created_by: Array.isArray(cmd) ? cmd.filter((c) => typeof c === 'string').join(' ') : '',
      size: size !== undefined && /^\d+$/.test(size) ? Number(size) : null,
      comment: typeof doc.comment === 'string' ? doc.comment : null,
    });
  }
  // Images pushed from a config: the top JSON carries the config's history.
  const top = docs[0];
  if (top && Array.isArray(top.history)) {
    const layerHistory = (top.history as Array<Record<string, unknown>>).filter((h) => h && h.empty_layer !== true);
    if (layerHistory.length === rows.length) {
      const oldestFirst = [...rows].reverse();
      layerHistory.forEach((h, i) => {
        if (!oldestFirst[i].created_by && typeof h.created_by === 'string') oldestFirst[i].created_by = h.created_by;
        if (!oldestFirst[i].created && typeof h.created === 'string') oldestFirst[i].created = h.created;
      });
    }
  }
  if (ctx.json) {
    ctx.print(JSON.stringify(rows));
    return 0;
  }
  const full = ctx.args.flags.has('no-trunc');
  ctx.stdout.write(
    table(
      ['IMAGE', 'CREATED', 'CREATED BY', 'SIZE'],
      rows.map((r) => [full ? r.id : shortId(r.id), shortTime(r.created), full ? r.created_by : truncate(r.created_by, 60), r.size === null ? '?' : humanBytes(r.size)]),
    ),
  );
  return 0;
}

async function inspect(ctx: Context): Promise<number> {
  const [input] = ctx.args.positional;
  if (!input || ctx.args.positional.length > 1) throw new UsageError(`usage: ${USAGE.inspect}`);
  const ref = ctx.ref(input);
  const session = await readSession(ctx, ref);
  const id = await session.tagId(ref.tag);
  const res = await session.registryCall('GET', session.imageUrl(id, 'json'), [200]);
  if (ctx.json) {
    ctx.stdout.write(res.body);
    ctx.stdout.write('\n');
    return 0;
  }
  const doc = parseJsonBody<Record<string, unknown>>(res, `json of ${id}`);
  const config = (doc.config ?? {}) as Record<string, unknown>;
  const size = header(res.headers, 'x-docker-size');
  const lines: Array<[string, unknown]> = [
    ['Reference', refString(ref)],
    ['ID', id],
    ['Parent', doc.parent],
    ['Created', doc.created],
    ['Author', doc.author],
    ['Docker version', doc.docker_version],
    ['OS/Arch', [doc.os, doc.architecture].filter(Boolean).join('/')],
    ['Layer size', size !== undefined ? `${humanBytes(Number(size))} (${size} bytes)` : undefined],
    ['Cmd', config.Cmd],
    ['Entrypoint', config.Entrypoint],
    ['WorkingDir', config.WorkingDir],
    ['User', config.User],
    ['Env', config.Env],
    ['ExposedPorts', config.ExposedPorts ? Object.keys(config.ExposedPorts as object) : undefined],
    ['Labels', config.Labels],
    ['Comment', doc.comment],
  ];
  const width = Math.max(...lines.map(([k]) => k.length));
  for (const [key, value] of lines) {
    if (value === undefined || value === null || value === '' || (Array.isArray(value) && value.length === 0)) continue;
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    ctx.print(`${(key + ':').padEnd(width + 1)} ${text}`);
  }
  return 0;
}

// ── tag / rm ───────────────────────────────────────────────────────────────────────

async function tag(ctx: Context): Promise<number> {
  const [srcInput, dstInput] = ctx.args.positional;
  if (!srcInput || !dstInput || ctx.args.positional.length > 2) throw new UsageError(`usage: ${USAGE.tag}`);
  const src = ctx.ref(srcInput);
  const dst = parseRef(dstInput, { ...ctx.refOptions(), defaultHost: src.host, scheme: src.scheme });
  if (dst.host !== src.host) throw new UsageError(`tag works inside one registry: ${src.host} is not ${dst.host}`);
  const session = await readSession(ctx, src);
  const id = await session.tagId(src.tag);
  const credentials = await credentialsFor(dst.host, ctx.env);
  const write = directSession(ctx.client, dst, credentials);
  await write.registryCall('PUT', write.repoUrl(`/tags/${encodeURIComponent(dst.tag)}`), [200], {
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(id),
  });
  if (ctx.json) ctx.print(JSON.stringify({ source: refString(src), target: refString(dst), id }));
  else ctx.print(`tagged ${refString(dst)} → ${id}`);
  return 0;
}

async function rm(ctx: Context): Promise<number> {
  const [input] = ctx.args.positional;
  if (!input || ctx.args.positional.length > 1) throw new UsageError(`usage: ${USAGE.rm}`);
  const ref = ctx.ref(input);
  if (!ref.tagGiven) throw new UsageError(`name the tag to delete: ${ref.display}:TAG`);
  const credentials = await credentialsFor(ref.host, ctx.env);
  const session = directSession(ctx.client, ref, credentials);
  await session.registryCall('DELETE', session.repoUrl(`/tags/${encodeURIComponent(ref.tag)}`), [200]);
  if (ctx.json) ctx.print(JSON.stringify({ ref: refString(ref), deleted: true }));
  else ctx.print(`deleted tag ${refString(ref)}`);
  return 0;
}
