/**
 * Starts the built server (dist/) the way `npm start` does, for the benchmarks: the same V8
 * flags (a 1 MiB young generation and V8's memory-saving heap sizing keep RSS flat under
 * load) and one glibc malloc arena. `npm run bench` and `bench:meta` both measure this.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import path from 'node:path';

export const REPO = path.resolve(import.meta.dirname, '..');

export function spawnBuiltServer(env: Record<string, string>, options: { nodeArgs?: string[]; stdio: StdioOptions }): ChildProcess {
  return spawn(process.execPath, ['--max-semi-space-size=1', '--optimize-for-size', ...(options.nodeArgs ?? []), path.join(REPO, 'dist', 'src', 'main.js')], {
    cwd: REPO,
    env: { ...process.env, MALLOC_ARENA_MAX: '1', ...env },
    stdio: options.stdio,
  });
}
