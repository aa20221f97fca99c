/**
 * npm run bench:nodes: one registry on many nodes (PostgreSQL + S3) against the single-node
 * LevelDB + files setup, in the same run on the same machine.
 *
 * Starts the test engines (PostgreSQL 15 and a Ceph RADOS Gateway, as test/helpers do), then
 * the built server (dist/, `npm start`'s flags) as separate processes:
 *   - single: one node on LevelDB + files;
 *   - nodes:  NODES nodes on one fresh PostgreSQL database + one fresh bucket, s3_redirect on.
 * Seeds both through HTTP with the same images (v1 chains, v2 images), then for each request
 * kind (GET /v1/_ping, a v1 tag GET, a v2 manifest GET) measures throughput with CONCURRENCY
 * requests in flight for SECONDS, spread round-robin by the client over 1 node, then over all
 * nodes. Then the CPU a node spends per layer GET: with s3_redirect (a 307 to a presigned
 * URL) and, for the single node, sending the bytes (sendfile); measured as the node's own
 * user + system CPU time (/proc/<pid>/stat, the kernel's accounting that process.cpuUsage()
 * reads) before and after LAYER_GETS sequential GETs, divided by their number.
 *
 * Environment: BENCH_NODES (3), BENCH_CONCURRENCY (32), BENCH_SECONDS (3), BENCH_ROUNDS (3), BENCH_LAYER_GETS
 * (2000), BENCH_LAYER_BYTES (1048576).
 * Prints a Markdown table and the machine load.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEngines } from '../test/helpers/engines.js';
import { freePort, spawnBuiltServer, waitUntilServing } from './built-server.js';
import type { ChildProcess } from 'node:child_process';

const NODES = Number(process.env.BENCH_NODES ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const LAYER_GETS = Number(process.env.BENCH_LAYER_GETS ?? 2000);
const LAYER_BYTES = Number(process.env.BENCH_LAYER_BYTES ?? 1 << 20);
const TICK = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s

interface Node {
  base: string;
  child: ChildProcess;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY * 2 });

/** One GET on the keep-alive agent: the status, the body drained. */
function get(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

async function put(url: string, body: Buffer | string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'PUT', body, headers });
}

async function startNode(env: Record<string, string>): Promise<Node> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawnBuiltServer(
    { REGISTRY_CONFIG: 'config/test.yaml', REGISTRY_PORT: String(port), REGISTRY_STANDALONE: 'true', REGISTRY_LOG_LEVEL: 'silent', ...env },
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  await waitUntilServing(child, base);
  return { base, child };
}

async function stopNode(node: Node): Promise<void> {
  if (node.child.exitCode !== null) return;
  const exited = new Promise((resolve) => node.child.once('exit', resolve));
  node.child.kill('SIGTERM');
  await exited;
}

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

interface Seeded {
  tagUrls: (base: string) => string[];
  manifestUrls: (base: string) => string[];
  layerUrl: (base: string) => string;
}

/** The same content on every setup: REPOS v1 repositories (a 2-image chain) and v2 images. */
async function seed(base: string, layers: Buffer[]): Promise<Seeded> {
  const repos: string[] = [];
  let layerImage = '';
  for (let r = 0; r < 8; r++) {
    const repo = `bench/app${r}`;
    let parent: string | undefined;
    for (let i = 0; i < 2; i++) {
      const id = randomBytes(32).toString('hex');
      const json = Buffer.from(JSON.stringify({ id, ...(parent ? { parent } : {}), created: '2024-01-01T00:00:00Z' }));
      const layer = layers[(r * 2 + i) % layers.length];
      for (const [what, body, headers] of [
        ['json', json, { 'Content-Type': 'application/json' }],
        ['layer', layer, { 'Content-Type': 'application/octet-stream' }],
      ] as const) {
        const res = await put(`${base}/v1/images/${id}/${what}`, body, headers);
        if (res.status !== 200) throw new Error(`seed: PUT ${what}: ${res.status} ${await res.text()}`);
      }
      const checksum = 'sha256:' + createHash('sha256').update(json).update('\n').update(layer).digest('hex');
      const res = await put(`${base}/v1/images/${id}/checksum`, '', { 'X-Docker-Checksum-Payload': checksum });
      if (res.status !== 200) throw new Error(`seed: PUT checksum: ${res.status}`);
      parent = id;
      if (!layerImage) layerImage = id;
    }
    const tag = await put(`${base}/v1/repositories/${repo}/tags/latest`, JSON.stringify(parent), { 'Content-Type': 'application/json' });
    if (tag.status !== 200) throw new Error(`seed: PUT tag: ${tag.status}`);
    repos.push(repo);
  }
  // v2: one image per repository (a config and one small layer), tagged v1.
  for (const repo of repos) {
    const layer = randomBytes(4096);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] } }));
    for (const blob of [layer, config]) {
      const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
      const url = new URL(start.headers.get('location') as string, base);
      url.searchParams.set('digest', sha256(blob));
      const done = await put(url.toString(), blob, { 'Content-Type': 'application/octet-stream' });
      if (done.status !== 201) throw new Error(`seed: v2 blob: ${done.status} ${await done.text()}`);
    }
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: sha256(config) },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar', size: layer.length, digest: sha256(layer) }],
    });
    const res = await put(`${base}/v2/${repo}/manifests/v1`, manifest, { 'Content-Type': 'application/vnd.docker.distribution.manifest.v2+json' });
    if (res.status !== 201) throw new Error(`seed: manifest: ${res.status} ${await res.text()}`);
  }
  return {
    tagUrls: (b) => repos.map((repo) => `${b}/v1/repositories/${repo}/tags/latest`),
    manifestUrls: (b) => repos.map((repo) => `${b}/v2/${repo}/manifests/v1`),
    layerUrl: (b) => `${b}/v1/images/${layerImage}/layer`,
  };
}

