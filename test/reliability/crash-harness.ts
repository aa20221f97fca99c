/**
 * Crash-safety harness shared by test/reliability/crash.test.ts (a few kills, inside
 * `npm test`) and test/reliability/torture.ts (`npm run torture`, 100 kills).
 *
 * It runs the real server as a child process (`node --import tsx src/main.ts`, config
 * config/test.yaml, standalone) on one storage root, pushes multi-image chains (some on
 * shared parents) several at a time, and `kill -9`s the server at a chosen moment: during
 * a layer upload, between PUT checksum and PUT tag, while an image list or a tag is
 * written, or after a random delay. After every kill it checks, in this order:
 *
 * 1. offline, with the real stores (LevelMetadataStore + FsBlobStore, not initialised so
 *    temp files are left for the server to clean): every complete image's layer blob
 *    re-hashes to record.layer.digest, has record.layer.size bytes, and
 *    sha256(json + "\n" + layer) = record.layer.payloadChecksum; its bytes are exactly the
 *    bytes the harness pushed; its parent is complete; every tag points at a complete
 *    image; every blob under blobs/ re-hashes to its own name;
 * 2. the server starts again on the same root, `tmp/` is empty once it listens (and it
 *    logged the leftovers it removed), fsck (POST /_admin/fsck) reports no problem, and the
 *    image list served to a pull (GET …/images) only names complete images;
 * 3. every push the kill interrupted succeeds when retried, and every push that finished
 *    (before the kill or on retry) pulls back byte-exact under its tag.
 *
 * Only 127.0.0.1 servers it starts are contacted; every loop and request is bounded.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseRepoPath } from '../../src/domain/names.js';
import type { ImageRecord } from '../../src/domain/records.js';
import { FsBlobStore } from '../../src/store/blobs/fs-blob-store.js';
import { LevelMetadataStore } from '../../src/store/metadata/level-metadata-store.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

// ── deterministic randomness ────────────────────────────────────────────────────────
/** mulberry32: a small seeded PRNG, so a failing run can be replayed with its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sha256 = (...parts: Buffer[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return 'sha256:' + h.digest('hex');
};

// ── the server as a child process ───────────────────────────────────────────────────
export interface ChildServer {
  url: string;
  pid: number;
  /** The JSON log lines the server wrote (the last 2000). */
  logs: string[];
  /** SIGKILL, then waits until the process is gone. */
  kill9(): Promise<void>;
  /** SIGTERM (graceful stop), then waits. */
  stop(): Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/**
 * Starts `node --import tsx src/main.ts` on `root` (REGISTRY_CONFIG=config/test.yaml,
 * REGISTRY_PORT=0, REGISTRY_LOG_LEVEL=info) and resolves with the URL from the
 * "registry listening" log line.
 */
export async function startChild(root: string, env: Record<string, string> = {}, timeoutMs = 30_000): Promise<ChildServer> {
  const childEnv: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('REGISTRY_')) childEnv[k] = v;
  Object.assign(childEnv, {
    REGISTRY_CONFIG: 'config/test.yaml',
    REGISTRY_STORAGE_ROOT: root,
    REGISTRY_PORT: '0',
    REGISTRY_LOG_LEVEL: 'info',
    ...env,
  });
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: REPO_ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => {
      live.delete(proc);
      resolve({ code, signal });
    }),
  );
  const logs: string[] = [];
  let stderr = '';
  proc.stderr!.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString('utf8')).slice(-4000);
  });
  const lines = readline.createInterface({ input: proc.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`the server did not start within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    lines.on('line', (line) => {
      logs.push(line);
      if (logs.length > 2000) logs.splice(0, logs.length - 2000);
      try {
        const entry = JSON.parse(line) as { url?: unknown };
        if (typeof entry.url === 'string') {
          clearTimeout(timer);
          resolve(entry.url);
        }
      } catch {
        // not JSON: ignore
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the server exited before listening (code ${code}, signal ${signal}); stderr: ${stderr}`));
    });
  });
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/, 'the server listens on loopback only');
  const kill9 = async () => {
    proc.kill('SIGKILL');
    await exited;
  };
  return {
    url,
    pid: proc.pid!,
    logs,
    exited,
    kill9,
    async stop() {
      proc.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const stopped = await Promise.race([exited, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), 15_000)))]);
      clearTimeout(timer);
      if (!stopped) await kill9();
    },
  };
}

