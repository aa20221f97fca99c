/**
 * A private Docker engine for one test file: Debian's `dockerd` (docker.io, Engine 20.10) on a
 * socket, data root and exec root of its own in a temp dir, no iptables, no bridge, the vfs
 * storage driver. It needs root and the `docker.io` package (`.ci/run` installs it); it never
 * reaches the internet: base images are made locally (`importBusybox`).
 *
 *   const engine = await startDockerEngine();
 *   await engine.importBusybox('busybox:local');
 *   await engine.docker(['build', '-t', 'app', dir]);
 *   await engine.stop();
 *
 * The engine is also the judge of what we serve: `docker load` must accept what `registry pull`
 * writes and report the image ID docker had, and (v2) `docker pull` must get it back.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';

export interface DockerRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface DockerRunOptions {
  /** Written to the command's stdin (a Buffer, or a stream piped in). */
  stdin?: Buffer | string | Readable;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface DockerEngine {
  /** `unix://…/sock`, for DOCKER_HOST. */
  host: string;
  /** The engine's temp dir (data root, exec root, socket, log). */
  dir: string;
  /** The client's config dir (DOCKER_CONFIG): `docker login` writes its credentials here. */
  configDir: string;
  /** Runs `docker ARGS` against this engine; never throws on a non-zero exit. */
  docker(args: string[], options?: DockerRunOptions): Promise<DockerRun>;
  /** Like `docker`, but rejects (with stderr and the log's tail) unless it exits 0; resolves to stdout. */
  dockerOk(args: string[], options?: DockerRunOptions): Promise<string>;
  /** Spawns `docker ARGS` with piped stdio (for pipes such as `registry pull | docker load`). */
  spawnDocker(args: string[]): ChildProcess;
  /** The environment a docker client needs to reach this engine. */
  env: NodeJS.ProcessEnv;
  /** Imports a base image: Debian's static busybox and its applet symlinks, nothing else. */
  importBusybox(tag: string): Promise<string>;
  /** The last lines of the engine's log (for failure messages). */
  logTail(lines?: number): Promise<string>;
  /** Stops the engine (SIGTERM, then SIGKILL) and removes its dir. */
  stop(): Promise<void>;
}

const DOCKERD = '/usr/sbin/dockerd';
/** Debian's docker.io client matches the engine's API version (a newer CLI may be first on PATH). */
const DOCKER = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'ls', 'cat', 'echo', 'mkdir', 'rm', 'cp', 'mv', 'ln', 'touch', 'true', 'false', 'test', 'printf', 'sleep', 'env', 'id', 'wc', 'head', 'tail', 'sha256sum', 'dd', 'grep', 'sed', 'chmod', 'find', 'tar', 'gzip'];

/** Why this machine cannot run an engine, or null when it can. */
export function dockerEngineUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'a private dockerd needs root';
  if (!existsSync(DOCKERD)) return `${DOCKERD} is missing (apt-get install docker.io)`;
  if (spawnSync(DOCKER, ['--version']).status !== 0) return 'the docker client is missing (apt-get install docker.io)';
  if (!existsSync(BUSYBOX)) return `${BUSYBOX} is missing (apt-get install busybox-static)`;
  return null;
}

export interface DockerEngineOptions {
  startTimeoutMs?: number;
  /**
   * A directory that dockerd sees as /etc/docker (e.g. `certs.d/HOST:PORT/ca.crt`, the CA
   * it trusts for a registry), and a file it sees as /etc/hosts. dockerd then runs in a mount
   * namespace of its own (`unshare --mount`) where these are bind-mounted over the real
   * ones: nothing outside the temp dirs is read or written.
   */
  etcDocker?: string;
  hosts?: string;
}

