/**
 * `npm test` after the type check: runs every test/**\/*.test.ts (or the files given) with
 * node:test, two files at a time, each in its own process, with one PostgreSQL and one S3
 * (Ceph RADOS Gateway) shared by the whole run (see helpers/engines.ts).
 *
 * The engines start in the background while the first files run (~15 s for Ceph); files
 * that use them wait in their `before` hook. They are started only if some file of the run
 * calls useEngines(), and stopped when the run ends, also on Ctrl-C. Node 20's test runner
 * has no global setup hook (--test-global-setup came in Node 24), hence this wrapper.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ENGINES_ENV, startEngines, type EngineState } from './helpers/engines.js';

async function testFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.test.ts')) out.push(path.join(entry.parentPath ?? entry.path, entry.name));
  }
  return out.sort();
}

const files = process.argv.length > 2 ? process.argv.slice(2) : await testFiles('test');
const needsEngines = (await Promise.all(files.map((f) => fs.readFile(f, 'utf8')))).some((text) => text.includes('useEngines('));

const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'registry-test-engines-'));
const stateFile = path.join(stateDir, 'engines.json');
async function writeState(state: EngineState): Promise<void> {
  // Written whole, then renamed: a reader never sees half a file.
  await fs.writeFile(`${stateFile}.tmp`, JSON.stringify(state));
  await fs.rename(`${stateFile}.tmp`, stateFile);
}

let stopEngines: () => Promise<void> = async () => {};
const enginesUp = needsEngines
  ? startEngines().then(
      async (engines) => {
        stopEngines = engines.stop;
        process.stderr.write(`test engines: PostgreSQL up in ${engines.startMs.postgres} ms, RADOS Gateway in ${engines.startMs.s3} ms\n`);
        await writeState({ ready: true, ...engines.info, startMs: engines.startMs });
      },
      async (err: Error) => {
        process.stderr.write(`test engines failed to start: ${err.message}\n`);
        await writeState({ ready: false, error: err.message });
      },
    )
  : Promise.resolve();

const child = spawn(process.execPath, ['--conditions=v1-registry-source', '--import', 'tsx', '--test', '--test-concurrency=2', ...files], {
  stdio: 'inherit',
  env: { ...process.env, ...(needsEngines ? { [ENGINES_ENV]: stateFile } : {}) },
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
const code = await new Promise<number>((resolve) => {
  child.once('exit', (status, signal) => resolve(status ?? (signal ? 1 : 0)));
});
await enginesUp;
await stopEngines();
await fs.rm(stateDir, { recursive: true, force: true });
process.exit(code);
