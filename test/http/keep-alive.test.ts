/**
 * Keep-alive after an early answer: a refusal sent before (or instead of) reading the whole
 * request body (413 over max_json_bytes on every JSON route, 401, 403, 404, 409) must leave
 * the client able to send its next request. Node's keep-alive agent with one socket (as
 * Python `requests` sessions and Go's client do it) sends the refused request, then the
 * next one: the refused request must end without an error (no reset after its answer), and
 * the next one must be answered, on the same connection when the answer kept it open.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { basicAuth, imageJsonOf, login, push } from '../helpers/docker1.js';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';

const LIMIT = 4096;

interface Sent {
  status: number;
  body: string;
  connection: string | undefined;
  reusedSocket: boolean;
  /** Errors seen on the request or its socket until the request closed, even after the answer. */
  errors: string[];
}

/**
 * Sends one request through `agent` and waits until it is completely over (answer read,
 * request closed), collecting every error. `body` is sent with Content-Length, or chunked
 * in 64 KiB pieces.
 */
function send(agent: http.Agent, url: string, method: string, headers: Record<string, string>, body?: Buffer, chunked = false): Promise<Sent> {
  return new Promise((resolve) => {
    const errors: string[] = [];
    let answer: Omit<Sent, 'errors' | 'reusedSocket'> | null = null;
    const req = http.request(url, { method, agent, headers: { ...headers, ...(chunked ? { 'Transfer-Encoding': 'chunked' } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err: NodeJS.ErrnoException) => errors.push(`response: ${err.code ?? err.message}`));
      res.on('end', () => {
        answer = { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), connection: res.headers.connection };
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => errors.push(`request: ${err.code ?? err.message}`));
    req.on('close', () => {
      // 'close' can come before the response's 'end' was handled: give it a turn.
      setImmediate(() => resolve({ ...(answer ?? { status: 0, body: '', connection: undefined }), reusedSocket: req.reusedSocket, errors }));
    });
    if (!body) {
      req.end();
      return;
    }
    if (!chunked) {
      req.end(body);
      return;
    }
    void (async () => {
      for (let offset = 0; offset < body.length && !req.destroyed; offset += 64 * 1024) {
        if (!req.write(body.subarray(offset, offset + 64 * 1024))) await new Promise((r) => req.once('drain', r));
      }
      if (!req.destroyed) req.end();
    })();
  });
}

describe('keep-alive after an early answer', () => {
  let srv: TestServer;
  const alice = { username: 'alice', password: 'alice-pass', email: 'alice@example.test' };
  const bob = { username: 'bobby', password: 'bobby-pass', email: 'bob@example.test' };
  let complete: string;
  before(async () => {
    srv = await startTestServer({ overrides: { standalone: false, max_json_bytes: LIMIT } });
    for (const user of [alice, bob]) assert.equal(await login(srv.url, user), 'created');
    const image = { id: newImageId(), layer: randomBytes(1000) };
    await push(srv.url, alice, 'alice/app', 'latest', [image]);
    complete = image.id;
  });
  after(async () => {
    await srv?.destroy();
  });

  /** The refused request, then `GET /v1/repositories/alice/app/tags` on the same agent. */
  async function refusedThenNext(what: string, method: string, path: string, headers: Record<string, string>, body: Buffer, chunked: boolean, status: number) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await send(agent, `${srv.url}${path}`, method, headers, body, chunked);
      assert.equal(first.status, status, `${what}: ${first.body}`);
      assert.match(first.body, /^\{"error":/, `${what}: a JSON error`);
      assert.deepEqual(first.errors, [], `${what}: the refused request ends cleanly (no reset after its answer)`);
      const next = await send(agent, `${srv.url}/v1/repositories/alice/app/tags`, 'GET', {});
      assert.deepEqual(next.errors, [], `${what}: the next request`);
      assert.equal(next.status, 200, `${what}: the next request is answered: ${next.body}`);
      assert.deepEqual(JSON.parse(next.body), { latest: complete });
      if (first.connection !== 'close') assert.equal(next.reusedSocket, true, `${what}: kept open, so the next request used the same connection`);
      return first;
    } finally {
      agent.destroy();
    }
  }

  const jsonRoutes: Array<[string, string, string]> = [
    ['push start', 'PUT', '/v1/repositories/alice/app/'],
    ['push end', 'PUT', '/v1/repositories/alice/app/images'],
    ['tag', 'PUT', '/v1/repositories/alice/app/tags/big'],
    ['image json', 'PUT', `/v1/images/${'ab'.repeat(32)}/json`],
    ['sign-up', 'POST', '/v1/users/'],
  ];
  for (const [name, method, path] of jsonRoutes) {
    it(`413 on ${name} (${method} ${path}), announced by Content-Length or chunked: the next request is answered`, async () => {
      const headers = { Authorization: basicAuth(alice), 'Content-Type': 'application/json' };
      // Over the limit by Content-Length: refused before a byte is read, then read and dropped.
      const small = await refusedThenNext(`${name}, Content-Length`, method, path, headers, Buffer.alloc(LIMIT * 16, 0x20), false, 413);
      assert.notEqual(small.connection, 'close', 'a short body is read and dropped: the connection stays open');
      // Chunked: the reader stops at the limit; the rest of the body still has to go somewhere.
      await refusedThenNext(`${name}, chunked`, method, path, headers, Buffer.alloc(2 * 1024 * 1024, 0x20), true, 413);
    });
  }

  it('401, 403, 404 and 409 answered before the body was read: the next request is answered', async () => {
    const layer = randomBytes(256 * 1024);
    const cases: Array<[string, string, string, Record<string, string>, number]> = [
      ['anonymous layer upload', 'PUT', `/v1/images/${newImageId()}/layer`, {}, 401],
      ['wrong password', 'PUT', `/v1/images/${newImageId()}/layer`, { Authorization: basicAuth({ ...alice, password: 'not-hers' }) }, 401],
      ["a tag in another user's repository", 'PUT', '/v1/repositories/alice/app/tags/x', { Authorization: basicAuth(bob) }, 403],
      ['a layer before its json', 'PUT', `/v1/images/${newImageId()}/layer`, { Authorization: basicAuth(alice) }, 404],
      ['a layer of a complete image', 'PUT', `/v1/images/${complete}/layer`, { Authorization: basicAuth(alice) }, 409],
      ['an unknown route', 'PUT', '/v1/nothing/here', {}, 404],
    ];
    for (const [what, method, path, headers, status] of cases) {
      await refusedThenNext(`${what}, Content-Length`, method, path, headers, layer, false, status);
      await refusedThenNext(`${what}, chunked`, method, path, headers, layer, true, status);
    }
  });

  it('a good request after a refused one on the same connection does its work', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const image = { id: newImageId(), parent: complete, layer: randomBytes(100) };
      const auth = { Authorization: basicAuth(alice), 'Content-Type': 'application/json' };
      const refused = await send(agent, `${srv.url}/v1/images/${image.id}/json`, 'PUT', auth, Buffer.alloc(LIMIT * 4, 0x20));
      assert.equal(refused.status, 413);
      const json = imageJsonOf(image);
      const ok = await send(agent, `${srv.url}/v1/images/${image.id}/json`, 'PUT', auth, json);
      assert.equal(ok.status, 200, ok.body);
      assert.equal(ok.reusedSocket, true);
      assert.deepEqual([...refused.errors, ...ok.errors], []);
      const stored = await srv.running.services.meta.getImageJson(image.id as never);
      assert.ok(stored?.equals(json), 'the json the second request carried is stored byte for byte');
    } finally {
      agent.destroy();
    }
  });
});
