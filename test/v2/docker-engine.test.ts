/**
 * Today's docker (Debian's Engine 20.10) against the Registry API v2, and images crossing
 * between v1 and v2 both ways with the engine as the judge:
 *
 * - docker login, push (several tags), pull, run; a manifest deleted by digest is gone; an
 *   image whose base is already on the registry is pushed without uploading the base again;
 * - v1 → v2: `registry push` of a `docker save` tarball, then `docker pull`: the same image
 *   ID docker had, and it runs; an image docker 1.x pushed (no config) pulls and runs too;
 * - v2 → v1: `docker push`, then `registry pull | docker load` (and the docker 1.x pull
 *   sequence): the same image ID.
 *
 * The registry runs with authentication on; 127.0.0.0/8 registries may be plain HTTP for
 * the engine.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dockerEngineUnavailable, startDockerEngine, tempDir, type DockerEngine } from '../helpers/docker-engine.js';
import { pull as docker1Pull, push as docker1Push } from '../helpers/docker1.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { client } from '../client/helpers.js';
import { pyRead } from '../client/helpers.js';

const ALICE = { username: 'alice', password: 'alice-secret-1' };
const basic = `Basic ${Buffer.from(`${ALICE.username}:${ALICE.password}`).toString('base64')}`;

describe('docker engine 20.10 against the Registry API v2', { skip: dockerEngineUnavailable() ?? false, timeout: 600_000 }, () => {
  let srv: TestServer;
  let engine: DockerEngine;
  let host: string;
  let dir: string;
  let appId: string;
  let otherRef: string;
  let cli: NodeJS.ProcessEnv;

  before(async () => {
    srv = await startTestServer({ overrides: { standalone: false }, captureLogs: true });
    await srv.running.services.users.upsert({ ...ALICE, email: 'alice@example.test', admin: false });
    host = new URL(srv.url).host;
    engine = await startDockerEngine();
    await engine.importBusybox('busybox:local');
    dir = await tempDir();
    cli = { V1_REGISTRY_AUTH_FILE: path.join(dir, 'cli-auth.json'), V1_REGISTRY_USERNAME: ALICE.username, V1_REGISTRY_PASSWORD: ALICE.password };
  });
  after(async () => {
    await engine?.stop();
    await srv?.destroy();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  async function build(tag: string, dockerfile: string): Promise<string> {
    const ctx = await fs.mkdtemp(path.join(dir, 'ctx-'));
    await fs.writeFile(path.join(ctx, 'Dockerfile'), dockerfile);
    await engine.dockerOk(['build', '-q', '-t', tag, ctx]);
    return imageId(tag);
  }

  async function imageId(ref: string): Promise<string> {
    return (await engine.dockerOk(['image', 'inspect', '-f', '{{.Id}}', ref])).trim();
  }

  /** Request lines the server logged since `from` (index into srv.logs). */
  function requests(from: number): Array<{ method: string; path: string; status: number; bytesIn: number }> {
    return srv.logs.slice(from).map((l) => JSON.parse(l)).filter((l) => l.msg === 'request');
  }

  it('docker login, push with two tags, pull and run: the image ID docker had', async () => {
    const login = await engine.docker(['login', host, '-u', ALICE.username, '--password-stdin'], { stdin: `${ALICE.password}\n` });
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, /Login Succeeded/);
    const config = JSON.parse(await fs.readFile(path.join(engine.configDir, 'config.json'), 'utf8')) as { auths: Record<string, { identitytoken?: string; auth?: string }> };
    assert.ok(config.auths[host], 'docker saved credentials for the registry');

    appId = await build(`${host}/alice/app:1`, 'FROM busybox:local\nRUN echo hello from v2 > /hello.txt\nCMD ["cat", "/hello.txt"]\n');
    await engine.dockerOk(['tag', `${host}/alice/app:1`, `${host}/alice/app:latest`]);
    const pushed = await engine.dockerOk(['push', `${host}/alice/app:1`]);
    assert.match(pushed, /1: digest: sha256:[0-9a-f]{64} size: \d+/);
    await engine.dockerOk(['push', `${host}/alice/app:latest`]);
    const tags = await (await fetch(`${srv.url}/v2/alice/app/tags/list`, { headers: { Authorization: basic } })).json();
    assert.deepEqual(tags, { name: 'alice/app', tags: ['1', 'latest'] });

    await engine.dockerOk(['rmi', `${host}/alice/app:1`, `${host}/alice/app:latest`]);
    const pulled = await engine.dockerOk(['pull', `${host}/alice/app:1`]);
    assert.match(pulled, /Downloaded newer image/);
    assert.equal(await imageId(`${host}/alice/app:1`), appId);
    const run = await engine.dockerOk(['run', '--rm', '--network', 'none', `${host}/alice/app:1`]);
    assert.equal(run.trim(), 'hello from v2');
  });

  it('an image whose base is already on the registry: the base is mounted or skipped, never uploaded again', async () => {
    const from = srv.logs.length;
    otherRef = `${host}/alice/other:1`;
    await build(otherRef, `FROM ${host}/alice/app:1\nRUN echo other > /other.txt\n`);
    const out = await engine.dockerOk(['push', `${host}/alice/other:1`]);
    assert.match(out, /Mounted from alice\/app|Layer already exists/);
    const manifest = (await (await fetch(`${srv.url}/v2/alice/other/manifests/1`, {
      headers: { Authorization: basic, Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    })).json()) as { layers: Array<{ size: number }> };
    assert.equal(manifest.layers.length, 3);
    const uploaded = requests(from)
      .filter((r) => (r.method === 'PATCH' || r.method === 'PUT') && r.path.startsWith('/v2/alice/other/blobs/uploads/'))
      .reduce((sum, r) => sum + r.bytesIn, 0);
    const base = manifest.layers[0].size + manifest.layers[1].size;
    assert.ok(uploaded < base, `uploaded ${uploaded} bytes, the base alone is ${base}`);
    assert.ok(uploaded >= manifest.layers[2].size, 'the new layer was uploaded');
  });

  it('a manifest deleted by digest: its tags are gone, and docker cannot pull it any more', async () => {
    await engine.dockerOk(['tag', `${host}/alice/app:1`, `${host}/alice/gone:1`]);
    const out = await engine.dockerOk(['push', `${host}/alice/gone:1`]);
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(out)?.[1] as string;
    const del = await fetch(`${srv.url}/v2/alice/gone/manifests/${digest}`, { method: 'DELETE', headers: { Authorization: basic } });
    assert.equal(del.status, 202);
    await engine.dockerOk(['rmi', `${host}/alice/gone:1`]);
    const pull = await engine.docker(['pull', `${host}/alice/gone:1`]);
    assert.notEqual(pull.code, 0);
    assert.match(pull.stderr, /not found|manifest unknown/i);
  });

  it('v1 → v2: `registry push` of a docker save tarball, docker pull: the same image ID, and it runs (also after a restart)', async () => {
    const id = await build('local/v1src:1', 'FROM busybox:local\nRUN echo pushed over v1 > /v1.txt\nCMD ["cat", "/v1.txt"]\n');
    const tar = path.join(dir, 'v1src.tar');
    await engine.dockerOk(['save', '-o', tar, 'local/v1src:1']);
    const push = await client('push', [tar, `${host}/alice/fromv1:1`, '-q'], { env: cli });
    assert.equal(push.code, 0, push.stderr);
    const digestOf = async () =>
      (await fetch(`${srv.url}/v2/alice/fromv1/manifests/1`, { method: 'HEAD', headers: { Authorization: basic } })).headers.get('docker-content-digest');
    const before = await digestOf();
    await engine.dockerOk(['pull', `${host}/alice/fromv1:1`]);
    assert.equal(await imageId(`${host}/alice/fromv1:1`), id, 'the config came back byte for byte');
    assert.equal((await engine.dockerOk(['run', '--rm', '--network', 'none', `${host}/alice/fromv1:1`])).trim(), 'pushed over v1');
    await srv.restart();
    host = new URL(srv.url).host;
    assert.equal(await digestOf(), before, 'the same manifest after a restart');
  });

  it('v1 → v2: an image docker 1.x pushed (image JSON, no config) pulls and runs', async () => {
    // The busybox layer as docker 1.x would have pushed it: its own id and JSON.
    const tar = path.join(dir, 'busybox.tar');
    await engine.dockerOk(['save', '-o', tar, 'busybox:local']);
    const members = pyRead(tar);
    const manifest = JSON.parse(members.get('manifest.json')?.data?.toString() as string) as Array<{ Layers: string[] }>;
    const layer = members.get(manifest[0].Layers[0])?.data as Buffer;
    const id = createHash('sha256').update('legacy busybox').digest('hex');
    const json = Buffer.from(JSON.stringify({
      id,
      created: '2015-03-01T10:00:00.000000000Z',
      container_config: { Cmd: ['/bin/sh', '-c', '#(nop) ADD file in /'] },
      config: { Env: ['PATH=/bin'], Cmd: ['/bin/echo', 'legacy image'] },
      docker_version: '1.5.0',
      architecture: 'amd64',
      os: 'linux',
      Size: layer.length,
    }));
    await docker1Push(srv.url, ALICE, 'alice/legacy', 'old', [{ id, layer, json }]);
    await engine.dockerOk(['pull', `${host}/alice/legacy:old`]);
    assert.equal((await engine.dockerOk(['run', '--rm', '--network', 'none', `${host}/alice/legacy:old`])).trim(), 'legacy image');
  });

  it('v2 → v1: docker push, then `registry pull | docker load` and the docker 1.x pull give the image ID docker had', async () => {
    const out = path.join(dir, 'pulled.tar');
    const pull = await client('pull', [`${host}/alice/app:1`, '-o', out, '-q'], { env: cli });
    assert.equal(pull.code, 0, pull.stderr);
    await engine.dockerOk(['rmi', otherRef]);
    await engine.dockerOk(['rmi', '-f', appId]);
    const loaded = await engine.dockerOk(['load', '-i', out]);
    assert.match(loaded, new RegExp(`Loaded image: ${host.replace(/\./g, '\\.')}/alice/app:1`));
    assert.equal(await imageId(`${host}/alice/app:1`), appId);
    assert.equal((await engine.dockerOk(['run', '--rm', '--network', 'none', `${host}/alice/app:1`])).trim(), 'hello from v2');
    // docker 1.x: the top id is the image ID (the config digest), the chain is ChainID-based.
    const legacy = await docker1Pull(srv.url, ALICE, 'alice/app', '1');
    assert.equal(`sha256:${legacy.id}`, appId);
    assert.equal(legacy.images.length, 2);
  });
});
