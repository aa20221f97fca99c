/** InProcessLocks (one process: LevelDB + files) against the Locks contract. */
import { InProcessLocks } from '../../src/store/locks/in-process-locks.js';
import { locksContract } from './locks.contract.js';

locksContract('InProcessLocks', async () => {
  const locks = new InProcessLocks();
  return {
    locks,
    // In one process a request is queued as soon as the call returns: one turn is enough.
    queued: () => new Promise((resolve) => setImmediate(resolve)),
    cleanup: () => locks.close(),
  };
});
