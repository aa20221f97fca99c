/**
 * Webhooks: a local receiver (node:http on 127.0.0.1) records every POST; its answer is
 * scripted per request (a status, or "hold" until the test releases it). The registry is
 * the real one (startTestServer) with `webhooks` pointing at the receiver.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { parseImageId, parseRepoName, parseTag } from '../../src/domain/names.js';
import type { WebhookDelivery } from '../../src/domain/records.js';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';
import { pushImage, setTag } from '../helpers/v1.js';

interface Received {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: WebhookBody;
  raw: string;
}

interface WebhookBody {
  event: string;
  callback_url: string;
  push_data: { pushed_at: number; pusher: string; tag: string | null; images: string[] };
  repository: {
    repo_name: string;
    namespace: string;
    name: string;
    owner: string;
    description: string;
    is_private: boolean;
    is_official: boolean;
    is_trusted: boolean;
    star_count: number;
    comment_count: number;
    status: string;
    date_created: number | null;
    repo_url: string;
  };
}

type Answer = number | 'hold';

/** Polls `check` until it is truthy (bounded: fails the test after `ms`). */
async function waitFor<T>(what: string, check: () => T | Promise<T>, ms = 8000): Promise<NonNullable<Awaited<T>>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<Awaited<T>>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

class Receiver {
  readonly received: Received[] = [];
  /** Answers for the next requests, in order; 200 once the script is used up. */
  script: Answer[] = [];
  /** Responses the receiver holds back (answer "hold"), and whether each one was answered. */
  readonly held: Array<{ res: http.ServerResponse; closedEarly: boolean; release(status?: number): void }> = [];
  answered = 0;
  private server: http.Server;
  url = '';

