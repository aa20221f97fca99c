/**
 * `registry migrate --to postgres+s3`: a LevelDB + files registry filled through the real app
 * (v1 chains, v2 images, a v1 image shown over v2, users, an OAuth client, queued webhooks,
 * pull statistics) is copied into a fresh PostgreSQL database and a fresh S3 bucket (Ceph RGW),
 * by the real CLI in a child process that is killed (SIGKILL) mid-copy once and run again.
 * Then a node started on the target serves everything byte for byte, the migrated users log
 * in, fsck is clean, and a third run finds nothing left to copy. `--to level+fs` brings it
 * back into a new storage root.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { parseStoredName } from '../../src/domain/names.js';
import { S3BlobStore } from '../../src/store/blobs/s3-blob-store.js';
import { LevelMetadataStore } from '../../src/store/metadata/level-metadata-store.js';
import { PostgresMetadataStore } from '../../src/store/metadata/postgres-metadata-store.js';
import { runScript } from '../helpers/cli.js';
import { useEngines } from '../helpers/engines.js';
import { sharedConfig } from '../multi-node/cluster.js';
import { makeTempDir, newImageId, startTestServer, type TestServer } from '../helpers/server.js';
import { imageJson, pushChain, type TestImage } from '../helpers/v1.js';
import { digestOf, MEDIA, pushImageV2, type TestImageV2 } from '../helpers/v2.js';

const engines = useEngines();
const CLI = 'src/cli/main.ts';
const USERS = [
  { username: 'alice', password: 'alice-password', email: 'alice@example.com' },
  { username: 'bobby', password: 'bobby-password', email: 'bobby@example.com' },
];

function basic(user: { username: string; password: string }): string {
  return 'Basic ' + Buffer.from(`${user.username}:${user.password}`).toString('base64');
}

/** A fresh database on the test PostgreSQL; drop() removes it. */
async function newDatabase(url: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `migrate_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const scoped = new URL(url);
  scoped.pathname = `/${name}`;
  return {
    url: scoped.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

describe('registry migrate --to postgres+s3', () => {
  let root: string;
  let source: TestServer | null = null;
  let db: Awaited<ReturnType<typeof newDatabase>>;
  let bucket: string;
  let env: Record<string, string>;
  let target: TestServer | null = null;
  const chains: Array<{ repo: string; tag: string; images: TestImage[] }> = [];
  const v2: Array<{ name: string; tag: string; image: TestImageV2 }> = [];
  let shownOverV2: { repo: string; digest: string; bytes: Buffer };
  const blobDigests: string[] = [];
  const sourcePulls = new Map<string, number>();

  before(async () => {
    root = await makeTempDir('registry-migrate-');
    db = await newDatabase(engines.postgres.url);
    bucket = `migrate-${randomBytes(4).toString('hex')}`;
    env = {
      REGISTRY_CONFIG: 'config/test.yaml',
      REGISTRY_STORAGE_ROOT: root,
      REGISTRY_S3_ENDPOINT: engines.s3.endpoint,
      REGISTRY_S3_REGION: engines.s3.region,
      REGISTRY_S3_ACCESS_KEY_ID: engines.s3.accessKeyId,
      REGISTRY_S3_SECRET_ACCESS_KEY: engines.s3.secretAccessKey,
    };

    // The source: LevelDB + files, filled through the app. Webhooks go nowhere and stay queued.
    source = await startTestServer({ root, overrides: { webhooks: ['http://127.0.0.1:9/hook'], webhook_retry_base_ms: 3_600_000 } });
    for (const user of USERS) {
      const res = await fetch(`${source.url}/v1/users/`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ username: user.username, password: user.password, email: user.email }),
      });
      assert.equal(res.status, 201, await res.text());
    }
    // Enough blobs (and bytes) that the copy is still running when it is killed.
    for (const [r, repo] of ['alice/base', 'alice/app', 'bobby/tools'].entries()) {
      const images: TestImage[] = [];
      for (let i = 0; i < 4; i++) images.push({ id: newImageId(), parent: images[i - 1]?.id, layer: randomBytes(1_500_000 + r * 1000 + i) });
      await pushChain(source.url, repo, 'latest', images);
      chains.push({ repo, tag: 'latest', images });
    }
    for (const [i, name] of ['bobby/web', 'alice/v2only'].entries()) {
      const image = await pushImageV2(source.url, name, 'v1.0', [randomBytes(2_000_000 + i), randomBytes(700_000 + i)], { mediaType: i ? MEDIA.ociManifest : MEDIA.dockerManifest });
      v2.push({ name, tag: 'v1.0', image });
    }
    // A v1 image shown over v2: a manifest synthesized and recorded for it.
    const shown = await fetch(`${source.url}/v2/alice/app/manifests/latest`, { headers: { Accept: MEDIA.dockerManifest } });
    assert.equal(shown.status, 200);
    shownOverV2 = { repo: 'alice/app', digest: shown.headers.get('docker-content-digest') as string, bytes: Buffer.from(await shown.arrayBuffer()) };
    // Pulls (counted for the Hub double, flushed when the server stops).
    for (const { repo } of chains) assert.equal((await fetch(`${source.url}/v1/repositories/${repo}/images`)).status, 200);
    await source.stop();
    source = null;

    const level = new LevelMetadataStore(`${root}/db`);
    await level.open();
    for (const { repo } of chains) sourcePulls.set(repo, (await level.getRepoPulls(parseStoredName(repo)))?.count ?? 0);
    await level.close();
    assert.ok([...sourcePulls.values()].every((n) => n >= 1), 'the source counted pulls');

    const added = await runScript(CLI, ['oauth-client', 'add', 'CI', '--redirect-uri', 'https://ci.example/cb'], env);
    assert.equal(added.code, 0, added.stderr);
    for await (const entry of await fs.opendir(`${root}/blobs`, { recursive: true })) {
      if (entry.isFile()) blobDigests.push(`sha256:${entry.name}`);
    }
    assert.ok(blobDigests.length >= 16, `the source holds ${blobDigests.length} blobs`);
  });

  after(async () => {
    await source?.stop();
    await target?.destroy();
    await db?.drop();
    await fs.rm(root, { recursive: true, force: true });
  });

  const targetArgs = () => ['migrate', '--to', 'postgres+s3', '--postgres-url', db.url, '--s3-bucket', bucket, '--s3-force-path-style'];

  it('refuses, saying so, while the source registry is running (LevelDB lock)', async () => {
    const running = await startTestServer({ root });
    try {
      const result = await runScript(CLI, targetArgs(), env);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /the source registry is running: .*db is locked by another process\. Stop it first/);
    } finally {
      await running.stop();
    }
  });

  it('killed mid-copy, then run again: finishes, fsck clean; a third run copies nothing', async () => {
    const s3 = new S3BlobStore({
      endpoint: engines.s3.endpoint,
      region: engines.s3.region,
      bucket,
      accessKeyId: engines.s3.accessKeyId,
      secretAccessKey: engines.s3.secretAccessKey,
      forcePathStyle: true,
    });
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...targetArgs(), '--concurrency', '1'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Kill it once some blobs are on the target and others are not.
    let present = 0;
    let finished: number | null | undefined;
    void exited.then((code) => (finished = code));
    while (finished === undefined) {
      present = (await Promise.all(blobDigests.map((d) => s3.stat(d).catch(() => null)))).filter(Boolean).length;
      if (present >= 2) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    assert.equal(finished, undefined, `the first run ended before it was killed: ${stderr}`);
    child.kill('SIGKILL');
    await exited;
    assert.ok(present < blobDigests.length, `killed with ${present} of ${blobDigests.length} blobs copied`);

    const resumed = await runScript(CLI, [...targetArgs(), '--json'], env);
    assert.equal(resumed.code, 0, resumed.stderr + resumed.stdout);
    const report = JSON.parse(resumed.stdout);
    assert.ok(report.migration.blobs.skipped >= 2, 'blobs the killed run committed are not copied again');
    assert.equal(report.migration.blobs.copied + report.migration.blobs.skipped, blobDigests.length);
    assert.equal(report.fsck.ok, true, JSON.stringify(report.fsck.problems));
    assert.equal(report.fsck.blobs.checked, blobDigests.length);
    // 12 pushed over v1, 4 derived from the two v2 images.
    assert.equal(report.fsck.images.checked, 16);
    assert.equal(report.migration.records.users.copied + report.migration.records.users.skipped, 2);
    assert.equal(report.migration.records.tags.copied + report.migration.records.tags.skipped, 5);
    assert.equal(report.migration.records['oauth clients'].copied + report.migration.records['oauth clients'].skipped, 1);
    assert.ok(report.migration.records.webhooks.copied + report.migration.records.webhooks.skipped >= 5, 'the queued webhook deliveries');
    assert.ok(report.migration.records['image manifests'].copied + report.migration.records['image manifests'].skipped >= 1);

    const again = await runScript(CLI, [...targetArgs(), '--json'], env);
    assert.equal(again.code, 0, again.stderr);
    const third = JSON.parse(again.stdout).migration;
    assert.equal(third.blobs.copied, 0);
    for (const [kind, counted] of Object.entries(third.records as Record<string, { copied: number }>)) assert.equal(counted.copied, 0, `${kind} copied again`);

    // The human summary.
    const human = await runScript(CLI, targetArgs(), env);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`^blobs: ${blobDigests.length} \\(.*\\): 0 copied`, 'm'));
    assert.match(human.stdout, /^fsck of the target: .* ok$/m);
    assert.match(human.stdout, /^time: /m);
  });

  it('a node on the target serves every image byte for byte, and the migrated users log in', async () => {
    // What no route shows (read before any pull through the target counts one more).
    const meta = new PostgresMetadataStore(db.url);
    await meta.open();
    try {
      let hooks = 0;
      for await (const _ of meta.listWebhooks()) hooks += 1;
      assert.ok(hooks >= 5, `${hooks} queued webhook deliveries`);
      const clients = [];
      for await (const client of meta.listOAuthClients()) clients.push(client.name);
      assert.deepEqual(clients, ['CI']);
      for (const { repo } of chains) assert.equal((await meta.getRepoPulls(parseStoredName(repo)))?.count, sourcePulls.get(repo), `pulls of ${repo}`);
    } finally {
      await meta.close();
    }
    target = await startTestServer({ overrides: sharedConfig(engines, db.url, { s3_bucket: bucket }) });
    const base = target.url;
    for (const { repo, tag, images } of chains) {
      assert.deepEqual(await (await fetch(`${base}/v1/repositories/${repo}/tags`)).json(), { [tag]: images[images.length - 1].id });
      const top = images[images.length - 1].id;
      assert.deepEqual(await (await fetch(`${base}/v1/images/${top}/ancestry`)).json(), images.map((i) => i.id).reverse());
      for (const image of images) {
        const json = await fetch(`${base}/v1/images/${image.id}/json`);
        assert.equal(json.status, 200);
        assert.ok(Buffer.from(await json.arrayBuffer()).equals(imageJson(image)), `json of ${image.id}`);
        const layer = await fetch(`${base}/v1/images/${image.id}/layer`);
        assert.equal(layer.status, 200);
        assert.ok(Buffer.from(await layer.arrayBuffer()).equals(image.layer), `layer of ${image.id}`);
      }
      const list = (await (await fetch(`${base}/v1/repositories/${repo}/images`)).json()) as Array<{ id: string }>;
      assert.deepEqual(list.map((e) => e.id).sort(), images.map((i) => i.id).sort());
    }
    for (const { name, tag, image } of v2) {
      const res = await fetch(`${base}/v2/${name}/manifests/${tag}`, { headers: { Accept: `${MEDIA.dockerManifest}, ${MEDIA.ociManifest}` } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('docker-content-digest'), image.digest);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(image.manifest));
      for (const blob of [image.config, ...image.layers]) {
        const got = await fetch(`${base}/v2/${name}/blobs/${digestOf(blob)}`);
        assert.equal(got.status, 200);
        assert.ok(Buffer.from(await got.arrayBuffer()).equals(blob));
      }
    }
    // The v1 image shown over v2 keeps its manifest (the same bytes, not synthesized again).
    const shown = await fetch(`${base}/v2/${shownOverV2.repo}/manifests/latest`, { headers: { Accept: MEDIA.dockerManifest } });
    assert.equal(shown.headers.get('docker-content-digest'), shownOverV2.digest);
    assert.ok(Buffer.from(await shown.arrayBuffer()).equals(shownOverV2.bytes));

    for (const user of USERS) {
      assert.equal((await fetch(`${base}/v1/users/`, { headers: { Authorization: basic(user) } })).status, 200, `${user.username} logs in`);
      assert.equal((await fetch(`${base}/v1/users/`, { headers: { Authorization: basic({ ...user, password: 'wrong-password' }) } })).status, 401);
    }

  });

  it('--to level+fs copies the PostgreSQL + S3 registry back into a new storage root', async () => {
    await target?.destroy();
    target = null;
    const back = await makeTempDir('registry-migrate-back-');
    try {
      const result = await runScript(CLI, ['migrate', '--to', 'level+fs', '--target-root', back, '--json'], {
        ...env,
        REGISTRY_METADATA_STORE: 'postgres',
        REGISTRY_POSTGRES_URL: db.url,
        REGISTRY_BLOB_STORE: 's3',
        REGISTRY_S3_BUCKET: bucket,
        REGISTRY_S3_FORCE_PATH_STYLE: 'true',
      });
      assert.equal(result.code, 0, result.stderr + result.stdout);
      const report = JSON.parse(result.stdout);
      assert.equal(report.fsck.ok, true);
      assert.equal(report.migration.blobs.copied, blobDigests.length);
      const node = await startTestServer({ root: back });
      try {
        const { repo, images } = chains[0];
        const top = images[images.length - 1];
        assert.deepEqual(await (await fetch(`${node.url}/v1/repositories/${repo}/tags`)).json(), { latest: top.id });
        const layer = await fetch(`${node.url}/v1/images/${top.id}/layer`);
        assert.ok(Buffer.from(await layer.arrayBuffer()).equals(top.layer));
        assert.equal((await fetch(`${node.url}/v1/users/`, { headers: { Authorization: basic(USERS[0]) } })).status, 200);
      } finally {
        await node.stop();
      }
    } finally {
      await fs.rm(back, { recursive: true, force: true });
    }
  });
});
