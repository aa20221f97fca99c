/**
 * npm run bench: builds nothing itself (the npm script builds first), starts the built
 * server as a plain process on a scratch storage root (standalone, so the harness needs
 * no credentials), runs ../shared/bench/run.sh against it with --pid, --disk-dir (the
 * storage root: dd measures the same disk) and --subject-protocol both (v1 and v2 rows),
 * writes the report to bench-results/<timestamp>/report.md (git-ignored) and stops the
 * server.
 *
 *   npm run bench                      # 64M,1G; concurrency 1,8; 3 rounds; v1 and v2
 *   npm run bench -- --sizes 64M --reps 1 --subject-protocol v2
 *
 * Extra arguments go to run.sh as they are (a flag given there replaces the default).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO as repo, spawnBuiltServer } from './built-server.js';

// The shared/ folder sits beside the repository (or beside the folder of its worktrees).
const candidates = [path.resolve(repo, '..', 'shared', 'bench', 'run.sh'), path.resolve(repo, '..', '..', 'shared', 'bench', 'run.sh')];
const harness = candidates.find((file) => fs.existsSync(file));
if (!harness) {
  console.error(`bench: ${candidates[0]} not found (the shared/ folder must sit beside the repository)`);
  process.exit(2);
}
const storage = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-bench-'));
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const outDir = path.join(repo, 'bench-results', stamp);
fs.mkdirSync(outDir, { recursive: true });

const server = spawnBuiltServer(
  {
    REGISTRY_STORAGE_ROOT: storage,
    REGISTRY_PORT: '0',
    REGISTRY_STANDALONE: 'true',
    REGISTRY_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
  },
  { stdio: ['ignore', 'pipe', 'inherit'] },
);

const url = await new Promise<string>((resolve, reject) => {
  let buffer = '';
  const onData = (chunk: Buffer) => {
    buffer += chunk.toString();
    const m = /"url":"(http:\/\/[^"]+)"/.exec(buffer);
    if (m) {
      server.stdout?.off('data', onData);
      server.stdout?.resume(); // keep draining the request log
      resolve(m[1]);
    }
  };
  server.stdout?.on('data', onData);
  server.once('exit', (code) => reject(new Error(`server exited (${code}) before listening`)));
});

const args = process.argv.slice(2);
const defaults = [
  ...(args.includes('--sizes') ? [] : ['--sizes', '64M,1G', '--concurrency', '1,8']),
  ...(args.includes('--subject-protocol') ? [] : ['--subject-protocol', 'both']),
  ...(args.includes('--disk-dir') ? [] : ['--disk-dir', storage]),
];
const result = spawnSync('bash', [harness, url, '--pid', String(server.pid), ...defaults, ...args, '--out', path.join(outDir, 'report.md')], {
  stdio: 'inherit',
});
server.kill('SIGTERM');
await new Promise((resolve) => server.once('exit', resolve));
fs.rmSync(storage, { recursive: true, force: true });
console.log(`bench: report in ${path.relative(repo, path.join(outDir, 'report.md'))}`);
process.exit(result.status ?? 1);
