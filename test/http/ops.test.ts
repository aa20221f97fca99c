import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';
import { pushChain } from '../helpers/v1.js';

function metricValue(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(labels ? `${name}{${labels}}` : `${name} `));
  assert.ok(line, `metric ${name}{${labels}} not found`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('[GET /_status]', () => {
  it('200 with every check ok on a healthy server', async () => {
    const srv = await startTestServer();
    try {
      const res = await fetch(`${srv.url}/_status`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { status: 'ok', checks: { metadata: 'ok', storage: 'ok' } });
    } finally {
      await srv.destroy();
    }
  });

  it('503 naming the storage when the storage turns read-only', async () => {
    const srv = await startTestServer();
    // Read-only filesystems mounted over the upload and blob directories (root may mount
    // here); without mount permission, the upload directory is replaced by a plain file.
    const targets = [path.join(srv.root, 'tmp'), path.join(srv.root, 'blobs')];
    const mounted: string[] = [];
    try {
      for (const target of targets) {
        try {
          execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', target], { stdio: 'ignore' });
          mounted.push(target);
        } catch {
          break;
        }
      }
      if (mounted.length === 0) {
        await fs.rm(targets[0], { recursive: true });
        await fs.writeFile(targets[0], 'not a directory');
      }
      const res = await fetch(`${srv.url}/_status`);
      assert.equal(res.status, 503);
      const body = (await res.json()) as { status: string; checks: Record<string, string> };
      assert.equal(body.status, 'fail');
      assert.equal(body.checks.metadata, 'ok');
      assert.match(body.checks.storage, mounted.length ? /EROFS|read-only/i : /ENOTDIR/);
      // The liveness probe stays cheap and green.
      assert.equal((await fetch(`${srv.url}/_ping`)).status, 200);
    } finally {
      for (const target of mounted) execFileSync('umount', ['-l', target]);
      await srv.destroy();
    }
  });
});

describe('[GET /metrics]', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
  });
  after(async () => {
    await srv.destroy();
  });

  it('counts a push and a pull, by route and status', async () => {
    const image = { id: newImageId(), layer: randomBytes(4096) };
    await pushChain(srv.url, 'ops/metrics', 'latest', [image]);
    const layer = await fetch(`${srv.url}/v1/images/${image.id}/layer`);
    assert.equal(layer.status, 200);
    await layer.arrayBuffer();

    const res = await fetch(`${srv.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    assert.equal(metricValue(text, 'registry_images_pushed_total'), 1);
    assert.equal(metricValue(text, 'registry_layer_pulls_total'), 1);
    assert.equal(metricValue(text, 'registry_http_requests_total', 'route="/v1/images/:id/layer",method="GET",status="200"'), 1);
    assert.equal(metricValue(text, 'registry_http_requests_total', 'route="/v1/images/:id/layer",method="PUT",status="200"'), 1);
    assert.equal(metricValue(text, 'registry_http_request_bytes_total', 'route="/v1/images/:id/layer",method="PUT"'), 4096);
    assert.equal(metricValue(text, 'registry_http_response_bytes_total', 'route="/v1/images/:id/layer",method="GET"'), 4096);
    assert.equal(metricValue(text, 'registry_uploads_in_flight'), 0);
    assert.equal(metricValue(text, 'registry_storage_bytes'), 4096);
  });
});

describe('[GET /metrics] with metrics_token', () => {
  it('401 without the bearer token, 200 with it', async () => {
    const srv = await startTestServer({ overrides: { metrics_token: 's3cret-metrics' } });
    try {
      const anonymous = await fetch(`${srv.url}/metrics`);
      assert.equal(anonymous.status, 401);
      assert.deepEqual(await anonymous.json(), { error: 'Metrics need Authorization: Bearer <metrics_token>' });
      const wrong = await fetch(`${srv.url}/metrics`, { headers: { Authorization: 'Bearer nope' } });
      assert.equal(wrong.status, 401);
      const ok = await fetch(`${srv.url}/metrics`, { headers: { Authorization: 'Bearer s3cret-metrics' } });
      assert.equal(ok.status, 200);
      assert.match(await ok.text(), /registry_http_requests_total/);
    } finally {
      await srv.destroy();
    }
  });
});