// ── a minimal HTTP client (connection-per-request, bounded) ─────────────────────────
export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface SendOptions {
  headers?: Record<string, string>;
  body?: Buffer;
  /** Streams the body in pieces of this size (chunked), calling `onPiece` after each. */
  pieceSize?: number;
  onPiece?: (index: number, count: number) => void | Promise<void>;
  /** Called once the request (headers and body) has been handed to the socket. */
  onSent?: () => void | Promise<void>;
  timeoutMs?: number;
}

export function send(base: string, method: string, urlPath: string, options: SendOptions = {}): Promise<HttpResult> {
  const { body, pieceSize, onPiece, onSent, timeoutMs = 60_000 } = options;
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (pieceSize) headers['Transfer-Encoding'] = 'chunked';
  else headers['Content-Length'] = String(body?.length ?? 0);
  return new Promise<HttpResult>((resolve, reject) => {
    const req = http.request(`${base}${urlPath}`, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('error', reject);
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${urlPath}: no answer within ${timeoutMs} ms`)));
    req.once('error', reject);
    void (async () => {
      try {
        if (pieceSize && body) {
          const count = Math.max(1, Math.ceil(body.length / pieceSize));
          for (let i = 0; i < count; i++) {
            const piece = body.subarray(i * pieceSize, Math.min(body.length, (i + 1) * pieceSize));
            if (piece.length > 0) await new Promise<void>((ok, ko) => req.write(piece, (err) => (err ? ko(err) : ok())));
            if (onPiece) await onPiece(i, count);
          }
          req.end();
        } else {
          req.end(body);
        }
        if (onSent) await onSent();
      } catch (err) {
        req.destroy(err as Error);
      }
    })();
  });
}

function expect(res: HttpResult, statuses: number[], what: string): HttpResult {
  if (!statuses.includes(res.status)) {
    throw new Error(`${what}: HTTP ${res.status} ${res.body.toString('utf8').slice(0, 300)}`);
  }
  return res;
}

// ── images and pushes ───────────────────────────────────────────────────────────────
export interface HarnessImage {
  id: string;
  parent: string | null;
  json: Buffer;
  layer: Buffer;
  checksum: string;
  /** sha256 of the layer, computed when first needed. */
  digest?: string;
}

export function makeImage(rand: () => number, parent: string | null, size: number): HarnessImage {
  const id = randomBytes(32).toString('hex');
  const doc: Record<string, unknown> = { id, created: new Date(0).toISOString(), container_config: { Cmd: ['/bin/sh', '-c', `#(nop) ${Math.floor(rand() * 1e9)}`] } };
  if (parent) doc.parent = parent;
  const json = Buffer.from(JSON.stringify(doc));
  const layer = randomBytes(size);
  return { id, parent, json, layer, checksum: sha256(json, Buffer.from('\n'), layer) };
}

export type KillPoint = 'layer' | 'checksum-tag' | 'image-list' | 'tag' | 'random';
export const KILL_POINTS: KillPoint[] = ['layer', 'checksum-tag', 'image-list', 'tag', 'random'];

export interface Push {
  repo: string;
  tag: string;
  /** Oldest first; images[0].parent may be an image pushed before (a shared parent). */
  images: HarnessImage[];
}

/** Where a push may trigger the kill: `at` returns once the kill (if any) was sent. */
export interface PushHooks {
  at(point: 'layer-piece' | 'after-checksum' | 'image-list-sent' | 'tag-sent', info: { image?: HarnessImage; piece?: number; pieces?: number }): Promise<void>;
}

const NO_HOOKS: PushHooks = { at: async () => {} };

/**
 * The docker 1.x push sequence against a standalone registry: push start (image list),
 * per image a probe (GET json: 200 = already there), PUT json, PUT layer (chunked, in
 * pieces), PUT checksum; then PUT tag and push end (image list with checksums).
 */
export async function pushOnce(base: string, push: Push, hooks: PushHooks = NO_HOOKS, pieceSize = 64 * 1024): Promise<number> {
  const repoPath = `/v1/repositories/${push.repo}`;
  let uploaded = 0;
  const json = { 'Content-Type': 'application/json' };
  expect(await send(base, 'PUT', `${repoPath}/`, { headers: json, body: Buffer.from(JSON.stringify(push.images.map((i) => ({ id: i.id })))) }), [200], `push start ${push.repo}`);
  for (const image of push.images) {
    const probe = expect(await send(base, 'GET', `/v1/images/${image.id}/json`), [200, 400, 404], `GET json ${image.id}`);
    if (probe.status === 200) continue;
    expect(await send(base, 'PUT', `/v1/images/${image.id}/json`, { headers: json, body: image.json }), [200], `PUT json ${image.id}`);
    expect(
      await send(base, 'PUT', `/v1/images/${image.id}/layer`, {
        headers: { 'Content-Type': 'application/octet-stream' },
        body: image.layer,
        pieceSize,
        onPiece: (piece, pieces) => hooks.at('layer-piece', { image, piece, pieces }),
      }),
      [200],
      `PUT layer ${image.id}`,
    );
    expect(await send(base, 'PUT', `/v1/images/${image.id}/checksum`, { headers: { 'X-Docker-Checksum-Payload': image.checksum } }), [200], `PUT checksum ${image.id}`);
    uploaded += 1;
    await hooks.at('after-checksum', { image });
  }
  const top = push.images[push.images.length - 1];
  expect(
    await send(base, 'PUT', `${repoPath}/tags/${push.tag}`, { headers: json, body: Buffer.from(JSON.stringify(top.id)), onSent: () => hooks.at('tag-sent', {}) }),
    [200],
    `PUT tag ${push.repo}:${push.tag}`,
  );
  expect(
    await send(base, 'PUT', `${repoPath}/images`, {
      headers: json,
      body: Buffer.from(JSON.stringify(push.images.map((i) => ({ id: i.id, checksum: i.checksum })))),
      onSent: () => hooks.at('image-list-sent', {}),
    }),
    [204],
    `push end ${push.repo}`,
  );
  return uploaded;
}

/** Pulls `repo:tag` and checks every json and layer byte against what was pushed. */
export async function verifyPull(base: string, repo: string, tag: string, expectedTop: string, known: Map<string, HarnessImage>): Promise<void> {
  const tags = JSON.parse(expect(await send(base, 'GET', `/v1/repositories/${repo}/tags`), [200], `GET tags ${repo}`).body.toString()) as Record<string, string>;
  assert.equal(tags[tag], expectedTop, `${repo}:${tag} points at the image last pushed under it`);
  const ancestry = JSON.parse(expect(await send(base, 'GET', `/v1/images/${expectedTop}/ancestry`), [200], 'GET ancestry').body.toString()) as string[];
  for (const id of ancestry) {
    const image = known.get(id);
    assert.ok(image, `ancestry of ${expectedTop} names an image the harness never pushed: ${id}`);
    const json = expect(await send(base, 'GET', `/v1/images/${id}/json`), [200], `GET json ${id}`);
    assert.ok(json.body.equals(image.json), `json of ${id} is byte-exact`);
    assert.equal(json.headers['x-docker-checksum-payload'], image.checksum);
    const layer = expect(await send(base, 'GET', `/v1/images/${id}/layer`), [200], `GET layer ${id}`);
    assert.ok(layer.body.equals(image.layer), `layer of ${id} is byte-exact (${layer.body.length} of ${image.layer.length} bytes)`);
  }
}

// ── the store, inspected offline with the real stores ───────────────────────────────
export interface StoreReport {
  images: number;
  complete: number;
  pending: number;
  tags: number;
  blobs: number;
  tempFiles: number;
  repos: string[];
  /** Images the store holds as pending (never to be served or listed for a pull). */
  pendingIds: string[];
}

/**
 * Opens `root` with the real stores (the server must not be running: LevelDB allows one
 * process) and checks the crash invariants; throws an AssertionError naming the first
 * broken one. Temp files are counted, not removed.
 */
export async function inspectStore(
  root: string,
  known: Map<string, HarnessImage>,
  /** digest → size of blobs re-hashed before: only their size is checked again. */
  verified: Map<string, number> = new Map(),
): Promise<StoreReport> {
  const blobs = new FsBlobStore(root);
  const meta = new LevelMetadataStore(blobs.paths.db);
  await meta.open();
  try {
    let tempFiles = 0;
    try {
      tempFiles = (await fs.readdir(blobs.paths.tmp)).length;
    } catch {
      tempFiles = 0;
    }
    // Every published blob holds exactly the bytes of its name.
    let blobCount = 0;
    const readBlob = async (digest: string) => {
      const chunks: Buffer[] = [];
      for await (const c of await blobs.read(digest)) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    };
    const blobSizes = new Map<string, number>();
    for await (const digest of blobs.list()) {
      blobCount += 1;
      const size = (await blobs.stat(digest))?.size;
      if (verified.has(digest)) {
        assert.equal(size, verified.get(digest), `blob ${digest} kept its size`);
      } else {
        const bytes = await readBlob(digest);
        assert.equal(sha256(bytes), digest, `blob ${digest} re-hashes to its name`);
        verified.set(digest, bytes.length);
      }
      blobSizes.set(digest, size ?? -1);
    }
    const records = new Map<string, ImageRecord>();
    for await (const record of meta.listImages()) records.set(record.id, record);
    let complete = 0;
    for (const record of records.values()) {
      if (record.status !== 'complete') continue;
      complete += 1;
      assert.ok(record.layer, `complete image ${record.id} has a layer`);
      // The blob re-hashed to its name above (now or in an earlier inspection: blobs are
      // immutable), so its bytes hash to record.layer.digest when the names match.
      assert.ok(blobSizes.has(record.layer.digest), `complete image ${record.id}: its blob ${record.layer.digest} exists`);
      assert.equal(blobSizes.get(record.layer.digest), record.layer.size, `complete image ${record.id}: layer size`);
      const image = known.get(record.id);
      assert.ok(image, `complete image ${record.id} is one the harness pushed`);
      image.digest ??= sha256(image.layer);
      assert.equal(record.layer.digest, image.digest, `complete image ${record.id}: the layer bytes are the pushed bytes`);
      const json = await meta.getImageJson(record.id);
      assert.ok(json, `complete image ${record.id} has its json`);
      assert.ok(json.equals(image.json), `complete image ${record.id}: json bytes are the pushed bytes`);
      assert.equal(sha256(json, Buffer.from('\n'), image.layer), record.layer.payloadChecksum, `complete image ${record.id}: payload checksum`);
      if (record.parent) assert.equal(records.get(record.parent)?.status, 'complete', `complete image ${record.id}: its parent is complete`);
      const ancestry = await meta.getAncestry(record.id);
      assert.equal(ancestry?.[0], record.id, `complete image ${record.id}: ancestry starts with it`);
    }
    let tags = 0;
    const repos: string[] = [];
    for await (const repo of meta.listRepos()) {
      const name = parseRepoPath(`${repo.namespace}/${repo.repository}`);
      repos.push(name.full);
      for (const [tag, record] of await meta.listTags(name)) {
        tags += 1;
        if (!record.imageId) continue;
        assert.equal(records.get(record.imageId)?.status, 'complete', `tag ${name.full}:${tag} points at a complete image (${record.imageId})`);
      }
    }
    const pendingIds = [...records.values()].filter((r) => r.status !== 'complete').map((r) => r.id);
    return { images: records.size, complete, pending: records.size - complete, tags, blobs: blobCount, tempFiles, repos, pendingIds };
  } finally {
    await meta.close();
  }
}

/** After a restart: tmp/ is empty, fsck finds nothing, served image lists are complete-only. */
export async function checkRestarted(server: ChildServer, root: string, report: StoreReport): Promise<void> {
  const left = await fs.readdir(path.join(root, 'tmp'));
  assert.deepEqual(left, [], 'temp files are removed at start-up');
  if (report.tempFiles > 0) {
    const logged = server.logs.map((l) => JSON.parse(l) as { removedTemp?: number }).find((l) => typeof l.removedTemp === 'number');
    assert.equal(logged?.removedTemp, report.tempFiles, 'the server logged the unfinished uploads it removed');
  }
  const ping = expect(await send(server.url, 'GET', '/v1/_ping'), [200], 'ping');
  assert.equal(ping.body.toString(), 'true');
  const fsck = JSON.parse(expect(await send(server.url, 'POST', '/_admin/fsck'), [200], 'fsck').body.toString()) as {
    ok: boolean;
    problems: unknown[];
  };
  assert.deepEqual(fsck.problems, [], 'fsck finds no problem after the kill');
  assert.equal(fsck.ok, true);
  // The image list served to a pull names no image the kill left pending, and those are not served.
  const pending = new Set(report.pendingIds);
  for (const repo of report.repos) {
    const res = expect(await send(server.url, 'GET', `/v1/repositories/${repo}/images`), [200], `GET images ${repo}`);
    for (const entry of JSON.parse(res.body.toString()) as Array<{ id: string }>) {
      assert.ok(!pending.has(entry.id), `${repo}'s pull image list names ${entry.id}, which the kill left incomplete`);
    }
  }
  for (const id of report.pendingIds) {
    const json = await send(server.url, 'GET', `/v1/images/${id}/json`);
    assert.equal(json.status, 400, `the incomplete image ${id} is not served (GET json: ${json.status})`);
  }
}

// ── the run ─────────────────────────────────────────────────────────────────────────
export interface CrashRunOptions {
  kills: number;
  seed: number;
  /** Pushes started per cycle (one of them carries the kill point). */
  concurrency?: number;
  log?: (line: string) => void;
}

export interface CrashRunSummary {
  seed: number;
  kills: number;
  killsSurvived: number;
  /** How often each kill point was used. */
  killPoints: Record<KillPoint, number>;
  /** Kills that landed while the layer body was still streaming. */
  killsMidLayer: number;
  pushesStarted: number;
  pushesCompletedBeforeKill: number;
  pushesInterrupted: number;
  pushesRetried: number;
  imagesUploaded: number;
  tempFilesCleaned: number;
  restarts: number;
  finalStore: StoreReport | null;
}

const REPOS = ['crash/app', 'crash/tools', 'other/app', 'busybox'];
const TAGS = ['latest', 'v1', 'v2'];

export async function runCrashCycles(options: CrashRunOptions): Promise<CrashRunSummary> {
  const rand = prng(options.seed);
  const log = options.log ?? (() => {});
  const concurrency = options.concurrency ?? 3;
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)];
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'registry-crash-'));
  const known = new Map<string, HarnessImage>();
  /** Chain depth of every image (1: no parent). */
  const depth = new Map<string, number>();
  /** Images of finished pushes (complete for sure): candidates for shared parents. */
  const completePool: HarnessImage[] = [];
  const addToPool = (push: Push) => {
    for (const image of push.images) if (!completePool.includes(image)) completePool.push(image);
  };
  /** Tags whose pull has not been verified since their last push finished. */
  const unverified = new Set<string>();
  /** repo:tag → the top image of the last push that finished under it. */
  const expectedTags = new Map<string, string>();
  let pendingRetries: Push[] = [];
  const summary: CrashRunSummary = {
    seed: options.seed,
    kills: options.kills,
    killsSurvived: 0,
    killPoints: { layer: 0, 'checksum-tag': 0, 'image-list': 0, tag: 0, random: 0 },
    killsMidLayer: 0,
    pushesStarted: 0,
    pushesCompletedBeforeKill: 0,
    pushesInterrupted: 0,
    pushesRetried: 0,
    imagesUploaded: 0,
    tempFilesCleaned: 0,
    restarts: 0,
    finalStore: null,
  };
  const layerSize = () => {
    const r = rand();
    if (r < 0.1) return 0;
    if (r < 0.8) return 1 + Math.floor(rand() * 300_000);
    return 500_000 + Math.floor(rand() * 1_500_000);
  };
  /** `concurrency` distinct repo:tag pairs: pushes of one cycle never race for a tag. */
  const distinctTargets = (): Array<{ repo: string; tag: string }> => {
    const all = REPOS.flatMap((repo) => TAGS.map((tag) => ({ repo, tag })));
    for (let i = all.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [all[i], all[j]] = [all[j], all[i]];
    }
    return all.slice(0, concurrency);
  };
  const newPush = (target: { repo: string; tag: string }, bigLayerAt = -1): Push => {
    const length = 1 + Math.floor(rand() * 3);
    const images: HarnessImage[] = [];
    // Shared parents: half of the pushes build on an image an earlier push completed.
    const shallow = completePool.filter((i) => (depth.get(i.id) ?? 1) <= 6);
    let parent: string | null = shallow.length > 0 && rand() < 0.5 ? pick(shallow).id : null;
    for (let i = 0; i < length; i++) {
      // A layer the kill must land in: 1-2 MiB, so that it streams in 16-32 pieces.
      const size = i === Math.min(bigLayerAt, length - 1) ? 1_048_576 + Math.floor(rand() * 1_048_576) : layerSize();
      const image = makeImage(rand, parent, size);
      known.set(image.id, image);
      depth.set(image.id, (parent ? (depth.get(parent) ?? 1) : 0) + 1);
      images.push(image);
      parent = image.id;
    }
    return { ...target, images };
  };
  const finished = (push: Push) => {
    const key = `${push.repo}:${push.tag}`;
    expectedTags.set(key, push.images[push.images.length - 1].id);
    unverified.add(key);
    addToPool(push);
  };
  const verifyTags = async (base: string, all: boolean) => {
    const keys = [...expectedTags.keys()];
    // The tags pushed since the last check, plus one other (all of them at the end).
    const chosen = all ? keys : [...new Set([...unverified, ...(keys.length > 0 ? [pick(keys)] : [])])];
    for (const key of chosen) {
      const [repo, tag] = key.split(':');
      await verifyPull(base, repo, tag, expectedTags.get(key)!, known);
      unverified.delete(key);
    }
  };

  let server: ChildServer | null = null;
  let report: StoreReport | null = null;
  /** Blobs already re-hashed by an earlier inspection (blobs are immutable once published). */
  const verifiedBlobs = new Map<string, number>();
  try {
    for (let cycle = 0; cycle <= options.kills; cycle++) {
      const cycleStarted = Date.now();
      server = await startChild(root);
      const startMs = Date.now() - cycleStarted;
      summary.restarts += cycle > 0 ? 1 : 0;
      if (report) {
        await checkRestarted(server, root, report);
        summary.tempFilesCleaned += report.tempFiles;
      }
      // Every push the last kill interrupted must succeed now.
      for (const push of pendingRetries) {
        try {
          summary.imagesUploaded += await pushOnce(server.url, push);
        } catch (err) {
          throw new Error(`cycle ${cycle}: retrying an interrupted push of ${push.repo}:${push.tag} failed: ${(err as Error).message}`);
        }
        summary.pushesRetried += 1;
        finished(push);
      }
      pendingRetries = [];
      // What finished pulls back byte-exact (the latest push per tag), all of it at the end.
      await verifyTags(server.url, cycle === options.kills);
      if (cycle === options.kills) break;

      // New pushes, one of which carries the kill point.
      const point = pick(KILL_POINTS);
      summary.killPoints[point] += 1;
      const pushes = distinctTargets().map((target, i) => newPush(target, i === 0 && point === 'layer' ? Math.floor(rand() * 3) : -1));
      summary.pushesStarted += pushes.length;
      const current = server;
      let killed: Promise<void> | null = null;
      let midLayer = false;
      const kill = () => {
        killed ??= current.kill9();
        return killed;
      };
      const carrier = pushes[0];
      // Which image's layer, and after which piece, for the 'layer' point.
      const layerTarget = carrier.images.reduce((a, b) => (b.layer.length > a.layer.length ? b : a));
      // Mostly mid-stream; one time in five once the whole body is sent (fsync, link, record).
      const afterLastPiece = rand() < 0.2;
      const layerPieceFraction = rand();
      const smallDelay = Math.floor(rand() * 4);
      const hooks: PushHooks = {
        async at(where, info) {
          if (killed) return;
          if (point === 'layer' && where === 'layer-piece' && info.image === layerTarget) {
            const pieces = info.pieces ?? 1;
            const target = afterLastPiece ? pieces - 1 : Math.floor(layerPieceFraction * Math.max(1, pieces - 1));
            if (info.piece === target) {
              midLayer = target < pieces - 1;
              if (!midLayer && smallDelay > 0) await sleep(smallDelay);
              await kill();
            }
          } else if (point === 'checksum-tag' && where === 'after-checksum' && info.image === carrier.images[carrier.images.length - 1]) {
            await kill();
          } else if (point === 'image-list' && where === 'image-list-sent') {
            if (smallDelay > 0) await sleep(smallDelay);
            await kill();
          } else if (point === 'tag' && where === 'tag-sent') {
            if (smallDelay > 0) await sleep(smallDelay);
            await kill();
          }
        },
      };
      const results = pushes.map((push, i) =>
        pushOnce(current.url, push, i === 0 ? hooks : NO_HOOKS).then(
          (uploaded) => ({ push, ok: true as const, uploaded }),
          (err: Error) => ({ push, ok: false as const, err }),
        ),
      );
      if (point === 'random') setTimeout(() => void kill(), Math.floor(rand() * 400)).unref();
      const settled = await Promise.all(results);
      // A carrier whose layer already existed (shared content) or that finished first: kill now.
      await kill();
      if (midLayer) summary.killsMidLayer += 1;
      const exit = await current.exited;
      assert.equal(exit.signal, 'SIGKILL', 'the server was killed, it did not exit on its own');
      for (const result of settled) {
        // A push may only have failed because the server died: a refusal is a bug.
        if (!result.ok && /: HTTP \d+/.test(result.err.message)) {
          throw new Error(`cycle ${cycle}: a push was refused, not interrupted: ${result.err.message}`);
        }
        if (result.ok) {
          summary.pushesCompletedBeforeKill += 1;
          summary.imagesUploaded += result.uploaded;
          finished(result.push);
        } else {
          summary.pushesInterrupted += 1;
          pendingRetries.push(result.push);
        }
      }
      // Offline: the stores as the kill left them.
      report = await inspectStore(root, known, verifiedBlobs);
      summary.killsSurvived += 1;
      log(
        `kill ${cycle + 1}/${options.kills} at ${point}${midLayer ? ' (mid-layer)' : ''}: ` +
          `${settled.filter((r) => r.ok).length} pushes finished, ${pendingRetries.length} interrupted; ` +
          `store: ${report.complete} complete / ${report.pending} pending images, ${report.tags} tags, ${report.blobs} blobs, ${report.tempFiles} temp files ` +
          `(${Date.now() - cycleStarted} ms, start ${startMs} ms)`,
      );
    }
    await server?.stop();
    server = null;
    // The final inspection re-hashes every blob again.
    summary.finalStore = await inspectStore(root, known);
    return summary;
  } catch (err) {
    if (server) {
      const tail = server.logs.slice(-20).join('\n');
      (err as Error).message += `\n(seed ${options.seed}; last server log lines:\n${tail})`;
    }
    throw err;
  } finally {
    if (server) await server.kill9();
    await fs.rm(root, { recursive: true, force: true });
  }
}
