/**
 * Log redaction and request lines: a docker 1.x session with authentication on (login,
 * push and pull with tokens, a wrong password, a forged token, a request that fails with
 * a 500), then every captured log line is searched for the secrets that went over the wire.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../src/logger.js';
import { basicAuth, Docker1Error, imageJsonOf, login, pull, push, tokenAuth, type Credentials } from '../helpers/docker1.js';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';
import { imageJson } from '../helpers/v1.js';

interface RequestLine {
  level: number;
  msg: string;
  reqId: string;
  method: string;
  path: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
  ms: number;
  [key: string]: unknown;
}

describe('logs', () => {
  let srv: TestServer;
  const creds: Credentials & { email: string } = {
    username: 'logwatcher',
    password: `Pw-${randomBytes(9).toString('hex')}`,
    email: 'logwatcher@example.com',
  };
  const wrongPassword = `Wrong-${randomBytes(9).toString('hex')}`;
  const base = { id: newImageId(), layer: randomBytes(20_000) };
  const child = { id: newImageId(), parent: base.id, layer: randomBytes(30_000) };
  const failing = { id: newImageId(), layer: randomBytes(5000) };
  const secrets = new Map<string, string>();
  let lines: Array<Record<string, unknown>>;
  /** Requests this test sent (the helpers use the global fetch). */
  let sent = 0;
  const realFetch = globalThis.fetch;

  before(async () => {
    srv = await startTestServer({ overrides: { standalone: false }, captureLogs: true });
    globalThis.fetch = (input, init) => {
      sent += 1;
      return realFetch(input, init);
    };
    secrets.set('password', creds.password);
    secrets.set('wrong password', wrongPassword);
    secrets.set('Basic user:password', Buffer.from(`${creds.username}:${creds.password}`).toString('base64'));
    secrets.set('Basic user:wrong', Buffer.from(`${creds.username}:${wrongPassword}`).toString('base64'));

    // docker login: sign-up, then the same login again (400 "exists", GET /v1/users/ with Basic).
    assert.equal(await login(srv.url, creds), 'created');
    assert.equal(await login(srv.url, creds), 'logged-in');

    const pushed = await push(srv.url, creds, `${creds.username}/app`, 'latest', [base, child]);
    const pulled = await pull(srv.url, creds, `${creds.username}/app`, 'latest');
    assert.ok(pulled.images[1].layer.equals(child.layer));
    for (const [name, token] of [['push token', pushed.token ?? ''], ['pull token', pulled.token ?? '']] as const) {
      const m = /^signature=([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+),/.exec(token);
      assert.ok(m, token);
      secrets.set(name, token);
      secrets.set(`${name} signature`, `${m[1]}.${m[2]}`);
      secrets.set(`${name} mac`, m[2]);
      secrets.set(`${name} payload`, m[1]);
    }

    // Layer reads that send less than the whole layer, or nothing.
    const layerUrl = `${srv.url}/v1/images/${base.id}/layer`;
    const head = await fetch(layerUrl, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('Content-Length'), String(base.layer.length));
    const range = await fetch(layerUrl, { headers: { Range: 'bytes=100-1099' } });
    assert.equal(range.status, 206);
    assert.equal((await range.arrayBuffer()).byteLength, 1000);
    const cached = await fetch(layerUrl, { headers: { 'If-None-Match': head.headers.get('ETag') as string } });
    assert.equal(cached.status, 304);

    // A wrong password, on the login route and on a registry route.
    const wrong = { Authorization: basicAuth({ username: creds.username, password: wrongPassword }) };
    assert.equal((await fetch(`${srv.url}/v1/users/`, { headers: wrong })).status, 401);
    assert.equal((await fetch(`${srv.url}/v1/repositories/${creds.username}/app/tags`, { headers: wrong })).status, 401);
    await assert.rejects(login(srv.url, { ...creds, password: wrongPassword }), (err: unknown) => (err as Docker1Error).status === 401);

    // A forged token: the pull token with another MAC.
    const mac = secrets.get('pull token mac') as string;
    const forgedMac = randomBytes(Buffer.from(mac, 'base64url').length).toString('base64url');
    const forged = (pulled.token ?? '').replace(mac, forgedMac);
    secrets.set('forged token', forged);
    secrets.set('forged mac', forgedMac);
    const forgedRes = await fetch(`${srv.url}/v1/repositories/${creds.username}/app/tags`, { headers: { Authorization: tokenAuth(forged) } });
    assert.equal(forgedRes.status, 401);

    // A request that fails (500) while carrying a valid token: the upload directory is gone.
    const start = await fetch(`${srv.url}/v1/repositories/${creds.username}/app/`, {
      method: 'PUT',
      headers: { Authorization: basicAuth(creds), 'X-Docker-Token': 'true', 'Content-Type': 'application/json' },
      body: JSON.stringify([{ id: failing.id }]),
    });
    assert.equal(start.status, 200);
    const failingToken = start.headers.get('X-Docker-Token') as string;
    assert.ok(failingToken);
    secrets.set('third token', failingToken);
    secrets.set('third token signature', (/^signature=([^,]+),/.exec(failingToken) as RegExpExecArray)[1]);
    const withToken = { Authorization: tokenAuth(failingToken) };
    const json = await fetch(`${srv.url}/v1/images/${failing.id}/json`, { method: 'PUT', headers: withToken, body: imageJson(failing) });
    assert.equal(json.status, 200);
    // The session cookie that request opened, sent back alone (a request it authorizes).
    const session = (json.headers.get('Set-Cookie') ?? '').split(';')[0];
    assert.match(session, /^registry_session=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    secrets.set('session cookie', session.slice('registry_session='.length));
    const bySession = await fetch(`${srv.url}/v1/repositories/${creds.username}/app/tags`, { headers: { Cookie: session } });
    assert.equal(bySession.status, 200);
    const tmp = path.join(srv.root, 'tmp');
    await fs.rm(tmp, { recursive: true, force: true });
    await fs.writeFile(tmp, 'not a directory');
    try {
      const layer = await fetch(`${srv.url}/v1/images/${failing.id}/layer`, { method: 'PUT', headers: withToken, body: failing.layer });
      assert.equal(layer.status, 500, await layer.clone().text());
    } finally {
      await fs.rm(tmp, { force: true });
      await fs.mkdir(tmp);
    }
    globalThis.fetch = realFetch;
    // Request lines are written when each response closes: wait until all are there.
    const deadline = Date.now() + 5000;
    while (srv.logs.filter((l) => l.includes('"msg":"request"')).length < sent && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    lines = srv.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
  });

  after(async () => {
    globalThis.fetch = realFetch;
    await srv.destroy();
  });

  it('no line carries a password, Basic credentials, a token or a part of its signature', () => {
    assert.ok(srv.logs.length > 20, `captured ${srv.logs.length} lines`);
    for (const line of srv.logs) {
      for (const [name, secret] of secrets) {
        assert.ok(!line.includes(secret), `the ${name} leaks into: ${line}`);
      }
      assert.ok(!/authorization/i.test(line), `a header leaks into: ${line}`);
    }
  });

  it('the failing request is logged as an error with its request id, still without secrets', () => {
    const failed = lines.filter((l) => l.msg === 'request failed');
    assert.equal(failed.length, 1, JSON.stringify(failed));
    const [line] = failed;
    assert.equal(line.level, 50);
    const request = lines.find((l) => l.msg === 'request' && l.reqId === line.reqId) as RequestLine;
    assert.ok(request, 'the error line and the request line share the request id');
    assert.equal(request.path, `/v1/images/${failing.id}/layer`);
    assert.equal(request.status, 500);
    assert.match(String((line.err as { message?: string }).message), /ENOTDIR|not a directory/);
  });

  it('request lines carry reqId, method, path, status, bytesIn, bytesOut and ms', () => {
    const requests = lines.filter((l) => l.msg === 'request') as RequestLine[];
    assert.ok(sent >= 29, `${sent} requests sent`);
    assert.equal(requests.length, sent, 'one request line per request');
    const ids = new Set<string>();
    for (const r of requests) {
      const where = JSON.stringify(r);
      assert.match(r.reqId, /^[0-9a-f]{12}$/, where);
      ids.add(r.reqId);
      assert.match(r.method, /^(GET|PUT|POST|DELETE|HEAD)$/, where);
      assert.match(r.path, /^\//, where);
      assert.ok(Number.isInteger(r.status) && r.status >= 200 && r.status < 600, where);
      assert.ok(Number.isInteger(r.bytesIn) && r.bytesIn >= 0, `bytesIn: ${where}`);
      assert.ok(Number.isInteger(r.bytesOut) && r.bytesOut >= 0, `bytesOut: ${where}`);
      assert.ok(typeof r.ms === 'number' && r.ms >= 0, where);
      assert.equal(r.level, 30, where);
    }
    assert.equal(ids.size, requests.length, 'one id per request');

    const find = (method: string, p: string, status?: number) =>
      requests.filter((r) => r.method === method && r.path === p && (status === undefined || r.status === status));
    // Bytes are the bodies' sizes: a chunked layer upload in, a layer download out.
    const layerIn = find('PUT', `/v1/images/${child.id}/layer`, 200);
    assert.equal(layerIn.length, 1);
    assert.equal(layerIn[0].bytesIn, child.layer.length);
    const layerOut = find('GET', `/v1/images/${child.id}/layer`, 200);
    assert.equal(layerOut.length, 1);
    assert.equal(layerOut[0].bytesOut, child.layer.length);
    const jsonIn = find('PUT', `/v1/images/${base.id}/json`, 200);
    assert.equal(jsonIn.length, 1);
    assert.equal(jsonIn[0].bytesIn, imageJsonOf(base).length);
    // The refused ones are there too.
    assert.equal(find('GET', '/v1/users/', 401).length, 2);
    assert.equal(find('GET', `/v1/repositories/${creds.username}/app/tags`, 401).length, 2);
    assert.equal(find('POST', '/v1/users/', 400).length, 2);
    assert.equal(find('POST', '/v1/users/', 201).length, 1);
    // HEAD, 304: nothing sent, whatever Content-Length says; 206: the range.
    const baseLayer = `/v1/images/${base.id}/layer`;
    assert.deepEqual(find('HEAD', baseLayer, 200).map((r) => r.bytesOut), [0]);
    assert.deepEqual(find('GET', baseLayer, 304).map((r) => r.bytesOut), [0]);
    assert.deepEqual(find('GET', baseLayer, 206).map((r) => r.bytesOut), [1000]);
    assert.deepEqual(find('GET', baseLayer, 200).map((r) => r.bytesOut), [base.layer.length]);
    // A 204 has no body: 0 bytes out.
    const pushEnd = find('PUT', `/v1/repositories/${creds.username}/app/images`, 204);
    assert.equal(pushEnd.length, 1);
    assert.equal(pushEnd[0].bytesOut, 0);
  });

  it('the logger redacts credentials wherever an object carrying them is logged', () => {
    const out: string[] = [];
    const logger = createLogger('info', new Writable({
      write(chunk, _enc, cb) {
        out.push(String(chunk));
        cb();
      },
    }));
    const token = 'signature=cGF5bG9hZA.bWFjLW1hYy1tYWM,repository="ns/app",access=write';
    logger.info({
      req: { headers: { authorization: 'Basic dXNlcjpzM2NyZXQ=', cookie: 'sid=s3cret-cookie', 'x-docker-token': token } },
      res: { headers: { 'x-docker-token': token, 'www-authenticate': `Token ${token}` } },
      headers: { authorization: `Token ${token}` },
      password: 's3cret-pw',
      user: { name: 'alice', password: 's3cret-pw2' },
      token,
      body: { token },
    }, 'with secrets');
    assert.equal(out.length, 1);
    for (const secret of ['dXNlcjpzM2NyZXQ=', 's3cret-cookie', 'cGF5bG9hZA', 'bWFjLW1hYy1tYWM', 's3cret-pw']) {
      assert.ok(!out[0].includes(secret), `${secret} leaks: ${out[0]}`);
    }
    const line = JSON.parse(out[0]) as { user: { name: string }; msg: string };
    assert.equal(line.user.name, 'alice', 'what is not a secret stays');
    assert.equal(line.msg, 'with secrets');
  });

  it(
    'registry config print masks every secret: metrics_token and credentials in webhook URLs',
    async () => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'config', 'print'], {
        env: {
          PATH: process.env.PATH ?? '',
          REGISTRY_CONFIG: 'config/test.yaml',
          REGISTRY_METRICS_TOKEN: 'metrics-s3cret-token',
          REGISTRY_WEBHOOKS: JSON.stringify(['http://hook:hookpass-s3cret@127.0.0.1:9/h?token=query-s3cret']),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      child.stdout.on('data', (d) => (stdout += d));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      assert.equal(code, 0);
      assert.match(stdout, /^metrics_token: /m);
      for (const secret of ['metrics-s3cret-token', 'hookpass-s3cret', 'query-s3cret']) {
        assert.ok(!stdout.includes(secret), `config print shows ${secret}`);
      }
    },
  );
});