const MANIFEST_ACCEPT = { Accept: 'application/vnd.docker.distribution.manifest.v2+json' };

/** Requests per second with CONCURRENCY in flight for SECONDS, cycling through `urls` (after 1 s unmeasured, which opens every connection and pool). */
async function throughput(urls: string[], headers: Record<string, string> = {}): Promise<number> {
  await run(urls, headers, 1);
  return run(urls, headers, SECONDS);
}

async function run(urls: string[], headers: Record<string, string>, seconds: number): Promise<number> {
  let done = 0;
  let next = 0;
  const end = Date.now() + seconds * 1000;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < end) {
        const url = urls[next++ % urls.length];
        const status = await get(url, headers);
        if (status !== 200) throw new Error(`${url}: ${status}`);
        done += 1;
      }
    }),
  );
  return done / (Number(process.hrtime.bigint() - started) / 1e9);
}

/** The node's CPU time so far (user + system), in ms. */
function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICK;
}

/** CPU ms the node spends per layer GET (sequential GETs, not following redirects). */
async function cpuPerLayerGet(node: Node, url: string, expect: number): Promise<number> {
  for (let i = 0; i < 50; i++) await get(url);
  const before = cpuMs(node.child.pid as number);
  for (let i = 0; i < LAYER_GETS; i++) {
    const status = await get(url);
    if (status !== expect) throw new Error(`layer GET: ${status}, expected ${expect}`);
  }
  return (cpuMs(node.child.pid as number) - before) / LAYER_GETS;
}

