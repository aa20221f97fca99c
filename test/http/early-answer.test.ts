/**
 * An upload refused before its body has arrived (here: a layer PUT to an image that is
 * already complete → 409) on a `Connection: close` request. The client keeps sending its
 * body while the answer travels back; it must read the 409 and its JSON error, and its
 * writes must never fail with EPIPE/ECONNRESET (the server lingers instead of resetting).
 * A client that never stops sending is still cut off (after the linger time).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { makeImage, prng, send } from '../reliability/crash-harness.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const JSON_TYPE = { 'Content-Type': 'application/json' };

interface Outcome {
  status: number;
  body: string;
  /** Errors the client saw on its request or socket, even after the answer. */
  errors: string[];
}

/** A chunked PUT on a fresh connection that writes `total` bytes (Infinity: never stops). */
function keepSending(url: string, piece: Buffer, total: number): Promise<Outcome & { closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const errors: string[] = [];
    let closedResolve: () => void = () => {};
    const closed = new Promise<void>((r) => (closedResolve = r));
    const req = http.request(url, { method: 'PUT', agent: false, headers: { 'Transfer-Encoding': 'chunked' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), errors, closed }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      errors.push(err.code ?? err.message);
      reject(err);
    });
    req.on('socket', (socket) => socket.once('close', () => closedResolve()));
    void (async () => {
      for (let sent = 0; sent < total && !req.destroyed; sent += piece.length) {
        const ok = await new Promise<boolean>((r) => req.write(piece, (err) => r(!err)));
        if (!ok) return;
      }
      if (!req.destroyed) req.end();
    })();
  });
}

describe('an upload answered before its body arrived', () => {
  let srv: TestServer;
  let id: string;
  before(async () => {
    srv = await startTestServer();
    const img = makeImage(prng(5), null, 64 * 1024);
    id = img.id;
    assert.equal((await send(srv.url, 'PUT', `/v1/images/${id}/json`, { headers: JSON_TYPE, body: img.json })).status, 200);
    assert.equal((await send(srv.url, 'PUT', `/v1/images/${id}/layer`, { body: img.layer })).status, 200);
    const checksum = await send(srv.url, 'PUT', `/v1/images/${id}/checksum`, { headers: { 'X-Docker-Checksum-Payload': img.checksum } });
    assert.equal(checksum.status, 200);
  });
  after(async () => {
    await srv?.destroy();
  });

  it('the client reads the 409 and never sees a reset while it is still sending', async () => {
    const piece = Buffer.alloc(16 * 1024, 7);
    const outcomes = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const mine: Outcome[] = [];
        for (let i = 0; i < 10; i++) {
          const outcome = await keepSending(`${srv.url}/v1/images/${id}/layer`, piece, 4 * 1024 * 1024);
          await outcome.closed;
          mine.push(outcome);
        }
        return mine;
      }),
    );
    for (const outcome of outcomes.flat()) {
      assert.equal(outcome.status, 409);
      assert.equal(typeof (JSON.parse(outcome.body) as { error?: unknown }).error, 'string');
      assert.deepEqual(outcome.errors, [], 'no write of the client failed, before or after the answer');
    }
  });

  it('a client that never stops sending after the answer is still cut off', async () => {
    // A raw socket that keeps its side open when the server half-closes, and keeps sending.
    const { port } = new URL(srv.url);
    const socket = net.connect({ port: Number(port), host: '127.0.0.1', allowHalfOpen: true });
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(`PUT /v1/images/${id}/layer HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n`);
    const piece = Buffer.alloc(16 * 1024, 3);
    const chunk = Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]);
    let open = true;
    void closed.then(() => (open = false));
    while (open) {
      const written = socket.write(chunk);
      await Promise.race([closed, new Promise<void>((resolve) => (written ? setImmediate(resolve) : socket.once('drain', resolve)))]);
    }
    assert.match(answer, /^HTTP\/1\.1 409 /, 'the answer arrived before the server closed the connection');
    assert.match(answer, /"error":/);
    const ping = await send(srv.url, 'GET', '/v1/_ping');
    assert.equal(ping.status, 200);
  });
});
