/**
 * The container packaging, built and run with a real Docker engine (`npm run test:image`;
 * `.ci/run` runs it before `npm test`). Not a `*.test.ts`: it takes minutes (a vfs engine
 * copies every layer), so `npm test` leaves it out.
 *
 * A private engine (test/helpers/docker-engine.ts), the base images made by
 * `../shared/tools/docker-node-bases.sh` (stand-ins for node:20-bookworm and
 * node:20-bookworm-slim: Docker Hub is unreachable), `docker build --network host` of the
 * repository with the legacy builder (what Debian's docker.io 20.10 and docker-compose 1.29
 * use; IMAGE_TEST_BUILDKIT=1 builds with BuildKit instead), then containers on a user-defined
 * bridge network published on 127.0.0.1 (the engine runs with --bridge=none and
 * --iptables=false: user-defined bridges still work, and docker-proxy publishes the ports).
 *
 * Needs root, docker.io, docker-compose and, the first time, debootstrap and the Debian mirror
 * (the bases' cache). DOCKER_NODE_BASES=path overrides where the bases script is looked for.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { dockerEngineUnavailable, startDockerEngine, tempDir, type DockerEngine } from '../helpers/docker-engine.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const CLI = path.join(REPO, 'dist', 'src', 'cli', 'main.js');
const IMAGE = 'v1-registry:test';
const ADMIN = 'admin';
const ADMIN_PASSWORD = 'correct-horse-battery';
const MINUTE = 60_000;

/** The bases script: DOCKER_NODE_BASES, else ../shared/tools beside the checkout (as in CI). */
function basesScript(): string {
  const script = process.env.DOCKER_NODE_BASES || path.resolve(REPO, '..', 'shared', 'tools', 'docker-node-bases.sh');
  if (!existsSync(script)) {
    throw new Error(
      `test:image: the base-image script ${script} is missing. It makes the node:20-bookworm stand-ins ` +
        `(Docker Hub is unreachable) and lives in shared/tools beside the checkout; ` +
        `set DOCKER_NODE_BASES=/path/to/docker-node-bases.sh if yours is elsewhere.`,
    );
  }
  return script;
}

function preconditions(): string {
  const engine = dockerEngineUnavailable();
  if (engine) throw new Error(`test:image: ${engine}`);
  if (spawnSync('docker-compose', ['version']).status !== 0) throw new Error('test:image: docker-compose is missing (apt-get install docker-compose)');
  if (!existsSync(CLI)) throw new Error(`test:image: ${CLI} is missing: run npm run build first (npm run test:image does)`);
  return basesScript();
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 10 * MINUTE);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

function ok(what: string, result: Run): string {
  assert.equal(result.code, 0, `${what} exited ${result.code}\nstdout: ${result.stdout.slice(-3000)}\nstderr: ${result.stderr.slice(-3000)}`);
  return result.stdout;
}

