/**
 * skopeo (containers/image, Debian's 1.9) against the Registry API v2, authentication on:
 * copy docker-archive: and oci: → docker://, inspect, list-tags, `--all` for an image index,
 * copy back out, delete by digest; and the v1 face of what skopeo pushed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { client, dockerSaveTarball, hasSkopeo, makeImage, pyRead, skopeo, skopeoDir, type FixtureImage } from '../client/helpers.js';
import { makeTempDir, startTestServer, type TestServer } from '../helpers/server.js';
import { MEDIA } from '../helpers/v2.js';

const ALICE = { username: 'alice', password: 'alice-secret-1' };
const creds = `${ALICE.username}:${ALICE.password}`;
const basic = `Basic ${Buffer.from(creds).toString('base64')}`;
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('skopeo against the Registry API v2', { skip: hasSkopeo() ? false : 'skopeo is not installed (apt-get install skopeo)', timeout: 300_000 }, () => {
  let srv: TestServer;
  let host: string;
  let dir: string;
  let img: FixtureImage;
  before(async () => {
    srv = await startTestServer({ overrides: { standalone: false } });
    await srv.running.services.users.upsert({ ...ALICE, email: 'alice@example.test', admin: false });
    host = new URL(srv.url).host;
    dir = await makeTempDir('skopeo-v2-');
    img = makeImage('skopeo-v2', 2);
  });
  after(async () => {
    await srv?.destroy();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  async function ok(args: string[]): Promise<string> {
    const run = await skopeo(args, 60_000);
    assert.equal(run.code, 0, `skopeo ${args.join(' ')}: ${run.stderr}`);
    return run.stdout;
  }
  const dest = ['--dest-tls-verify=false', '--dest-creds', creds];
  const src = ['--src-tls-verify=false', '--src-creds', creds];
  const read = ['--tls-verify=false', '--creds', creds];

  it('copy docker-archive: → docker://, then inspect and list-tags see it; the config is the one pushed', async () => {
    const tar = path.join(dir, 'save.tar');
    await fs.writeFile(tar, dockerSaveTarball(img, 'fixture/skopeo:1'));
    await ok(['copy', ...dest, `docker-archive:${tar}`, `docker://${host}/alice/sk:1`]);
    await ok(['copy', ...dest, `docker-archive:${tar}`, `docker://${host}/alice/sk:2`]);
    const info = JSON.parse(await ok(['inspect', ...read, `docker://${host}/alice/sk:1`])) as { Digest: string; Layers: string[]; Architecture: string; Os: string; Labels: Record<string, string> };
    assert.equal(info.Os, 'linux');
    assert.equal(info.Architecture, 'amd64');
    assert.equal(info.Layers.length, 2);
    assert.deepEqual(info.Labels, { fixture: 'skopeo-v2' });
    const config = await ok(['inspect', ...read, '--raw', '--config', `docker://${host}/alice/sk:1`]);
    assert.equal(sha256(config), img.configHex);
    const raw = await ok(['inspect', ...read, '--raw', `docker://${host}/alice/sk:1`]);
    assert.equal(`sha256:${sha256(raw)}`, info.Digest, 'inspect --raw is the stored manifest, byte for byte');
    const tags = JSON.parse(await ok(['list-tags', ...read, `docker://${host}/alice/sk`])) as { Repository: string; Tags: string[] };
    assert.deepEqual(tags.Tags, ['1', '2']);
    // The v1 face: `registry pull` writes the original config (layers came back uncompressed).
    const out = path.join(dir, 'v1-pulled.tar');
    const env = { V1_REGISTRY_AUTH_FILE: path.join(dir, 'auth.json'), V1_REGISTRY_USERNAME: ALICE.username, V1_REGISTRY_PASSWORD: ALICE.password };
    const pulled = await client('pull', [`${host}/alice/sk:1`, '-o', out, '-q', '--json'], { env });
    assert.equal(pulled.code, 0, pulled.stderr);
    const members = pyRead(out);
    assert.ok(members.get(`${img.configHex}.json`)?.data?.equals(img.config), 'the config, byte for byte');
  });

  it('copy oci: → docker://, and docker:// → docker-archive: back out', async () => {
    const plain = path.join(dir, 'dir-image');
    await skopeoDir(plain, img);
    const layout = path.join(dir, 'oci-layout');
    await ok(['copy', `dir:${plain}`, `oci:${layout}:v1`]);
    await ok(['copy', ...dest, `oci:${layout}:v1`, `docker://${host}/alice/oci:v1`]);
    const raw = JSON.parse(await ok(['inspect', ...read, '--raw', `docker://${host}/alice/oci:v1`])) as { mediaType: string; config: { digest: string } };
    assert.equal(raw.mediaType, MEDIA.ociManifest);
    assert.equal(raw.config.digest, `sha256:${img.configHex}`);
    const back = path.join(dir, 'back.tar');
    await ok(['copy', ...src, `docker://${host}/alice/oci:v1`, `docker-archive:${back}:copied/back:1`]);
    const manifest = JSON.parse(pyRead(back).get('manifest.json')?.data?.toString() as string) as Array<{ Config: string }>;
    assert.match(manifest[0].Config, new RegExp(img.configHex));
  });

  it('copy --all of an image index: every platform, the index itself, listed and inspectable', async () => {
    const layout = path.join(dir, 'multi-layout');
    await fs.mkdir(path.join(layout, 'blobs', 'sha256'), { recursive: true });
    const put = async (b: Buffer) => {
      await fs.writeFile(path.join(layout, 'blobs', 'sha256', sha256(b)), b);
      return { digest: `sha256:${sha256(b)}`, size: b.length };
    };
    const entries = [];
    for (const arch of ['amd64', 'arm64']) {
      const image = makeImage(`multi-${arch}`, 1);
      const config = Buffer.from(JSON.stringify({ ...JSON.parse(image.config.toString()), architecture: arch }));
      const layers = [];
      for (const l of image.layers) layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...(await put(l)) });
      const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociManifest, config: { mediaType: MEDIA.ociConfig, ...(await put(config)) }, layers }));
      entries.push({ mediaType: MEDIA.ociManifest, ...(await put(manifest)), platform: { architecture: arch, os: 'linux' } });
    }
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: entries }));
    const indexDesc = await put(index);
    await fs.writeFile(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await fs.writeFile(path.join(layout, 'index.json'), JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: MEDIA.ociIndex, ...indexDesc, annotations: { 'org.opencontainers.image.ref.name': 'multi' } }],
    }));
    await ok(['copy', '--all', ...dest, `oci:${layout}:multi`, `docker://${host}/alice/multi:1`]);
    const raw = JSON.parse(await ok(['inspect', ...read, '--raw', `docker://${host}/alice/multi:1`])) as { mediaType: string; manifests: Array<{ digest: string; platform: { architecture: string } }> };
    assert.equal(raw.mediaType, MEDIA.ociIndex);
    assert.deepEqual(raw.manifests.map((m) => m.platform.architecture), ['amd64', 'arm64']);
    for (const m of raw.manifests) {
      const child = await fetch(`${srv.url}/v2/alice/multi/manifests/${m.digest}`, { headers: { Authorization: basic, Accept: MEDIA.ociManifest } });
      assert.equal(child.status, 200);
    }
    const arm = JSON.parse(await ok(['inspect', ...read, '--override-arch', 'arm64', `docker://${host}/alice/multi:1`])) as { Architecture: string };
    assert.equal(arm.Architecture, 'arm64');
    // v1 sees the linux/amd64 image of the index.
    const v1 = (await (await fetch(`${srv.url}/v1/repositories/alice/multi/tags`, { headers: { Authorization: basic } })).json()) as Record<string, string>;
    const amdConfig = JSON.parse(await ok(['inspect', ...read, '--raw', '--config', '--override-arch', 'amd64', `docker://${host}/alice/multi:1`]));
    assert.equal(amdConfig.architecture, 'amd64');
    assert.equal(v1['1'], sha256(await ok(['inspect', ...read, '--raw', '--config', '--override-arch', 'amd64', `docker://${host}/alice/multi:1`])));
  });

  it('skopeo delete by digest: the manifest and its tags are gone', async () => {
    const info = JSON.parse(await ok(['inspect', ...read, `docker://${host}/alice/sk:2`])) as { Digest: string };
    await ok(['delete', ...read, `docker://${host}/alice/sk@${info.Digest}`]);
    const gone = await skopeo(['inspect', ...read, `docker://${host}/alice/sk:2`], 60_000);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /manifest unknown|not found/i);
    const tags = JSON.parse(await ok(['list-tags', ...read, `docker://${host}/alice/sk`])) as { Tags: string[] };
    assert.deepEqual(tags.Tags, [], 'both tags showed that manifest');
  });
});
