/**
 * Registry API v1, layer download: caching headers, single byte ranges (RFC 9110 §14),
 * 416, HEAD (no body), conditional requests, the empty layer.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { errorOf, rawRequest, type RawResponse } from '../helpers/http-raw.js';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';
import { pushImage } from '../helpers/v1.js';

const SIZE = 100_003;

function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<RawResponse> {
  return rawRequest(url, { method, headers });
}

function etagOf(layer: Buffer): string {
  return `"sha256:${createHash('sha256').update(layer).digest('hex')}"`;
}

describe('[GET /v1/images/:id/layer]', () => {
  let srv: TestServer;
  let layer: Buffer;
  let url: string;
  let emptyUrl: string;
  before(async () => {
    srv = await startTestServer();
    layer = randomBytes(SIZE);
    const id = newImageId();
    await pushImage(srv.url, { id, layer });
    url = `${srv.url}/v1/images/${id}/layer`;
    const emptyId = newImageId();
    await pushImage(srv.url, { id: emptyId, layer: Buffer.alloc(0) });
    emptyUrl = `${srv.url}/v1/images/${emptyId}/layer`;
  });
  after(async () => {
    await srv.destroy();
  });

  function assertPartial(res: RawResponse, start: number, end: number): void {
    assert.equal(res.status, 206);
    assert.equal(res.headers['content-range'], `bytes ${start}-${end}/${SIZE}`);
    assert.equal(res.headers['content-length'], String(end - start + 1));
    assert.equal(res.body.length, end - start + 1);
    assert.ok(res.body.equals(layer.subarray(start, end + 1)), `bytes ${start}-${end} differ`);
  }

  function assertFull(res: RawResponse): void {
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-range'], undefined);
    assert.equal(res.headers['content-length'], String(SIZE));
    assert.ok(res.body.equals(layer), 'full layer differs');
  }

  function assertUnsatisfiable(res: RawResponse, size = SIZE): void {
    assert.equal(res.status, 416);
    assert.equal(res.headers['content-range'], `bytes */${size}`);
    assert.equal(errorOf(res), 'Requested range not satisfiable');
  }

  describe('full download', () => {
    it('200 with Accept-Ranges, Content-Length, ETag, immutable Cache-Control and octet-stream', async () => {
      const res = await get(url);
      assertFull(res);
      assert.equal(res.headers['accept-ranges'], 'bytes');
      assert.equal(res.headers['etag'], etagOf(layer));
      assert.equal(res.headers['content-type'], 'application/octet-stream');
      const cache = res.headers['cache-control'] as string;
      assert.match(cache, /\bimmutable\b/);
      assert.match(cache, /\bmax-age=(\d+)/);
      assert.ok(Number(/max-age=(\d+)/.exec(cache)![1]) >= 86400 * 30, `max-age too short: ${cache}`);
    });

    it('200 with the whole layer through fetch too', async () => {
      const res = await fetch(url);
      assert.equal(res.status, 200);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(layer));
    });
  });

  describe('Range', () => {
    it('206 for bytes=a-b with the exact bytes and Content-Range', async () => {
      assertPartial(await get(url, { Range: 'bytes=0-0' }), 0, 0);
      assertPartial(await get(url, { Range: 'bytes=0-99' }), 0, 99);
      assertPartial(await get(url, { Range: 'bytes=1000-65535' }), 1000, 65535);
      assertPartial(await get(url, { Range: `bytes=${SIZE - 1}-${SIZE - 1}` }), SIZE - 1, SIZE - 1);
      assertPartial(await get(url, { Range: `bytes=0-${SIZE - 1}` }), 0, SIZE - 1);
    });

    it('206 for an open-ended bytes=a-', async () => {
      assertPartial(await get(url, { Range: 'bytes=5000-' }), 5000, SIZE - 1);
      assertPartial(await get(url, { Range: `bytes=${SIZE - 1}-` }), SIZE - 1, SIZE - 1);
    });

    it('206 for a suffix bytes=-n', async () => {
      assertPartial(await get(url, { Range: 'bytes=-1' }), SIZE - 1, SIZE - 1);
      assertPartial(await get(url, { Range: 'bytes=-500' }), SIZE - 500, SIZE - 1);
      // A suffix longer than the layer is the whole layer, still as a 206.
      assertPartial(await get(url, { Range: `bytes=-${SIZE * 2}` }), 0, SIZE - 1);
    });

    it('206 clamped to the last byte when the end is past the size', async () => {
      assertPartial(await get(url, { Range: `bytes=100-${SIZE + 1000}` }), 100, SIZE - 1);
      assertPartial(await get(url, { Range: 'bytes=0-99999999999' }), 0, SIZE - 1);
    });

    it('416 with Content-Range "bytes */SIZE" when the start is past the end', async () => {
      assertUnsatisfiable(await get(url, { Range: `bytes=${SIZE}-${SIZE + 10}` }));
      assertUnsatisfiable(await get(url, { Range: `bytes=${SIZE + 5}-${SIZE + 5}` }));
      assertUnsatisfiable(await get(url, { Range: 'bytes=99999999-99999999' }));
    });

    it(
      '416 with Content-Range "bytes */SIZE" for an open-ended range starting past the end',
      async () => {
        assertUnsatisfiable(await get(url, { Range: `bytes=${SIZE}-` }));
        assertUnsatisfiable(await get(url, { Range: 'bytes=99999999-' }));
      },
    );

    it('416 for a zero-length suffix bytes=-0', async () => {
      assertUnsatisfiable(await get(url, { Range: 'bytes=-0' }));
    });

    it('200 with the whole layer for malformed or multiple ranges', async () => {
      for (const range of ['bytes=abc', 'items=0-10', 'bytes=', 'bytes=-', 'bytes=10-5', 'bytes=0-1,5-9', 'bytes=0-1, 3-4', 'bytes 0-10', '0-10']) {
        const res = await get(url, { Range: range });
        assertFull(res);
      }
    });
  });

  describe('HEAD', () => {
    it('200 with the headers of a GET and no body', async () => {
      const res = await get(url, {}, 'HEAD');
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-length'], String(SIZE));
      assert.equal(res.headers['accept-ranges'], 'bytes');
      assert.equal(res.headers['etag'], etagOf(layer));
      assert.equal(res.headers['content-type'], 'application/octet-stream');
      assert.match(res.headers['cache-control'] as string, /immutable/);
      assert.equal(res.body.length, 0);
    });

    it('206 with Content-Range and the range length and no body', async () => {
      const res = await get(url, { Range: 'bytes=10-19' }, 'HEAD');
      assert.equal(res.status, 206);
      assert.equal(res.headers['content-range'], `bytes 10-19/${SIZE}`);
      assert.equal(res.headers['content-length'], '10');
      assert.equal(res.body.length, 0);
    });

    it('416 for an unsatisfiable range', async () => {
      const res = await get(url, { Range: `bytes=${SIZE}-${SIZE}` }, 'HEAD');
      assert.equal(res.status, 416);
      assert.equal(res.headers['content-range'], `bytes */${SIZE}`);
      assert.equal(res.body.length, 0);
    });

    it('404 for an unknown image', async () => {
      const res = await get(`${srv.url}/v1/images/${newImageId()}/layer`, {}, 'HEAD');
      assert.equal(res.status, 404);
      assert.equal(res.body.length, 0);
    });
  });

  describe('conditional requests', () => {
    it('304 with no body for If-None-Match with the ETag', async () => {
      const etag = etagOf(layer);
      for (const header of [etag, `"other", ${etag}`]) {
        const res = await get(url, { 'If-None-Match': header });
        assert.equal(res.status, 304, header);
        assert.equal(res.headers['etag'], etag);
        assert.equal(res.body.length, 0);
      }
    });

    it('304 for If-None-Match with the weak form of the ETag or "*" (weak comparison, RFC 9110 13.1.2)', async () => {
      for (const header of [`W/${etagOf(layer)}`, '*', `"x",W/${etagOf(layer)}`]) {
        const res = await get(url, { 'If-None-Match': header });
        assert.equal(res.status, 304, header);
        assert.equal(res.body.length, 0, header);
      }
    });

    it('200 for If-None-Match with another ETag', async () => {
      assertFull(await get(url, { 'If-None-Match': '"sha256:0000"' }));
    });

    it('200 with the whole layer for If-Range with a different ETag', async () => {
      assertFull(await get(url, { Range: 'bytes=0-9', 'If-Range': '"sha256:not-this-one"' }));
    });

    it('200 with the whole layer for If-Range with the weak ETag or a date (strong comparison only)', async () => {
      assertFull(await get(url, { Range: 'bytes=0-9', 'If-Range': `W/${etagOf(layer)}` }));
      assertFull(await get(url, { Range: 'bytes=0-9', 'If-Range': 'Wed, 21 Oct 2015 07:28:00 GMT' }));
    });

    it('206 for If-Range with the current ETag', async () => {
      assertPartial(await get(url, { Range: 'bytes=0-9', 'If-Range': etagOf(layer) }), 0, 9);
    });
  });

  describe('streams', () => {
    /** Counts the layer streams the server opens while `fn` runs. */
    async function countOpens(fn: () => Promise<void>): Promise<number> {
      const images = srv.running.services.images;
      const original = images.openLayer;
      let opened = 0;
      images.openLayer = function (this: typeof images, ...args: Parameters<typeof original>) {
        opened += 1;
        return original.apply(this, args);
      };
      try {
        await fn();
      } finally {
        images.openLayer = original;
      }
      return opened;
    }

    it('HEAD, 304 and 416 open no layer stream; GET opens one', async () => {
      assert.equal(await countOpens(async () => void (await get(url, {}, 'HEAD'))), 0, 'HEAD');
      assert.equal(await countOpens(async () => void (await get(url, { Range: 'bytes=0-9' }, 'HEAD'))), 0, 'HEAD 206');
      assert.equal(await countOpens(async () => void (await get(url, { 'If-None-Match': etagOf(layer) }))), 0, '304');
      assert.equal(await countOpens(async () => void (await get(url, { Range: `bytes=${SIZE}-${SIZE}` }))), 0, '416');
      assert.equal(await countOpens(async () => void (await get(url))), 1, 'GET');
    });

    it('a client that goes away mid-download does not hurt the server', async () => {
      const big = randomBytes(8 * 1024 * 1024);
      const id = newImageId();
      await pushImage(srv.url, { id, layer: big });
      const bigUrl = `${srv.url}/v1/images/${id}/layer`;
      for (let i = 0; i < 3; i++) {
        // Read the first chunk, then drop the connection.
        await new Promise<void>((resolve, reject) => {
          const req = http.get(bigUrl, { agent: false }, (res) => {
            assert.equal(res.statusCode, 200);
            res.once('data', (chunk: Buffer) => {
              assert.ok(chunk.length > 0);
              req.destroy();
              resolve();
            });
          });
          req.once('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
        });
      }
      const full = await get(bigUrl);
      assert.equal(full.status, 200);
      assert.ok(full.body.equals(big));
      assertPartial(await get(url, { Range: 'bytes=10-20' }), 10, 20);
    });
  });

  describe('zero-length layer', () => {
    it('200 with Content-Length 0 and an empty body', async () => {
      const res = await get(emptyUrl);
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-length'], '0');
      assert.equal(res.headers['etag'], etagOf(Buffer.alloc(0)));
      assert.equal(res.headers['accept-ranges'], 'bytes');
      assert.equal(res.body.length, 0);
    });

    it('200 for HEAD with Content-Length 0', async () => {
      const res = await get(emptyUrl, {}, 'HEAD');
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-length'], '0');
    });

    it('416 with "bytes */0" for a range', async () => {
      for (const range of ['bytes=0-0', 'bytes=0-10', 'bytes=-1']) {
        assertUnsatisfiable(await get(emptyUrl, { Range: range }), 0);
      }
    });

    it(
      '416 with "bytes */0" for the open-ended bytes=0-',
      async () => {
        assertUnsatisfiable(await get(emptyUrl, { Range: 'bytes=0-' }), 0);
      },
    );

    it('X-Docker-Size 0 on its json', async () => {
      const res = await fetch(emptyUrl.replace(/layer$/, 'json'));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-docker-size'), '0');
    });
  });
});
