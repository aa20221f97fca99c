/**
 * Push `docker save` tarballs of every layout to a real registry, pull them back, and
 * let skopeo judge both what we read and what we write.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { makeTempDir, startTestServer, type TestServer } from '../helpers/server.js';
import {
  client,
  dockerOciTarball,
  dockerSaveTarball,
  hasSkopeo,
  hostOf,
  legacyTarball,
  makeImage,
  metricCount,
  pyRead,
  runProcess,
  sha256,
  skopeo,
  skopeoDir,
  type FixtureImage,
} from './helpers.js';

const SKOPEO = hasSkopeo();
const needSkopeo = SKOPEO ? {} : { skip: 'skopeo is not installed (apt-get install skopeo)' };

interface PushJson {
  ref: string;
  id: string;
  layout: string;
  configDigest: string | null;
  images: Array<{ id: string; size: number; uploaded: boolean }>;
}

interface PullJson {
  id: string;
  configDigest: string;
  exactConfig: boolean;
  layers: Array<{ id: string; size: number; diffId: string; resumed: number }>;
}

interface Manifest {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

describe('client push and pull of image tarballs', { timeout: 90_000 }, () => {
  let server: TestServer;
  let dir: string;
  let host: string;

  before(async () => {
    server = await startTestServer();
    host = hostOf(server.url);
    dir = await makeTempDir('registry-client-');
  });
  after(async () => {
    await server.destroy();
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function push(file: string, ref: string, extra: string[] = [], stdin?: Buffer): Promise<PushJson> {
    const res = await client('push', [file, ref, '--json', ...extra], { stdin });
    assert.equal(res.code, 0, `push failed: ${res.stderr}`);
    return JSON.parse(res.text) as PushJson;
  }

  async function pull(ref: string, out: string): Promise<PullJson> {
    const res = await client('pull', [ref, '-o', out, '--json']);
    assert.equal(res.code, 0, `pull failed: ${res.stderr}`);
    return JSON.parse(res.text) as PullJson;
  }

  /** What a pulled tarball holds, read by Python's tarfile. */
  function readPulled(file: string) {
    const byName = pyRead(file);
    const manifest = JSON.parse((byName.get('manifest.json')?.data as Buffer).toString()) as Manifest[];
    const repositories = JSON.parse((byName.get('repositories')?.data as Buffer).toString()) as Record<string, Record<string, string>>;
    const config = byName.get(manifest[0].Config)?.data as Buffer;
    return { byName, manifest, repositories, config };
  }

  /** Pulls, then checks the tarball against the fixture and with skopeo. */
  async function pullAndCheck(ref: string, img: FixtureImage, name: string): Promise<PullJson> {
    const out = path.join(dir, `${name}.pulled.tar`);
    const pulled = await pull(ref, out);
    const { byName, manifest, repositories, config } = readPulled(out);
    assert.equal(manifest.length, 1);
    assert.deepEqual(manifest[0].RepoTags, [ref]);
    assert.equal(manifest[0].Layers.length, img.layers.length);
    // Same layer bytes, in order.
    manifest[0].Layers.forEach((layerPath, i) => assert.ok(byName.get(layerPath)?.data?.equals(img.layers[i]), `layer ${i} differs`));
    // The config comes back byte for byte, so docker load gives the same image ID.
    assert.ok(config.equals(img.config), 'the config is not the original one');
    assert.equal(manifest[0].Config, `${img.configHex}.json`);
    assert.equal(pulled.configDigest, `sha256:${img.configHex}`);
    assert.equal(pulled.exactConfig, true);
    assert.deepEqual(pulled.layers.map((l) => l.diffId), img.diffIds);
    // Legacy part: every <id>/json equals what the registry serves, VERSION is 1.0.
    for (const layer of pulled.layers) {
      const served = Buffer.from(await (await fetch(`${server.url}/v1/images/${layer.id}/json`)).arrayBuffer());
      assert.ok(byName.get(`${layer.id}/json`)?.data?.equals(served), `${layer.id}/json is not byte-exact`);
      assert.equal(byName.get(`${layer.id}/VERSION`)?.data?.toString(), '1.0');
    }
    const [repoName, tag] = [ref.slice(0, ref.lastIndexOf(':')), ref.slice(ref.lastIndexOf(':') + 1)];
    assert.deepEqual(repositories, { [repoName]: { [tag]: pulled.id } });
    if (SKOPEO) await judgeWithSkopeo(out, img, name);
    return pulled;
  }

  /** skopeo reads the tarball and copies it into a dir: same config digest, same layers. */
  async function judgeWithSkopeo(tarball: string, img: FixtureImage, name: string): Promise<void> {
    const inspected = await skopeo(['inspect', '--raw', '--config', `docker-archive:${tarball}`]);
    assert.equal(inspected.code, 0, `skopeo inspect --config: ${inspected.stderr}`);
    assert.equal(sha256(inspected.stdout), img.configHex, 'skopeo sees another config');
    const info = await skopeo(['inspect', `docker-archive:${tarball}`]);
    assert.equal(info.code, 0, `skopeo inspect: ${info.stderr}`);
    const parsed = JSON.parse(info.stdout) as { Layers: string[]; Architecture: string; Os: string; Labels: Record<string, string> };
    assert.equal(parsed.Os, 'linux');
    assert.equal(parsed.Layers.length, img.layers.length);
    const outDir = path.join(dir, `${name}.skopeo-dir`);
    const copied = await skopeo(['copy', `docker-archive:${tarball}`, `dir:${outDir}`]);
    assert.equal(copied.code, 0, `skopeo copy: ${copied.stderr}`);
    const m = JSON.parse(await fs.readFile(path.join(outDir, 'manifest.json'), 'utf8')) as { config: { digest: string }; layers: Array<{ digest: string }> };
    assert.equal(m.config.digest, `sha256:${img.configHex}`);
    for (const [i, l] of m.layers.entries()) {
      const bytes = await fs.readFile(path.join(outDir, l.digest.replace('sha256:', '')));
      assert.ok(bytes.equals(img.layers[i]), `skopeo's copy of layer ${i} differs`);
    }
  }

  it('docker 1.10–24 layout (manifest.json + <id>/layer.tar): skopeo reads the fixture, push, pull, same bytes', async () => {
    const img = makeImage('classic', 3);
    const file = path.join(dir, 'classic.tar');
    await fs.writeFile(file, dockerSaveTarball(img, 'example/classic:1.0'));
    if (SKOPEO) {
      const seen = await skopeo(['inspect', '--raw', '--config', `docker-archive:${file}`]);
      assert.equal(seen.code, 0, `skopeo rejects our fixture: ${seen.stderr}`);
      assert.equal(sha256(seen.stdout), img.configHex);
    }
    const ref = `${host}/alice/classic:1.0`;
    const pushed = await push(file, ref);
    assert.equal(pushed.layout, 'docker');
    assert.equal(pushed.id, img.configHex, 'the top id is the docker image ID (config digest)');
    assert.equal(pushed.images.length, 3);
    assert.ok(pushed.images.every((i) => i.uploaded));
    const tags = (await (await fetch(`${server.url}/v1/repositories/alice/classic/tags`)).json()) as Record<string, string>;
    assert.deepEqual(tags, { '1.0': img.configHex });
    await pullAndCheck(ref, img, 'classic');
    // What we pulled pushes back to the very same ids, uploading nothing.
    const again = await push(path.join(dir, 'classic.pulled.tar'), `${host}/alice/classic-copy:1.0`);
    assert.deepEqual(again.images.map((i) => i.id), pushed.images.map((i) => i.id));
    assert.ok(again.images.every((i) => !i.uploaded));
  });

  it('docker ≥ 25 layout (OCI blobs + manifest.json) gives the same ids as the classic layout', async () => {
    const img = makeImage('classic', 3); // the same image as above
    const file = path.join(dir, 'oci-docker.tar');
    await fs.writeFile(file, dockerOciTarball(img, 'example/classic:1.0'));
    if (SKOPEO) {
      const seen = await skopeo(['inspect', '--raw', '--config', `docker-archive:${file}`]);
      assert.equal(seen.code, 0, `skopeo rejects our fixture: ${seen.stderr}`);
    }
    const before = await metricCount(server.url, '/v1/images/:id/layer', 'PUT');
    const pushed = await push(file, `${host}/alice/classic2:1.0`);
    assert.equal(pushed.id, img.configHex);
    assert.ok(pushed.images.every((i) => !i.uploaded), 'the registry already has every layer of this image');
    assert.equal(await metricCount(server.url, '/v1/images/:id/layer', 'PUT'), before, 'no layer PUT');
    await pullAndCheck(`${host}/alice/classic2:1.0`, img, 'oci-docker');
  });

  it('pushing the same tarball twice uploads nothing the second time (counted in /metrics)', async () => {
    const img = makeImage('again', 2);
    const file = path.join(dir, 'again.tar');
    await fs.writeFile(file, dockerSaveTarball(img, 'example/again:v1'));
    const layerPuts = () => metricCount(server.url, '/v1/images/:id/layer', 'PUT');
    const start = await layerPuts();
    const first = await push(file, `${host}/alice/again:v1`);
    assert.equal(await layerPuts(), start + 2);
    const second = await push(file, `${host}/alice/again:v1`);
    assert.equal(await layerPuts(), start + 2, 'the second push sent a layer');
    assert.deepEqual(second.images.map((i) => i.id), first.images.map((i) => i.id), 'same ids both times');
    assert.ok(second.images.every((i) => !i.uploaded));
  });

  it('legacy layout: ids and image JSON are pushed byte-exact; the pull adds a valid manifest.json', async () => {
    const { tar, images } = legacyTarball('old', 'old/app', 'v0', 3);
    const file = path.join(dir, 'legacy.tar');
    await fs.writeFile(file, tar);
    const ref = `${host}/bob/legacy:v0`;
    const pushed = await push(file, ref);
    assert.equal(pushed.layout, 'legacy');
    assert.deepEqual(pushed.images.map((i) => i.id), images.map((i) => i.id));
    for (const im of images) {
      const served = Buffer.from(await (await fetch(`${server.url}/v1/images/${im.id}/json`)).arrayBuffer());
      assert.ok(served.equals(im.json), 'image JSON changed on the way');
    }
    const out = path.join(dir, 'legacy.pulled.tar');
    const pulled = await pull(ref, out);
    assert.equal(pulled.exactConfig, false);
    const { byName, manifest, config } = readPulled(out);
    for (const im of images) {
      assert.ok(byName.get(`${im.id}/json`)?.data?.equals(im.json));
      assert.ok(byName.get(`${im.id}/layer.tar`)?.data?.equals(im.layer));
    }
    const cfg = JSON.parse(config.toString()) as { rootfs: { type: string; diff_ids: string[] }; architecture: string; os: string; history: Array<{ created_by?: string }> };
    assert.equal(cfg.rootfs.type, 'layers');
    assert.deepEqual(cfg.rootfs.diff_ids, images.map((im) => `sha256:${sha256(im.layer)}`));
    assert.equal(cfg.history.length, 3);
    assert.equal(cfg.history[2].created_by, '/bin/sh -c echo legacy 2 > /x');
    assert.equal(manifest[0].Config, `${sha256(config)}.json`);
    if (SKOPEO) {
      const info = await skopeo(['inspect', `docker-archive:${out}`]);
      assert.equal(info.code, 0, `skopeo inspect: ${info.stderr}`);
      const outDir = path.join(dir, 'legacy.skopeo-dir');
      const copied = await skopeo(['copy', `docker-archive:${out}`, `dir:${outDir}`]);
      assert.equal(copied.code, 0, `skopeo copy: ${copied.stderr}`);
      const m = JSON.parse(await fs.readFile(path.join(outDir, 'manifest.json'), 'utf8')) as { layers: Array<{ digest: string }> };
      assert.deepEqual(m.layers.map((l) => l.digest), cfg.rootfs.diff_ids);
    }
    // Pushing what we pulled (it has manifest.json) again is still the same legacy ids
    // when asked for the legacy part.
    const again = await push(out, `${host}/bob/legacy:copy`, ['--layout', 'legacy']);
    assert.deepEqual(again.images.map((i) => i.id), images.map((i) => i.id));
    assert.ok(again.images.every((i) => !i.uploaded));
  });

  it('skopeo docker-archive output (symlinked layers) pushes and pulls back identical', needSkopeo, async () => {
    const img = makeImage('skopeo-archive', 2);
    const src = path.join(dir, 'skopeo-src');
    await skopeoDir(src, img);
    const file = path.join(dir, 'skopeo.tar');
    const made = await skopeo(['copy', `dir:${src}`, `docker-archive:${file}:example/skopeo:2.0`]);
    assert.equal(made.code, 0, made.stderr);
    const pushed = await push(file, `${host}/carol/skopeo:2.0`);
    assert.equal(pushed.id, img.configHex);
    await pullAndCheck(`${host}/carol/skopeo:2.0`, img, 'skopeo');
  });

  it('skopeo oci-archive with gzip layers: pushed compressed, pulled back uncompressed', needSkopeo, async () => {
    const img = makeImage('skopeo-oci', 2);
    const src = path.join(dir, 'skopeo-oci-src');
    await skopeoDir(src, img);
    const file = path.join(dir, 'skopeo-oci.tar');
    const made = await skopeo(['copy', '--dest-compress', `dir:${src}`, `oci-archive:${file}:2.0`]);
    assert.equal(made.code, 0, made.stderr);
    const pushed = await push(file, `${host}/carol/oci:2.0`);
    assert.equal(pushed.layout, 'oci');
    assert.equal(pushed.id, img.configHex);
    // The registry holds the gzip bytes as they were in the tarball.
    const first = pushed.images[0].id;
    const layer = Buffer.from(await (await fetch(`${server.url}/v1/images/${first}/layer`)).arrayBuffer());
    assert.deepEqual([...layer.subarray(0, 2)], [0x1f, 0x8b]);
    await pullAndCheck(`${host}/carol/oci:2.0`, img, 'skopeo-oci');
  });

  it('reads the tarball from stdin, and a gzip-compressed tarball', async () => {
    const img = makeImage('stdin', 2);
    const tar = dockerSaveTarball(img, 'example/stdin:1');
    const viaStdin = await push('-', `${host}/alice/stdin:1`, [], tar);
    assert.equal(viaStdin.id, img.configHex);
    const gz = path.join(dir, 'stdin.tar.gz');
    await fs.writeFile(gz, gzipSync(tar));
    const viaGzip = await push(gz, `${host}/alice/stdin:2`);
    assert.equal(viaGzip.id, img.configHex);
    await pullAndCheck(`${host}/alice/stdin:2`, img, 'stdin');
  });

  it('pull -o - writes the same tarball to stdout', async () => {
    const img = makeImage('stdout', 1);
    const file = path.join(dir, 'stdout.tar');
    await fs.writeFile(file, dockerSaveTarball(img, 'example/stdout:1'));
    await push(file, `${host}/alice/stdout:1`);
    const toFile = path.join(dir, 'stdout.pulled.tar');
    await pull(`${host}/alice/stdout:1`, toFile);
    const res = await client('pull', [`${host}/alice/stdout:1`, '-o', '-', '-q']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stderr, '');
    assert.ok(res.stdout.equals(await fs.readFile(toFile)), 'stdout and file differ');
  });

  it('the registry binary in a pipe: docker save … | registry push - REF, registry pull REF > FILE', async () => {
    const img = makeImage('pipe', 2);
    const tar = dockerSaveTarball(img, 'example/pipe:1');
    const env = { PATH: process.env.PATH ?? '', HOME: dir };
    const pushed = await runProcess(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'push', '-', `${host}/alice/pipe:1`], { env, stdin: tar, timeoutMs: 40_000 });
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.match(pushed.stdout, new RegExp(`^pushed ${host}/alice/pipe:1 ${img.configHex} \\(2 of 2 layer\\(s\\) uploaded`));
    const out = path.join(dir, 'pipe.pulled.tar');
    const pulled = await runProcess('sh', ['-c', `"${process.execPath}" --import tsx src/cli/main.ts pull ${host}/alice/pipe:1 > "${out}"`], { env, timeoutMs: 40_000 });
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.match(pulled.stderr, /pulled .* to standard output/);
    const members = pyRead(out);
    const manifest = JSON.parse((members.get('manifest.json')?.data as Buffer).toString()) as Manifest[];
    assert.ok(members.get(manifest[0].Config)?.data?.equals(img.config));
    manifest[0].Layers.forEach((p, i) => assert.ok(members.get(p)?.data?.equals(img.layers[i])));
  });

  it('a layer that does not match the config diff_id stops the push before the tag', async () => {
    const img = makeImage('liar', 2);
    const other = makeImage('truth', 2);
    const lying: FixtureImage = { ...img, layers: [img.layers[0], other.layers[1]] };
    const file = path.join(dir, 'liar.tar');
    await fs.writeFile(file, dockerSaveTarball(lying, 'example/liar:1'));
    const res = await client('push', [file, `${host}/alice/liar:1`]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /does not match the image config/);
    const tags = await fetch(`${server.url}/v1/repositories/alice/liar/tags`);
    const body = tags.status === 200 ? ((await tags.json()) as Record<string, string>) : {};
    assert.equal(body['1'], undefined, 'the tag must not exist');
  });

  it('refuses tarballs it cannot read, with a message', async () => {
    const file = path.join(dir, 'garbage.tar');
    await fs.writeFile(file, Buffer.alloc(2048, 7));
    const res = await client('push', [file, `${host}/alice/garbage:1`]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /not a tar archive/);
    const missing = await client('push', [path.join(dir, 'nope.tar'), `${host}/alice/garbage:1`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /ENOENT|no such file/);
  });
});
