/**
 * Layer downloads through both send paths: sendfile(2) (the native addon, the default on
 * Linux) and streaming through Node buffers (`layer_sendfile: false`). Byte-exact bodies
 * and ranges, keep-alive and pipelined requests on one connection, a client that stops
 * reading (cut off after download_stall_timeout_seconds), a client that goes away
 * mid-download (no descriptor left behind), and the bytes counted in the log line.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { sendfileAvailable } from '../../src/http/shared/sendfile.js';
import { eventually } from '../helpers/eventually.js';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';
import { pushImage } from '../helpers/v1.js';

const SIZE = 8 * 1024 * 1024 + 12_345;
const STALL_SIZE = 48 * 1024 * 1024;

it('the sendfile addon is built and loads on Linux', { skip: process.platform !== 'linux' }, () => {
  assert.equal(sendfileAvailable, true, 'native/build/Release/sendfile.node missing: did `npm install` run its install script?');
});

/** Sends raw request text on one connection; resolves with everything received until the server closes or `until` says enough. */
function rawExchange(url: string, text: string, until: (received: Buffer) => boolean): Promise<Buffer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const socket = net.connect(Number(port), hostname, () => socket.write(text));
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      length += chunk.length;
      if (until(Buffer.concat(chunks, length))) socket.destroy();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks, length)));
  });
}

interface Parsed {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Splits back-to-back HTTP/1.1 responses that all carry Content-Length. */
function parseResponses(data: Buffer): Parsed[] {
  const out: Parsed[] = [];
  let at = 0;
  while (at < data.length) {
    const headEnd = data.indexOf('\r\n\r\n', at);
    assert.ok(headEnd > 0, 'incomplete response head');
    const [statusLine, ...lines] = data.subarray(at, headEnd).toString('latin1').split('\r\n');
    const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
    const length = Number(headers['content-length']);
    const body = data.subarray(headEnd + 4, headEnd + 4 + length);
    assert.equal(body.length, length, 'response body cut short');
    out.push({ status: Number(statusLine.split(' ')[1]), headers, body });
    at = headEnd + 4 + length;
  }
  return out;
}

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}


