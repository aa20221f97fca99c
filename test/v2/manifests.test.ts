/**
 * Registry API v2: manifests (Docker schema 2 and OCI image manifests, manifest lists and
 * image indexes; byte-for-byte; Accept negotiation; the errors), tags/list and _catalog with
 * pagination, referrers, and names (`app` = `library/app`, deeper names, reserved names).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { rawRequest } from '../helpers/http-raw.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { digestOf, imageConfig, imageManifest, MEDIA, pushBlob, pushImageV2, putManifest, v2ErrorOf } from '../helpers/v2.js';

describe('Registry API v2: manifests, tags, catalog, referrers', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
  });
  after(async () => {
    await srv.destroy();
  });
  const url = (path: string) => `${srv.url}${path}`;

  describe('[PUT|GET|HEAD /v2/<name>/manifests/<reference>]', () => {
    for (const mediaType of [MEDIA.dockerManifest, MEDIA.ociManifest]) {
      it(`${mediaType}: 201 with Location and digest, served byte for byte by tag and by digest`, async () => {
        const image = await pushImageV2(srv.url, 'alice/app', 'v1', [randomBytes(1000), randomBytes(2000)], { mediaType });
        for (const ref of ['v1', image.digest]) {
          const res = await rawRequest(url(`/v2/alice/app/manifests/${ref}`), { headers: { Accept: `${MEDIA.dockerManifest}, ${MEDIA.ociManifest}` } });
          assert.equal(res.status, 200);
          assert.ok(res.body.equals(image.manifest), 'the bytes as pushed');
          assert.equal(res.headers['content-type'], mediaType);
          assert.equal(res.headers['docker-content-digest'], image.digest);
          assert.equal(res.headers['content-length'], String(image.manifest.length));
        }
        const head = await rawRequest(url(`/v2/alice/app/manifests/v1`), { method: 'HEAD' });
        assert.equal(head.status, 200);
        assert.equal(head.headers['docker-content-digest'], image.digest);
        assert.equal(head.headers['content-length'], String(image.manifest.length));
        assert.equal(head.body.length, 0);
      });
    }

    it('whitespace and key order are kept: the digest is of the bytes pushed', async () => {
      const layer = randomBytes(100);
      const config = imageConfig([digestOf(layer)]);
      await pushBlob(srv.url, 'alice/bytes', layer);
      await pushBlob(srv.url, 'alice/bytes', config);
      const doc = JSON.parse(imageManifest(config, [layer]).toString());
      const pretty = Buffer.from(`${JSON.stringify({ layers: doc.layers, config: doc.config, mediaType: doc.mediaType, schemaVersion: 2 }, null, 7)}\n\n`);
      const res = await putManifest(srv.url, 'alice/bytes', 'pretty', pretty, MEDIA.dockerManifest);
      assert.equal(res.status, 201);
      assert.equal(res.headers.get('docker-content-digest'), digestOf(pretty));
      assert.ok((await rawRequest(url('/v2/alice/bytes/manifests/pretty'))).body.equals(pretty));
    });

    it('PUT by digest with ?tag=: 201, OCI-Tag names the tags set', async () => {
      const layer = randomBytes(50);
      const config = imageConfig([digestOf(layer)]);
      await pushBlob(srv.url, 'alice/multi', layer);
      await pushBlob(srv.url, 'alice/multi', config);
      const manifest = imageManifest(config, [layer]);
      const res = await fetch(url(`/v2/alice/multi/manifests/${digestOf(manifest)}?tag=1.0&tag=latest`), {
        method: 'PUT',
        body: manifest,
        headers: { 'Content-Type': MEDIA.dockerManifest },
      });
      assert.equal(res.status, 201);
      assert.equal(res.headers.get('oci-tag'), '1.0, latest');
      const tags = await (await fetch(url('/v2/alice/multi/tags/list'))).json();
      assert.deepEqual(tags, { name: 'alice/multi', tags: ['1.0', 'latest'] });
    });

    it('a manifest naming a blob the repository does not hold: 400 MANIFEST_BLOB_UNKNOWN, nothing stored', async () => {
      const layer = randomBytes(100);
      const config = imageConfig([digestOf(layer)]);
      await pushBlob(srv.url, 'alice/missing', config); // the layer is never uploaded
      const manifest = imageManifest(config, [layer]);
      const res = await putManifest(srv.url, 'alice/missing', 'x', manifest, MEDIA.dockerManifest);
      const err = await v2ErrorOf(res);
      assert.equal(err.status, 400);
      assert.equal(err.code, 'MANIFEST_BLOB_UNKNOWN');
      assert.match(err.message, new RegExp(digestOf(layer)));
      assert.equal((await fetch(url(`/v2/alice/missing/manifests/${digestOf(manifest)}`))).status, 404);
      assert.equal((await fetch(url('/v2/alice/missing/manifests/x'))).status, 404);
      // A blob of another repository does not count either.
      await pushBlob(srv.url, 'bob/has', layer);
      assert.equal((await v2ErrorOf(await putManifest(srv.url, 'alice/missing', 'x', manifest, MEDIA.dockerManifest))).code, 'MANIFEST_BLOB_UNKNOWN');
    });

    it('PUT by a digest the bytes do not have: 400 DIGEST_INVALID, nothing stored', async () => {
      const image = await pushImageV2(srv.url, 'alice/dig', 'ok', [randomBytes(10)]);
      const other = Buffer.concat([image.manifest, Buffer.from(' ')]);
      const res = await putManifest(srv.url, 'alice/dig', image.digest, other, MEDIA.dockerManifest);
      assert.deepEqual(await v2ErrorOf(res), {
        status: 400,
        code: 'DIGEST_INVALID',
        message: `The manifest's digest is ${digestOf(other)}, not ${image.digest}`,
      });
      assert.equal((await fetch(url(`/v2/alice/dig/manifests/${digestOf(other)}`))).status, 404);
    });

    it('invalid manifests: 400 MANIFEST_INVALID (not JSON, type mismatch, no layers list, bad descriptor), schema 1: UNSUPPORTED', async () => {
      const cases: Array<[Buffer, string, string]> = [
        [Buffer.from('{not json'), MEDIA.dockerManifest, 'MANIFEST_INVALID'],
        [Buffer.from([0xff, 0xfe, 0x7b]), MEDIA.dockerManifest, 'MANIFEST_INVALID'],
        [Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociManifest, config: {}, layers: [] })), MEDIA.dockerManifest, 'MANIFEST_INVALID'],
        [Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.dockerManifest, config: { mediaType: MEDIA.dockerConfig, size: 1, digest: digestOf('x') } })), MEDIA.dockerManifest, 'MANIFEST_INVALID'],
        [Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.dockerManifest, config: { mediaType: MEDIA.dockerConfig, size: -1, digest: digestOf('x') }, layers: [] })), MEDIA.dockerManifest, 'MANIFEST_INVALID'],
        [Buffer.from('[]'), MEDIA.dockerManifest, 'MANIFEST_INVALID'],
        [Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'alice/inv', tag: 'x', fsLayers: [] })), 'application/vnd.docker.distribution.manifest.v1+prettyjws', 'UNSUPPORTED'],
        [Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/x-unknown', layers: [] })), 'application/json', 'MANIFEST_INVALID'],
      ];
      for (const [body, type, code] of cases) {
        const err = await v2ErrorOf(await putManifest(srv.url, 'alice/inv', 'bad', body, type));
        assert.equal(err.code, code, `${body.toString().slice(0, 60)} → ${err.message}`);
        assert.equal(err.status, 400);
      }
      assert.equal((await fetch(url('/v2/alice/inv/manifests/bad'))).status, 404);
    });

    it('a manifest over max_manifest_bytes: 413 SIZE_INVALID, whether announced or streamed', async () => {
      const huge = Buffer.alloc(srv.config.max_manifest_bytes + 1, 0x20);
      const announced = await rawRequest(url('/v2/alice/huge/manifests/x'), { method: 'PUT', body: huge, headers: { 'Content-Type': MEDIA.dockerManifest } });
      assert.equal(announced.status, 413);
      assert.equal((await v2ErrorOf(announced)).code, 'SIZE_INVALID');
      const streamed = await rawRequest(url('/v2/alice/huge/manifests/x'), { method: 'PUT', body: [huge.subarray(0, 1 << 20), huge.subarray(1 << 20)], chunked: true, headers: { 'Content-Type': MEDIA.dockerManifest } });
      assert.equal(streamed.status, 413);
    });

    it('unknown tag or digest: 404 MANIFEST_UNKNOWN; unknown repository: 404 NAME_UNKNOWN', async () => {
      await pushImageV2(srv.url, 'alice/known', 'v', [randomBytes(10)]);
      assert.equal((await v2ErrorOf(await fetch(url('/v2/alice/known/manifests/nope')))).code, 'MANIFEST_UNKNOWN');
      assert.equal((await v2ErrorOf(await fetch(url(`/v2/alice/known/manifests/${digestOf('nope')}`)))).code, 'MANIFEST_UNKNOWN');
      assert.deepEqual(await v2ErrorOf(await fetch(url('/v2/alice/unknown/manifests/v'))), { status: 404, code: 'NAME_UNKNOWN', message: 'Repository unknown: alice/unknown' });
    });
  });

  describe('manifest lists and image indexes', () => {
    it('an index whose children are in the repository: stored; a client that takes no index gets linux/amd64', async () => {
      const amd = await pushImageV2(srv.url, 'alice/multi-arch', 'amd', [randomBytes(100)]);
      const arm = await pushImageV2(srv.url, 'alice/multi-arch', 'arm', [randomBytes(100)]);
      for (const [type, childType] of [[MEDIA.dockerList, MEDIA.dockerManifest], [MEDIA.ociIndex, MEDIA.dockerManifest]]) {
        const index = Buffer.from(JSON.stringify({
          schemaVersion: 2,
          mediaType: type,
          manifests: [
            { mediaType: childType, size: arm.manifest.length, digest: arm.digest, platform: { architecture: 'arm64', os: 'linux' } },
            { mediaType: childType, size: amd.manifest.length, digest: amd.digest, platform: { architecture: 'amd64', os: 'linux' } },
          ],
        }));
        const put = await putManifest(srv.url, 'alice/multi-arch', 'latest', index, type);
        assert.equal(put.status, 201);
        const asIndex = await rawRequest(url('/v2/alice/multi-arch/manifests/latest'), { headers: { Accept: `${MEDIA.dockerManifest}, ${type}` } });
        assert.ok(asIndex.body.equals(index));
        assert.equal(asIndex.headers['content-type'], type);
        const noIndex = await rawRequest(url('/v2/alice/multi-arch/manifests/latest'), { headers: { Accept: MEDIA.dockerManifest } });
        assert.equal(noIndex.status, 200);
        assert.ok(noIndex.body.equals(amd.manifest), 'the linux/amd64 entry');
        assert.equal(noIndex.headers['docker-content-digest'], amd.digest);
      }
    });

    it('an index naming a manifest the repository does not hold: 400 MANIFEST_BLOB_UNKNOWN', async () => {
      const index = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.ociIndex,
        manifests: [{ mediaType: MEDIA.ociManifest, size: 10, digest: digestOf('absent'), platform: { architecture: 'amd64', os: 'linux' } }],
      }));
      const err = await v2ErrorOf(await putManifest(srv.url, 'alice/multi-arch', 'broken', index, MEDIA.ociIndex));
      assert.equal(err.code, 'MANIFEST_BLOB_UNKNOWN');
    });
  });

  describe('[DELETE /v2/<name>/manifests/<reference>]', () => {
    it('by tag: 202, only the tag goes; by digest: 202, the manifest and every tag showing it go', async () => {
      const image = await pushImageV2(srv.url, 'alice/del', 'one', [randomBytes(10)]);
      await putManifest(srv.url, 'alice/del', 'two', image.manifest, MEDIA.dockerManifest);
      await putManifest(srv.url, 'alice/del', 'three', image.manifest, MEDIA.dockerManifest);
      assert.equal((await fetch(url('/v2/alice/del/manifests/one'), { method: 'DELETE' })).status, 202);
      assert.equal((await fetch(url('/v2/alice/del/manifests/one'))).status, 404);
      assert.equal((await fetch(url('/v2/alice/del/manifests/two'))).status, 200);
      assert.equal((await fetch(url(`/v2/alice/del/manifests/${image.digest}`), { method: 'DELETE' })).status, 202);
      assert.equal((await fetch(url(`/v2/alice/del/manifests/${image.digest}`))).status, 404);
      assert.equal((await fetch(url('/v2/alice/del/manifests/two'))).status, 404);
      assert.deepEqual(await (await fetch(url('/v2/alice/del/tags/list'))).json(), { name: 'alice/del', tags: [] });
      assert.equal((await v2ErrorOf(await fetch(url(`/v2/alice/del/manifests/${image.digest}`), { method: 'DELETE' }))).code, 'MANIFEST_UNKNOWN');
      assert.equal((await v2ErrorOf(await fetch(url('/v2/alice/del/manifests/one'), { method: 'DELETE' }))).code, 'MANIFEST_UNKNOWN');
    });
  });

  describe('[GET /v2/<name>/tags/list], [GET /v2/_catalog]', () => {
    before(async () => {
      const image = await pushImageV2(srv.url, 'alice/paged', 'a', [randomBytes(10)]);
      for (const tag of ['B', 'c', 'a1', '_x', 'Z9']) {
        assert.equal((await putManifest(srv.url, 'alice/paged', tag, image.manifest, MEDIA.dockerManifest)).status, 201);
      }
    });

    it('tags in code-unit order; n and last page through them with a Link header', async () => {
      const all = await (await fetch(url('/v2/alice/paged/tags/list'))).json();
      assert.deepEqual(all, { name: 'alice/paged', tags: ['B', 'Z9', '_x', 'a', 'a1', 'c'] });
      const first = await fetch(url('/v2/alice/paged/tags/list?n=2'));
      assert.deepEqual(await first.json(), { name: 'alice/paged', tags: ['B', 'Z9'] });
      assert.equal(first.headers.get('link'), '</v2/alice/paged/tags/list?n=2&last=Z9>; rel="next"');
      const tagsOf = async (res: Response) => ((await res.json()) as { tags: string[] }).tags;
      const second = await fetch(url('/v2/alice/paged/tags/list?n=2&last=Z9'));
      assert.deepEqual(await tagsOf(second), ['_x', 'a']);
      const last = await fetch(url('/v2/alice/paged/tags/list?n=2&last=a'));
      assert.deepEqual(await tagsOf(last), ['a1', 'c']);
      assert.equal(last.headers.get('link'), null, 'no next page');
      const after = await fetch(url('/v2/alice/paged/tags/list?last=a1'));
      assert.deepEqual(await tagsOf(after), ['c']);
      const none = await fetch(url('/v2/alice/paged/tags/list?n=0'));
      assert.deepEqual(await tagsOf(none), []);
      assert.equal(none.headers.get('link'), null);
      const bad = await v2ErrorOf(await fetch(url('/v2/alice/paged/tags/list?n=-1')));
      assert.equal(bad.status, 400);
      assert.equal(bad.code, 'PAGINATION_NUMBER_INVALID');
      assert.equal((await v2ErrorOf(await fetch(url('/v2/alice/nothing/tags/list')))).code, 'NAME_UNKNOWN');
    });

    it('_catalog lists every repository by full name, paginated the same way', async () => {
      const all = (await (await fetch(url('/v2/_catalog'))).json()) as { repositories: string[] };
      assert.ok(all.repositories.includes('alice/paged'));
      assert.deepEqual([...all.repositories].sort(), all.repositories);
      const first = await fetch(url('/v2/_catalog?n=1'));
      const page = (await first.json()) as { repositories: string[] };
      assert.deepEqual(page.repositories, all.repositories.slice(0, 1));
      assert.equal(first.headers.get('link'), `</v2/_catalog?n=1&last=${encodeURIComponent(all.repositories[0])}>; rel="next"`);
      const next = (await (await fetch(url(`/v2/_catalog?n=100&last=${encodeURIComponent(all.repositories[0])}`))).json()) as { repositories: string[] };
      assert.deepEqual(next.repositories, all.repositories.slice(1));
    });
  });

  describe('[GET /v2/<name>/referrers/<digest>], OCI-Subject', () => {
    it('an artifact with a subject: OCI-Subject on the PUT, listed with its artifactType and annotations, filterable', async () => {
      const subject = await pushImageV2(srv.url, 'alice/signed', 'v1', [randomBytes(10)]);
      const empty = Buffer.from('{}');
      await pushBlob(srv.url, 'alice/signed', empty);
      const payload = randomBytes(64);
      await pushBlob(srv.url, 'alice/signed', payload);
      const artifact = (artifactType: string, note: string) =>
        Buffer.from(JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA.ociManifest,
          artifactType,
          config: { mediaType: 'application/vnd.oci.empty.v1+json', size: 2, digest: digestOf(empty) },
          layers: [{ mediaType: 'application/octet-stream', size: payload.length, digest: digestOf(payload) }],
          subject: { mediaType: MEDIA.dockerManifest, size: subject.manifest.length, digest: subject.digest },
          annotations: { note },
        }));
      const sig = artifact('application/vnd.dev.cosign.simplesigning.v1+json', 'sig');
      const sbom = artifact('application/spdx+json', 'sbom');
      for (const m of [sig, sbom]) {
        const res = await putManifest(srv.url, 'alice/signed', digestOf(m), m, MEDIA.ociManifest);
        assert.equal(res.status, 201);
        assert.equal(res.headers.get('oci-subject'), subject.digest);
      }
      const res = await fetch(url(`/v2/alice/signed/referrers/${subject.digest}`));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), MEDIA.ociIndex);
      const index = (await res.json()) as { schemaVersion: number; mediaType: string; manifests: Array<Record<string, unknown>> };
      assert.equal(index.schemaVersion, 2);
      assert.equal(index.mediaType, MEDIA.ociIndex);
      const expected = [
        { mediaType: MEDIA.ociManifest, digest: digestOf(sig), size: sig.length, artifactType: 'application/vnd.dev.cosign.simplesigning.v1+json', annotations: { note: 'sig' } },
        { mediaType: MEDIA.ociManifest, digest: digestOf(sbom), size: sbom.length, artifactType: 'application/spdx+json', annotations: { note: 'sbom' } },
      ].sort((a, b) => (a.digest < b.digest ? -1 : 1));
      assert.deepEqual(index.manifests, expected);
      const filtered = await fetch(url(`/v2/alice/signed/referrers/${subject.digest}?artifactType=application/spdx%2Bjson`));
      assert.equal(filtered.headers.get('oci-filters-applied'), 'artifactType');
      assert.deepEqual(((await filtered.json()) as { manifests: unknown[] }).manifests, expected.filter((e) => e.artifactType === 'application/spdx+json'));
      const none = (await (await fetch(url(`/v2/alice/signed/referrers/${digestOf('nothing refers to this')}`))).json()) as { manifests: unknown[] };
      assert.deepEqual(none.manifests, [], 'no referrers: an empty index, not a 404');
      assert.equal((await v2ErrorOf(await fetch(url('/v2/alice/signed/referrers/sha256:short')))).status, 400);
    });

    it('a subject that is not in the repository (yet) is accepted', async () => {
      const empty = Buffer.from('{}');
      await pushBlob(srv.url, 'alice/early', empty);
      const m = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.ociManifest,
        config: { mediaType: 'application/vnd.oci.empty.v1+json', size: 2, digest: digestOf(empty) },
        layers: [],
        subject: { mediaType: MEDIA.ociManifest, size: 1, digest: digestOf('later') },
      }));
      const res = await putManifest(srv.url, 'alice/early', digestOf(m), m, MEDIA.ociManifest);
      assert.equal(res.status, 201);
      const index = (await (await fetch(url(`/v2/alice/early/referrers/${digestOf('later')}`))).json()) as { manifests: Array<{ artifactType: string }> };
      assert.equal(index.manifests[0].artifactType, 'application/vnd.oci.empty.v1+json', 'no artifactType: the config media type');
    });
  });

  describe('names', () => {
    it('`app` is `library/app`; `ns/app` is `ns/app`; deeper names are v2 only', async () => {
      const image = await pushImageV2(srv.url, 'shortname', 'v', [randomBytes(10)]);
      const full = await rawRequest(url('/v2/library/shortname/manifests/v'));
      assert.ok(full.body.equals(image.manifest));
      // The same repository on v1 (its tag shows the image derived from the push: the config digest).
      assert.deepEqual(await (await fetch(url('/v1/repositories/shortname/tags'))).json(), { v: digestOf(image.config).slice('sha256:'.length) });
      const deep = await pushImageV2(srv.url, 'org/team/sub/app', 'v', [randomBytes(10)]);
      assert.ok((await rawRequest(url('/v2/org/team/sub/app/manifests/v'))).body.equals(deep.manifest));
      const catalog = (await (await fetch(url('/v2/_catalog'))).json()) as { repositories: string[] };
      assert.ok(catalog.repositories.includes('library/shortname'));
      assert.ok(catalog.repositories.includes('org/team/sub/app'));
    });

    it('NAME_INVALID for names v2 does not allow, and for users/…, user/…, repositories/…', async () => {
      for (const name of ['Upper/app', 'a//b', 'a/-b', 'a/b.', `${'a'.repeat(256)}`, 'users/app', 'user/app', 'repositories/x/y']) {
        const res = await fetch(url(`/v2/${name}/blobs/uploads/`), { method: 'POST' });
        const err = await v2ErrorOf(res);
        assert.equal(err.status, 400, name);
        assert.equal(err.code, 'NAME_INVALID', name);
      }
      // The Hub double keeps its own paths.
      const hub = await fetch(url('/v2/repositories/library/'));
      assert.equal(hub.status, 200);
      assert.ok('results' in ((await hub.json()) as object));
    });

    it('a repository named `token` is not the token realm', async () => {
      const image = await pushImageV2(srv.url, 'token', 'v', [randomBytes(10)]);
      assert.ok((await rawRequest(url('/v2/token/manifests/v'))).body.equals(image.manifest));
      const realm = await fetch(url('/v2/token?service=registry'));
      assert.equal(realm.status, 200);
      assert.ok('token' in ((await realm.json()) as object));
    });
  });
});