async function main(): Promise<void> {
  const load0 = os.loadavg();
  process.stderr.write('starting PostgreSQL and the RADOS Gateway…\n');
  const engines = await startEngines();
  const roots: string[] = [];
  const nodes: Node[] = [];
  try {
    const dbName = `bench_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: engines.info.postgres.url });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbName}`);
    await admin.end();
    const dbUrl = new URL(engines.info.postgres.url);
    dbUrl.pathname = `/${dbName}`;
    const { s3 } = engines.info;
    const shared = {
      REGISTRY_METADATA_STORE: 'postgres',
      REGISTRY_POSTGRES_URL: dbUrl.toString(),
      REGISTRY_BLOB_STORE: 's3',
      REGISTRY_S3_ENDPOINT: s3.endpoint,
      REGISTRY_S3_REGION: s3.region,
      REGISTRY_S3_BUCKET: `bench-${randomBytes(4).toString('hex')}`,
      REGISTRY_S3_ACCESS_KEY_ID: s3.accessKeyId,
      REGISTRY_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      REGISTRY_S3_FORCE_PATH_STYLE: 'true',
      REGISTRY_S3_REDIRECT: 'true',
      REGISTRY_TOKEN_SECRET: 'the bench registry shares this secret on every node',
    };
    const newRoot = () => {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-bench-nodes-'));
      roots.push(root);
      return root;
    };
    process.stderr.write(`starting 1 LevelDB + fs node and ${NODES} PostgreSQL + S3 nodes…\n`);
    const single = await startNode({ REGISTRY_STORAGE_ROOT: newRoot() });
    nodes.push(single);
    const first = await startNode({ REGISTRY_STORAGE_ROOT: newRoot(), ...shared });
    nodes.push(first);
    const many = [first];
    for (let i = 1; i < NODES; i++) {
      const node = await startNode({ REGISTRY_STORAGE_ROOT: newRoot(), ...shared });
      nodes.push(node);
      many.push(node);
    }
    const layers = Array.from({ length: 4 }, () => randomBytes(LAYER_BYTES));
    const seededSingle = await seed(single.base, layers);
    const seededMany = await seed(first.base, layers);

    const rows: string[] = [];
    const spread = (fn: (base: string) => string[], bases: string[]) => {
      // Round robin: URL i goes to node i mod n.
      const lists = bases.map(fn);
      return lists[0].flatMap((_, i) => bases.map((__, n) => lists[n][i]));
    };
    const kinds: Array<[string, (s: Seeded) => (base: string) => string[], Record<string, string>]> = [
      ['GET /v1/_ping', () => (b) => [`${b}/v1/_ping`], {}],
      ['GET /v1/…/tags/latest', (s) => s.tagUrls, {}],
      ['GET /v2/…/manifests/v1', (s) => s.manifestUrls, MANIFEST_ACCEPT],
    ];
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    for (const [label, urlsOf, headers] of kinds) {
      process.stderr.write(`${label}…\n`);
      // Interleaved rounds, medians: the shared machine's load moves during a run.
      const one: number[] = [];
      const pgOne: number[] = [];
      const pgAll: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        one.push(await throughput(urlsOf(seededSingle)(single.base), headers));
        pgOne.push(await throughput(urlsOf(seededMany)(first.base), headers));
        pgAll.push(await throughput(spread(urlsOf(seededMany), many.map((n) => n.base)), headers));
      }
      const [a, b, c] = [median(one), median(pgOne), median(pgAll)];
      const range = (xs: number[]) => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
      rows.push(`| ${label} | ${a.toFixed(0)} (${range(one)}) | ${b.toFixed(0)} (${range(pgOne)}) | ${c.toFixed(0)} (${range(pgAll)}) | ${(c / b).toFixed(2)} | ${(c / a).toFixed(2)} |`);
    }
    process.stderr.write('CPU per layer GET…\n');
    const cpuSingle = await cpuPerLayerGet(single, seededSingle.layerUrl(single.base), 200);
    const cpuRedirect = await cpuPerLayerGet(first, seededMany.layerUrl(first.base), 307);

    const load1 = os.loadavg();
    const out = [
      `bench:nodes ${new Date().toISOString()} — ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, load average ${load0.map((l) => l.toFixed(2)).join(' ')} at the start, ${load1.map((l) => l.toFixed(2)).join(' ')} at the end`,
      `${CONCURRENCY} requests in flight, ${SECONDS} s per cell, median of ${ROUNDS} interleaved rounds (min–max), client-side round robin; engines started in ${engines.startMs.postgres} ms (PostgreSQL) and ${engines.startMs.s3} ms (RGW)`,
      '',
      `| requests/s | LevelDB + fs, 1 node | PG + S3, 1 node | PG + S3, ${NODES} nodes | ${NODES} nodes / 1 (PG + S3) | ${NODES} nodes / LevelDB + fs |`,
      '|---|---|---|---|---|---|',
      ...rows,
      '',
      `| node CPU per layer GET (${LAYER_GETS} GETs of ${LAYER_BYTES} bytes) | ms |`,
      '|---|---|',
      `| LevelDB + fs, bytes sent by the node | ${cpuSingle.toFixed(3)} |`,
      `| PG + S3 with s3_redirect (307 to a presigned URL) | ${cpuRedirect.toFixed(3)} |`,
      `| ratio (redirect / fs) | ${(cpuRedirect / cpuSingle).toFixed(2)} |`,
    ];
    process.stdout.write(out.join('\n') + '\n');
    if (cpuRedirect >= 1) process.stderr.write(`bench:nodes: a redirected layer GET costs ${cpuRedirect.toFixed(3)} ms of node CPU (target: < 1 ms)\n`);
  } finally {
    for (const node of nodes) await stopNode(node);
    agent.destroy();
    await engines.stop();
    for (const root of roots) fs.rmSync(root, { recursive: true, force: true });
  }
}

await main();
