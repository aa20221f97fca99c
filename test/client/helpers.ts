/**
 * Helpers for the client tests: fixture tarballs built by an independent implementation
 * (Python's tarfile), skopeo as the third-party judge, the client run in-process, and a
 * loopback proxy that counts requests and can cut a layer download half-way.
 * Everything talks only to 127.0.0.1 servers the tests start.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { runClient } from '../../src/client/commands.js';

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export interface TarSpec {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'hardlink';
  data?: Buffer | string;
  linkname?: string;
  mode?: number;
}

let python: string | null = null;
/** The real interpreter (a pyenv shim costs half a second per start). */
function py(): string {
  if (!python) {
    const res = spawnSync('python3', ['-c', 'import sys; print(sys.executable)']);
    if (res.status !== 0) throw new Error('python3 is needed by the client tests');
    python = res.stdout.toString().trim() || 'python3';
  }
  return python;
}

function runPy(script: string, args: string[], input?: string): Buffer {
  const res = spawnSync(py(), ['-c', script, ...args], { input, maxBuffer: 512 * 1024 * 1024 });
  if (res.status !== 0) throw new Error(`python3 failed: ${res.stderr.toString()}`);
  return res.stdout;
}

const PY_TAR = `
import base64, io, json, sys, tarfile
specs = json.load(sys.stdin)
out = []
for spec in specs:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT if spec['pax'] else tarfile.GNU_FORMAT) as tar:
        for e in spec['entries']:
            info = tarfile.TarInfo(e['name'])
            info.mtime = 1700000000
            info.uid = info.gid = 0
            info.uname = info.gname = ''
            t = e.get('type', 'file')
            data = base64.b64decode(e.get('data', ''))
            if t == 'dir':
                info.type = tarfile.DIRTYPE
                info.mode = e.get('mode', 0o755)
                tar.addfile(info)
            elif t == 'symlink':
                info.type = tarfile.SYMTYPE
                info.linkname = e['linkname']
                info.mode = 0o777
                tar.addfile(info)
            elif t == 'hardlink':
                info.type = tarfile.LNKTYPE
                info.linkname = e['linkname']
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = e.get('mode', 0o644)
                tar.addfile(info, io.BytesIO(data))
    out.append(base64.b64encode(buf.getvalue()).decode())
json.dump(out, sys.stdout)
`;

/** Tar archives written by Python's tarfile (GNU format by default, PAX on request); one process for all. */
export function pyTars(archives: Array<{ entries: TarSpec[]; pax?: boolean }>): Buffer[] {
  const specs = archives.map((a) => ({
    pax: a.pax ?? false,
    entries: a.entries.map((e) => ({ ...e, data: e.data === undefined ? '' : Buffer.from(e.data).toString('base64') })),
  }));
  return (JSON.parse(runPy(PY_TAR, [], JSON.stringify(specs)).toString()) as string[]).map((b) => Buffer.from(b, 'base64'));
}

export function pyTar(entries: TarSpec[], options: { pax?: boolean } = {}): Buffer {
  return pyTars([{ entries, pax: options.pax }])[0];
}

const PY_READ = `
import base64, json, sys, tarfile
out = []
with tarfile.open(sys.argv[1]) as tar:
    for m in tar.getmembers():
        e = {'name': m.name, 'type': m.type.decode('latin1'), 'size': m.size, 'linkname': m.linkname}
        if m.isfile() or m.islnk() or m.issym():
            f = tar.extractfile(m)
            if f is not None:
                e['data'] = base64.b64encode(f.read()).decode()
        out.append(e)
json.dump(out, sys.stdout)
`;

export interface PyMember {
  name: string;
  type: string;
  size: number;
  linkname: string;
  /** File content; for links, the content of their target. */
  data?: Buffer;
}

/** Every member of a tar file as Python's tarfile reads it, with contents (links resolved). */
export function pyRead(file: string): Map<string, PyMember> {
  const list = JSON.parse(runPy(PY_READ, [file]).toString()) as Array<Omit<PyMember, 'data'> & { data?: string }>;
  return new Map(list.map((e) => [e.name, { ...e, data: e.data === undefined ? undefined : Buffer.from(e.data, 'base64') }]));
}

// ── images ────────────────────────────────────────────────────────────────────────

