import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';
import { imageJson, pushChain } from '../helpers/v1.js';

describe('push and pull a chain', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
  });
  after(async () => {
    await srv.destroy();
  });

  it('serves back exactly what was pushed', async () => {
    const base = { id: newImageId(), layer: randomBytes(1000) };
    const child = { id: newImageId(), parent: base.id, layer: randomBytes(5000) };
    await pushChain(srv.url, 'alice/app', 'latest', [base, child]);

    const tags = await (await fetch(`${srv.url}/v1/repositories/alice/app/tags`)).json();
    assert.deepEqual(tags, { latest: child.id });
    const ancestry = await (await fetch(`${srv.url}/v1/images/${child.id}/ancestry`)).json();
    assert.deepEqual(ancestry, [child.id, base.id]);
    const json = Buffer.from(await (await fetch(`${srv.url}/v1/images/${child.id}/json`)).arrayBuffer());
    assert.deepEqual(json, imageJson(child));
    const layer = Buffer.from(await (await fetch(`${srv.url}/v1/images/${child.id}/layer`)).arrayBuffer());
    assert.deepEqual(layer, child.layer);
  });
});
