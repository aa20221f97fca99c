/**
 * Registry API v2: the ping, blobs (HEAD, GET with ranges, DELETE) and uploads (monolithic
 * POST, POST + PUT, chunked PATCH with and without Content-Range, 416 out of order, status,
 * cancel, cross-repository mount), with the spec's error codes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { eventually } from '../helpers/eventually.js';
import { pieces, rawRequest } from '../helpers/http-raw.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { digestOf, pushBlob, v2ErrorOf } from '../helpers/v2.js';

describe('Registry API v2: blobs and uploads', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
  });
  after(async () => {
    await srv.destroy();
  });

  const url = (path: string) => `${srv.url}${path}`;

  async function startUpload(name: string): Promise<string> {
    const res = await fetch(url(`/v2/${name}/blobs/uploads/`), { method: 'POST' });
    assert.equal(res.status, 202);
    return res.headers.get('location') as string;
  }

  describe('[GET /v2/]', () => {
    it('200 {} with the API version header (standalone: no credentials needed)', async () => {
      const res = await fetch(url('/v2/'));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
      assert.deepEqual(await res.json(), {});
    });

    it('404 NAME_UNKNOWN in the v2 envelope for a path that is no v2 route', async () => {
      const res = await fetch(url('/v2/alice/app/nothing-here'));
      assert.deepEqual(await v2ErrorOf(res), { status: 404, code: 'NAME_UNKNOWN', message: 'Unknown Registry API v2 path: /v2/alice/app/nothing-here' });
    });

    it('405 UNSUPPORTED with Allow for a known path with another method', async () => {
      const res = await fetch(url('/v2/alice/app/tags/list'), { method: 'DELETE' });
      assert.equal(res.status, 405);
      assert.equal(res.headers.get('allow'), 'GET, HEAD');
      assert.equal((await v2ErrorOf(res)).code, 'UNSUPPORTED');
    });
  });

  describe('[GET|HEAD /v2/<name>/blobs/<digest>]', () => {
    const blob = randomBytes(10_007);
    let digest: string;
    before(async () => {
      digest = await pushBlob(srv.url, 'alice/app', blob);
    });

    it('200 with the bytes, Docker-Content-Digest, ETag, Content-Length', async () => {
      const res = await rawRequest(url(`/v2/alice/app/blobs/${digest}`));
      assert.equal(res.status, 200);
      assert.ok(res.body.equals(blob));
      assert.equal(res.headers['docker-content-digest'], digest);
      assert.equal(res.headers.etag, `"${digest}"`);
      assert.equal(res.headers['content-length'], String(blob.length));
      assert.equal(res.headers['accept-ranges'], 'bytes');
    });

    it('HEAD: 200, Content-Length and digest, no body', async () => {
      const res = await rawRequest(url(`/v2/alice/app/blobs/${digest}`), { method: 'HEAD' });
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-length'], String(blob.length));
      assert.equal(res.headers['docker-content-digest'], digest);
      assert.equal(res.body.length, 0);
    });

    it('206 for a range, 416 with Content-Range */size beyond the end', async () => {
      const part = await rawRequest(url(`/v2/alice/app/blobs/${digest}`), { headers: { Range: 'bytes=100-199' } });
      assert.equal(part.status, 206);
      assert.equal(part.headers['content-range'], `bytes 100-199/${blob.length}`);
      assert.ok(part.body.equals(blob.subarray(100, 200)));
      const tail = await rawRequest(url(`/v2/alice/app/blobs/${digest}`), { headers: { Range: 'bytes=-7' } });
      assert.ok(tail.body.equals(blob.subarray(blob.length - 7)));
      const bad = await rawRequest(url(`/v2/alice/app/blobs/${digest}`), { headers: { Range: `bytes=${blob.length}-` } });
      assert.equal(bad.status, 416);
      assert.equal(bad.headers['content-range'], `bytes */${blob.length}`);
      assert.equal((await v2ErrorOf(bad)).code, 'BLOB_UPLOAD_INVALID');
    });

    it('404 BLOB_UNKNOWN in another repository (a blob is read through the repositories that hold it)', async () => {
      const res = await fetch(url(`/v2/bob/app/blobs/${digest}`));
      const err = await v2ErrorOf(res);
      assert.equal(err.status, 404);
      assert.equal(err.code, 'BLOB_UNKNOWN');
    });

    it('400 DIGEST_INVALID for a malformed digest, 400 UNSUPPORTED for another algorithm', async () => {
      assert.deepEqual(await v2ErrorOf(await fetch(url('/v2/alice/app/blobs/sha256:abc'))), {
        status: 400,
        code: 'DIGEST_INVALID',
        message: 'Invalid digest: "sha256:abc"',
      });
      const other = await v2ErrorOf(await fetch(url(`/v2/alice/app/blobs/sha512:${'a'.repeat(128)}`)));
      assert.equal(other.status, 400);
      assert.equal(other.code, 'UNSUPPORTED');
    });

    it('DELETE: 202, then the repository no longer has it (the other one still does)', async () => {
      const bytes = randomBytes(300);
      const d = await pushBlob(srv.url, 'alice/del', bytes);
      await pushBlob(srv.url, 'alice/keep', bytes);
      const del = await fetch(url(`/v2/alice/del/blobs/${d}`), { method: 'DELETE' });
      assert.equal(del.status, 202);
      assert.equal((await fetch(url(`/v2/alice/del/blobs/${d}`), { method: 'HEAD' })).status, 404);
      assert.equal((await fetch(url(`/v2/alice/keep/blobs/${d}`))).status, 200);
      assert.equal((await v2ErrorOf(await fetch(url(`/v2/alice/del/blobs/${d}`), { method: 'DELETE' }))).code, 'BLOB_UNKNOWN');
    });
  });

  describe('[POST /v2/<name>/blobs/uploads/]', () => {
    it('202 with Location, Docker-Upload-UUID and Range 0-0', async () => {
      const res = await fetch(url('/v2/alice/app/blobs/uploads/'), { method: 'POST' });
      assert.equal(res.status, 202);
      const id = res.headers.get('docker-upload-uuid') as string;
      assert.match(id, /^[0-9a-f-]{36}$/);
      assert.equal(res.headers.get('location'), `/v2/alice/app/blobs/uploads/${id}`);
      assert.equal(res.headers.get('range'), '0-0');
    });

    it('monolithic ?digest= with the body: 201, Location and digest', async () => {
      const bytes = randomBytes(4096);
      const digest = digestOf(bytes);
      const res = await fetch(url(`/v2/alice/mono/blobs/uploads/?digest=${digest}`), { method: 'POST', body: bytes });
      assert.equal(res.status, 201);
      assert.equal(res.headers.get('location'), `/v2/alice/mono/blobs/${digest}`);
      assert.equal(res.headers.get('docker-content-digest'), digest);
      const got = await rawRequest(url(`/v2/alice/mono/blobs/${digest}`));
      assert.ok(got.body.equals(bytes));
    });

    it('monolithic with a digest that does not match: 400 DIGEST_INVALID, nothing stored', async () => {
      const bytes = randomBytes(100);
      const wrong = digestOf(Buffer.from('something else'));
      const err = await v2ErrorOf(await fetch(url(`/v2/alice/mono/blobs/uploads/?digest=${wrong}`), { method: 'POST', body: bytes }));
      assert.equal(err.status, 400);
      assert.equal(err.code, 'DIGEST_INVALID');
      assert.equal((await fetch(url(`/v2/alice/mono/blobs/${wrong}`), { method: 'HEAD' })).status, 404);
      assert.equal((await fetch(url(`/v2/alice/mono/blobs/${digestOf(bytes)}`), { method: 'HEAD' })).status, 404);
    });

    it('mount from a repository that holds the blob: 201, the blob is now in both', async () => {
      const bytes = randomBytes(2000);
      const digest = await pushBlob(srv.url, 'alice/source', bytes);
      const res = await fetch(url(`/v2/bob/target/blobs/uploads/?mount=${digest}&from=alice/source`), { method: 'POST' });
      assert.equal(res.status, 201);
      assert.equal(res.headers.get('location'), `/v2/bob/target/blobs/${digest}`);
      assert.equal(res.headers.get('docker-content-digest'), digest);
      assert.ok((await rawRequest(url(`/v2/bob/target/blobs/${digest}`))).body.equals(bytes));
    });

    it('mount of a blob the source does not hold: 202, a normal upload starts', async () => {
      const digest = digestOf(randomBytes(10));
      const res = await fetch(url(`/v2/bob/target/blobs/uploads/?mount=${digest}&from=alice/source`), { method: 'POST' });
      assert.equal(res.status, 202);
      assert.match(res.headers.get('location') ?? '', /^\/v2\/bob\/target\/blobs\/uploads\/[0-9a-f-]{36}$/);
    });
  });

  describe('[PATCH|PUT|GET|DELETE /v2/<name>/blobs/uploads/<uuid>]', () => {
    it('POST then PUT with the whole blob: 201', async () => {
      const bytes = randomBytes(70_000);
      const digest = await pushBlob(srv.url, 'alice/app', bytes);
      assert.ok((await rawRequest(url(`/v2/alice/app/blobs/${digest}`))).body.equals(bytes));
    });

    it('chunks with Content-Range, status between them, the last chunk in the PUT', async () => {
      const bytes = randomBytes(30_000);
      const location = await startUpload('alice/chunks');
      const first = await rawRequest(url(location), { method: 'PATCH', body: bytes.subarray(0, 10_000), headers: { 'Content-Range': '0-9999' } });
      assert.equal(first.status, 202);
      assert.equal(first.headers.range, '0-9999');
      assert.equal(first.headers.location, location);
      const status = await rawRequest(url(location));
      assert.equal(status.status, 204);
      assert.equal(status.headers.range, '0-9999');
      const second = await rawRequest(url(location), { method: 'PATCH', body: bytes.subarray(10_000, 20_000), headers: { 'Content-Range': '10000-19999' } });
      assert.equal(second.headers.range, '0-19999');
      const done = await rawRequest(url(`${location}?digest=${digestOf(bytes)}`), {
        method: 'PUT',
        body: bytes.subarray(20_000),
        headers: { 'Content-Range': '20000-29999' },
      });
      assert.equal(done.status, 201, done.body.toString());
      assert.ok((await rawRequest(url(`/v2/alice/chunks/blobs/${digestOf(bytes)}`))).body.equals(bytes));
      // The session is over.
      assert.equal((await v2ErrorOf(await rawRequest(url(location)))).code, 'BLOB_UPLOAD_UNKNOWN');
    });

    it('a streamed (chunked transfer) PATCH without Content-Range, then PUT with no body: what docker push sends', async () => {
      const bytes = randomBytes(300_000);
      const location = await startUpload('alice/docker');
      const patch = await rawRequest(url(location), { method: 'PATCH', body: pieces(bytes, 65_536), chunked: true });
      assert.equal(patch.status, 202);
      assert.equal(patch.headers.range, `0-${bytes.length - 1}`);
      const done = await rawRequest(url(`${location}?digest=${digestOf(bytes)}`), { method: 'PUT' });
      assert.equal(done.status, 201);
      assert.ok((await rawRequest(url(`/v2/alice/docker/blobs/${digestOf(bytes)}`))).body.equals(bytes));
    });

    it('a chunk out of order: 416 with the Range and Location to resume from, nothing appended', async () => {
      const bytes = randomBytes(2000);
      const location = await startUpload('alice/order');
      await rawRequest(url(location), { method: 'PATCH', body: bytes.subarray(0, 1000), headers: { 'Content-Range': '0-999' } });
      const gap = await rawRequest(url(location), { method: 'PATCH', body: bytes.subarray(1500), headers: { 'Content-Range': '1500-1999' } });
      assert.equal(gap.status, 416);
      assert.equal(gap.headers.range, '0-999');
      assert.equal(gap.headers.location, location);
      assert.equal((await v2ErrorOf(gap)).code, 'BLOB_UPLOAD_INVALID');
      const again = await rawRequest(url(location), { method: 'PATCH', body: bytes.subarray(0, 1000), headers: { 'Content-Range': '0-999' } });
      assert.equal(again.status, 416, 'the same chunk twice is out of order too');
      const rest = await rawRequest(url(location), { method: 'PATCH', body: bytes.subarray(1000), headers: { 'Content-Range': '1000-1999' } });
      assert.equal(rest.status, 202);
      const done = await rawRequest(url(`${location}?digest=${digestOf(bytes)}`), { method: 'PUT' });
      assert.equal(done.status, 201);
    });

    it('a final PUT chunk out of order: 416', async () => {
      const bytes = randomBytes(100);
      const location = await startUpload('alice/order');
      const res = await rawRequest(url(`${location}?digest=${digestOf(bytes)}`), { method: 'PUT', body: bytes, headers: { 'Content-Range': '5-104' } });
      assert.equal(res.status, 416);
    });

    it('Content-Length that does not match Content-Range: 400 SIZE_INVALID', async () => {
      const location = await startUpload('alice/order');
      const res = await rawRequest(url(location), { method: 'PATCH', body: randomBytes(10), headers: { 'Content-Range': '0-19' } });
      assert.deepEqual(await v2ErrorOf(res), { status: 400, code: 'SIZE_INVALID', message: 'Content-Length 10 does not match Content-Range 0-19' });
    });

    it('PUT without a digest: 400 DIGEST_INVALID and the upload stays; a wrong digest ends it', async () => {
      const bytes = randomBytes(500);
      const location = await startUpload('alice/digest');
      await rawRequest(url(location), { method: 'PATCH', body: bytes });
      const missing = await rawRequest(url(location), { method: 'PUT' });
      assert.deepEqual(await v2ErrorOf(missing), { status: 400, code: 'DIGEST_INVALID', message: 'The digest query parameter is missing' });
      assert.equal((await rawRequest(url(location))).status, 204, 'still open');
      const wrong = digestOf(Buffer.from('not these bytes'));
      const res = await rawRequest(url(`${location}?digest=${wrong}`), { method: 'PUT' });
      assert.equal(res.status, 400);
      assert.equal((await v2ErrorOf(res)).code, 'DIGEST_INVALID');
      assert.equal((await v2ErrorOf(await rawRequest(url(location)))).code, 'BLOB_UPLOAD_UNKNOWN');
      assert.equal((await fetch(url(`/v2/alice/digest/blobs/${wrong}`), { method: 'HEAD' })).status, 404);
    });

    it('DELETE cancels: 204, then 404 BLOB_UPLOAD_UNKNOWN', async () => {
      const location = await startUpload('alice/cancel');
      await rawRequest(url(location), { method: 'PATCH', body: randomBytes(100) });
      const del = await rawRequest(url(location), { method: 'DELETE' });
      assert.equal(del.status, 204);
      const err = await v2ErrorOf(await rawRequest(url(location), { method: 'PATCH', body: randomBytes(10) }));
      assert.equal(err.status, 404);
      assert.equal(err.code, 'BLOB_UPLOAD_UNKNOWN');
    });

    it('an upload id of another repository, or no upload at all: 404 BLOB_UPLOAD_UNKNOWN', async () => {
      const location = await startUpload('alice/mine');
      const id = location.split('/').pop() as string;
      assert.equal((await v2ErrorOf(await rawRequest(url(`/v2/bob/theirs/blobs/uploads/${id}`)))).code, 'BLOB_UPLOAD_UNKNOWN');
      assert.equal((await v2ErrorOf(await rawRequest(url('/v2/alice/mine/blobs/uploads/not-an-id')))).code, 'BLOB_UPLOAD_UNKNOWN');
      assert.equal((await v2ErrorOf(await rawRequest(url(`/v2/alice/mine/blobs/uploads/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`)))).code, 'BLOB_UPLOAD_UNKNOWN');
    });

    it('the empty blob: POST then PUT with no body', async () => {
      const location = await startUpload('alice/empty');
      const done = await rawRequest(url(`${location}?digest=${digestOf(Buffer.alloc(0))}`), { method: 'PUT' });
      assert.equal(done.status, 201);
      const got = await rawRequest(url(`/v2/alice/empty/blobs/${digestOf(Buffer.alloc(0))}`));
      assert.equal(got.status, 200);
      assert.equal(got.body.length, 0);
    });

    it('a session survives a restart: the hash state is computed again from what was received', async () => {
      const bytes = randomBytes(50_000);
      const location = await startUpload('alice/restart');
      await rawRequest(url(location), { method: 'PATCH', body: bytes.subarray(0, 20_000), headers: { 'Content-Range': '0-19999' } });
      await srv.restart();
      const status = await rawRequest(url(location));
      assert.equal(status.status, 204);
      assert.equal(status.headers.range, '0-19999');
      await rawRequest(url(location), { method: 'PATCH', body: bytes.subarray(20_000), headers: { 'Content-Range': '20000-49999' } });
      const done = await rawRequest(url(`${location}?digest=${digestOf(bytes)}`), { method: 'PUT' });
      assert.equal(done.status, 201, done.body.toString());
      assert.ok((await rawRequest(url(`/v2/alice/restart/blobs/${digestOf(bytes)}`))).body.equals(bytes));
    });

    it('a PATCH cut off half-way keeps nothing of itself: the upload goes on from where it stood', async () => {
      const bytes = randomBytes(400_000);
      const location = await startUpload('alice/cut');
      await rawRequest(url(location), { method: 'PATCH', body: bytes.subarray(0, 100_000), headers: { 'Content-Range': '0-99999' } });
      // A chunked PATCH that dies after 150 KB.
      const req = http.request(url(location), { method: 'PATCH', headers: { 'Transfer-Encoding': 'chunked' }, agent: false });
      req.on('error', () => {});
      await new Promise<void>((resolve) => req.write(bytes.subarray(100_000, 250_000), () => resolve()));
      await new Promise((r) => setTimeout(r, 200));
      req.destroy();
      const status = await rawRequest(url(location));
      assert.equal(status.headers.range, '0-99999');
      // Once the server has seen the connection die, the session is free again (until then:
      // 400, another request holds it) and takes the rest from byte 100000.
      await eventually(async () => {
        const rest = await rawRequest(url(location), { method: 'PATCH', body: bytes.subarray(100_000), headers: { 'Content-Range': `100000-${bytes.length - 1}` } });
        assert.equal(rest.status, 202, rest.body.toString());
      });
      const done = await rawRequest(url(`${location}?digest=${digestOf(bytes)}`), { method: 'PUT' });
      assert.equal(done.status, 201, done.body.toString());
    });

    it('two sessions uploading the same blob at once both succeed: one file', async () => {
      const bytes = randomBytes(200_000);
      const [a, b] = await Promise.all([startUpload('alice/twin'), startUpload('bob/twin')]);
      const results = await Promise.all(
        [a, b].map(async (location) => {
          await rawRequest(url(location), { method: 'PATCH', body: pieces(bytes, 10_000), chunked: true });
          return rawRequest(url(`${location}?digest=${digestOf(bytes)}`), { method: 'PUT' });
        }),
      );
      assert.deepEqual(results.map((r) => r.status), [201, 201]);
      for (const name of ['alice/twin', 'bob/twin']) assert.ok((await rawRequest(url(`/v2/${name}/blobs/${digestOf(bytes)}`))).body.equals(bytes));
    });
  });
});
