/**
 * `registry serve --memory [--seed FILE] [--faults FILE] [--port N] [--host H]`: the test
 * double as a process, for test suites in other languages. stdout: the URL on the first
 * line, the seed result (ids and digests, JSON) on the second; then it serves until
 * SIGTERM or SIGINT.
 *
 * The seed file is `reg.seed()`'s spec plus who may log in and tarballs to push:
 *   {"users": [{"username", "password", "admin"?, "email"?}], "standalone"?: bool,
 *    "repositories": [...SeedRepository], "tarballs": [{"file", "ref", "image"?}]}
 * (tarball paths are relative to the seed file). The faults file is a JSON list of fault
 * rules, `reg.faults.add()`'s shape, with `{"regex": "…"}` for a path pattern.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { ArchiveError } from '../client/archive-read.js';
import { IntegrityError } from '../client/errors.js';
import { isRegistryError } from '../domain/errors.js';
import type { Fault } from './faults.js';
import type { SeedRepository, SeededImage, SeedResult } from './seed.js';
import { createTestRegistry, type TestRegistry, type TestUser } from './test-registry.js';

export interface ServeOptions {
  seedFile?: string;
  faultsFile?: string;
  port?: number;
  host?: string;
}

interface SeedFile {
  users?: TestUser[];
  standalone?: boolean;
  repositories?: SeedRepository[];
  tarballs?: Array<{ file: string; ref: string; image?: string }>;
}

/** A problem with the files or flags (the CLI exits with 2). */
export class ServeError extends Error {}

async function readJson(file: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new ServeError(`${what} ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ServeError(`${what} ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

/** Starts the double with the files' seed and faults; the caller prints and waits. */
export async function startDouble(options: ServeOptions): Promise<{ registry: TestRegistry; seeded: SeedResult & { tarballs: SeededImage[] } }> {
  const seed = (options.seedFile ? await readJson(options.seedFile, 'seed file') : {}) as SeedFile;
  if (!seed || typeof seed !== 'object' || Array.isArray(seed)) throw new ServeError('the seed file must hold a JSON object');
  const faults = options.faultsFile ? await readJson(options.faultsFile, 'faults file') : [];
  if (!Array.isArray(faults)) throw new ServeError('the faults file must hold a JSON list of fault rules');
  const registry = await createTestRegistry({
    users: seed.users,
    standalone: seed.standalone,
    port: options.port ?? 0,
    config: options.host ? { host: options.host } : {},
    recordRequests: false,
  });
  try {
    for (const fault of faults as Fault[]) {
      try {
        registry.faults.add(fault);
      } catch (err) {
        throw new ServeError(`faults file: ${(err as Error).message}`);
      }
    }
    let seeded: SeedResult;
    const tarballs: SeededImage[] = [];
    try {
      seeded = await registry.seed({ repositories: seed.repositories });
      const base = path.dirname(path.resolve(options.seedFile ?? '.'));
      for (const t of seed.tarballs ?? []) tarballs.push(await registry.seed.fromTarball(path.resolve(base, t.file), t.ref, { image: t.image }));
    } catch (err) {
      // What the seed file asked for is refused (a bad name, layer or tarball): its problem.
      const refused = err instanceof TypeError || isRegistryError(err) || err instanceof ArchiveError || err instanceof IntegrityError;
      if (refused || (err as NodeJS.ErrnoException).code === 'ENOENT') throw new ServeError(`seed file: ${(err as Error).message}`);
      throw err;
    }
    return { registry, seeded: { ...seeded, tarballs } };
  } catch (err) {
    await registry.close();
    throw err;
  }
}

/** The CLI command: prints the URL and the seed result, serves until a signal, then closes. */
export async function serveDouble(options: ServeOptions, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const { registry, seeded } = await startDouble(options);
  out.write(`${registry.url}\n${JSON.stringify(seeded)}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await registry.close();
}
