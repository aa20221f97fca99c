/**
 * ListCache (LevelMetadataStore's tag and image-list cache): shared frozen lists, the
 * bound, and a read that was in flight when a write committed is never cached.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ListCache } from '../../src/store/metadata/list-cache.js';

describe('ListCache', () => {
  it('hands out the same frozen list until it is invalidated', async () => {
    const cache = new ListCache<readonly number[]>(100);
    let loads = 0;
    const load = async () => {
      loads += 1;
      return [loads];
    };
    const first = await cache.get('k', load);
    assert.ok(Object.isFrozen(first));
    assert.equal(await cache.get('k', load), first);
    assert.equal(cache.peek('k'), first);
    cache.invalidate('k');
    assert.equal(cache.peek('k'), undefined);
    const second = await cache.get('k', load);
    assert.notEqual(second, first);
    assert.deepEqual(second, [2]);
  });

  it('does not cache a read that a write overtook', async () => {
    const cache = new ListCache<readonly string[]>(100);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    // The read saw the old list; the write commits (invalidate) before the read returns.
    const reading = cache.get('k', async () => {
      await gate;
      return ['old'];
    });
    cache.invalidate('k');
    release();
    assert.deepEqual(await reading, ['old']);
    assert.equal(cache.peek('k'), undefined);
    assert.deepEqual(await cache.get('k', async () => ['new']), ['new']);
    assert.deepEqual(cache.peek('k'), ['new']);
  });

  it('keeps at most maxItems items, least recently used out first', async () => {
    const cache = new ListCache<readonly number[]>(10);
    await cache.get('a', async () => [1, 2, 3]);
    await cache.get('b', async () => [1, 2, 3]);
    await cache.get('a', async () => assert.fail('cached'));
    await cache.get('c', async () => [1, 2, 3]); // 12 items with a and b: b goes
    assert.equal(cache.peek('b'), undefined);
    assert.ok(cache.peek('a') && cache.peek('c'));
    await cache.get('big', async () => new Array(20).fill(0)); // larger than the bound: not kept
    assert.equal(cache.peek('big'), undefined);
    assert.ok(cache.peek('a') && cache.peek('c'));
  });
});
