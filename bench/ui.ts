/**
 * npm run bench:ui: how fast the web UI renders. Seeds a scratch store through the real
 * services: a 5-layer base, 500 images on top of it, a repository with a tag on each (so
 * 500 tags, each its own image), pushed by an account; and 2,000 more repositories of one
 * tag each for the repository list. Then starts the built server as its own process (the
 * flags of `npm start`) and times, from this process over loopback, sequential GETs of
 * (to the last byte of the body, and as the server's own request log line measured it):
 *
 * - the 500-tag repository page, anonymous and as its owner (signed in: the owner sees the
 *   delete links and the Manage section), target < 200 ms;
 * - a tag's history page, the repository list (page 1 of 2,000), a search.
 *
 *   npm run bench:ui
 *
 * Environment: BENCH_UI_SAMPLES (requests per row, default 200), BENCH_UI_PROF=<dir> (the
 * server writes a V8 CPU profile there when it stops: node --cpu-prof).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { loadConfig } from '../src/config/load.js';
import { parseRepoPath, parseTag, type ImageId } from '../src/domain/names.js';
import { createLogger } from '../src/logger.js';
import { openServices, type Services } from '../src/compose.js';
import { freePort, percentile, spawnBuiltServer, timeRequests, waitUntilServing } from './built-server.js';

const TAGS = 500;
const OTHER_REPOS = 2000;
const SAMPLES = Number(process.env.BENCH_UI_SAMPLES ?? 200);
const WARMUP = 20;
const OWNER = { username: 'benchowner', password: 'bench-owner-1' };
const USER_AGENT = 'docker/1.5.0 go/go1.4.1 git-commit/a8a31ef kernel/3.13.0-24-generic os/linux arch/amd64';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-bench-ui-'));

async function pushImage(services: Services, parent: ImageId | null, createdBy: string, size: number): Promise<ImageId> {
  const id = randomBytes(32).toString('hex') as ImageId;
  const doc: Record<string, unknown> = { id, created: new Date().toISOString(), container_config: { Cmd: ['/bin/sh', '-c', createdBy] }, os: 'linux', architecture: 'amd64' };
  if (parent) doc.parent = parent;
  const json = Buffer.from(JSON.stringify(doc));
  const layer = randomBytes(size);
  await services.images.putJson(id, json, undefined);
  await services.images.putLayer(id, Readable.from([layer]));
  await services.images.putChecksum(id, 'sha256:' + createHash('sha256').update(json).update('\n').update(layer).digest('hex'), undefined);
  return id;
}

async function seed(): Promise<{ cookie: string; tag: string }> {
  const t0 = Date.now();
  const config = loadConfig({ env: { REGISTRY_CONFIG: 'config/test.yaml' }, overrides: { storage_root: root, standalone: false } });
  const services = await openServices(config, createLogger('silent'));
  try {
    await services.users.upsert({ ...OWNER, email: 'owner@bench.test', admin: false });
    let base: ImageId | null = null;
    for (let i = 0; i < 5; i++) base = await pushImage(services, base, `layer ${i} of the base`, 4096 * (i + 1));
    const repo = parseRepoPath(`${OWNER.username}/many`);
    await services.repos.setProperties(repo, { description: 'A repository with 500 tags, each its own image' });
    for (let i = 0; i < TAGS; i++) {
      const top = await pushImage(services, base, `build step ${i}`, 512 + i);
      await services.repos.putTag(repo, parseTag(`v1.${i}`), top, USER_AGENT, OWNER.username);
    }
    for (let r = 0; r < OTHER_REPOS; r++) {
      await services.repos.putTag(parseRepoPath(`ns${r % 50}/repo-${r}`), parseTag('latest'), base, USER_AGENT, OWNER.username);
    }
    // Pushers are recorded by an event listener; let it finish before the store closes.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const owner = await services.users.get(OWNER.username);
    if (!owner) throw new Error('the owner account was not created');
    const session = services.sessions.issue(owner);
    console.log(`seeded ${TAGS + 5} images, a ${TAGS}-tag repository and ${OTHER_REPOS} more repositories in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return { cookie: `registry_web_session=${session.value}`, tag: 'v1.250' };
  } finally {
    await services.close();
  }
}

const { cookie, tag } = await seed();
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const server = spawnBuiltServer(
  {
    REGISTRY_CONFIG: 'config/test.yaml',
    REGISTRY_STORAGE_ROOT: root,
    REGISTRY_PORT: String(port),
    REGISTRY_STANDALONE: 'false',
    REGISTRY_LOG_LEVEL: 'info',
  },
  { nodeArgs: process.env.BENCH_UI_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_UI_PROF] : [], stdio: ['ignore', 'pipe', 'inherit'] },
);
const exited = new Promise<number | null>((resolve) => server.once('exit', resolve));
// The server's own time per request (from its request log: arrival to the last byte handed to the socket).
const served: number[] = [];
let partial = '';
server.stdout?.on('data', (chunk: Buffer) => {
  const lines = (partial + chunk.toString('utf8')).split('\n');
  partial = lines.pop() ?? '';
  for (const line of lines) {
    const m = /"msg":"request"/.test(line) ? /"ms":([\d.]+)/.exec(line) : null;
    if (m) served.push(Number(m[1]));
  }
});
const rows: string[] = [];
try {
  await waitUntilServing(server, base);
  const page = `${base}/-/r/${OWNER.username}/many`;
  const first = await fetch(page, { headers: { Cookie: cookie } });
  const body = await first.text();
  const shown = (body.match(/<tr>/g) ?? []).length;
  if (!body.includes('Save description') || shown < TAGS) throw new Error(`the owner's page shows ${shown} rows, no Manage section?`);
  const row = async (label: string, urls: string[], init: RequestInit = {}) => {
    const size = (await (await fetch(urls[0], init)).arrayBuffer()).byteLength;
    const logged = served.length;
    const ms = await timeRequests(label, urls, SAMPLES, WARMUP, init);
    // Log lines are written within 250 ms; the measured ones are the last SAMPLES of this row.
    for (let waited = 0; served.length < logged + WARMUP + SAMPLES && waited < 3000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    const own = served.slice(logged + WARMUP, logged + WARMUP + SAMPLES).sort((a, b) => a - b);
    const cell = (values: number[], p: number) => (values.length ? percentile(values, p).toFixed(1) : '?');
    rows.push(`| ${label} | ${(size / 1024).toFixed(0)} KiB | ${cell(ms, 50)} / ${cell(own, 50)} | ${cell(ms, 90)} / ${cell(own, 90)} | ${cell(ms, 99)} / ${cell(own, 99)} | ${ms[ms.length - 1].toFixed(1)} |`);
  };
  await row(`repository page, ${TAGS} tags, anonymous`, [page]);
  await row(`repository page, ${TAGS} tags, owner (signed in)`, [page], { headers: { Cookie: cookie } });
  await row('image history (6 layers)', [`${page}/tags/${tag}`]);
  await row(`repository list, page 1 of ${OTHER_REPOS + 1}`, [`${base}/`]);
  await row('search for a term', [`${base}/?q=repo-17`]);
} finally {
  server.kill('SIGTERM');
  await exited;
  fs.rmSync(root, { recursive: true, force: true });
}
console.log(`\n${SAMPLES} sequential requests per row after ${WARMUP} warm-up requests; server in its own process`);
console.log('client / server: to the last byte of the body at the client / the server\'s request log (arrival to the last byte written)\n');
console.log('| page | body | p50 ms | p90 ms | p99 ms | max ms (client) |\n| --- | ---: | ---: | ---: | ---: | ---: |');
for (const line of rows) console.log(line);
