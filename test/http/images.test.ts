/**
 * Registry API v1, images: PUT/GET json, PUT/GET layer, PUT checksum, GET ancestry, and the
 * upload state machine behind them (pending until a verified checksum, then immutable).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TarsumStream } from '../../src/domain/tarsum.js';
import { errorOf, openUpload, pieces, rawRequest, type RawResponse } from '../helpers/http-raw.js';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';
import { imageJson, payloadChecksum, pushImage, type TestImage } from '../helpers/v1.js';

const INCOMPLETE = 'Image is being uploaded, retry later';
/** An id that cannot exist is not found (the reference server's `404 Invalid image ID`). */
const BAD_ID = 'Invalid image ID';

// ── small factories ─────────────────────────────────────────────────────────────────
function newImage(parent?: string, layerSize = 2048): TestImage {
  return { id: newImageId(), ...(parent ? { parent } : {}), layer: randomBytes(layerSize) };
}

async function call(url: string, init: RequestInit = {}): Promise<RawResponse> {
  const res = await fetch(url, init);
  const headers: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    headers[k] = v;
  });
  return { status: res.status, headers, body: Buffer.from(await res.arrayBuffer()) };
}

function putJson(base: string, id: string, body: Buffer | string, headers: Record<string, string> = {}) {
  return call(`${base}/v1/images/${id}/json`, { method: 'PUT', body, headers: { 'Content-Type': 'application/json', ...headers } });
}

function putLayer(base: string, id: string, layer: Buffer) {
  return call(`${base}/v1/images/${id}/layer`, { method: 'PUT', body: layer, headers: { 'Content-Type': 'application/octet-stream' } });
}

function putChecksum(base: string, id: string, headers: Record<string, string>) {
  return call(`${base}/v1/images/${id}/checksum`, { method: 'PUT', headers });
}

function getImage(base: string, id: string, what: 'json' | 'layer' | 'ancestry') {
  return call(`${base}/v1/images/${id}/${what}`);
}