/** The registry's command line from the host, with only the client's environment (no REGISTRY_*). */
function registryCli(args: string[], authFile: string): Promise<Run> {
  return run(process.execPath, [CLI, ...args], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      V1_REGISTRY_AUTH_FILE: authFile,
      V1_REGISTRY_USERNAME: ADMIN,
      V1_REGISTRY_PASSWORD: ADMIN_PASSWORD,
    },
  });
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * One HTTP request to 127.0.0.1:port (node:http, not fetch: while a container starts,
 * docker-proxy accepts a connection and resets it, and Node 20's fetch then never settles).
 */
function request(port: number, method: string, urlPath: string, options: { headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers: options.headers, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: no answer within 10 s`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitFor<T>(what: string, check: () => Promise<T | undefined>, ms: number, explain: () => Promise<string>): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`${what} not within ${ms / 1000} s\n${await explain()}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** Lists the packages under /app/node_modules as the lockfile names them (node_modules/a/node_modules/b). */
const LIST_PACKAGES = `
const fs = require('fs'), path = require('path');
const out = [];
const visit = (dir, rel) => {
  if (!fs.existsSync(path.join(dir, 'package.json'))) return;
  out.push(rel);
  walk(path.join(dir, 'node_modules'), rel + '/node_modules');
};
const walk = (dir, rel) => {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir)) {
    if (e.startsWith('.')) continue;
    if (e.startsWith('@')) for (const s of fs.readdirSync(path.join(dir, e))) visit(path.join(dir, e, s), rel + '/' + e + '/' + s);
    else visit(path.join(dir, e), rel + '/' + e);
  }
};
walk('/app/node_modules', 'node_modules');
process.stdout.write(JSON.stringify(out));
`;

/** What the lockfile installs with --omit=dev --omit=optional: every package neither dev nor optional. */
async function productionPackages(): Promise<string[]> {
  const lock = JSON.parse(await fs.readFile(path.join(REPO, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; devOptional?: boolean; optional?: boolean; link?: boolean }>;
  };
  return Object.entries(lock.packages)
    .filter(([key, p]) => key.startsWith('node_modules/') && !p.dev && !p.devOptional && !p.optional && !p.link)
    .map(([key]) => key)
    .sort();
}

describe('the container image, with a real engine', () => {
  let engine: DockerEngine;
  let work: string;
  let network = '';
  let volume = '';
  const containers: string[] = [];
  const composeProjects: Array<{ dir: string; name: string }> = [];
  const timings: string[] = [];
  let started = 0;
  let authFile = '';
  let pushedId = '';
  let portA = 0;

  const docker = (args: string[], options: { timeoutMs?: number; stdin?: string } = {}) => engine.docker(args, options);
  const dockerOk = (args: string[], options: { timeoutMs?: number; stdin?: string } = {}) => engine.dockerOk(args, options);
  const logsOf = async (name: string) => {
    const r = await docker(['logs', '--tail', '40', name]);
    return `logs of ${name}:\n${r.stdout}${r.stderr}`;
  };
  const inspect = async (name: string, format: string) => (await dockerOk(['inspect', '-f', format, name])).trim();
  const took = (what: string, t0: number) => timings.push(`${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  /** `docker run -d` of the image on the test network, published on 127.0.0.1:hostPort. */
  async function startContainer(name: string, hostPort: number, containerPort: number, args: string[]): Promise<void> {
    containers.push(name);
    await dockerOk(['run', '-d', '--name', name, '--network', network, '-p', `127.0.0.1:${hostPort}:${containerPort}`, ...args, IMAGE], { timeoutMs: 5 * MINUTE });
  }

  async function answers(name: string, port: number): Promise<Answer> {
    return waitFor(
      `${name} answering /_ping on 127.0.0.1:${port}`,
      async () => {
        const res = await request(port, 'GET', '/_ping');
        return res.status === 200 ? res : undefined;
      },
      2 * MINUTE,
      () => logsOf(name),
    );
  }

  /** Waits for the HEALTHCHECK to say healthy; returns the seconds it took from now. */
  async function healthy(name: string): Promise<number> {
    const t0 = Date.now();
    await waitFor(
      `${name} healthy`,
      async () => {
        const status = await inspect(name, '{{.State.Health.Status}}');
        if (status === 'unhealthy') throw new Error('unhealthy'); // retried: judged at the deadline
        return status === 'healthy' ? true : undefined;
      },
      2 * MINUTE,
      async () => `health: ${await inspect(name, '{{json .State.Health}}')}\n${await logsOf(name)}`,
    );
    return (Date.now() - t0) / 1000;
  }

  async function status(port: number): Promise<{ status: string; checks: Record<string, string> }> {
    const res = await request(port, 'GET', '/_status');
    assert.equal(res.status, 200, `/_status: ${res.status} ${res.body}`);
    return JSON.parse(res.body) as { status: string; checks: Record<string, string> };
  }

  async function signupStatus(port: number): Promise<number> {
    const res = await request(port, 'POST', '/v1/users/', {
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'mallory', password: 'let-me-in-1', email: 'mallory@example.com' }),
    });
    return res.status;
  }

  async function loginStatus(port: number, password: string): Promise<number> {
    return (await request(port, 'GET', '/v1/users/', { headers: { Authorization: basic(ADMIN, password) } })).status;
  }

  before(
    async () => {
      started = Date.now();
      const bases = preconditions();
      work = await tempDir('dk-image-');
      authFile = path.join(work, 'auth.json');
      engine = await startDockerEngine();

      let t0 = Date.now();
      ok('docker-node-bases.sh', await run('bash', [bases], { env: { ...process.env, DOCKER_HOST: engine.host }, timeoutMs: 30 * MINUTE }));
      took('base images (docker-node-bases.sh)', t0);

      // Upstream's node:20-bookworm has no nodedir in its npmrc (the stand-in has one): it is
      // taken out, and node-gyp's header download points at a name that never resolves
      // (.invalid), so the build proves that the Dockerfile itself keeps node-gyp off the
      // network (without its npm_config_nodedir the addon does not build and neither does
      // the image).
      t0 = Date.now();
      await dockerOk(['build', '--network', 'none', '-t', 'node:20-bookworm', '-'], {
        timeoutMs: 10 * MINUTE,
        stdin: [
          'FROM node:20-bookworm',
          "RUN sed -i '/^nodedir=/d' /usr/local/etc/npmrc && ! grep -q nodedir /usr/local/etc/npmrc",
          'ENV npm_config_dist_url=http://node-headers.invalid/not-downloaded',
        ].join('\n'),
      });
      took('node:20-bookworm without nodedir', t0);

      t0 = Date.now();
      const buildkit = process.env.IMAGE_TEST_BUILDKIT === '1';
      const build = await engine.docker(['build', '--network', 'host', '-t', IMAGE, REPO], {
        timeoutMs: 45 * MINUTE,
        env: { DOCKER_BUILDKIT: buildkit ? '1' : '0' },
      });
      ok(`docker build (${buildkit ? 'BuildKit' : 'legacy builder'})`, build);
      took(`docker build --network host (${buildkit ? 'BuildKit' : 'legacy builder'})`, t0);
      const context = /Sending build context to Docker daemon\s+(\S+)/.exec(build.stdout);
      if (context) timings.push(`build context: ${context[1]}`);
      timings.push(`image size: ${(Number(await inspect(IMAGE, '{{.Size}}')) / 1e6).toFixed(0)} MB`);

      // --bridge=none takes away the default bridge only: a user-defined one still works, and
      // with --iptables=false the published ports go through docker-proxy.
      network = `registry-test-${process.pid}`;
      await dockerOk(['network', 'create', '--driver', 'bridge', network]);
      volume = `registry-data-${process.pid}`;
      await engine.importBusybox('busybox:local');
    },
    { timeout: 90 * MINUTE },
  );

  after(async () => {
    if (!engine) return;
    for (const project of composeProjects) {
      await run('docker-compose', ['-p', project.name, 'down', '-v', '-t', '2'], { cwd: project.dir, env: engine.env });
    }
    if (containers.length > 0) await docker(['rm', '-f', '-v', ...containers]);
    if (volume) await docker(['volume', 'rm', '-f', volume]);
    // A bridge network's host interface outlives the engine: remove it through the engine.
    if (network) await docker(['network', 'rm', network]);
    await engine.stop();
    if (work) await fs.rm(work, { recursive: true, force: true });
    took('whole run', started);
    process.stderr.write(`test:image: ${timings.join('; ')}\n`);
  });

  it('sends only what the image is made of as build context (.dockerignore)', async () => {
    await dockerOk(['build', '--network', 'none', '-t', 'context-probe', '-f', '-', REPO], {
      stdin: 'FROM busybox:local\nCOPY . /ctx\n',
      timeoutMs: 5 * MINUTE,
    });
    const listing = await dockerOk(['run', '--rm', '--network', 'none', 'context-probe', 'sh', '-c', 'ls -A /ctx; echo ---; ls -A /ctx/native']);
    const [top, native] = listing.split('---\n').map((part) => part.split('\n').filter(Boolean).sort());
    assert.deepEqual(top, ['config', 'docker', 'native', 'package-lock.json', 'package.json', 'src', 'tsconfig.build.json', 'tsconfig.json']);
    assert.deepEqual(native, ['binding.gyp', 'sendfile.c']);
    await dockerOk(['rmi', 'context-probe']);
  });

  it('serves on a published port as node without capabilities, healthy on the port REGISTRY_PORT sets, config from a mounted config/ and REGISTRY_*, layers with sendfile', async () => {
    // config/ from the host: the container's file with another flavor (X-Docker-Registry-Config)
    // and port 5000, which REGISTRY_PORT=5001 overrides. The admin password is a root-only
    // secrets file: the entrypoint reads it before it drops to node.
    const config = path.join(work, 'config');
    await fs.mkdir(config);
    const shipped = await fs.readFile(path.join(REPO, 'config', 'docker.yaml'), 'utf8');
    await fs.writeFile(path.join(config, 'docker.yaml'), shipped.replace(/^flavor: .*$/m, 'flavor: mounted-config'));
    const secret = path.join(work, 'admin_password');
    await fs.writeFile(secret, `${ADMIN_PASSWORD}\n`, { mode: 0o600 });
    portA = await freePort();
    const t0 = Date.now();
    await startContainer('registry-a', portA, 5001, [
      '-v', `${volume}:/app/storage`,
      '-v', `${config}:/app/config:ro`,
      '-v', `${secret}:/run/secrets/admin_password:ro`,
      '-e', 'REGISTRY_PORT=5001',
      '-e', `REGISTRY_ADMIN_USERNAME=${ADMIN}`,
      '-e', 'REGISTRY_ADMIN_PASSWORD_FILE=/run/secrets/admin_password',
    ]);
    const ping = await answers('registry-a', portA);
    took('docker run to first answer', t0);
    assert.equal(ping.headers['x-docker-registry-config'], 'mounted-config', 'the flavor of the mounted config/docker.yaml');
    assert.deepEqual(await status(portA), { status: 'ok', checks: { metadata: 'ok', storage: 'ok' } });
    timings.push(`healthy after: ${(await healthy('registry-a')).toFixed(1)} s more`);

    // Safe defaults: no sign-up; the admin from the secrets file logs in.
    assert.equal(await signupStatus(portA), 403);
    assert.equal(await loginStatus(portA, ADMIN_PASSWORD), 200);
    assert.equal(await loginStatus(portA, 'not-the-password'), 401);

    // The server is PID 1 (signals reach it), runs as node with no capabilities.
    const proc = await dockerOk(['exec', 'registry-a', 'cat', '/proc/1/status', '/proc/1/cmdline']);
    assert.match(proc, /^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
    assert.match(proc, /^Gid:\s+1000\s+1000\s+1000\s+1000$/m);
    assert.match(proc, /^CapEff:\s+0+$/m);
    assert.match(proc, /^CapPrm:\s+0+$/m);
    assert.match(proc, /^NoNewPrivs:\s+1$/m);
    assert.match(proc, /dist\/src\/main\.js/);
    assert.equal(await inspect('registry-a', '{{.RestartCount}}'), '0');

    // The sendfile addon: loaded into the server (its memory map) and chosen for layers.
    const maps = await dockerOk(['exec', '-u', 'node', 'registry-a', 'cat', '/proc/1/maps']);
    assert.match(maps, /\/app\/native\/build\/Release\/sendfile\.node/);
    const logs = await docker(['logs', 'registry-a']);
    assert.match(logs.stdout, /"layerSend":"sendfile"[^\n]*"msg":"registry listening"|"msg":"registry listening"[^\n]*"layerSend":"sendfile"/);
  });

  it('holds production dependencies only: no dev package, no TypeScript, no compiler', async () => {
    const listed = JSON.parse(await dockerOk(['exec', '-i', 'registry-a', 'node', '-'], { stdin: LIST_PACKAGES })) as string[];
    assert.deepEqual(listed.sort(), await productionPackages());
    const found = await dockerOk([
      'exec', 'registry-a', 'sh', '-c',
      'for c in cc gcc g++ c++ clang make python3 tsc tsx esbuild; do command -v $c; done; ' +
        // A package called typescript (npm's own docs have an examples/typescript folder), or a binary.
        "find / -xdev -type d -name typescript -exec test -f '{}/package.json' ';' -print 2>/dev/null; " +
        "find / -xdev -type f \\( -name tsc -o -name 'tsserver*' -o -name esbuild -o -name tsx \\) -print 2>/dev/null; " +
        'ls -d /app/src /app/test /app/tsconfig.json 2>/dev/null; true',
    ]);
    assert.equal(found.trim(), '', `found in the runtime image:\n${found}`);
  });

  it('takes a push from the host (registry push of a docker save tarball)', async () => {
    await dockerOk(['build', '--network', 'none', '-t', 'pushme:1', '-'], {
      stdin: 'FROM busybox:local\nRUN dd if=/dev/urandom of=/payload bs=1024 count=512 2>/dev/null && echo made > /made\n',
      timeoutMs: 5 * MINUTE,
    });
    pushedId = await inspect('pushme:1', '{{.Id}}');
    const tarball = path.join(work, 'pushme.tar');
    await dockerOk(['save', '-o', tarball, 'pushme:1']);
    ok('registry push', await registryCli(['push', tarball, `127.0.0.1:${portA}/library/pushme:1`, '--progress', 'lines'], authFile));
    const tags = ok('registry tags', await registryCli(['tags', `127.0.0.1:${portA}/library/pushme`, '--json'], authFile));
    assert.deepEqual(Object.keys(JSON.parse(tags) as object), ['1']);
  });

  it('stops on docker stop by itself (SIGTERM, exit 0, before the kill timeout); the command line then runs on its volume', async () => {
    const t0 = Date.now();
    await dockerOk(['stop', '-t', '30', 'registry-a'], { timeoutMs: 2 * MINUTE });
    took('docker stop', t0);
    // A process that ignored SIGTERM would be killed after 30 s and exit 137.
    assert.equal(await inspect('registry-a', '{{.State.ExitCode}}'), '0');
    assert.match((await docker(['logs', 'registry-a'])).stdout, /"msg":"stopped"/);
    // With the server stopped, the command line on the same volume (the entrypoint's shorthand).
    const users = await dockerOk(['run', '--rm', '--network', 'none', '-v', `${volume}:/app/storage`, IMAGE, 'user', 'list', '--json'], { timeoutMs: 5 * MINUTE });
    assert.match(users, new RegExp(`"${ADMIN}"`));
    await dockerOk(['rm', 'registry-a']);
    containers.splice(containers.indexOf('registry-a'), 1);
  });

  it('serves the pushed image from a new container on the same volume (pull + docker load: same image id)', async () => {
    // The image's own config/docker.yaml this time (port 5000, the healthcheck's default),
    // the admin's password from the environment.
    const port = await freePort();
    await startContainer('registry-b', port, 5000, [
      '-v', `${volume}:/app/storage`,
      '-e', `REGISTRY_ADMIN_USERNAME=${ADMIN}`,
      '-e', `REGISTRY_ADMIN_PASSWORD=${ADMIN_PASSWORD}`,
    ]);
    const ping = await answers('registry-b', port);
    assert.equal(ping.headers['x-docker-registry-config'], 'docker');
    await healthy('registry-b');
    await dockerOk(['rmi', 'pushme:1']);
    assert.notEqual((await docker(['image', 'inspect', pushedId])).code, 0, 'the image is gone from the engine before the pull');
    const pulled = path.join(work, 'pulled.tar');
    ok('registry pull', await registryCli(['pull', `127.0.0.1:${port}/library/pushme:1`, '-o', pulled, '--progress', 'lines'], authFile));
    await dockerOk(['load', '-i', pulled]);
    assert.equal(await inspect(`127.0.0.1:${port}/library/pushme:1`, '{{.Id}}'), pushedId);
  });

  it('makes a root-owned bind mount node\'s when started as root; started as node it says what to do', async () => {
    const bind = path.join(work, 'bind-storage');
    await fs.mkdir(bind, { mode: 0o755 });
    assert.equal((await fs.stat(bind)).uid, 0);
    const port = await freePort();
    await startContainer('registry-c', port, 5000, ['-v', `${bind}:/app/storage`]);
    await answers('registry-c', port);
    assert.deepEqual(await status(port), { status: 'ok', checks: { metadata: 'ok', storage: 'ok' } });
    assert.equal((await fs.stat(bind)).uid, 1000);
    assert.equal((await fs.stat(path.join(bind, 'db'))).uid, 1000);

    const rootOnly = path.join(work, 'root-only');
    await fs.mkdir(rootOnly, { mode: 0o755 });
    const refused = await docker(['run', '--rm', '--network', 'none', '--user', '1000:1000', '-v', `${rootOnly}:/app/storage`, IMAGE], { timeoutMs: 5 * MINUTE });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /the storage root \/app\/storage is not writable by uid 1000/);
    assert.match(refused.stderr, /chown -R 1000:1000/);
  });

  it('docker-compose up -d of the shipped file answers on loopback: named volume, no sign-up, the admin from the secrets file', async () => {
    const dir = path.join(work, 'compose');
    await fs.mkdir(path.join(dir, 'secrets'), { recursive: true });
    await fs.copyFile(path.join(REPO, 'docker-compose.yml'), path.join(dir, 'docker-compose.yml'));
    await fs.cp(path.join(REPO, 'config'), path.join(dir, 'config'), { recursive: true });
    const password = 'compose-secret-password';
    await fs.writeFile(path.join(dir, 'secrets', 'admin_password'), `${password}\n`, { mode: 0o600 });
    // The image the file names, as `docker-compose build` would make it (that build would run
    // without --network host, which this engine's --bridge=none needs).
    await dockerOk(['tag', IMAGE, 'v1-registry:local']);
    const port = await freePort();
    const project = { dir, name: `registrytest${process.pid}` };
    composeProjects.push(project);
    const env = { ...engine.env, V1_REGISTRY_PUBLISH: `127.0.0.1:${port}` };
    const t0 = Date.now();
    ok('docker-compose up -d', await run('docker-compose', ['-p', project.name, 'up', '-d'], { cwd: dir, env }));
    const name = (ok('docker-compose ps -q', await run('docker-compose', ['-p', project.name, 'ps', '-q', 'registry'], { cwd: dir, env }))).trim();
    await answers(name, port);
    took('docker-compose up -d to first answer', t0);
    await healthy(name);
    assert.equal(await inspect(name, '{{(index (index .NetworkSettings.Ports "5000/tcp") 0).HostIp}}'), '127.0.0.1');
    assert.equal(await inspect(name, '{{range .Mounts}}{{if eq .Destination "/app/storage"}}{{.Type}}{{end}}{{end}}'), 'volume');
    assert.equal(await signupStatus(port), 403);
    assert.equal(await loginStatus(port, password), 200);
    assert.equal(await inspect(name, '{{.RestartCount}}'), '0');
    ok('docker-compose down', await run('docker-compose', ['-p', project.name, 'down', '-v', '-t', '10'], { cwd: dir, env }));
    composeProjects.pop();
  });
});
