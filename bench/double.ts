/**
 * npm run bench:double: the test double's targets (README "Test double"), measured on the
 * built package as users import it (`v1-registry/testing` → dist/):
 *
 *   create → first answer   createTestRegistry() until a GET /v1/_ping has answered, 50
 *                           times in one process (the first includes Node's one-time
 *                           loading of what the server uses); target ≤ 50 ms
 *   seeding 1,000 images    one seed() of 100 repositories × 10 tags, each a distinct
 *                           single-layer image, 3 rounds on fresh doubles; target ≤ 1 s
 *   100 tests               test/testing/many-doubles.test.ts (100 tests, each with its own
 *                           double) under `node --test`, against dist/: it must end by
 *                           itself (no --test-force-exit) with nothing left alive
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createTestRegistry, type SeedRepository } from 'v1-registry/testing';

const REPO = path.resolve(import.meta.dirname, '..');

function get(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const ms = (v: number) => `${v.toFixed(1)} ms`;

/**
 * CPU ms of this process's main thread (Linux; 0 elsewhere). On a shared machine wall time
 * follows the load; the main thread's CPU time is what the double itself costs (V8's
 * compiler and GC helper threads run beside it on another core).
 */
function mainThreadCpu(): number {
  try {
    const fields = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in USER_HZ (100)
  } catch {
    return 0;
  }
}

async function firstAnswer(rounds: number): Promise<void> {
  const times: number[] = [];
  const used = process.cpuUsage();
  const mainBefore = mainThreadCpu();
  for (let i = 0; i < rounds; i++) {
    const started = performance.now();
    const reg = await createTestRegistry();
    const status = await get(`${reg.url}/v1/_ping`);
    times.push(performance.now() - started);
    await reg.close();
    if (status !== 200) throw new Error(`_ping answered ${status}`);
  }
  const sorted = [...times].sort((a, b) => a - b);
  const { user, system } = process.cpuUsage(used);
  console.log(
    `create → first answer (${rounds}×): first ${ms(times[0])}, median ${ms(quantile(sorted, 0.5))}, p95 ${ms(quantile(sorted, 0.95))}, max ${ms(sorted[sorted.length - 1])}; CPU per double, close included: ${ms((user + system) / 1000 / rounds)} all threads, ${ms((mainThreadCpu() - mainBefore) / rounds)} main thread (target ≤ 50 ms)`,
  );
}

async function seeding(rounds: number): Promise<void> {
  const spec = (round: number): SeedRepository[] =>
    Array.from({ length: 100 }, (_, r) => ({
      name: `ns${r}/repo`,
      tags: Object.fromEntries(Array.from({ length: 10 }, (_, t) => [`t${t}`, { layers: [`round ${round}, repository ${r}, tag ${t}`] }])),
    }));
  const times: number[] = [];
  const cpu: number[] = [];
  const main: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const reg = await createTestRegistry();
    const repositories = spec(round);
    const started = performance.now();
    const used = process.cpuUsage();
    const mainBefore = mainThreadCpu();
    const result = await reg.seed({ repositories });
    main.push(mainThreadCpu() - mainBefore);
    times.push(performance.now() - started);
    const { user, system } = process.cpuUsage(used);
    cpu.push((user + system) / 1000);
    const images = new Set(Object.values(result.repositories).flatMap((r) => Object.values(r.tags).map((t) => t.id)));
    if (images.size !== 1000) throw new Error(`seeded ${images.size} images, not 1000`);
    const tags = await get(`${reg.url}/v1/repositories/ns99/repo/tags`);
    if (tags !== 200) throw new Error(`tags answered ${tags}`);
    await reg.close();
  }
  console.log(`seeding 1,000 images (${rounds}×): ${times.map(ms).join(', ')} (CPU, all threads: ${cpu.map(ms).join(', ')}; main thread: ${main.map(ms).join(', ')}; target ≤ 1,000 ms)`);
}

function manyDoubles(): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    // No source condition: the test file imports v1-registry/testing from dist/.
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', 'test/testing/many-doubles.test.ts'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const guard = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      const count = (name: string) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(out)?.[1]);
      console.log(
        `100 tests, each its own double: ${signal ? `killed (${signal}): it did not end by itself` : `exit ${code}`}, pass ${count('pass')}, fail ${count('fail')}, ${ms(performance.now() - started)} wall (node --test, no --test-force-exit)`,
      );
      if (code !== 0) console.log(out);
      resolve();
    });
  });
}

console.log(`node ${process.version}, ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
await firstAnswer(50);
await seeding(3);
await manyDoubles();
console.log(`load after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