  constructor() {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        let body: WebhookBody;
        try {
          body = JSON.parse(raw) as WebhookBody;
        } catch {
          body = { event: '<not json>' } as WebhookBody;
        }
        this.received.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, raw });
        const answer = this.script.shift() ?? 200;
        const send = (status: number) => {
          if (res.writableEnded) return;
          this.answered += 1;
          res.writeHead(status, { 'Content-Type': 'text/plain' }).end(status < 300 ? 'ok' : 'nope');
        };
        if (answer === 'hold') {
          const entry = { res, closedEarly: false, release: (status = 200) => send(status) };
          res.on('close', () => {
            if (!res.writableEnded) entry.closedEarly = true;
          });
          this.held.push(entry);
        } else {
          send(answer);
        }
      });
    });
  }

  async listen(port = 0): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => resolve());
    });
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
    return this;
  }

  ofEvent(event: string): Received[] {
    return this.received.filter((r) => r.body.event === event);
  }

  async close(): Promise<void> {
    for (const h of this.held) h.release();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A loopback port nothing listens on (taken from the OS, then released). */
async function freePort(): Promise<number> {
  const probe = http.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

async function queue(srv: TestServer): Promise<WebhookDelivery[]> {
  const out: WebhookDelivery[] = [];
  for await (const d of srv.running.services.meta.listWebhooks()) out.push(d);
  return out;
}

function logLines(srv: TestServer): Array<Record<string, unknown>> {
  return srv.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function pushed(srv: TestServer): Promise<string> {
  const image = { id: newImageId(), layer: randomBytes(300) };
  await pushImage(srv.url, image);
  return image.id;
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function withSetup(
  overrides: Record<string, unknown>,
  receivers: Receiver[],
  fn: (srv: TestServer) => Promise<void>,
  captureLogs = false,
): Promise<void> {
  for (const r of receivers) if (!r.url) await r.listen();
  const srv = await startTestServer({
    overrides: { webhooks: receivers.map((r) => r.url), webhook_retry_base_ms: 50, webhook_timeout_ms: 2000, ...overrides },
    captureLogs,
  });
  try {
    await fn(srv);
  } finally {
    for (const r of receivers) for (const h of r.held) h.release();
    await srv.destroy();
    for (const r of receivers) await r.close();
  }
}

describe('webhooks', () => {
  it('a push (tag set) delivers one POST in the Docker Hub shape, pusher = the Basic user', async () => {
    const rx = new Receiver();
    await withSetup({}, [rx], async (srv) => {
      await srv.running.services.users.upsert({ username: 'alice', password: 'alice-pass', email: 'alice@x.io', admin: false });
      await fetch(`${srv.url}/v1/repositories/alice/app/properties`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ description: 'the app' }),
      });
      const id = await pushed(srv);
      const before = Math.floor(Date.now() / 1000);
      const res = await fetch(`${srv.url}/v1/repositories/alice/app/tags/v1`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/json', Authorization: basic('alice', 'alice-pass') },
        body: JSON.stringify(id),
      });
      assert.equal(res.status, 200);
      await waitFor('the delivery', () => rx.received.length === 1 && rx.answered === 1);
      const after = Math.ceil(Date.now() / 1000);
      await waitFor('an empty queue', async () => (await queue(srv)).length === 0);
      assert.equal(rx.received.length, 1, 'exactly one POST');

      const [got] = rx.received;
      assert.equal(got.method, 'POST');
      assert.equal(got.path, '/hook');
      assert.match(String(got.headers['content-type']), /^application\/json\b/);
      const body = got.body;
      assert.equal(body.event, 'push');
      assert.match(body.callback_url, new RegExp(`^${srv.url}/_webhooks/callback/[0-9a-f]{16}$`));
      const { pushed_at, ...pushData } = body.push_data;
      assert.deepEqual(pushData, { pusher: 'alice', tag: 'v1', images: [id] });
      assert.ok(Number.isInteger(pushed_at) && pushed_at >= before && pushed_at <= after, `pushed_at ${pushed_at} in unix seconds`);
      const { date_created, ...repository } = body.repository;
      assert.deepEqual(repository, {
        repo_name: 'alice/app',
        namespace: 'alice',
        name: 'app',
        owner: 'alice',
        description: 'the app',
        is_private: false,
        is_official: false,
        is_trusted: false,
        star_count: 0,
        comment_count: 0,
        status: 'Active',
        repo_url: `${srv.url}/v1/repositories/alice/app/`,
      });
      assert.ok(typeof date_created === 'number' && date_created >= before - 60 && date_created <= after, `date_created ${date_created}`);

      // The callback URL the receiver was given answers.
      const cb = await fetch(body.callback_url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"state":"success"}' });
      assert.equal(cb.status, 200);
    });
  });

  it('an anonymous push has pusher ""; a private repository says so', async () => {
    const rx = new Receiver();
    await withSetup({}, [rx], async (srv) => {
      const id = await pushed(srv);
      assert.equal(
        (await fetch(`${srv.url}/v1/repositories/secret/app/properties`, {
          method: 'PUT',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ access: 'private' }),
        })).status,
        200,
      );
      assert.equal((await setTag(srv.url, 'secret/app', 'latest', id)).status, 200);
      assert.equal((await setTag(srv.url, 'busybox', 'latest', id)).status, 200);
      await waitFor('two deliveries', () => rx.answered === 2);
      const byRepo = new Map(rx.received.map((r) => [r.body.repository.repo_name, r.body]));
      assert.equal(byRepo.get('secret/app')?.push_data.pusher, '');
      assert.equal(byRepo.get('secret/app')?.repository.is_private, true);
      assert.equal(byRepo.get('library/busybox')?.push_data.pusher, '');
      assert.equal(byRepo.get('library/busybox')?.repository.is_official, true);
      assert.equal(byRepo.get('library/busybox')?.repository.namespace, 'library');
      assert.equal(byRepo.get('library/busybox')?.repository.name, 'busybox');
    });
  });

  it('tag delete and repository delete deliver "tag_delete" and "repo_delete"', async () => {
    const rx = new Receiver();
    await withSetup({}, [rx], async (srv) => {
      await srv.running.services.users.upsert({ username: 'bobby', password: 'bobby-pass', email: 'bobby@x.io', admin: false });
      const id = await pushed(srv);
      assert.equal((await setTag(srv.url, 'bobby/app', 'latest', id)).status, 200);
      assert.equal((await setTag(srv.url, 'bobby/app', 'old', id)).status, 200);
      await waitFor('two pushes', () => rx.ofEvent('push').length === 2);

      const del = await fetch(`${srv.url}/v1/repositories/bobby/app/tags/old`, { method: 'DELETE', headers: { Authorization: basic('bobby', 'bobby-pass') } });
      assert.equal(del.status, 200);
      const tagDelete = (await waitFor('tag_delete', () => rx.ofEvent('tag_delete')[0])).body;
      assert.equal(tagDelete.push_data.tag, 'old');
      assert.equal(tagDelete.push_data.pusher, 'bobby');
      assert.deepEqual(tagDelete.push_data.images, []);
      assert.equal(tagDelete.repository.repo_name, 'bobby/app');
      assert.equal(tagDelete.repository.status, 'Active');

      assert.equal((await fetch(`${srv.url}/v1/repositories/bobby/app/`, { method: 'DELETE' })).status, 200);
      const repoDelete = (await waitFor('repo_delete', () => rx.ofEvent('repo_delete')[0])).body;
      assert.equal(repoDelete.repository.repo_name, 'bobby/app');
      assert.equal(repoDelete.repository.status, 'Deleted');
      assert.equal(repoDelete.push_data.pusher, '');
      assert.deepEqual(repoDelete.push_data.images, []);
      await waitFor('an empty queue', async () => (await queue(srv)).length === 0);
      assert.deepEqual(rx.received.map((r) => r.body.event).sort(), ['push', 'push', 'repo_delete', 'tag_delete']);
      // Failed requests notify nobody.
      assert.equal((await fetch(`${srv.url}/v1/repositories/bobby/app/tags/old`, { method: 'DELETE' })).status, 404);
      assert.equal((await setTag(srv.url, 'bobby/app', 'x', newImageId())).status, 404);
      await waitFor('an empty queue', async () => (await queue(srv)).length === 0);
      assert.equal(rx.received.length, 4);
    });
  });

  it(
    'repo_delete of a private repository still says is_private true, with its description and creation date',
    async () => {
      const rx = new Receiver();
      await withSetup({}, [rx], async (srv) => {
        const props = await fetch(`${srv.url}/v1/repositories/hidden/app/properties`, {
          method: 'PUT',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ access: 'private', description: 'secret stuff' }),
        });
        assert.equal(props.status, 200);
        assert.equal((await fetch(`${srv.url}/v1/repositories/hidden/app/`, { method: 'DELETE' })).status, 200);
        const body = (await waitFor('repo_delete', () => rx.ofEvent('repo_delete')[0])).body;
        assert.equal(body.repository.status, 'Deleted');
        assert.equal(body.repository.is_private, true);
        assert.equal(body.repository.description, 'secret stuff');
        assert.equal(typeof body.repository.date_created, 'number');
      });
    },
  );

  it('every configured URL receives the notification', async () => {
    const [a, b] = [new Receiver(), new Receiver()];
    await withSetup({}, [a, b], async (srv) => {
      const id = await pushed(srv);
      assert.equal((await setTag(srv.url, 'two/urls', 'latest', id)).status, 200);
      await waitFor('both deliveries', () => a.answered === 1 && b.answered === 1);
      assert.deepEqual(a.received[0].body, b.received[0].body);
      assert.equal(a.received[0].body.repository.repo_name, 'two/urls');
      await waitFor('an empty queue', async () => (await queue(srv)).length === 0);
    });
  });

  it('a 500 is retried: the second attempt delivers', async () => {
    const rx = new Receiver();
    rx.script = [500, 200];
    await withSetup(
      {},
      [rx],
      async (srv) => {
        const id = await pushed(srv);
        assert.equal((await setTag(srv.url, 'retry/app', 'latest', id)).status, 200);
        await waitFor('two attempts', () => rx.answered === 2);
        await waitFor('an empty queue', async () => (await queue(srv)).length === 0);
        assert.equal(rx.received.length, 2);
        assert.equal(rx.received[1].raw, rx.received[0].raw, 'the same notification is sent again');
        const lines = logLines(srv);
        const failed = lines.filter((l) => l.msg === 'webhook delivery failed; will retry');
        assert.equal(failed.length, 1);
        assert.equal(failed[0].error, 'HTTP 500');
        assert.equal(failed[0].attempts, 1);
        const delivered = await waitFor('the delivered log line', () => logLines(srv).find((l) => l.msg === 'webhook delivered'));
        assert.equal(delivered.attempts, 2);
      },
      true,
    );
  });

  it('after webhook_max_attempts failures the delivery is dropped and logged', async () => {
    const rx = new Receiver();
    rx.script = [500, 502, 404, 500, 500];
    await withSetup(
      { webhook_max_attempts: 3 },
      [rx],
      async (srv) => {
        const id = await pushed(srv);
        assert.equal((await setTag(srv.url, 'drop/app', 'latest', id)).status, 200);
        await waitFor('three attempts', () => rx.answered === 3);
        await waitFor('an empty queue', async () => (await queue(srv)).length === 0);
        const dropped = await waitFor('the drop log line', () => logLines(srv).find((l) => l.msg === 'webhook dropped after the last attempt'));
        assert.equal(dropped.level, 50, 'logged as an error');
        assert.equal(dropped.attempts, 3);
        assert.equal(dropped.error, 'HTTP 404');
        // Nothing is left to deliver: no fourth attempt can come.
        assert.equal(rx.received.length, 3);
        assert.equal(logLines(srv).filter((l) => l.msg === 'webhook delivery failed; will retry').length, 2);
      },
      true,
    );
  });

  it('a notification queued while the receiver is down survives a restart and is delivered', async () => {
    const port = await freePort();
    const rx = new Receiver();
    rx.url = `http://127.0.0.1:${port}/hook`; // nothing listens there yet: connection refused
    const srv = await startTestServer({
      overrides: { webhooks: [rx.url], webhook_retry_base_ms: 50, webhook_timeout_ms: 2000, webhook_max_attempts: 50 },
    });
    try {
      const id = await pushed(srv);
      assert.equal((await setTag(srv.url, 'persist/app', 'latest', id)).status, 200);
      const failed = await waitFor('a failed attempt', async () => (await queue(srv)).find((d) => d.attempts >= 1));
      assert.match(String(failed.lastError), /fetch failed|ECONNREFUSED/);

      await srv.restart();
      // The new process knows the notification only from the queue on disk.
      assert.equal((await queue(srv)).length, 1);
      await rx.listen(port);
      await waitFor('the delivery after the restart', () => rx.answered === 1);
      await waitFor('an empty queue', async () => (await queue(srv)).length === 0);
      assert.equal(rx.received.length, 1);
      const body = rx.received[0].body;
      assert.equal(body.event, 'push');
      assert.equal(body.repository.repo_name, 'persist/app');
      assert.deepEqual(body.push_data.images, [id]);
    } finally {
      await srv.destroy();
      await rx.close();
    }
  });

  it('notifications of events emitted right before a graceful stop are queued, not lost', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/hook`; // down: nothing gets delivered meanwhile
    const srv = await startTestServer({
      overrides: { webhooks: [url], webhook_retry_base_ms: 60_000, webhook_timeout_ms: 2000 },
      captureLogs: true,
    });
    try {
      const repo = parseRepoName('ns', 'app');
      const tags = Array.from({ length: 30 }, (_, i) => `t${i}`);
      // What a tag PUT does once its write is committed, 30 times, then at once a stop.
      for (const tag of tags) {
        srv.running.services.events.emit({ type: 'push', repo, tag: parseTag(tag), imageId: parseImageId(newImageId()), actor: null, at: new Date() });
      }
      await srv.restart();
      const queued = await queue(srv);
      assert.deepEqual(queued.map((d) => (d.payload as WebhookBody).push_data.tag).sort(), [...tags].sort());
      assert.deepEqual(logLines(srv).filter((l) => l.msg === 'event listener failed'), []);
    } finally {
      await srv.destroy();
    }
  });

  it('a URL with credentials: they go in Authorization: Basic, and logs mask them and the query', async () => {
    const rx = await new Receiver().listen();
    const port = new URL(rx.url).port;
    const secretUrl = `http://hook%40user:s3cr%3At-pass@127.0.0.1:${port}/hook?token=qsecret-123&x=1`;
    rx.script = [500, 200];
    const srv = await startTestServer({
      overrides: { webhooks: [secretUrl], webhook_retry_base_ms: 50, webhook_timeout_ms: 2000 },
      captureLogs: true,
    });
    try {
      const id = await pushed(srv);
      assert.equal((await setTag(srv.url, 'cred/app', 'latest', id)).status, 200);
      await waitFor('two attempts', () => rx.answered === 2);
      await waitFor('the delivered log line', () => logLines(srv).find((l) => l.msg === 'webhook delivered'));
      for (const got of rx.received) {
        assert.equal(got.path, '/hook?token=qsecret-123&x=1');
        assert.equal(got.headers.authorization, basic('hook@user', 's3cr:t-pass'));
        assert.equal(got.body.repository.repo_name, 'cred/app');
      }
      const lines = logLines(srv).filter((l) => String(l.msg).startsWith('webhook'));
      assert.equal(lines.length, 2);
      for (const line of lines) assert.equal(line.url, `http://***@127.0.0.1:${port}/hook?token=***&x=***`);
      for (const line of srv.logs) {
        for (const secret of ['s3cr', 'hook%40user', 'hook@user', 'qsecret-123', Buffer.from('hook@user:s3cr:t-pass').toString('base64')]) {
          assert.ok(!line.includes(secret), `log line leaks ${secret}: ${line}`);
        }
      }
    } finally {
      await srv.destroy();
      await rx.close();
    }
  });

  it('the tag PUT does not wait for the delivery: it answers while the receiver still holds its response', { timeout: 20_000 }, async () => {
    const rx = new Receiver();
    rx.script = ['hold'];
    // A long delivery timeout: a tag PUT that waited for the delivery could not answer
    // before the test releases the receiver, so this test would time out instead.
    await withSetup({ webhook_timeout_ms: 60_000 }, [rx], async (srv) => {
      const id = await pushed(srv);
      const res = await setTag(srv.url, 'slow/app', 'latest', id);
      assert.equal(res.status, 200);
      assert.equal(rx.answered, 0, 'the receiver has not answered yet');
      const held = await waitFor('the delivery to reach the receiver', () => rx.held[0]);
      assert.equal(held.closedEarly, false);
      assert.equal(rx.answered, 0);
      // Other requests go on meanwhile.
      assert.equal((await fetch(`${srv.url}/v1/repositories/slow/app/tags/latest`)).status, 200);
      held.release(200);
      await waitFor('an empty queue', async () => (await queue(srv)).length === 0);
      assert.equal(rx.received.length, 1);
      assert.equal(rx.received[0].body.push_data.tag, 'latest');
    });
  });

  it('POST /_webhooks/callback/<16 hex> answers 200, other ids 404', async () => {
    const srv = await startTestServer();
    try {
      const post = (id: string) => fetch(`${srv.url}/_webhooks/callback/${id}`, { method: 'POST', body: '{}' });
      assert.equal((await post('0123456789abcdef')).status, 200);
      assert.equal((await post(randomBytes(8).toString('hex'))).status, 200);
      for (const bad of ['0123456789abcde', '0123456789abcdef0', '0123456789ABCDEF', 'zzzzzzzzzzzzzzzz', '..%2F..%2Fv1%2F_ping']) {
        const res = await post(bad);
        assert.equal(res.status, 404, bad);
      }
      assert.equal((await fetch(`${srv.url}/_webhooks/callback/0123456789abcdef`)).status, 405);
    } finally {
      await srv.destroy();
    }
  });
});