function json(res: RawResponse): unknown {
  return JSON.parse(res.body.toString('utf8'));
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A minimal ustar archive of regular files (what a docker layer is). */
function tarOf(files: Record<string, Buffer>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, data] of Object.entries(files)) {
    const h = Buffer.alloc(512);
    h.write(name, 0, 100, 'utf8');
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
    h.write('14000000000\0', 136);
    h.write('        ', 148);
    h.write('0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

async function tmpEntries(srv: TestServer): Promise<string[]> {
  return fs.readdir(path.join(srv.root, 'tmp'));
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('Registry API v1: images', () => {
  let srv: TestServer;
  let base: string;
  before(async () => {
    srv = await startTestServer();
    base = srv.url;
  });
  after(async () => {
    await srv.destroy();
  });

  describe('[PUT /v1/images/:id/json]', () => {
    it('200 and GET serves the exact bytes back (whitespace, key order, unicode)', async () => {
      const id = newImageId();
      const body = Buffer.from(
        `  {\n\t"container_config" : {"Cmd":["/bin/sh", "-c", "echo h\\u00e9"]},\r\n  "id":"${id}" ,"zz": 1.50, "aa":[ ],` +
          `"comment":"caf\u00e9 \u2603", "parent" : null }\n\n`,
        'utf8',
      );
      const layer = randomBytes(777);
      let res = await putJson(base, id, body);
      assert.equal(res.status, 200, res.body.toString());
      assert.deepEqual(json(res), true);
      assert.equal((await putLayer(base, id, layer)).status, 200);
      res = await putChecksum(base, id, { 'X-Docker-Checksum-Payload': payloadChecksum(body, layer) });
      assert.equal(res.status, 200, res.body.toString());

      res = await getImage(base, id, 'json');
      assert.equal(res.status, 200);
      assert.match(res.headers['content-type'] as string, /^application\/json/);
      assert.equal(res.body.length, body.length);
      assert.ok(res.body.equals(body), 'json bytes differ from what was uploaded');
    });

    it('200 GET json carries X-Docker-Size and both payload checksum header names', async () => {
      const img = newImage(undefined, 12345);
      await pushImage(base, img);
      const res = await getImage(base, img.id, 'json');
      assert.equal(res.status, 200);
      assert.equal(res.headers['x-docker-size'], String(img.layer.length));
      const expected = payloadChecksum(imageJson(img), img.layer);
      assert.equal(res.headers['x-docker-checksum-payload'], expected);
      assert.equal(res.headers['x-docker-payload-checksum'], expected);
    });

    it('200 for a 16-hex id (the reference server tests use them)', async () => {
      const img = { id: randomBytes(8).toString('hex'), layer: randomBytes(10) };
      await pushImage(base, img);
      const res = await getImage(base, img.id, 'ancestry');
      assert.equal(res.status, 200);
      assert.deepEqual(json(res), [img.id]);
    });

    it('400 when the id does not match', async () => {
      const id = newImageId();
      const res = await putJson(base, id, JSON.stringify({ id: newImageId() }));
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'JSON data contains invalid id');
      assert.equal((await getImage(base, id, 'json')).status, 404);
    });

    it('400 when the id is missing', async () => {
      const id = newImageId();
      const res = await putJson(base, id, JSON.stringify({ created: '2014-01-01T00:00:00Z' }));
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), "Missing key `id' in JSON");
    });

    it('400 when the body is not JSON', async () => {
      const id = newImageId();
      for (const body of [`{"id": "${id}"`, 'not json', '', '\xff\xfe']) {
        const res = await putJson(base, id, body);
        assert.equal(res.status, 400, `body ${JSON.stringify(body)}`);
        assert.equal(errorOf(res), 'Invalid JSON', `body ${JSON.stringify(body)}`);
      }
      // Bytes that are not UTF-8 are not JSON either.
      const res = await putJson(base, id, Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]));
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'Invalid JSON');
      assert.equal((await getImage(base, id, 'json')).status, 404);
    });

    it('400 when the JSON is not an object', async () => {
      const id = newImageId();
      for (const body of ['[1, 2]', `"${id}"`, 'null', '42', 'true', `[{"id": "${id}"}]`]) {
        const res = await putJson(base, id, body);
        assert.equal(res.status, 400, body);
        assert.equal(errorOf(res), 'Invalid JSON: expected an object', body);
      }
    });

    it('400 when the parent does not exist', async () => {
      const id = newImageId();
      const res = await putJson(base, id, JSON.stringify({ id, parent: newImageId() }));
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'Image depends on a non existing parent');
      assert.equal((await getImage(base, id, 'json')).status, 404);
    });

    it('400 when the parent id is not an image id', async () => {
      const id = newImageId();
      const res = await putJson(base, id, JSON.stringify({ id, parent: '../../etc' }));
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'JSON data contains an invalid parent id');
    });

    it('400 when the image is its own parent', async () => {
      const id = newImageId();
      const res = await putJson(base, id, JSON.stringify({ id, parent: id }));
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'Image cannot be its own parent');
    });

    it('400 when the parent is still being uploaded', async () => {
      const parent = newImage();
      assert.equal((await putJson(base, parent.id, imageJson(parent))).status, 200);
      const child = newImage(parent.id);
      let res = await putJson(base, child.id, imageJson(child));
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'Image depends on a parent that is still being uploaded');
      // Layer uploaded but no checksum yet: still incomplete.
      assert.equal((await putLayer(base, parent.id, parent.layer)).status, 200);
      res = await putJson(base, child.id, imageJson(child));
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'Image depends on a parent that is still being uploaded');
    });

    it('400 when the child is pushed before its parent, 200 once the parent is complete', async () => {
      const parent = newImage();
      const child = newImage(parent.id);
      let res = await putJson(base, child.id, imageJson(child));
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'Image depends on a non existing parent');
      await pushImage(base, parent);
      await pushImage(base, child);
      res = await getImage(base, child.id, 'ancestry');
      assert.deepEqual(json(res), [child.id, parent.id]);
    });

    it('409 when the image is already complete', async () => {
      const img = newImage();
      await pushImage(base, img);
      const changed = Buffer.from(JSON.stringify({ id: img.id, comment: 'changed' }));
      const res = await putJson(base, img.id, changed);
      assert.equal(res.status, 409);
      assert.equal(errorOf(res), 'Image already exists');
      const got = await getImage(base, img.id, 'json');
      assert.ok(got.body.equals(imageJson(img)), 'a 409 must not change the stored json');
    });

    it('200 when the json of a pending image is PUT again (the new bytes win)', async () => {
      const img = newImage();
      assert.equal((await putJson(base, img.id, imageJson(img))).status, 200);
      const second = Buffer.from(JSON.stringify({ id: img.id, comment: 'second try' }));
      assert.equal((await putJson(base, img.id, second)).status, 200);
      await pushImage(base, { ...img, json: second });
      assert.ok((await getImage(base, img.id, 'json')).body.equals(second));
    });

    it('two pushers of the same image: the same json again keeps the layer the first uploaded; a different json starts over', async () => {
      // A puts the json and the layer; B (another CI job pushing a chain with the same base)
      // puts the same json again; A's checksum must still complete the image.
      const img = newImage();
      const jsonBytes = imageJson(img);
      const sum = payloadChecksum(jsonBytes, img.layer);
      assert.equal((await putJson(base, img.id, jsonBytes)).status, 200, 'A: json');
      assert.equal((await putLayer(base, img.id, img.layer)).status, 200, 'A: layer');
      assert.equal((await putJson(base, img.id, jsonBytes)).status, 200, 'B: the same json');
      let res = await putChecksum(base, img.id, { 'X-Docker-Checksum-Payload': sum });
      assert.equal(res.status, 200, `A: checksum: ${res.body.toString()}`);
      assert.ok((await getImage(base, img.id, 'layer')).body.equals(img.layer));
      // B goes on: the image is complete now.
      assert.equal((await putLayer(base, img.id, img.layer)).status, 409, 'B: layer');
      assert.equal((await putChecksum(base, img.id, { 'X-Docker-Checksum-Payload': sum })).status, 409, 'B: checksum');

      // The same interleaving with another json: the uploaded layer belongs to the old json,
      // so it is discarded and A's checksum finds no layer.
      const other = newImage();
      const otherJson = imageJson(other);
      assert.equal((await putJson(base, other.id, otherJson)).status, 200);
      assert.equal((await putLayer(base, other.id, other.layer)).status, 200);
      const changed = Buffer.from(JSON.stringify({ id: other.id, comment: 'B built it differently' }));
      assert.equal((await putJson(base, other.id, changed)).status, 200);
      res = await putChecksum(base, other.id, { 'X-Docker-Checksum-Payload': payloadChecksum(otherJson, other.layer) });
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'Image layer has not been uploaded yet');
      // Whitespace counts: the json is kept byte for byte, so other bytes are another json.
      const spaced = Buffer.from(`${otherJson.toString()} `);
      assert.equal((await putLayer(base, other.id, other.layer)).status, 200);
      assert.equal((await putJson(base, other.id, spaced)).status, 200);
      res = await putChecksum(base, other.id, { 'X-Docker-Checksum-Payload': payloadChecksum(spaced, other.layer) });
      assert.equal(res.status, 400, 'the layer went with the old bytes');
    });

    it('400 when X-Docker-Checksum is not a checksum', async () => {
      const id = newImageId();
      const res = await putJson(base, id, JSON.stringify({ id }), { 'X-Docker-Checksum': 'md5:abc' });
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'Invalid X-Docker-Checksum: expected sha256:<64 hex> or tarsum[.v1]+sha256:<64 hex>');
    });
  });

  describe('[PUT /v1/images/:id/json] body size', () => {
    const LIMIT = 2048;
    let small: TestServer;
    before(async () => {
      small = await startTestServer({ overrides: { max_json_bytes: LIMIT } });
    });
    after(async () => {
      await small.destroy();
    });

    /** An image json of exactly `size` bytes. */
    function jsonOfSize(id: string, size: number): Buffer {
      const head = `{"id":"${id}","comment":"`;
      const tail = '"}';
      return Buffer.from(head + 'x'.repeat(size - head.length - tail.length) + tail);
    }

    it('200 for a body of exactly max_json_bytes', async () => {
      const id = newImageId();
      const body = jsonOfSize(id, LIMIT);
      assert.equal(body.length, LIMIT);
      const res = await putJson(small.url, id, body);
      assert.equal(res.status, 200, res.body.toString());
    });

    it('413 for a body one byte over max_json_bytes (Content-Length)', async () => {
      const id = newImageId();
      const res = await putJson(small.url, id, jsonOfSize(id, LIMIT + 1));
      assert.equal(res.status, 413);
      assert.equal(errorOf(res), `Request body larger than ${LIMIT} bytes`);
      assert.equal((await getImage(small.url, id, 'json')).status, 404);
    });

    it('413 for a chunked body over max_json_bytes (no Content-Length)', async () => {
      const id = newImageId();
      const res = await rawRequest(`${small.url}/v1/images/${id}/json`, {
        method: 'PUT',
        chunked: true,
        body: pieces(jsonOfSize(id, LIMIT * 4), 500),
      });
      assert.equal(res.status, 413);
      assert.equal(errorOf(res), `Request body larger than ${LIMIT} bytes`);
      assert.equal((await getImage(small.url, id, 'json')).status, 404);
    });
  });

  describe('[PUT /v1/images/:id/layer]', () => {
    it('404 when no json was uploaded', async () => {
      const id = newImageId();
      const res = await putLayer(base, id, randomBytes(100));
      assert.equal(res.status, 404);
      assert.equal(errorOf(res), 'Image not found');
      assert.deepEqual(await tmpEntries(srv), []);
    });

    it('409 when the image is complete', async () => {
      const img = newImage();
      await pushImage(base, img);
      const res = await putLayer(base, img.id, randomBytes(100));
      assert.equal(res.status, 409);
      assert.equal(errorOf(res), 'Image already exists');
      const got = await getImage(base, img.id, 'layer');
      assert.ok(got.body.equals(img.layer), 'a 409 must not change the stored layer');
    });

    it('200 for a chunked upload with no Content-Length (docker 1.x)', async () => {
      const img = newImage(undefined, 0);
      const layer = randomBytes(300_000);
      const jsonBytes = imageJson(img);
      assert.equal((await putJson(base, img.id, jsonBytes)).status, 200);
      const res = await rawRequest(`${base}/v1/images/${img.id}/layer`, {
        method: 'PUT',
        chunked: true,
        body: pieces(layer, 7_001),
      });
      assert.equal(res.status, 200, res.body.toString());
      const sum = await putChecksum(base, img.id, { 'X-Docker-Checksum-Payload': payloadChecksum(jsonBytes, layer) });
      assert.equal(sum.status, 200, sum.body.toString());
      const got = await getImage(base, img.id, 'layer');
      assert.equal(got.status, 200);
      assert.ok(got.body.equals(layer));
      assert.equal((await getImage(base, img.id, 'json')).headers['x-docker-size'], String(layer.length));
    });

    it('200 for a 16 MiB layer streamed in, served back byte for byte', async () => {
      const img = newImage(undefined, 0);
      const layer = randomBytes(16 * 1024 * 1024);
      const jsonBytes = imageJson(img);
      assert.equal((await putJson(base, img.id, jsonBytes)).status, 200);
      const res = await rawRequest(`${base}/v1/images/${img.id}/layer`, {
        method: 'PUT',
        chunked: true,
        body: pieces(layer, 256 * 1024),
      });
      assert.equal(res.status, 200, res.body.toString());
      const sum = await putChecksum(base, img.id, { 'X-Docker-Checksum-Payload': payloadChecksum(jsonBytes, layer) });
      assert.equal(sum.status, 200, sum.body.toString());

      const got = await rawRequest(`${base}/v1/images/${img.id}/layer`);
      assert.equal(got.status, 200);
      assert.equal(got.headers['content-length'], String(layer.length));
      assert.equal(got.body.length, layer.length);
      assert.equal(sha256(got.body), sha256(layer));
      assert.ok(got.body.equals(layer));
      assert.deepEqual(await tmpEntries(srv), [], 'no temp file is left behind');
    });

    it('200 when the layer of a pending image is PUT again (the last one wins)', async () => {
      const img = newImage();
      const jsonBytes = imageJson(img);
      const first = randomBytes(4000);
      assert.equal((await putJson(base, img.id, jsonBytes)).status, 200);
      assert.equal((await putLayer(base, img.id, first)).status, 200);
      assert.equal((await putLayer(base, img.id, img.layer)).status, 200);
      // The first layer's checksum no longer matches.
      let res = await putChecksum(base, img.id, { 'X-Docker-Checksum-Payload': payloadChecksum(jsonBytes, first) });
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'Checksum mismatch');
      res = await putChecksum(base, img.id, { 'X-Docker-Checksum-Payload': payloadChecksum(jsonBytes, img.layer) });
      assert.equal(res.status, 200, res.body.toString());
      assert.ok((await getImage(base, img.id, 'layer')).body.equals(img.layer));
    });

    it('409 while another request is uploading the same image; an upload that dies leaves it pending', async () => {
      const img = newImage();
      const jsonBytes = imageJson(img);
      assert.equal((await putJson(base, img.id, jsonBytes)).status, 200);
      assert.deepEqual(await tmpEntries(srv), []);
      const upload = openUpload(`${base}/v1/images/${img.id}/layer`);
      await upload.write(randomBytes(64 * 1024));
      await waitFor(async () => (await tmpEntries(srv)).length > 0, 'the upload temp file');

      let res = await putLayer(base, img.id, img.layer);
      assert.equal(res.status, 409);
      assert.equal(errorOf(res), 'Another request is uploading this image; retry later');

      upload.kill();
      await waitFor(async () => (await tmpEntries(srv)).length === 0, 'the temp file to be removed');
      res = await getImage(base, img.id, 'json');
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), INCOMPLETE);
      // No layer was recorded by the dead upload.
      res = await putChecksum(base, img.id, { 'X-Docker-Checksum-Payload': payloadChecksum(jsonBytes, img.layer) });
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'Image layer has not been uploaded yet');

      // Pushing again works once the dead request is gone.
      await waitFor(async () => (await putLayer(base, img.id, img.layer)).status === 200, 'the image lock to be released');
      res = await putChecksum(base, img.id, { 'X-Docker-Checksum-Payload': payloadChecksum(jsonBytes, img.layer) });
      assert.equal(res.status, 200, res.body.toString());
      assert.ok((await getImage(base, img.id, 'layer')).body.equals(img.layer));
    });

    it('400 "Checksum mismatch" when the layer does not match the tarsum announced with the json', async () => {
      const id = newImageId();
      const jsonBytes = Buffer.from(JSON.stringify({ id }));
      const layer = tarOf({ 'etc/hello': Buffer.from('hello world\n'), 'bin/x': randomBytes(1500) });
      let res = await putJson(base, id, jsonBytes, { 'X-Docker-Checksum': `tarsum+sha256:${'0'.repeat(64)}` });
      assert.equal(res.status, 200, res.body.toString());
      res = await putLayer(base, id, layer);
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'Checksum mismatch');
      assert.deepEqual(await tmpEntries(srv), []);
      // The image stays incomplete and has no layer.
      res = await getImage(base, id, 'json');
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), INCOMPLETE);
      res = await putChecksum(base, id, { 'X-Docker-Checksum-Payload': payloadChecksum(jsonBytes, layer) });
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'Image layer has not been uploaded yet');
    });

    it('200 when the sha256 payload checksum announced with the json matches the layer', async () => {
      const img = newImage();
      const jsonBytes = imageJson(img);
      const sum = payloadChecksum(jsonBytes, img.layer);
      let res = await putJson(base, img.id, jsonBytes, { 'X-Docker-Checksum': sum });
      assert.equal(res.status, 200);
      res = await putLayer(base, img.id, randomBytes(10));
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'Checksum mismatch');
      res = await putLayer(base, img.id, img.layer);
      assert.equal(res.status, 200, res.body.toString());
      res = await putChecksum(base, img.id, { 'X-Docker-Checksum-Payload': sum });
      assert.equal(res.status, 200, res.body.toString());
    });
  });

  describe('[PUT /v1/images/:id/checksum]', () => {
    async function pending(): Promise<{ img: TestImage; jsonBytes: Buffer; sum: string }> {
      const img = newImage();
      const jsonBytes = imageJson(img);
      assert.equal((await putJson(base, img.id, jsonBytes)).status, 200);
      assert.equal((await putLayer(base, img.id, img.layer)).status, 200);
      return { img, jsonBytes, sum: payloadChecksum(jsonBytes, img.layer) };
    }

    it('412 with neither X-Docker-Checksum-Payload nor X-Docker-Checksum', async () => {
      const { img } = await pending();
      for (const headers of [{}, { 'X-Docker-Checksum': '' }] as Array<Record<string, string>>) {
        const res = await putChecksum(base, img.id, headers);
        assert.equal(res.status, 412);
        assert.equal(
          errorOf(res),
          'X-Docker-Checksum-Payload not set. If you are using the Docker daemon, you should upgrade to version 0.10 or later',
        );
      }
      assert.equal((await getImage(base, img.id, 'json')).status, 400);
    });

    /** A layer that is a tar, its json, and their tarsum (version 0, as old clients send it). */
    async function tarImage(): Promise<{ id: string; jsonBytes: Buffer; layer: Buffer; tarsum: string; sum: string }> {
      const id = newImageId();
      const jsonBytes = Buffer.from(JSON.stringify({ id, created: '2014-01-01T00:00:00Z' }));
      const layer = tarOf({ 'etc/motd': Buffer.from('old docker\n'), 'bin/tool': randomBytes(3000) });
      const stream = new TarsumStream('tarsum', jsonBytes);
      await stream.write(layer);
      return { id, jsonBytes, layer, tarsum: (await stream.digest()) as string, sum: payloadChecksum(jsonBytes, layer) };
    }

    it('old style, before the layer: only X-Docker-Checksum is 200 and recorded; the layer is checked against it; the payload checksum completes the image', async () => {
      const img = await tarImage();
      assert.equal((await putJson(base, img.id, img.jsonBytes)).status, 200);
      let res = await putChecksum(base, img.id, { 'X-Docker-Checksum': img.tarsum });
      assert.equal(res.status, 200, res.body.toString());
      assert.deepEqual(json(res), true);
      assert.equal((await getImage(base, img.id, 'json')).status, 400, 'still pending');
      res = await putLayer(base, img.id, img.layer);
      assert.equal(res.status, 200, res.body.toString());
      res = await putChecksum(base, img.id, { 'X-Docker-Checksum-Payload': img.sum });
      assert.equal(res.status, 200, res.body.toString());
      assert.ok((await getImage(base, img.id, 'layer')).body.equals(img.layer));

      // A wrong announced tarsum: the layer upload is refused, nothing is stored.
      const bad = await tarImage();
      assert.equal((await putJson(base, bad.id, bad.jsonBytes)).status, 200);
      assert.equal((await putChecksum(base, bad.id, { 'X-Docker-Checksum': img.tarsum })).status, 200);
      res = await putLayer(base, bad.id, bad.layer);
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'Checksum mismatch');
      res = await putChecksum(base, bad.id, { 'X-Docker-Checksum-Payload': bad.sum });
      assert.equal(errorOf(res), 'Image layer has not been uploaded yet');
    });

    it('old style, after the layer: recorded, and verified when the payload checksum completes the image', async () => {
      const img = await tarImage();
      assert.equal((await putJson(base, img.id, img.jsonBytes)).status, 200);
      assert.equal((await putLayer(base, img.id, img.layer)).status, 200);
      let res = await putChecksum(base, img.id, { 'X-Docker-Checksum': img.tarsum });
      assert.equal(res.status, 200, res.body.toString());
      assert.equal((await getImage(base, img.id, 'json')).status, 400, 'an old-style checksum alone completes nothing');
      res = await putChecksum(base, img.id, { 'X-Docker-Checksum-Payload': img.sum });
      assert.equal(res.status, 200, res.body.toString());
      assert.equal((await getImage(base, img.id, 'json')).status, 200);

      // A tarsum that does not match: the image stays pending; a right one completes it.
      const bad = await tarImage();
      assert.equal((await putJson(base, bad.id, bad.jsonBytes)).status, 200);
      assert.equal((await putLayer(base, bad.id, bad.layer)).status, 200);
      assert.equal((await putChecksum(base, bad.id, { 'X-Docker-Checksum': img.tarsum })).status, 200);
      res = await putChecksum(base, bad.id, { 'X-Docker-Checksum-Payload': bad.sum });
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'Checksum mismatch (X-Docker-Checksum)');
      assert.equal((await getImage(base, bad.id, 'json')).status, 400);
      assert.equal((await putChecksum(base, bad.id, { 'X-Docker-Checksum': bad.tarsum })).status, 200);
      assert.equal((await putChecksum(base, bad.id, { 'X-Docker-Checksum-Payload': bad.sum })).status, 200);
      assert.equal((await getImage(base, bad.id, 'json')).status, 200);
    });

    it('old style: 400 malformed, 404 unknown image, 409 complete image', async () => {
      const img = await tarImage();
      let res = await putChecksum(base, img.id, { 'X-Docker-Checksum': img.tarsum });
      assert.equal(res.status, 404);
      assert.equal((await putJson(base, img.id, img.jsonBytes)).status, 200);
      res = await putChecksum(base, img.id, { 'X-Docker-Checksum': 'md5:abc' });
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'Invalid X-Docker-Checksum: expected sha256:<64 hex> or tarsum[.v1]+sha256:<64 hex>');
      assert.equal((await putLayer(base, img.id, img.layer)).status, 200);
      assert.equal((await putChecksum(base, img.id, { 'X-Docker-Checksum-Payload': img.sum })).status, 200);
      res = await putChecksum(base, img.id, { 'X-Docker-Checksum': img.tarsum });
      assert.equal(res.status, 409);
    });

    it('400 when X-Docker-Checksum-Payload is empty or malformed', async () => {
      const { img } = await pending();
      let res = await putChecksum(base, img.id, { 'X-Docker-Checksum-Payload': '' });
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), "Missing Image's checksum");
      res = await putChecksum(base, img.id, { 'X-Docker-Checksum-Payload': 'sha256:xyz' });
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'Invalid X-Docker-Checksum-Payload: expected sha256:<64 hex> or tarsum[.v1]+sha256:<64 hex>');
    });

    it('400 on a mismatch, and the image stays incomplete', async () => {
      const { img, jsonBytes } = await pending();
      // The checksum of the layer alone (without the json) is a classic client mistake.
      const wrong = 'sha256:' + sha256(img.layer);
      let res = await putChecksum(base, img.id, { 'X-Docker-Checksum-Payload': wrong });
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'Checksum mismatch');
      for (const what of ['json', 'layer', 'ancestry'] as const) {
        res = await getImage(base, img.id, what);
        assert.equal(res.status, 400, what);
        assert.equal(errorOf(res), INCOMPLETE, what);
      }
      // The right checksum still completes it.
      res = await putChecksum(base, img.id, { 'X-Docker-Checksum-Payload': payloadChecksum(jsonBytes, img.layer) });
      assert.equal(res.status, 200);
    });

    it('404 for an unknown image', async () => {
      const res = await putChecksum(base, newImageId(), { 'X-Docker-Checksum-Payload': `sha256:${'0'.repeat(64)}` });
      assert.equal(res.status, 404);
      assert.equal(errorOf(res), 'Image not found');
    });

    it('409 when the image is already complete', async () => {
      const { img, sum } = await pending();
      assert.equal((await putChecksum(base, img.id, { 'X-Docker-Checksum-Payload': sum })).status, 200);
      const res = await putChecksum(base, img.id, { 'X-Docker-Checksum-Payload': sum });
      assert.equal(res.status, 409);
      assert.equal(errorOf(res), 'Cannot set this image checksum: image already complete');
    });

    it('400 before the layer was uploaded', async () => {
      const img = newImage();
      const jsonBytes = imageJson(img);
      assert.equal((await putJson(base, img.id, jsonBytes)).status, 200);
      const res = await putChecksum(base, img.id, { 'X-Docker-Checksum-Payload': payloadChecksum(jsonBytes, img.layer) });
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'Image layer has not been uploaded yet');
    });

    it('200 when a failed push is pushed again', async () => {
      const { img, jsonBytes } = await pending();
      let res = await putChecksum(base, img.id, { 'X-Docker-Checksum-Payload': `sha256:${'1'.repeat(64)}` });
      assert.equal(res.status, 400);
      // docker pushes the whole image again: json, layer, checksum.
      await pushImage(base, img);
      res = await getImage(base, img.id, 'json');
      assert.equal(res.status, 200);
      assert.ok(res.body.equals(jsonBytes));
      assert.ok((await getImage(base, img.id, 'layer')).body.equals(img.layer));
    });

    it('200 with a tarsum X-Docker-Checksum that was not announced before (recorded as sent)', async () => {
      const { img, sum } = await pending();
      const res = await putChecksum(base, img.id, {
        'X-Docker-Checksum-Payload': sum,
        'X-Docker-Checksum': `tarsum+sha256:${'0'.repeat(64)}`,
      });
      assert.equal(res.status, 200, res.body.toString());
    });
  });

  describe('[GET /v1/images/:id/json|layer|ancestry]', () => {
    it('400 "Image is being uploaded" while the image is incomplete', async () => {
      const img = newImage();
      assert.equal((await putJson(base, img.id, imageJson(img))).status, 200);
      for (const what of ['json', 'layer', 'ancestry'] as const) {
        const res = await getImage(base, img.id, what);
        assert.equal(res.status, 400, what);
        assert.equal(errorOf(res), INCOMPLETE, what);
      }
      assert.equal((await putLayer(base, img.id, img.layer)).status, 200);
      for (const what of ['json', 'layer', 'ancestry'] as const) {
        const res = await getImage(base, img.id, what);
        assert.equal(res.status, 400, what);
        assert.equal(errorOf(res), INCOMPLETE, what);
      }
    });

    it('404 for an unknown image', async () => {
      const id = newImageId();
      for (const what of ['json', 'layer', 'ancestry'] as const) {
        const res = await getImage(base, id, what);
        assert.equal(res.status, 404, what);
        assert.equal(errorOf(res), 'Image not found', what);
      }
    });

    it('200 ancestry lists the image, then its parent, then the grandparent', async () => {
      const a = newImage();
      const b = newImage(a.id);
      const c = newImage(b.id);
      for (const img of [a, b, c]) await pushImage(base, img);
      const res = await getImage(base, c.id, 'ancestry');
      assert.equal(res.status, 200);
      assert.match(res.headers['content-type'] as string, /^application\/json/);
      assert.deepEqual(json(res), [c.id, b.id, a.id]);
      assert.deepEqual(json(await getImage(base, b.id, 'ancestry')), [b.id, a.id]);
      assert.deepEqual(json(await getImage(base, a.id, 'ancestry')), [a.id]);
    });
  });

  describe('[* /v1/images/:id/*] invalid ids', () => {
    const hex64 = 'a'.repeat(64);
    const bad: Array<[string, string]> = [
      ['too short (15 hex)', 'a'.repeat(15)],
      ['uppercase', hex64.toUpperCase()],
      ['non-hex', 'g'.repeat(64)],
      ['65 chars', 'a'.repeat(65)],
      ['dots', '..' + 'a'.repeat(20)],
    ];
    for (const [why, id] of bad) {
      it(`404 "Invalid image ID" when the id is ${why}`, async () => {
        const requests: Array<[string, RequestInit]> = [
          ['json', { method: 'PUT', body: JSON.stringify({ id }) }],
          ['layer', { method: 'PUT', body: 'x' }],
          ['checksum', { method: 'PUT', headers: { 'X-Docker-Checksum-Payload': `sha256:${'0'.repeat(64)}` } }],
          ['json', {}],
          ['layer', {}],
          ['ancestry', {}],
        ];
        for (const [what, init] of requests) {
          const res = await call(`${base}/v1/images/${id}/${what}`, init);
          assert.equal(res.status, 404, `${init.method ?? 'GET'} ${what}`);
          assert.match(res.headers['content-type'] as string, /^application\/json/);
          assert.deepEqual(json(res), { error: BAD_ID }, `${init.method ?? 'GET'} ${what}`);
        }
      });
    }
  });
});
