/**
 * Starts the built server (dist/) the way `npm start` does, for the benchmarks: the same V8
 * flags (a 1 MiB young generation and V8's memory-saving heap sizing keep RSS flat under
 * load) and one glibc malloc arena. `npm run bench` and `bench:meta` both measure this.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';

export const REPO = path.resolve(import.meta.dirname, '..');

export function spawnBuiltServer(env: Record<string, string>, options: { nodeArgs?: string[]; stdio: StdioOptions }): ChildProcess {
  return spawn(process.execPath, ['--max-semi-space-size=1', '--optimize-for-size', ...(options.nodeArgs ?? []), path.join(REPO, 'dist', 'src', 'main.js')], {
    cwd: REPO,
    env: { ...process.env, MALLOC_ARENA_MAX: '1', ...env },
    stdio: options.stdio,
  });
}

/** A port nobody listens on right now (the server gets it through REGISTRY_PORT). */
export async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Polls `base`/v1/_ping until it answers 200 (fails if the server exits first). */
export async function waitUntilServing(server: ChildProcess, base: string): Promise<void> {
  for (;;) {
    if (server.exitCode !== null) throw new Error(`server exited (${server.exitCode}) before answering`);
    try {
      const res = await fetch(`${base}/v1/_ping`);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/**
 * `samples` sequential GETs cycling through `urls` after `warmup` unmeasured ones: each
 * time is from sending the request to the last byte of the body, in ms, sorted. Any answer
 * but 200 stops the bench.
 */
export async function timeRequests(label: string, urls: string[], samples: number, warmup: number, init: RequestInit = {}): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await (await fetch(urls[i % urls.length], init)).arrayBuffer();
  const ms: number[] = [];
  for (let i = 0; i < samples; i++) {
    const url = urls[i % urls.length];
    const t = process.hrtime.bigint();
    const res = await fetch(url, init);
    await res.arrayBuffer();
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (res.status !== 200) throw new Error(`${label}: ${url} answered ${res.status}`);
  }
  return ms.sort((a, b) => a - b);
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
