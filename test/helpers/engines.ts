/**
 * PostgreSQL and S3 (Ceph RADOS Gateway) for the tests, started once per test run.
 *
 * `npm test` runs test/run.ts, which starts both engines in the background and runs the test
 * files at once; it hands them REGISTRY_TEST_ENGINES, the path of a JSON file it writes
 * when the engines are up (or failed). node:test runs each file in its own process, so this
 * file is how they share one PostgreSQL and one gateway: a file that calls `useEngines()`
 * waits for that file in its `before` hook, and pays the ~15 s start-up only if it comes
 * first.
 *
 * A test file run on its own (`node --import tsx --test test/x.test.ts`, no
 * REGISTRY_TEST_ENGINES) starts private engines in `before` and stops them in `after`.
 *
 *   const engines = useEngines();          // at the top level of a test file
 *   it('…', async () => { engines.postgres.url; engines.s3.endpoint; });
 */
import fs from 'node:fs/promises';
import { after, before } from 'node:test';
import { startCeph, type S3Engine } from './ceph-engine.js';
import { startPostgres, type PostgresEngine } from './postgres-engine.js';

export const ENGINES_ENV = 'REGISTRY_TEST_ENGINES';

export interface EngineInfo {
  postgres: { url: string };
  s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string };
}

/** What test/run.ts writes into the REGISTRY_TEST_ENGINES file. */
export type EngineState = ({ ready: true } & EngineInfo & { startMs: { postgres: number; s3: number } }) | { ready: false; error: string };

export interface Engines {
  readonly postgres: EngineInfo['postgres'];
  readonly s3: EngineInfo['s3'];
}

/** Which engines a test file needs (both unless it says otherwise). */
export interface EngineChoice {
  postgres?: boolean;
  s3?: boolean;
}

const NOT_STARTED = { url: '', endpoint: '', region: '', accessKeyId: '', secretAccessKey: '', dir: '', halt: async () => {}, resume: async () => {}, stop: async () => {} };

/** Starts the engines (in parallel); the caller stops them. */
export async function startEngines(choice: EngineChoice = {}): Promise<{ info: EngineInfo; startMs: { postgres: number; s3: number }; stop(): Promise<void> }> {
  const started = Date.now();
  const timed = <T>(p: Promise<T>) => p.then((value) => ({ value, ms: Date.now() - started }));
  const [pg, s3] = await Promise.allSettled([
    timed(choice.postgres === false ? Promise.resolve(NOT_STARTED) : startPostgres()),
    timed(choice.s3 === false ? Promise.resolve(NOT_STARTED) : startCeph()),
  ]);
  const up: Array<PostgresEngine | S3Engine> = [];
  if (pg.status === 'fulfilled') up.push(pg.value.value);
  if (s3.status === 'fulfilled') up.push(s3.value.value);
  const stop = async () => {
    await Promise.all(up.map((engine) => engine.stop()));
  };
  if (pg.status === 'rejected' || s3.status === 'rejected') {
    await stop();
    const reasons = [pg, s3].filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => String((r.reason as Error)?.message ?? r.reason));
    throw new Error(reasons.join('\n'));
  }
  const postgres = (pg as PromiseFulfilledResult<{ value: PostgresEngine; ms: number }>).value;
  const gateway = (s3 as PromiseFulfilledResult<{ value: S3Engine; ms: number }>).value;
  const { endpoint, region, accessKeyId, secretAccessKey } = gateway.value;
  return {
    info: { postgres: { url: postgres.value.url }, s3: { endpoint, region, accessKeyId, secretAccessKey } },
    startMs: { postgres: postgres.ms, s3: gateway.ms },
    stop,
  };
}

async function waitForShared(file: string, timeoutMs: number): Promise<EngineInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await fs.readFile(file, 'utf8').catch(() => null);
    if (text) {
      const state = JSON.parse(text) as EngineState;
      if (!state.ready) throw new Error(`the shared test engines failed to start:\n${state.error}`);
      return state;
    }
    if (Date.now() > deadline) throw new Error(`the shared test engines were not up within ${timeoutMs} ms (${file})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Registers before/after hooks that make the engines available to the file's tests. `choice`
 * only matters for a file run on its own (a run of many files shares both engines).
 */
export function useEngines(choice: EngineChoice = {}): Engines {
  let info: EngineInfo | undefined;
  let stopPrivate: (() => Promise<void>) | undefined;
  before(async () => {
    const shared = process.env[ENGINES_ENV];
    if (shared) {
      info = await waitForShared(shared, 180_000);
    } else {
      const engines = await startEngines(choice);
      info = engines.info;
      stopPrivate = engines.stop;
    }
  }, { timeout: 200_000 });
  after(async () => {
    await stopPrivate?.();
  });
  const need = (): EngineInfo => {
    if (!info) throw new Error('useEngines(): the engines are available in tests and hooks, after its before hook');
    return info;
  };
  return {
    get postgres() {
      return need().postgres;
    },
    get s3() {
      return need().s3;
    },
  };
}