for (const sendfile of [true, false]) {
  describe(`layer downloads, layer_sendfile: ${sendfile}`, { skip: sendfile && !sendfileAvailable && 'the addon is not built' }, () => {
    let srv: TestServer;
    let layer: Buffer;
    let url: string;
    let stallUrl: string;
    let path: string;
    before(async () => {
      // The default stall timeout: a busy test process that reads a pipelined answer late is
      // not a stalled client. The stall test has a server of its own with 1 s.
      srv = await startTestServer({ overrides: { layer_sendfile: sendfile }, captureLogs: true });
      layer = randomBytes(SIZE);
      const id = newImageId();
      await pushImage(srv.url, { id, layer });
      path = `/v1/images/${id}/layer`;
      url = `${srv.url}${path}`;
      const stallId = newImageId();
      await pushImage(srv.url, { id: stallId, layer: randomBytes(STALL_SIZE) });
      stallUrl = `${srv.url}/v1/images/${stallId}/layer`;
    });
    after(async () => {
      await srv.destroy();
    });

    it('sends the whole layer and byte ranges byte-exact; the log counts the bytes sent', async () => {
      const whole = await fetch(url);
      assert.equal(whole.status, 200);
      assert.ok(Buffer.from(await whole.arrayBuffer()).equals(layer));
      for (const [start, end] of [[0, 0], [1, 4096], [4095, 4097], [SIZE - 1, SIZE - 1], [1_000_000, SIZE - 1]]) {
        const res = await fetch(url, { headers: { Range: `bytes=${start}-${end}` } });
        assert.equal(res.status, 206);
        assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/${SIZE}`);
        assert.ok(Buffer.from(await res.arrayBuffer()).equals(layer.subarray(start, end + 1)), `bytes ${start}-${end}`);
      }
      await eventually(
        () =>
          assert.ok(
            srv.logs.some((line) => line.includes(`"path":"${path}"`) && line.includes(`"status":200`) && line.includes(`"bytesOut":${SIZE}`)),
            'no log line with the full download and its bytesOut',
          ),
        1000,
      );
    });

    it('serves keep-alive and pipelined requests on one connection in order', async () => {
      const { host } = new URL(srv.url);
      const request = (range: string) => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${range ? `Range: bytes=${range}\r\n` : ''}\r\n`;
      // Three requests in one write: Node queues the later answers behind the running send.
      const text = request('') + request('100-199') + `GET /v1/_ping HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
      const responses = parseResponses(await rawExchange(srv.url, text, () => false));
      assert.deepEqual(responses.map((r) => r.status), [200, 206, 200]);
      assert.ok(responses[0].body.equals(layer));
      assert.ok(responses[1].body.equals(layer.subarray(100, 200)));
      assert.equal(responses[2].body.toString(), 'true');

      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const sockets = new Set<unknown>();
      try {
        for (let i = 0; i < 3; i++) {
          const body = await new Promise<Buffer>((resolve, reject) => {
            http.get(url, { agent }, (res) => {
              sockets.add(res.socket);
              const chunks: Buffer[] = [];
              res.on('data', (chunk: Buffer) => chunks.push(chunk));
              res.on('end', () => resolve(Buffer.concat(chunks)));
              res.on('error', reject);
            }).on('error', reject);
          });
          assert.ok(body.equals(layer), `download ${i} on the kept-alive connection`);
        }
        assert.equal(sockets.size, 1, 'the three downloads shared one connection');
      } finally {
        agent.destroy();
      }
    });

    it('cuts off a client that stops reading, and keeps serving others', async () => {
      const stalling = await startTestServer({ overrides: { layer_sendfile: sendfile, download_stall_timeout_seconds: 1 } });
      try {
        const id = newImageId();
        await pushImage(stalling.url, { id, layer: randomBytes(STALL_SIZE) });
        await cutOff(`${stalling.url}/v1/images/${id}/layer`);
        // The server keeps serving others.
        const again = await fetch(`${stalling.url}/v1/images/${id}/layer`);
        assert.equal(Buffer.from(await again.arrayBuffer()).length, STALL_SIZE);
      } finally {
        await stalling.destroy();
      }
    });

    /** A client that reads 1 MiB of `stallUrl`, then stops reading for 3 s: it must be cut off. */
    async function cutOff(stallUrl: string): Promise<void> {
      const { hostname, port, host } = new URL(stallUrl);
      let received = 0;
      let stopped = false;
      const socket = net.connect(Number(port), hostname, () => socket.write(`GET ${new URL(stallUrl).pathname} HTTP/1.1\r\nHost: ${host}\r\n\r\n`));
      socket.on('data', (chunk) => {
        received += chunk.length;
        if (received > 1024 * 1024 && !stopped) {
          stopped = true;
          socket.pause(); // a client that stops reading
        }
      });
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      socket.on('error', () => undefined);
      await new Promise((resolve) => setTimeout(resolve, 3000)); // the stall timeout is 1 s
      socket.resume();
      await closed;
      assert.ok(received < STALL_SIZE, `the stalled client got ${received} of ${STALL_SIZE} bytes: it was not cut off`);
    }

    it('a graceful stop is not held up by a download whose client stopped reading', async () => {
      // Its own server: stopping it must not end the other tests' server.
      const own = await startTestServer({ overrides: { layer_sendfile: sendfile, download_stall_timeout_seconds: 600 } });
      try {
        const id = newImageId();
        await pushImage(own.url, { id, layer: randomBytes(STALL_SIZE) });
        const { hostname, port, host } = new URL(own.url);
        const socket = net.connect(Number(port), hostname, () => socket.write(`GET /v1/images/${id}/layer HTTP/1.1\r\nHost: ${host}\r\n\r\n`));
        socket.on('error', () => undefined);
        await new Promise<void>((resolve) => socket.once('data', () => resolve()));
        socket.pause(); // headers and some bytes in: the send is under way, and now stuck
        const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
        const started = Date.now();
        await own.stop(); // 1 s of grace, then open connections are closed
        const took = Date.now() - started;
        socket.resume();
        await closed;
        assert.ok(took < 5000, `stop took ${took} ms`);
      } finally {
        await own.destroy();
      }
    });

    it('a client that goes away mid-download leaves no descriptor behind', { skip: process.platform !== 'linux' }, async () => {
      await (await fetch(`${srv.url}/v1/_ping`)).arrayBuffer();
      const before = openFds();
      for (let i = 0; i < 5; i++) {
        const got = await rawExchange(stallUrl, `GET ${new URL(stallUrl).pathname} HTTP/1.1\r\nHost: x\r\n\r\n`, (data) => data.length > 256 * 1024);
        assert.ok(got.length < STALL_SIZE);
      }
      await eventually(() => assert.ok(openFds() <= before, `descriptors: ${before} before, ${openFds()} after`), 3000);
      const again = await fetch(url);
      assert.ok(Buffer.from(await again.arrayBuffer()).equals(layer));
    });
  });
}
