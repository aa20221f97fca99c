/**
 * The behaviour every LoginFailureStore and EndedSessionStore must have (see
 * src/store/login-failures.ts and src/store/ended-sessions.ts): the state the login throttle
 * and the web UI's logouts keep, in one process or shared by every node. Not a test entry
 * point: test/store/node-state.test.ts runs it on each implementation.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { EndedSessionStore, LoginFailureStore } from '../../src/store/metadata/ports.js';

export interface NodeStateFixture {
  failures: LoginFailureStore;
  ended: EndedSessionStore;
  cleanup(): Promise<void>;
}

export function nodeStateContract(name: string, open: () => Promise<NodeStateFixture>): void {
  describe(`${name}: login failures and ended sessions`, () => {
    let fixture: NodeStateFixture;
    let failures: LoginFailureStore;
    let ended: EndedSessionStore;
    const T = 1_700_000_000_000;

    beforeEach(async () => {
      fixture = await open();
      ({ failures, ended } = fixture);
    });
    afterEach(async () => {
      await fixture.cleanup();
    });

    it('recentFailures: after `since`, the newest `limit`, oldest first; other keys apart', async () => {
      assert.deepEqual(await failures.recentFailures('user:alice', 0, 10), []);
      for (const at of [T + 30, T + 10, T + 20, T + 40]) await failures.addFailure('user:alice', at, 10);
      await failures.addFailure('addr:10.0.0.1', T + 15, 10);
      assert.deepEqual(await failures.recentFailures('user:alice', 0, 10), [T + 10, T + 20, T + 30, T + 40]);
      assert.deepEqual(await failures.recentFailures('user:alice', T + 20, 10), [T + 30, T + 40], 'strictly after since');
      assert.deepEqual(await failures.recentFailures('user:alice', 0, 2), [T + 30, T + 40], 'the newest limit');
      assert.deepEqual(await failures.recentFailures('addr:10.0.0.1', 0, 10), [T + 15]);
      assert.deepEqual(await failures.recentFailures('user:alic', 0, 10), []);
    });

    it('addFailure keeps what can matter: at least the `keep` newest', async () => {
      for (let i = 0; i < 20; i++) await failures.addFailure('user:bob', T + i, 3);
      assert.deepEqual(await failures.recentFailures('user:bob', 0, 3), [T + 17, T + 18, T + 19]);
      // Two failures in the same millisecond are two failures.
      await failures.addFailure('user:carol', T, 5);
      await failures.addFailure('user:carol', T, 5);
      assert.deepEqual(await failures.recentFailures('user:carol', 0, 5), [T, T]);
    });

    it('clearFailures forgets one key; pruneFailures forgets the old failures of every key', async () => {
      await failures.addFailure('user:alice', T, 10);
      await failures.addFailure('user:alice', T + 100, 10);
      await failures.addFailure('user:bob', T + 50, 10);
      await failures.addFailure('addr:a', T + 10, 10);
      await failures.clearFailures('user:bob');
      await failures.clearFailures('user:nobody');
      assert.deepEqual(await failures.recentFailures('user:bob', 0, 10), []);
      assert.equal(await failures.pruneFailures(T + 10), 2);
      assert.deepEqual(await failures.recentFailures('user:alice', 0, 10), [T + 100]);
      assert.deepEqual(await failures.recentFailures('addr:a', 0, 10), []);
      assert.equal(await failures.pruneFailures(T + 10), 0);
    });

    it('parallel failures of one key are all counted', async () => {
      await Promise.all(Array.from({ length: 8 }, (_, i) => failures.addFailure('user:dave', T + i, 100)));
      assert.equal((await failures.recentFailures('user:dave', 0, 100)).length, 8);
    });

    it('an ended session is ended until it would have expired; other sessions are not', async () => {
      const now = 1_700_000_000;
      assert.equal(await ended.isSessionEnded('s1', now), false);
      await ended.endSession('s1', now + 60);
      await ended.endSession('s1', now + 60);
      assert.equal(await ended.isSessionEnded('s1', now), true);
      assert.equal(await ended.isSessionEnded('s2', now), false);
      assert.equal(await ended.isSessionEnded('s1', now + 60), false, 'expired: the cookie is refused anyway');
      await ended.endSession('s2', now + 10);
      assert.equal(await ended.pruneEndedSessions(now + 10), 1);
      assert.equal(await ended.isSessionEnded('s1', now + 11), true);
      assert.equal(await ended.isSessionEnded('s2', now), false, 'pruned');
    });
  });
}
