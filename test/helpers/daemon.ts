/**
 * What the test engines (PostgreSQL, Ceph) share: free loopback ports, daemons spawned with
 * their output in a log file, waiting until they answer, and stopping them (SIGTERM, then
 * SIGKILL).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';

/** A TCP port nothing listens on right now (the OS picks it; a daemon binds it next). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface Daemon {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: boolean;
  /** The last lines of its log. */
  logTail(lines?: number): Promise<string>;
  /** SIGTERM, SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Spawns a long-running program with stdout and stderr appended to `logFile`. */
export async function startDaemon(name: string, command: string, args: string[], logFile: string, options: SpawnOptions = {}): Promise<Daemon> {
  const log = await fs.open(logFile, 'a');
  const child = spawn(command, args, { ...options, stdio: ['ignore', log.fd, log.fd] });
  await log.close();
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
    child.once('error', () => {
      exited = true;
      resolve();
    });
  });
  return {
    name,
    child,
    get exited() {
      return exited;
    },
    async logTail(lines = 30) {
      const text = await fs.readFile(logFile, 'utf8').catch(() => '');
      return text.split('\n').slice(-lines).join('\n');
    },
    async stop(graceMs = 10_000) {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    },
  };
}

/** Runs a program to completion; rejects with its output unless it exits 0. */
export function run(command: string, args: string[], options: SpawnOptions & { input?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout?.on('data', (d) => (out += d));
    child.stderr?.on('data', (d) => (out += d));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${out.slice(-4000)}`));
    });
    child.stdin?.end(options.input ?? '');
  });
}

/** Calls `probe` until it resolves true; fails with `describe()` if a daemon exits or time runs out. */
export async function waitUntil(what: string, probe: () => Promise<boolean>, daemons: Daemon[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = daemons.find((d) => d.exited);
    if (dead) throw new Error(`${dead.name} exited while waiting for ${what}:\n${await dead.logTail()}`);
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) {
      const tails = await Promise.all(daemons.map(async (d) => `── ${d.name}\n${await d.logTail(15)}`));
      throw new Error(`${what}: not ready within ${timeoutMs} ms\n${tails.join('\n')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