export async function startDockerEngine(options: DockerEngineOptions = {}): Promise<DockerEngine> {
  const unavailable = dockerEngineUnavailable();
  if (unavailable) throw new Error(`cannot start a Docker engine: ${unavailable}`);
  // Unix socket paths are limited to ~107 bytes: keep the dir short.
  const dir = await fs.mkdtemp(path.join('/tmp', 'dk-'));
  const configDir = path.join(dir, 'client');
  await fs.mkdir(configDir);
  const sock = path.join(dir, 'sock');
  const host = `unix://${sock}`;
  const logFile = path.join(dir, 'dockerd.log');
  const log = await fs.open(logFile, 'w');
  const daemonArgs = [
      '--data-root', path.join(dir, 'root'),
      '--exec-root', path.join(dir, 'exec'),
      '-H', host,
      '--pidfile', path.join(dir, 'pid'),
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      '--storage-driver=vfs',
      '--log-level=warn',
  ];
  const isolated = options.etcDocker !== undefined || options.hosts !== undefined;
  // In its own mount namespace, the shell bind-mounts the replacements, then becomes dockerd.
  const script = 'e="$1"; h="$2"; shift 2; { [ -z "$e" ] || mount --bind "$e" /etc/docker; } && { [ -z "$h" ] || mount --bind "$h" /etc/hosts; } && exec "$@"';
  const daemon = isolated
    ? spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', options.etcDocker ?? '', options.hosts ?? '', DOCKERD, ...daemonArgs], {
        stdio: ['ignore', log.fd, log.fd],
        detached: false,
      })
    : spawn(DOCKERD, daemonArgs, { stdio: ['ignore', log.fd, log.fd], detached: false });
  await log.close();
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => daemon.once('exit', () => { exited = true; resolve(); }));
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: host, DOCKER_CONFIG: configDir, DOCKER_CLI_HINTS: 'false' };

  const docker = (args: string[], opts: DockerRunOptions = {}): Promise<DockerRun> =>
    new Promise((resolve, reject) => {
      const child = spawn(DOCKER, args, { env: { ...env, ...opts.env }, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('error', (err) => { clearTimeout(timer); reject(err); });
      child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
      const input = opts.stdin;
      if (input === undefined || typeof input === 'string' || Buffer.isBuffer(input)) child.stdin.end(input ?? '');
      else input.pipe(child.stdin);
    });

  const logTail = async (lines = 30) => {
    const text = await fs.readFile(logFile, 'utf8').catch(() => '');
    return text.split('\n').slice(-lines).join('\n');
  };

  const engine: DockerEngine = {
    host,
    dir,
    configDir,
    env,
    docker,
    async dockerOk(args, opts) {
      const run = await docker(args, opts);
      if (run.code !== 0) {
        throw new Error(`docker ${args.join(' ')} exited ${run.code}\nstderr: ${run.stderr}\nstdout: ${run.stdout.slice(0, 2000)}\nengine log:\n${await logTail(15)}`);
      }
      return run.stdout;
    },
    spawnDocker(args) {
      return spawn(DOCKER, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    },
    async importBusybox(tag) {
      const root = path.join(dir, `busybox-${Math.random().toString(36).slice(2)}`);
      await fs.mkdir(path.join(root, 'bin'), { recursive: true });
      await fs.mkdir(path.join(root, 'tmp'), { recursive: true });
      await fs.copyFile(BUSYBOX, path.join(root, 'bin', 'busybox'));
      await fs.chmod(path.join(root, 'bin', 'busybox'), 0o755);
      for (const applet of APPLETS) await fs.symlink('busybox', path.join(root, 'bin', applet));
      const tar = spawn('tar', ['-C', root, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const id = (await engine.dockerOk(['import', '-c', 'ENV PATH=/bin', '-', tag], { stdin: tar.stdout! })).trim();
      await fs.rm(root, { recursive: true, force: true });
      return id;
    },
    logTail,
    async stop() {
      if (!exited) {
        daemon.kill('SIGTERM');
        const timer = setTimeout(() => daemon.kill('SIGKILL'), 15_000);
        await exitedPromise;
        clearTimeout(timer);
      }
      await removeTree(dir);
    },
  };

  // Ready when the API answers.
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  for (;;) {
    if (exited) throw new Error(`dockerd exited at start:\n${await logTail()}`);
    const probe = await docker(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 5_000 }).catch(() => null);
    if (probe?.code === 0) break;
    if (Date.now() > deadline) {
      await engine.stop();
      throw new Error(`dockerd did not answer within ${options.startTimeoutMs ?? 60_000} ms:\n${await logTail()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return engine;
}

/** Removes the engine's dir, unmounting whatever the engine left mounted under it first. */
async function removeTree(dir: string): Promise<void> {
  const mounts = await fs.readFile('/proc/mounts', 'utf8').catch(() => '');
  const under = mounts
    .split('\n')
    .map((line) => line.split(' ')[1])
    .filter((m): m is string => !!m && m.startsWith(dir + '/'))
    .sort()
    .reverse();
  for (const m of under) spawnSync('umount', ['-l', m]);
  await fs.rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch(() => {});
}

/** A temp dir for build contexts and tarballs. */
export function tempDir(prefix = 'dk-ctx-'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}
