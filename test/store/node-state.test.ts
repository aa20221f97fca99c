/**
 * The login failures and ended sessions: in one process's memory (LevelDB setups, the test
 * double) and in PostgreSQL (every node of a registry), the same contract; plus what only
 * the shared one promises: two nodes see each other's failures and logouts at once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InMemoryEndedSessions } from '../../src/store/ended-sessions.js';
import { InMemoryLoginFailures } from '../../src/store/login-failures.js';
import { PostgresMetadataStore } from '../../src/store/metadata/postgres-metadata-store.js';
import { useEngines } from '../helpers/engines.js';
import { newSchema } from '../helpers/postgres-engine.js';
import { nodeStateContract } from './node-state.contract.js';

const engines = useEngines({ s3: false });

nodeStateContract('in memory', async () => ({ failures: new InMemoryLoginFailures(), ended: new InMemoryEndedSessions(), cleanup: async () => {} }));

nodeStateContract('PostgresMetadataStore', async () => {
  const schema = await newSchema(engines.postgres.url);
  const store = new PostgresMetadataStore(schema.url);
  await store.open();
  return {
    failures: store,
    ended: store,
    async cleanup() {
      await store.close();
      await schema.drop();
    },
  };
});

describe('in memory: bounded', () => {
  it('at most maxKeys keys, those failed least recently forgotten first', async () => {
    const failures = new InMemoryLoginFailures(3);
    for (const key of ['a', 'b', 'c', 'd']) await failures.addFailure(key, 1, 5);
    assert.equal(failures.size, 3);
    assert.deepEqual(await failures.recentFailures('a', 0, 5), [], 'the oldest key went');
    assert.deepEqual(await failures.recentFailures('d', 0, 5), [1]);
  });
});

describe('PostgreSQL: two nodes share them', () => {
  it('a failure or a logout on one node is seen by the other at once', async () => {
    const schema = await newSchema(engines.postgres.url);
    const [a, b] = [new PostgresMetadataStore(schema.url), new PostgresMetadataStore(schema.url)];
    try {
      await a.open();
      await b.open();
      await a.addFailure('user:erin', 1000, 10);
      await b.addFailure('user:erin', 2000, 10);
      assert.deepEqual(await a.recentFailures('user:erin', 0, 10), [1000, 2000]);
      await b.clearFailures('user:erin');
      assert.deepEqual(await a.recentFailures('user:erin', 0, 10), []);
      await a.endSession('sid', 5000);
      assert.equal(await b.isSessionEnded('sid', 4000), true);
    } finally {
      await a.close();
      await b.close();
      await schema.drop();
    }
  });
});
