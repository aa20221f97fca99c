/**
 * npm run bench:meta: metadata at scale. Builds the server, seeds a store directly through
 * the metadata store (not HTTP: 100,000 images, 10,000 repositories × 50 tags, a 128-deep
 * chain, a 1,000-image repository), closes it, then starts the built server on it as its own
 * process (the same V8 flags as `npm start`) and times, from this process, over HTTP on
 * loopback, SAMPLES sequential requests of each kind, reporting p50/p99/max in ms, and the
 * start-up time on that store (spawn to the first successful /v1/_ping).
 *
 *   npm run bench:meta                 # full size
 *   npm run bench:meta -- --small      # 1/10 of the size, for a quick look
 *
 * Environment: BENCH_META_SAMPLES (requests per row, default 1000), BENCH_META_PROF=<dir>
 * (the server writes a V8 CPU profile there when it stops: node --cpu-prof).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ImageId, RepoName, Tag } from '../src/domain/names.js';
import type { ImageRecord, RepoRecord, TagRecord } from '../src/domain/records.js';
import { FsBlobStore } from '../src/store/blobs/fs-blob-store.js';
import { LevelMetadataStore } from '../src/store/metadata/level-metadata-store.js';
import { freePort, percentile, spawnBuiltServer, timeRequests, waitUntilServing } from './built-server.js';

const small = process.argv.includes('--small');
const scale = small ? 10 : 1;
const IMAGES = 100_000 / scale;
const REPOS = 10_000 / scale;
const TAGS_PER_REPO = 50;
const CHAIN = 128;
const BIG_REPO_IMAGES = 1_000;
const SAMPLES = Number(process.env.BENCH_META_SAMPLES ?? 1000);
const WARMUP = 50;

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-bench-meta-'));
const hex = () => randomBytes(32).toString('hex') as ImageId;
const name = (ns: string, repo: string): RepoName => ({ namespace: ns, repository: repo, full: `${ns}/${repo}` });
const now = new Date().toISOString();
const digest = `sha256:${'0'.repeat(64)}`;

function image(id: ImageId, parent: ImageId | null): ImageRecord {
  return {
    id,
    parent,
    status: 'complete',
    jsonSize: 100,
    claimedChecksum: null,
    layer: { digest, size: 1024, payloadChecksum: `sha256:${'1'.repeat(64)}`, tarsum: null },
    createdAt: now,
    completedAt: now,
  };
}

async function seed(): Promise<{ chainTip: ImageId; tagged: Array<[RepoName, Tag, ImageId]> }> {
  const t0 = Date.now();
  await new FsBlobStore(root).init();
  const meta = new LevelMetadataStore(path.join(root, 'db'));
  await meta.open();
  const ids: ImageId[] = [];
  // The 128-deep chain first, then the rest as single-layer images.
  let parent: ImageId | null = null;
  let ancestry: ImageId[] = [];
  for (let i = 0; i < CHAIN; i++) {
    const id = hex();
    ancestry = [id, ...ancestry];
    await meta.putImage(image(id, parent), Buffer.from(JSON.stringify({ id, parent })), ancestry);
    parent = id;
    ids.push(id);
  }
  const chainTip = parent as ImageId;
  const pending: Array<Promise<void>> = [];
  for (let i = CHAIN; i < IMAGES; i++) {
    const id = hex();
    ids.push(id);
    pending.push(meta.putImage(image(id, null), Buffer.from(JSON.stringify({ id })), [id]));
    if (pending.length >= 500) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  const tagged: Array<[RepoName, Tag, ImageId]> = [];
  for (let r = 0; r < REPOS; r++) {
    const repo = name(`ns${r % 100}`, `repo-${r}`);
    const record: RepoRecord = {
      namespace: repo.namespace,
      repository: repo.repository,
      access: r % 10 === 0 ? 'private' : 'public',
      description: `benchmark repository number ${r}`,
      createdAt: now,
      lastTagInfo: null,
    };
    for (let t = 0; t < TAGS_PER_REPO; t++) {
      const id = ids[(r * TAGS_PER_REPO + t) % ids.length];
      const tag = `v${t}` as Tag;
      const tagRecord: TagRecord = { imageId: id, info: { last_update: 0, docker_version: null, docker_go_version: null, arch: 'amd64', os: 'linux', kernel: null } };
      pending.push(meta.putTag(repo, tag, tagRecord, record, [id]));
      if (t === 0) tagged.push([repo, tag, id]);
    }
    if (pending.length >= 500) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  const big = name('bench', 'big');
  await meta.putRepo(big, { namespace: 'bench', repository: 'big', access: 'public', description: 'big', createdAt: now, lastTagInfo: null });
  await meta.mergeRepoImages(big, ids.slice(0, BIG_REPO_IMAGES).map((id) => ({ id })));
  await meta.putTag(name('bench', 'chain'), 'latest' as Tag, { imageId: chainTip, info: { last_update: 0, docker_version: null, docker_go_version: null, arch: 'amd64', os: 'linux', kernel: null } }, { namespace: 'bench', repository: 'chain', access: 'public', description: '', createdAt: now, lastTagInfo: null }, [...ancestry]);
  await meta.close();
  console.log(`seeded ${IMAGES} images, ${REPOS} repositories × ${TAGS_PER_REPO} tags in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { chainTip, tagged };
}

async function time(label: string, urls: string[]): Promise<string> {
  const ms = await timeRequests(label, urls, SAMPLES, WARMUP);
  return `| ${label} | ${percentile(ms, 50).toFixed(2)} | ${percentile(ms, 99).toFixed(2)} | ${ms[ms.length - 1].toFixed(2)} |`;
}

const { chainTip, tagged } = await seed();
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const prof = process.env.BENCH_META_PROF;
const t0 = process.hrtime.bigint();
// The server is alone in its process, so the timing client's own allocations and GC
// pauses stay out of the server's latencies.
const server = spawnBuiltServer(
  {
    REGISTRY_CONFIG: 'config/test.yaml',
    REGISTRY_STORAGE_ROOT: root,
    REGISTRY_PORT: String(port),
    REGISTRY_STANDALONE: 'true',
    REGISTRY_LOG_LEVEL: 'silent',
  },
  { nodeArgs: prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : [], stdio: ['ignore', 'inherit', 'inherit'] },
);
const exited = new Promise<number | null>((resolve) => server.once('exit', resolve));
await waitUntilServing(server, base);
const startupMs = Number(process.hrtime.bigint() - t0) / 1e6;
const pick = tagged.filter((_, i) => i % 37 === 0).slice(0, 100);
const rows: string[] = [];
try {
  rows.push(
    await time('tag list (50 tags)', pick.map(([r]) => `${base}/v1/repositories/${r.full}/tags`)),
    await time('tag get', pick.map(([r, t]) => `${base}/v1/repositories/${r.full}/tags/${t}`)),
    await time(`ancestry of a ${CHAIN}-deep chain`, [`${base}/v1/images/${chainTip}/ancestry`]),
    await time('search, empty query, page 1', [`${base}/v1/search?q=`]),
    await time('search, a term', [`${base}/v1/search?q=number+77`]),
    await time(`image list of a ${BIG_REPO_IMAGES}-image repository`, [`${base}/v1/repositories/bench/big/images`]),
  );
} finally {
  server.kill('SIGTERM');
  await exited;
  fs.rmSync(root, { recursive: true, force: true });
}
console.log(`\nstart-up on this store: ${startupMs.toFixed(0)} ms, spawn to the first 200 from /v1/_ping (target < 2000)\n`);
console.log(`${SAMPLES} sequential requests per row after ${WARMUP} warm-up requests; server in its own process\n`);
console.log('| request | p50 ms | p99 ms | max ms |\n| --- | ---: | ---: | ---: |');
for (const row of rows) console.log(row);
