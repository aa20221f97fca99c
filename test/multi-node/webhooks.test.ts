/**
 * The webhook queue shared by the nodes of one registry (PostgreSQL, FOR UPDATE SKIP
 * LOCKED): with three nodes polling the same queue, each notification reaches the receiver
 * once; a node killed (kill -9, a real process) while it delivers leaves its claim, which
 * another node delivers once the lease has passed.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { WebhookDelivery } from '../../src/domain/records.js';
import { PostgresMetadataStore } from '../../src/store/metadata/postgres-metadata-store.js';
import { useEngines } from '../helpers/engines.js';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';
import { startChild, type ChildServer } from '../reliability/crash-harness.js';
import { pushAs, startCluster, tagAs, type Cluster } from './nodes.js';

const engines = useEngines();

/** A loopback webhook receiver: counts POSTs per event (callback_url); holds them while `holding`. */
class Receiver {
  readonly received: string[] = [];
  /** When each arrived (ms). */
  readonly times: number[] = [];
  holding = false;
  private readonly held: http.ServerResponse[] = [];
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { callback_url: string };
      this.received.push(body.callback_url);
      this.times.push(Date.now());
      if (this.holding) this.held.push(res);
      else res.end('ok');
    });
  });
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  /** How many times each event arrived. */
  counts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const id of this.received) counts.set(id, (counts.get(id) ?? 0) + 1);
    return counts;
  }

  async stop(): Promise<void> {
    for (const res of this.held) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const image = () => ({ id: newImageId(), layer: randomBytes(5_000) });

async function queued(node: TestServer): Promise<number> {
  let n = 0;
  for await (const _ of node.running.services.meta.listWebhooks()) n += 1;
  return n;
}

describe('webhooks with three nodes on one queue', () => {
  const receiver = new Receiver();
  let cluster: Cluster | undefined;
  let later: TestServer[] = [];
  let child: ChildServer | undefined;
  let childRoot = '';

  before(async () => {
    await receiver.start();
  });
  after(async () => {
    await child?.kill9();
    for (const node of later) await node.destroy();
    await cluster?.stop();
    await receiver.stop();
    if (childRoot) await fs.rm(childRoot, { recursive: true, force: true });
  });

  it('every notification is delivered once, whichever node queued it, while all three poll', async () => {
    // Polling every 50 ms, the three nodes race for every notification.
    const three = await startCluster(engines, 3, { standalone: true, webhooks: [receiver.url], webhook_retry_base_ms: 50 });
    try {
      const [a, b, c] = three.nodes;
      const pushed = image();
      await pushAs(a.url, {}, 'hooks/app', 'latest', [pushed]);
      const tags = ['t1', 't2', 't3', 't4', 't5', 't6'];
      await Promise.all(tags.map((tag, i) => tagAs([a, b, c][i % 3].url, {}, 'hooks/app', tag, pushed.id)));
      const events = tags.length + 1;
      await waitFor(`${events} notifications`, () => receiver.counts().size >= events);
      await waitFor('an empty queue', async () => (await queued(a)) === 0);
      // Time enough for a second delivery by any node to show up.
      await sleep(500);
      assert.equal(receiver.counts().size, events);
      assert.deepEqual([...receiver.counts().values()], Array(events).fill(1), 'each notification exactly once');
    } finally {
      await three.stop();
    }
  });

  it('a node killed while it delivers: another node delivers the notification once the lease has passed', async () => {
    receiver.received.length = 0;
    receiver.times.length = 0;
    const lease = 2500;
    cluster = await startCluster(engines, 0, { standalone: true, webhooks: [receiver.url], webhook_retry_base_ms: 50, webhook_timeout_ms: 1000, webhook_lease_ms: lease });
    // The node that takes the notification runs in a process of its own, to be killed.
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(cluster.shared)) env[`REGISTRY_${key.toUpperCase()}`] = typeof value === 'string' ? value : JSON.stringify(value);
    childRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'hook-node-'));
    child = await startChild(childRoot, env);

    receiver.holding = true;
    const pushed = image();
    await pushAs(child.url, {}, 'hooks/killed', 'latest', [pushed]);
    await waitFor('the first attempt', () => receiver.received.length === 1);
    await child.kill9();
    child = undefined;
    receiver.holding = false;
    // The dead node's claim, as the queue holds it: due again when its lease ends.
    const queue = new PostgresMetadataStore(cluster.schemaUrl);
    await queue.open();
    const claims: WebhookDelivery[] = [];
    try {
      for await (const delivery of queue.listWebhooks()) claims.push(delivery);
    } finally {
      await queue.close();
    }
    assert.equal(claims.length, 1);
    const leaseEnds = claims[0].dueAt;
    assert.ok(leaseEnds > Date.now() - lease, 'still leased when the node died');

    // Two other nodes start on the same queue: neither takes the notification before the
    // dead node's lease ends, and then one of them delivers it, once.
    later = await Promise.all([startTestServer({ overrides: cluster.shared }), startTestServer({ overrides: cluster.shared })]);
    await waitFor('the retry', () => receiver.received.length === 2, lease + 8000);
    assert.ok(receiver.times[1] >= leaseEnds, `retried once the lease ended (${receiver.times[1] - leaseEnds} ms after)`);
    await waitFor('an empty queue', async () => (await queued(later[0])) === 0);
    await sleep(500);
    assert.equal(receiver.received.length, 2, 'the held attempt and one retry, no more');
    assert.equal(new Set(receiver.received).size, 1, 'the same notification');
  });
});
