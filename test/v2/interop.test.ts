/**
 * v1 ↔ v2 on one store, at the HTTP level (the engine and the CLI judge the same in
 * docker-engine.test.ts): one set of tags; a v1 tag shown over v2 as a manifest synthesized
 * deterministically (same bytes every time and after a restart, layers typed by their real
 * compression, diff ids computed once and kept, the original config when the chain came from
 * a current-layout push); a v2 push visible to v1; search, the Hub double, webhooks,
 * metrics and pull counts seeing v2 like v1; one file per sha256.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { parseRepoName, type ImageId } from '../../src/domain/names.js';
import { client, dockerSaveTarball, makeImage } from '../client/helpers.js';
import { eventually } from '../helpers/eventually.js';
import { rawRequest } from '../helpers/http-raw.js';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';
import { pushChain, pushImage, setTag } from '../helpers/v1.js';
import { tarOf } from '../helpers/tar.js';
import { digestOf, MEDIA, pushImageV2, putManifest, v2ErrorOf } from '../helpers/v2.js';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('v1 ↔ v2 interop', () => {
  let srv: TestServer;
  let hooks: Array<{ event: string; push_data: { tag: string; images: string[]; digest?: string }; repository: { repo_name: string } }>;
  let receiver: http.Server;
  before(async () => {
    hooks = [];
    receiver = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        hooks.push(JSON.parse(Buffer.concat(chunks).toString()));
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve()));
    const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    srv = await startTestServer({ overrides: { webhooks: [hook] } });
  });
  after(async () => {
    await srv.destroy();
    receiver.closeAllConnections();
    await new Promise((r) => receiver.close(r));
  });
  const url = (p: string) => `${srv.url}${p}`;
  const DOCKER = { Accept: `${MEDIA.dockerManifest}, ${MEDIA.dockerList}` };

  describe('v1 → v2', () => {
    const gz = zlib.gzipSync(tarOf('gz.txt', 'compressed layer'));
    const plain = tarOf('plain.txt', 'plain layer');
    const base = newImageId();
    const top = newImageId();
    const baseJson = Buffer.from(JSON.stringify({ id: base, created: '2015-01-01T00:00:00Z', container_config: { Cmd: ['/bin/sh', '-c', '#(nop) ADD file in /'] } }));
    const topJson = Buffer.from(JSON.stringify({ id: top, parent: base, created: '2015-01-02T00:00:00Z', config: { Cmd: ['/bin/true'] }, container_config: { Cmd: ['/bin/sh', '-c', 'echo'] }, architecture: 'amd64', os: 'linux', Size: 3 }));
    before(async () => {
      await pushChain(srv.url, 'alice/legacy', 'old', [
        { id: base, layer: gz, json: baseJson },
        { id: top, parent: base, layer: plain, json: topJson },
      ]);
    });

    it('a v1 tag is a Docker schema 2 manifest: layers typed by their real compression, a config built as the CLI builds it', async () => {
      const res = await rawRequest(url('/v2/alice/legacy/manifests/old'), { headers: DOCKER });
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-type'], MEDIA.dockerManifest);
      assert.equal(res.headers['docker-content-digest'], digestOf(res.body));
      const manifest = JSON.parse(res.body.toString()) as { mediaType: string; config: { digest: string; size: number; mediaType: string }; layers: Array<{ mediaType: string; digest: string; size: number }> };
      assert.equal(manifest.mediaType, MEDIA.dockerManifest);
      assert.equal(manifest.config.mediaType, MEDIA.dockerConfig);
      assert.deepEqual(manifest.layers, [
        { mediaType: MEDIA.dockerLayerGzip, size: gz.length, digest: digestOf(gz) },
        { mediaType: 'application/vnd.docker.image.rootfs.diff.tar', size: plain.length, digest: digestOf(plain) },
      ]);
      const config = await rawRequest(url(`/v2/alice/legacy/blobs/${manifest.config.digest}`));
      assert.equal(config.status, 200);
      assert.equal(digestOf(config.body), manifest.config.digest);
      const doc = JSON.parse(config.body.toString());
      assert.deepEqual(doc.rootfs, { type: 'layers', diff_ids: [digestOf(zlib.gunzipSync(gz)), digestOf(plain)] });
      assert.deepEqual(doc.config, { Cmd: ['/bin/true'] });
      assert.equal(doc.id, undefined, 'v1-only keys are gone');
      assert.equal(doc.Size, undefined);
      assert.deepEqual(doc.history.map((h: { created_by: string }) => h.created_by), ['/bin/sh -c #(nop) ADD file in /', '/bin/sh -c echo']);
      // Its layers are readable through the repository now, the same files v1 serves.
      for (const layer of [gz, plain]) assert.ok((await rawRequest(url(`/v2/alice/legacy/blobs/${digestOf(layer)}`))).body.equals(layer));
      // Each layer's diff_id is kept.
      const meta = srv.running.services.meta;
      assert.deepEqual(await meta.getLayerFacts(digestOf(gz)), { compression: 'gzip', diffId: digestOf(zlib.gunzipSync(gz)) });
      assert.deepEqual(await meta.getLayerFacts(digestOf(plain)), { compression: 'none', diffId: digestOf(plain) });
    });

    it('deterministic: the same bytes every time, in another repository, and after a restart', async () => {
      const first = await rawRequest(url('/v2/alice/legacy/manifests/old'), { headers: DOCKER });
      const again = await rawRequest(url('/v2/alice/legacy/manifests/old'), { headers: DOCKER });
      assert.ok(again.body.equals(first.body));
      assert.equal((await setTag(srv.url, 'bob/copy', 'same', top)).status, 200);
      const elsewhere = await rawRequest(url('/v2/bob/copy/manifests/same'), { headers: DOCKER });
      assert.ok(elsewhere.body.equals(first.body));
      // Drop what was stored: the synthesis itself is deterministic too.
      const meta = srv.running.services.meta;
      await meta.deleteImageManifest(top as ImageId, 'docker');
      await srv.restart();
      const later = await rawRequest(`${srv.url}/v2/alice/legacy/manifests/old`, { headers: DOCKER });
      assert.ok(later.body.equals(first.body), 'synthesized again after a restart: the same bytes');
      const byDigest = await rawRequest(`${srv.url}/v2/alice/legacy/manifests/${digestOf(first.body)}`);
      assert.equal(byDigest.status, 200);
    });

    it('a client that takes only OCI gets the OCI flavor (layers tar+gzip / tar)', async () => {
      const res = await rawRequest(url('/v2/alice/legacy/manifests/old'), { headers: { Accept: MEDIA.ociManifest } });
      assert.equal(res.headers['content-type'], MEDIA.ociManifest);
      const manifest = JSON.parse(res.body.toString());
      assert.deepEqual(manifest.layers.map((l: { mediaType: string }) => l.mediaType), [MEDIA.ociLayerGzip, 'application/vnd.oci.image.layer.v1.tar']);
      assert.equal(manifest.config.mediaType, MEDIA.ociConfig);
    });

    it('a chain from a current-layout push shows its original config (docker pull gets the image ID docker had)', async () => {
      const img = makeImage('interop-current', 2);
      const dir = await fs.mkdtemp(path.join((await import('node:os')).tmpdir(), 'interop-'));
      try {
        const tar = path.join(dir, 'save.tar');
        await fs.writeFile(tar, dockerSaveTarball(img, 'x/y:1'));
        const host = new URL(srv.url).host;
        const push = await client('push', [tar, `${host}/alice/current:1`, '-q'], { env: { V1_REGISTRY_AUTH_FILE: path.join(dir, 'auth.json') } });
        assert.equal(push.code, 0, push.stderr);
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
      const manifest = JSON.parse((await rawRequest(url('/v2/alice/current/manifests/1'), { headers: DOCKER })).body.toString());
      assert.equal(manifest.config.digest, `sha256:${img.configHex}`);
      assert.ok((await rawRequest(url(`/v2/alice/current/blobs/sha256:${img.configHex}`))).body.equals(img.config));
    });
  });

  describe('v2 → v1, one set of tags', () => {
    it('a v2 push: v1 lists the tag with the image id derived as the CLI derives it, and pulls the chain', async () => {
      const layers = [tarOf('a', 'first'), tarOf('b', 'second')];
      const image = await pushImageV2(srv.url, 'alice/both', 'v2tag', layers);
      const tags = await (await fetch(url('/v1/repositories/alice/both/tags'))).json();
      assert.deepEqual(tags, { v2tag: sha256(image.config) });
      const ancestry = (await (await fetch(url(`/v1/images/${sha256(image.config)}/ancestry`))).json()) as string[];
      assert.equal(ancestry.length, 2);
      // Top: the config digest (docker's image ID); below: the layer's ChainID (for the base, its diff_id).
      assert.deepEqual(ancestry, [sha256(image.config), digestOf(layers[0]).slice(7)]);
      const json = Buffer.from(await (await fetch(url(`/v1/images/${ancestry[0]}/json`))).arrayBuffer());
      const prefix = `{"id":"${ancestry[0]}","parent":"${ancestry[1]}",`;
      assert.equal(json.subarray(0, prefix.length).toString(), prefix, 'the config spliced into the top JSON');
      assert.ok(Buffer.concat([Buffer.from('{'), json.subarray(prefix.length)]).equals(image.config));
      const layer = Buffer.from(await (await fetch(url(`/v1/images/${ancestry[1]}/layer`))).arrayBuffer());
      assert.ok(layer.equals(layers[0]), 'one file for both faces');
      // A v1 tag of that image shows the manifest that was pushed.
      assert.equal((await setTag(srv.url, 'alice/both', 'fromv1', ancestry[0])).status, 200);
      const shown = await rawRequest(url('/v2/alice/both/manifests/fromv1'), { headers: DOCKER });
      assert.ok(shown.body.equals(image.manifest));
    });

    it('a v1 tag push replaces a v2 tag, and back; tags v1 cannot show are left out of v1', async () => {
      const v2 = await pushImageV2(srv.url, 'alice/swap', 'x', [tarOf('c', 'v2 content')]);
      const id = newImageId();
      await pushImage(srv.url, { id, layer: tarOf('d', 'v1 content') });
      assert.equal((await setTag(srv.url, 'alice/swap', 'x', id)).status, 200);
      const now = JSON.parse((await rawRequest(url('/v2/alice/swap/manifests/x'), { headers: DOCKER })).body.toString());
      assert.equal(now.layers[0].digest, digestOf(tarOf('d', 'v1 content')));
      assert.equal((await putManifest(srv.url, 'alice/swap', 'x', v2.manifest, MEDIA.dockerManifest)).status, 201);
      assert.deepEqual(await (await fetch(url('/v1/repositories/alice/swap/tags'))).json(), { x: sha256(v2.config) });
      // An index without a linux/amd64 image, and an artifact: v2 only.
      const index = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.ociIndex,
        manifests: [{ mediaType: MEDIA.dockerManifest, size: v2.manifest.length, digest: v2.digest, platform: { architecture: 's390x', os: 'linux' } }],
      }));
      assert.equal((await putManifest(srv.url, 'alice/swap', 'idx', index, MEDIA.ociIndex)).status, 201);
      assert.deepEqual(await (await fetch(url('/v1/repositories/alice/swap/tags'))).json(), { x: sha256(v2.config) });
      const v1tag = await fetch(url('/v1/repositories/alice/swap/tags/idx'));
      assert.equal(v1tag.status, 404);
      assert.match(((await v1tag.json()) as { error: string }).error, /v2 manifest that has no v1 image/);
      const v2tags = await (await fetch(url('/v2/alice/swap/tags/list'))).json();
      assert.deepEqual(v2tags, { name: 'alice/swap', tags: ['idx', 'x'] });
      // An index with a linux/amd64 entry shows that image to v1.
      const amd = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.ociIndex,
        manifests: [{ mediaType: MEDIA.dockerManifest, size: v2.manifest.length, digest: v2.digest, platform: { architecture: 'amd64', os: 'linux' } }],
      }));
      assert.equal((await putManifest(srv.url, 'alice/swap', 'amd', amd, MEDIA.ociIndex)).status, 201);
      assert.equal((await (await fetch(url('/v1/repositories/alice/swap/tags/amd'))).json()), sha256(v2.config));
    });

    it('deleting a v1 tag over v2 (by digest) removes it on both faces', async () => {
      const id = newImageId();
      await pushImage(srv.url, { id, layer: tarOf('e', 'deleted') });
      await setTag(srv.url, 'alice/delboth', 'a', id);
      await setTag(srv.url, 'alice/delboth', 'b', id);
      const digest = (await rawRequest(url('/v2/alice/delboth/manifests/a'), { headers: DOCKER })).headers['docker-content-digest'] as string;
      assert.equal((await fetch(url(`/v2/alice/delboth/manifests/${digest}`), { method: 'DELETE' })).status, 202);
      assert.deepEqual(await (await fetch(url('/v1/repositories/alice/delboth/tags'))).json(), {});
      assert.equal((await v2ErrorOf(await fetch(url('/v2/alice/delboth/manifests/b')))).code, 'MANIFEST_UNKNOWN');
    });
  });

  describe('search, the Hub double, webhooks, metrics and pull counts see v2', () => {
    let image: Awaited<ReturnType<typeof pushImageV2>>;
    before(async () => {
      image = await pushImageV2(srv.url, 'carol/seen', 'v1', [tarOf('f', 'seen')]);
    });

    it('search finds a repository pushed over v2', async () => {
      const res = (await (await fetch(url('/v1/search?q=seen'))).json()) as { results: Array<{ name: string }> };
      assert.ok(res.results.some((r) => r.name === 'carol/seen'));
    });

    it('the Hub double shows the tag with its manifest digest and size', async () => {
      const tag = (await (await fetch(url('/v2/repositories/carol/seen/tags/v1/'))).json()) as { digest: string; full_size: number; name: string };
      assert.equal(tag.name, 'v1');
      assert.equal(tag.digest, image.digest);
      assert.equal(tag.full_size, image.config.length + image.layers[0].length);
    });

    it('a webhook fires for the tag a manifest PUT sets', async () => {
      await eventually(() => {
        const hook = hooks.find((h) => h.event === 'push' && h.repository.repo_name === 'carol/seen');
        assert.ok(hook, 'push webhook');
        assert.equal(hook.push_data.tag, 'v1');
        assert.equal(hook.push_data.digest, image.digest);
        assert.deepEqual(hook.push_data.images, [sha256(image.config)]);
      }, 8000);
    });

    it('metrics count v2 pushes and blob pulls; pull counts count manifest GETs (not HEADs)', async () => {
      const metric = async (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(await (await fetch(url('/metrics'))).text())?.[1] ?? NaN);
      const pushes = await metric('registry_images_pushed_total');
      const pulls = await metric('registry_layer_pulls_total');
      await pushImageV2(srv.url, 'carol/seen', 'v2', [tarOf('g', 'more')]);
      assert.equal(await metric('registry_images_pushed_total'), pushes + 1);
      await rawRequest(url(`/v2/carol/seen/blobs/${digestOf(image.layers[0])}`));
      await rawRequest(url(`/v2/carol/seen/blobs/${digestOf(image.layers[0])}`), { method: 'HEAD' });
      assert.equal(await metric('registry_layer_pulls_total'), pulls + 1);
      // Pulls are counted in memory and written in batches: flush before reading the store.
      const stats = async () => {
        await srv.running.services.hub.flushPulls();
        return srv.running.services.meta.getRepoPulls(parseRepoName('carol', 'seen'));
      };
      const before = (await stats())?.count ?? 0;
      await rawRequest(url('/v2/carol/seen/manifests/v1'), { method: 'HEAD' });
      assert.equal((await stats())?.count ?? 0, before, 'HEAD is no pull');
      await rawRequest(url('/v2/carol/seen/manifests/v1'));
      assert.equal((await stats())?.count, before + 1);
      await srv.running.services.hub.flushPulls();
      const [tagStats] = await srv.running.services.meta.getTagStats(parseRepoName('carol', 'seen'), ['v1' as never]);
      assert.ok(tagStats.lastPulledAt, 'tag_last_pulled set');
    });

    it('one file per sha256: a v1 layer and a v2 blob with the same bytes', async () => {
      const bytes = tarOf('h', 'shared bytes');
      const id = newImageId();
      await pushImage(srv.url, { id, layer: bytes });
      await pushImageV2(srv.url, 'carol/shared', 's', [bytes]);
      const file = srv.running.services.blobs as unknown as { paths: { blob(d: string): string } };
      const stat = await fs.stat(file.paths.blob(digestOf(bytes)));
      assert.equal(stat.nlink, 1);
      let count = 0;
      for await (const d of srv.running.services.blobs.list()) if (d === digestOf(bytes)) count += 1;
      assert.equal(count, 1);
    });
  });
});