export interface FixtureImage {
  layers: Buffer[];
  diffIds: string[];
  config: Buffer;
  configHex: string;
  history: Array<{ created: string; created_by: string; empty_layer?: boolean }>;
}

/** Deterministic pseudo-random bytes (so fixtures are the same on every run). */
export function bytesOf(seed: string, n: number): Buffer {
  const out: Buffer[] = [];
  let block = Buffer.from(seed);
  let size = 0;
  while (size < n) {
    block = createHash('sha256').update(block).digest();
    out.push(block);
    size += block.length;
  }
  return Buffer.concat(out).subarray(0, n);
}

/** An image with `n` small layers (real tar archives with a few files) and its config. */
export function makeImage(seed: string, n = 2, options: { layerBytes?: number } = {}): FixtureImage {
  const history: FixtureImage['history'] = [];
  const specs: Array<{ entries: TarSpec[] }> = [];
  for (let i = 0; i < n; i++) {
    specs.push({
      entries: [
        { name: 'etc', type: 'dir' },
        { name: `etc/${seed}-${i}.conf`, data: `layer ${i} of ${seed}\n` },
        { name: `usr/bin/tool-${i}`, data: bytesOf(`${seed}/${i}`, options.layerBytes ?? 3000 + i * 517), mode: 0o755 },
        { name: `usr/bin/alias-${i}`, type: 'symlink', linkname: `tool-${i}` },
      ],
    });
    history.push({ created: `2024-01-0${(i % 9) + 1}T10:00:00Z`, created_by: i === 0 ? `/bin/sh -c #(nop) ADD file:${seed} in / ` : `/bin/sh -c echo ${seed} ${i} > /etc/x && true` });
  }
  const layers = pyTars(specs);
  history.push({ created: '2024-02-01T00:00:00Z', created_by: '/bin/sh -c #(nop)  CMD ["/bin/sh"]', empty_layer: true });
  const diffIds = layers.map((l) => `sha256:${sha256(l)}`);
  // Key order as docker's Go structs write it; compact; `&&` escaped as Go does.
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      config: { Env: ['PATH=/usr/local/bin:/usr/bin:/bin'], Cmd: ['/bin/sh'], Labels: { fixture: seed } },
      created: '2024-02-01T00:00:00Z',
      history,
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: diffIds },
    }).replace(/&/g, '\\u0026'),
  );
  return { layers, diffIds, config, configHex: sha256(config), history };
}

/** `docker save` of docker 1.10–24: manifest.json + config + legacy directories. */
export function dockerSaveTarball(img: FixtureImage, repoTag: string): Buffer {
  const entries: TarSpec[] = [];
  const ids: string[] = [];
  let parent = '';
  img.layers.forEach((layer, i) => {
    // docker's save-time v1 ids mix in more than we do; any unique ids will do here.
    const id = sha256(`save-id ${parent} ${img.diffIds[i]}`);
    const json: Record<string, unknown> = { id, created: '1970-01-01T00:00:00Z', container_config: { Cmd: null }, os: 'linux' };
    if (parent) json.parent = parent;
    entries.push({ name: `${id}/`, type: 'dir' }, { name: `${id}/VERSION`, data: '1.0' }, { name: `${id}/json`, data: JSON.stringify(json) }, { name: `${id}/layer.tar`, data: layer });
    ids.push(id);
    parent = id;
  });
  entries.push({ name: `${img.configHex}.json`, data: img.config });
  entries.push({ name: 'manifest.json', data: JSON.stringify([{ Config: `${img.configHex}.json`, RepoTags: [repoTag], Layers: ids.map((id) => `${id}/layer.tar`) }]) });
  const [repo, tag] = splitTag(repoTag);
  entries.push({ name: 'repositories', data: JSON.stringify({ [repo]: { [tag]: ids[ids.length - 1] } }) + '\n' });
  return pyTar(entries);
}

