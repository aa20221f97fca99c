/**
 * The behaviour every Locks implementation must have (see src/store/locks/locks.ts). Not a
 * test entry point: an implementation's *.test.ts calls `locksContract`.
 *
 * The factory returns open Locks on a fresh backend; `queued(n)` resolves once `n` lock
 * requests are waiting (so a test can order "exclusive is waiting" before "shared asks").
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Locks } from '../../src/store/locks/locks.js';

export interface LocksFixture {
  locks: Locks;
  /** Resolves once at least `n` lock requests are waiting. */
  queued(n: number): Promise<void>;
  cleanup(): Promise<void>;
}

/** A promise with its resolve, to hold a lock until the test lets go. */
export function latch(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/**
 * Starts a holder (`take` runs the given body under some lock) and resolves once the body
 * is running; the body then waits until `release()`. `done` is what `take` resolves to.
 */
export async function holding<T>(take: (body: () => Promise<void>) => Promise<T>, onEnter: () => void = () => {}): Promise<{ release(): void; done: Promise<T> }> {
  const hold = latch();
  const entered = latch();
  const done = take(async () => {
    onEnter();
    entered.open();
    await hold.promise;
  });
  await Promise.race([entered.promise, done]);
  return { release: hold.open, done };
}

export function locksContract(name: string, factory: () => Promise<LocksFixture>): void {
  describe(`Locks contract: ${name}`, () => {
    let fixture: LocksFixture;
    let locks: Locks;

    beforeEach(async () => {
      fixture = await factory();
      locks = fixture.locks;
    });

    afterEach(async () => {
      await fixture.cleanup();
    });

    describe('keyed', () => {
      it('runs fn and hands back its value', async () => {
        assert.deepEqual(await locks.keyed('image-a', async () => 42), { acquired: true, value: 42 });
      });

      it('a held key is refused at once (fn does not run); other keys are not; released, it can be taken again', async () => {
        const first = await holding((body) => locks.keyed('image-a', async () => (await body(), 'first')));
        assert.equal(await locks.isKeyHeld('image-a'), true);
        assert.equal(await locks.isKeyHeld('image-b'), false);
        let ran = false;
        assert.deepEqual(await locks.keyed('image-a', async () => (ran = true)), { acquired: false });
        assert.equal(ran, false);
        assert.deepEqual(await locks.keyed('image-b', async () => 'other'), { acquired: true, value: 'other' });
        first.release();
        assert.deepEqual(await first.done, { acquired: true, value: 'first' });
        assert.equal(await locks.isKeyHeld('image-a'), false);
        assert.deepEqual(await locks.keyed('image-a', async () => 'again'), { acquired: true, value: 'again' });
      });

      it('a rejecting fn releases the key and its error is passed on', async () => {
        await assert.rejects(locks.keyed('image-a', async () => Promise.reject(new Error('boom'))), /boom/);
        assert.equal(await locks.isKeyHeld('image-a'), false);
        assert.deepEqual(await locks.keyed('image-a', async () => 1), { acquired: true, value: 1 });
      });

      it('of many concurrent attempts on one key exactly one runs', async () => {
        const hold = latch();
        const refusedAll = latch();
        let refused = 0;
        const attempts = Array.from({ length: 8 }, () =>
          locks
            .keyed('contended', async () => {
              await hold.promise;
              return true;
            })
            .then((result) => {
              if (!result.acquired && ++refused === 7) refusedAll.open();
              return result;
            }),
        );
        // The refusals come back while the winner still holds the key.
        await refusedAll.promise;
        hold.open();
        const acquired = (await Promise.all(attempts)).filter((r) => r.acquired);
        assert.equal(acquired.length, 1);
      });
    });

    describe('the write gate', () => {
      it('shared holders run at the same time', async () => {
        const inside = latch();
        let count = 0;
        const both = latch();
        const holder = () =>
          locks.shared(async () => {
            count += 1;
            if (count === 2) both.open();
            await both.promise;
            await inside.promise;
            return count;
          });
        const running = Promise.all([holder(), holder()]);
        await both.promise;
        inside.open();
        assert.deepEqual(await running, [2, 2]);
      });

      it('exclusive waits for every shared holder; shared asking after it waits for it', async () => {
        const order: string[] = [];
        const s1 = await holding(
          (body) => locks.shared(async () => (await body(), order.push('s1 out'))),
          () => order.push('s1 in'),
        );
        const e = locks.exclusive(async () => {
          order.push('exclusive');
        });
        await fixture.queued(1);
        const s2 = locks.shared(async () => {
          order.push('s2');
        });
        await fixture.queued(2);
        assert.deepEqual(order, ['s1 in'], 'nothing else ran while s1 holds the gate');
        s1.release();
        await Promise.all([s1.done, e, s2]);
        assert.deepEqual(order, ['s1 in', 's1 out', 'exclusive', 's2']);
      });

      it('exclusive holders run one at a time, and a rejection releases the gate', async () => {
        let inside = 0;
        let most = 0;
        const one = async () => {
          inside += 1;
          most = Math.max(most, inside);
          await new Promise((resolve) => setTimeout(resolve, 20));
          inside -= 1;
        };
        await Promise.all([locks.exclusive(one), locks.exclusive(one), locks.exclusive(one)]);
        assert.equal(most, 1);
        await assert.rejects(locks.exclusive(async () => Promise.reject(new Error('gc failed'))), /gc failed/);
        assert.equal(await locks.shared(async () => 'open again'), 'open again');
      });
    });
  });
}
