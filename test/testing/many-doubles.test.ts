/**
 * A test file as a user of the double writes one: 100 tests, each with its own double
 * (created, seeded, asked, closed). Nothing may be left behind: after the last test no
 * resource keeps the process alive (node --test would otherwise never see this file end).
 */
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { createTestRegistry } from 'v1-registry/testing';

/** Resource types keeping the event loop alive, counted. */
function alive(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) counts.set(type, (counts.get(type) ?? 0) + 1);
  return counts;
}

describe('100 tests, each with its own double', () => {
  let baseline: Map<string, number>;
  before(() => {
    baseline = alive();
  });
  after(async () => {
    // Closed sockets and servers are released on the next turns of the loop.
    for (let i = 0; i < 5; i++) await tick();
    const left = [...alive()].filter(([type, n]) => n > (baseline.get(type) ?? 0));
    assert.deepEqual(left, [], `resources left alive: ${JSON.stringify(left)}`);
  });

  for (let i = 0; i < 100; i++) {
    it(`test ${i}`, async () => {
      const reg = await createTestRegistry(i % 10 === 0 ? { users: [{ username: 'alice', password: 'alice-pw-1' }] } : {});
      try {
        const { repositories } = await reg.seed({ repositories: [{ name: 'alice/app', tags: { latest: { layers: [`layer of test ${i}`] } } }] });
        const auth = i % 10 === 0 ? { Authorization: `Basic ${Buffer.from('alice:alice-pw-1').toString('base64')}` } : undefined;
        const tags = await fetch(`${reg.url}/v1/repositories/alice/app/tags`, { headers: auth });
        assert.deepEqual(await tags.json(), { latest: repositories['alice/app'].tags.latest.id });
        const layer = await fetch(`${reg.url}/v1/images/${repositories['alice/app'].tags.latest.id}/layer`, { headers: auth });
        assert.equal((await layer.arrayBuffer()).byteLength, repositories['alice/app'].tags.latest.layers[0].size);
        if (i % 25 === 0) {
          reg.faults.add({ path: '/v1/_ping', delayMs: 60_000 });
          // A request still waiting on a fault when the double closes must not hold it open.
          void fetch(`${reg.url}/v1/_ping`).catch(() => undefined);
          await tick();
        }
      } finally {
        await reg.close();
      }
    });
  }
});