/** `docker save` of docker ≥ 25: an OCI layout (index.json, blobs/sha256) plus manifest.json. */
export function dockerOciTarball(img: FixtureImage, repoTag: string): Buffer {
  const blobs = new Map<string, Buffer>();
  const add = (b: Buffer) => {
    const hex = sha256(b);
    blobs.set(hex, b);
    return { hex, size: b.length };
  };
  const cfg = add(img.config);
  const layerDescs = img.layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...add(l) }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${cfg.hex}`, size: cfg.size },
      layers: layerDescs.map((d) => ({ mediaType: d.mediaType, digest: `sha256:${d.hex}`, size: d.size })),
    }),
  );
  const man = add(manifest);
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: `sha256:${man.hex}`,
        size: man.size,
        annotations: { 'io.containerd.image.name': `docker.io/${repoTag}`, 'org.opencontainers.image.ref.name': splitTag(repoTag)[1] },
      },
    ],
  };
  const entries: TarSpec[] = [{ name: 'blobs', type: 'dir' }, { name: 'blobs/sha256', type: 'dir' }];
  for (const [hex, data] of blobs) entries.push({ name: `blobs/sha256/${hex}`, data });
  entries.push({ name: 'index.json', data: JSON.stringify(index) });
  entries.push({
    name: 'manifest.json',
    data: JSON.stringify([{ Config: `blobs/sha256/${cfg.hex}`, RepoTags: [repoTag], Layers: layerDescs.map((d) => `blobs/sha256/${d.hex}`) }]),
  });
  entries.push({ name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' });
  return pyTar(entries, { pax: true });
}

export interface LegacyImage {
  id: string;
  json: Buffer;
  layer: Buffer;
}

/** The legacy layout only (docker < 1.10): repositories, <id>/json, <id>/layer.tar, VERSION. */
export function legacyTarball(seed: string, repo: string, tag: string, n = 2): { tar: Buffer; images: LegacyImage[] } {
  const images: LegacyImage[] = [];
  let parent: string | null = null;
  const layers = pyTars(
    Array.from({ length: n }, (_, i) => ({
      entries: [
        { name: `var/lib/${seed}`, type: 'dir' as const },
        { name: `var/lib/${seed}/data-${i}`, data: bytesOf(`legacy ${seed} ${i}`, 2000 + 300 * i) },
      ],
    })),
  );
  for (let i = 0; i < n; i++) {
    const id = sha256(`legacy ${seed} ${i}`);
    const layer = layers[i];
    const doc: Record<string, unknown> = {
      id,
      ...(parent ? { parent } : {}),
      created: `2014-10-1${i}T10:10:10.123456789Z`,
      container_config: { Cmd: ['/bin/sh', '-c', `echo legacy ${i} > /x`] },
      docker_version: '1.3.2',
      architecture: 'amd64',
      os: 'linux',
      Size: layer.length,
    };
    // Non-canonical spacing on purpose: the JSON must travel byte-exact.
    images.push({ id, json: Buffer.from(JSON.stringify(doc, null, 1)), layer });
    parent = id;
  }
  const entries: TarSpec[] = [];
  for (const im of images) {
    entries.push({ name: `${im.id}/`, type: 'dir' }, { name: `${im.id}/VERSION`, data: '1.0' }, { name: `${im.id}/json`, data: im.json }, { name: `${im.id}/layer.tar`, data: im.layer });
  }
  entries.push({ name: 'repositories', data: JSON.stringify({ [repo]: { [tag]: images[images.length - 1].id } }) });
  return { tar: pyTar(entries), images };
}

export function splitTag(repoTag: string): [string, string] {
  const i = repoTag.lastIndexOf(':');
  return i > repoTag.lastIndexOf('/') ? [repoTag.slice(0, i), repoTag.slice(i + 1)] : [repoTag, 'latest'];
}

/** A skopeo `dir:` image (OCI manifest, uncompressed layers) to copy from. */
export async function skopeoDir(dir: string, img: FixtureImage): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'version'), 'Directory Transport Version: 1.1\n');
  await fs.writeFile(path.join(dir, img.configHex), img.config);
  for (const layer of img.layers) await fs.writeFile(path.join(dir, sha256(layer)), layer);
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${img.configHex}`, size: img.config.length },
    layers: img.layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${sha256(l)}`, size: l.length })),
  };
  await fs.writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
}

// ── skopeo ────────────────────────────────────────────────────────────────────────

export interface Proc {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function hasSkopeo(): boolean {
  return spawnSync('skopeo', ['--version']).status === 0;
}

export function skopeo(args: string[], timeoutMs = 20_000): Promise<Proc> {
  return runProcess('skopeo', ['--insecure-policy', ...args], { timeoutMs });
}

export function runProcess(cmd: string, args: string[], options: { env?: NodeJS.ProcessEnv; stdin?: Buffer | string; timeoutMs?: number; cwd?: string } = {}): Promise<Proc> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'], cwd: options.cwd });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.stdin ?? '');
  });
}

// ── the client, in-process ──────────────────────────────────────────────────────────

export interface ClientRun {
  code: number;
  stdout: Buffer;
  stderr: string;
  text: string;
}

/** Runs `registry COMMAND ARGS…` in this process with captured streams. */
export async function client(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; stdin?: Buffer | string; stderrTTY?: boolean; stdoutTTY?: boolean } = {},
): Promise<ClientRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough() as PassThrough & { isTTY?: boolean; columns?: number };
  if (options.stderrTTY) {
    stderr.isTTY = true;
    stderr.columns = 120;
  }
  if (options.stdoutTTY) (stdout as PassThrough & { isTTY?: boolean }).isTTY = true;
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  const stdin = Readable.from(options.stdin === undefined ? [] : [Buffer.from(options.stdin)]);
  // Hermetic by default: never the real ~/.config/v1-registry/auth.json.
  const env = options.env ?? { V1_REGISTRY_AUTH_FILE: path.join(os.tmpdir(), 'v1-registry-client-tests-no-auth.json') };
  const code = await runClient(command, args, { stdin, stdout, stderr, env });
  const stdoutBuf = Buffer.concat(out);
  return { code, stdout: stdoutBuf, stderr: Buffer.concat(err).toString('utf8'), text: stdoutBuf.toString('utf8') };
}

/** The host:port of a test server URL (http://127.0.0.1:PORT). */
export function hostOf(url: string): string {
  return new URL(url).host;
}

// ── a loopback proxy ─────────────────────────────────────────────────────────────────

export interface ProxyRequest {
  method: string;
  url: string;
  range?: string;
  status?: number;
}

export interface Proxy {
  url: string;
  host: string;
  requests: ProxyRequest[];
  /** Cut the next N layer downloads (GET …/layer answered 200 or 206) after half their bytes. */
  cutLayerDownloads: number;
  close(): Promise<void>;
}

/**
 * Forwards everything to `target`, keeping the Host header (so X-Docker-Endpoints names the
 * proxy and registry calls come back through it).
 */
export async function startProxy(target: string): Promise<Proxy> {
  const t = new URL(target);
  const proxy: Proxy = {
    url: '',
    host: '',
    requests: [],
    cutLayerDownloads: 0,
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    const record: ProxyRequest = { method: req.method ?? '', url: req.url ?? '', range: req.headers.range };
    proxy.requests.push(record);
    const upstream = http.request(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers, agent: false },
      (up) => {
        record.status = up.statusCode;
        const isLayer = req.method === 'GET' && /\/v1\/images\/[a-f0-9]+\/layer$/.test(req.url ?? '') && (up.statusCode === 200 || up.statusCode === 206);
        const length = Number(up.headers['content-length'] ?? 0);
        if (isLayer && proxy.cutLayerDownloads > 0 && length > 1) {
          proxy.cutLayerDownloads--;
          res.writeHead(up.statusCode ?? 200, up.headers);
          const half = Math.floor(length / 2);
          let sent = 0;
          up.on('data', (chunk: Buffer) => {
            if (sent >= half) return;
            const piece = chunk.subarray(0, half - sent);
            sent += piece.length;
            res.write(piece);
            if (sent >= half) {
              // Let the bytes go out, then drop the connection mid-body.
              setTimeout(() => {
                res.socket?.destroy();
                up.destroy();
              }, 20);
            }
          });
          return;
        }
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  proxy.url = `http://127.0.0.1:${port}`;
  proxy.host = `127.0.0.1:${port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}

/** registry_http_requests_total for one route/method/status from /metrics. */
export async function metricCount(serverUrl: string, route: string, method: string, status = '200'): Promise<number> {
  const text = await (await fetch(`${serverUrl}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('registry_http_requests_total{')) continue;
    if (line.includes(`route="${route}"`) && line.includes(`method="${method}"`) && line.includes(`status="${status}"`)) {
      total += Number(line.trim().split(/\s+/).pop());
    }
  }
  return total;
}
