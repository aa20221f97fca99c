/**
 * `registry migrate --to postgres+s3` (and back, `--to level+fs --target-root DIR`): copies a
 * stopped registry's stores into another pair of stores (src/services/migration.ts), then
 * checks the target with fsck and prints a summary. Exit 0: copied and fsck clean; 1: fsck
 * found problems on the target; 2: bad usage, or the source is in use (a running registry).
 *
 *   registry migrate --to postgres+s3 [--postgres-url URL] [--s3-endpoint URL] [--s3-bucket B]
 *                    [--s3-region R] [--s3-access-key-id K] [--s3-secret-access-key S]
 *                    [--s3-force-path-style] [--concurrency N] [--json] [--quiet]
 *       source: storage_root (LevelDB + files); target: the flags, else REGISTRY_* / the
 *       config file's postgres_url and s3_* keys
 *   registry migrate --to level+fs --target-root DIR
 *       source: the configured PostgreSQL + S3; target: a new storage root DIR
 *
 * Run it again after an interruption: it copies only what the target does not hold yet.
 */
import type { Writable } from 'node:stream';
import cliProgress from 'cli-progress';
import type { Config } from '../config/schema.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../logger.js';
import { humanBytes, humanDuration, humanRate } from '../client/format.js';
import { Fsck, type FsckReport } from '../services/fsck.js';
import { migrateStores, RECORD_KINDS, type MigrationProgress, type MigrationReport } from '../services/migration.js';
import { openStores, StoreInUseError, type Stores } from '../compose.js';

/** Bad usage, or a source that cannot be opened: the CLI exits 2 with the message. */
export class MigrateUsageError extends Error {}

const TARGETS = ['postgres+s3', 'level+fs'] as const;
type Target = (typeof TARGETS)[number];

/** Flags naming a target setting, and the config key each sets. */
export const MIGRATE_VALUE_FLAGS: Record<string, keyof Config> = {
  'postgres-url': 'postgres_url',
  's3-endpoint': 's3_endpoint',
  's3-bucket': 's3_bucket',
  's3-region': 's3_region',
  's3-access-key-id': 's3_access_key_id',
  's3-secret-access-key': 's3_secret_access_key',
};
export const MIGRATE_OTHER_VALUE_FLAGS = ['to', 'target-root', 'concurrency'];

export interface MigrateIO {
  stdout: NodeJS.WritableStream;
  stderr: Writable & { isTTY?: boolean };
}

export async function migrateCommand(flags: Map<string, string | true>, overrides: Record<string, unknown>, io: MigrateIO): Promise<number> {
  const to = flags.get('to');
  if (typeof to !== 'string' || !TARGETS.includes(to as Target)) {
    throw new MigrateUsageError(`usage: registry migrate --to ${TARGETS.join('|')} (level+fs also needs --target-root DIR)`);
  }
  const concurrencyFlag = flags.get('concurrency');
  const concurrency = concurrencyFlag === undefined ? 4 : Number(concurrencyFlag);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new MigrateUsageError('--concurrency takes a number from 1 to 64');

  const base = loadConfig({ overrides });
  let sourceConfig: Config;
  let targetConfig: Config;
  if (to === 'postgres+s3') {
    const target: Record<string, unknown> = { metadata_store: 'postgres', blob_store: 's3' };
    for (const [flag, key] of Object.entries(MIGRATE_VALUE_FLAGS)) {
      const value = flags.get(flag);
      if (value === true) throw new MigrateUsageError(`--${flag} needs a value`);
      if (value !== undefined) target[key] = value;
    }
    if (flags.has('s3-force-path-style')) target.s3_force_path_style = true;
    sourceConfig = { ...base, metadata_store: 'level', blob_store: 'fs' };
    targetConfig = loadConfig({ overrides: { ...overrides, ...target } });
    if (!targetConfig.postgres_url) throw new MigrateUsageError('the target needs postgres_url (--postgres-url, REGISTRY_POSTGRES_URL or the config file)');
    if (!targetConfig.s3_bucket) throw new MigrateUsageError('the target needs s3_bucket (--s3-bucket, REGISTRY_S3_BUCKET or the config file)');
  } else {
    const root = flags.get('target-root');
    if (typeof root !== 'string') throw new MigrateUsageError('--to level+fs needs --target-root DIR (a new storage root)');
    if (base.metadata_store === 'level' && base.blob_store === 'fs') {
      throw new MigrateUsageError('--to level+fs copies a PostgreSQL + S3 registry: the configured one is LevelDB + files already');
    }
    sourceConfig = base;
    targetConfig = { ...base, metadata_store: 'level', blob_store: 'fs', storage_root: root };
  }

  const logger = createLogger('warn');
  const say = (line: string) => io.stderr.write(line + '\n');
  let source: Stores;
  try {
    source = await openStores(sourceConfig, logger);
  } catch (err) {
    if (err instanceof StoreInUseError) {
      throw new MigrateUsageError(
        `the source registry is running: ${err.location} is locked by another process. Stop it first (migrate copies a stopped registry), then run this again.`,
      );
    }
    throw err;
  }
  let target: Stores | null = null;
  try {
    target = await openStores(targetConfig, logger);
    if (!flags.has('quiet')) say(`migrating ${describe(sourceConfig)} → ${describe(targetConfig)}`);
    const progress = flags.has('quiet') || flags.has('json') ? undefined : createMigrationProgress(io.stderr);
    let report: MigrationReport;
    try {
      report = await migrateStores(source, target, { concurrency, progress });
    } finally {
      progress?.close();
    }
    if (!flags.has('quiet') && !flags.has('json')) say('checking the target (fsck: every blob re-hashed, every record against the blobs)…');
    const fsckStarted = Date.now();
    const fsck = await new Fsck(target.meta, target.blobs, target.locks).run(false);
    const fsckMs = Date.now() - fsckStarted;
    if (flags.has('json')) io.stdout.write(JSON.stringify({ migration: report, fsck, fsckMs }) + '\n');
    else printSummary(io.stdout, report, fsck, fsckMs, sourceConfig);
    return fsck.ok ? 0 : 1;
  } finally {
    await target?.meta.close();
    await target?.locks.close();
    await source.meta.close();
    await source.locks.close();
  }
}

function describe(config: Config): string {
  const meta = config.metadata_store === 'postgres' ? `PostgreSQL ${redact(config.postgres_url)}` : `LevelDB ${config.storage_root}/db`;
  const blobs = config.blob_store === 's3' ? `S3 ${config.s3_endpoint || 'AWS'}/${config.s3_bucket}` : `files ${config.storage_root}/blobs`;
  return `${meta} + ${blobs}`;
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '****';
    return u.toString();
  } catch {
    return '(postgres_url)';
  }
}

function printSummary(out: NodeJS.WritableStream, report: MigrationReport, fsck: FsckReport, fsckMs: number, source: Config): void {
  const line = (text: string) => out.write(text + '\n');
  const { blobs } = report;
  line(`blobs: ${blobs.copied + blobs.skipped} (${humanBytes(blobs.bytesTotal)}): ${blobs.copied} copied (${humanBytes(blobs.bytesCopied)}, ${humanRate(blobs.bytesCopied, report.ms)}), ${blobs.skipped} already there`);
  for (const kind of RECORD_KINDS) {
    const { copied, skipped } = report.records[kind];
    if (copied + skipped > 0) line(`${kind}: ${copied + skipped}: ${copied} copied, ${skipped} already there`);
  }
  if (report.notCopied.unlinkedManifests > 0) line(`not copied: ${report.notCopied.unlinkedManifests} manifest(s) no repository holds (garbage: registry gc deletes them)`);
  line('not copied: OAuth authorization codes and tokens (applications ask their users again; clients and grants are copied)');
  if (source.blob_store === 'fs') {
    line(`tokens and web sessions the source signed (with ${source.storage_root}/secret) end here: give every node one token_secret, users log in again`);
  }
  line(`time: ${humanDuration(report.ms)} copying, ${humanDuration(fsckMs)} fsck`);
  line(
    `fsck of the target: ${fsck.blobs.checked} blobs (${humanBytes(fsck.blobs.bytes)}), ${fsck.images.checked} images, ${fsck.tags.checked} tags, ` +
      `${fsck.manifests.checked} manifests: ${fsck.ok ? 'ok' : `${fsck.problems.length} problem(s)`}`,
  );
  for (const p of fsck.problems) line(`PROBLEM ${p.kind} ${p.subject}: ${p.detail}`);
}

/** Blob bytes as a cli-progress bar on a terminal, lines otherwise; one line per record kind. */
function createMigrationProgress(stream: Writable & { isTTY?: boolean }): MigrationProgress & { close(): void } {
  const write = (text: string) => stream.write(text + '\n');
  let bar: cliProgress.SingleBar | null = null;
  let done = 0;
  let total = 0;
  let started = 0;
  let lastLine = 0;
  return {
    blobsStart(count, bytes) {
      total = bytes;
      started = Date.now();
      lastLine = started;
      write(`blobs: ${count} (${humanBytes(bytes)})`);
      if (stream.isTTY) {
        bar = new cliProgress.SingleBar(
          {
            stream: stream as unknown as NodeJS.WritableStream,
            hideCursor: true,
            barsize: 30,
            format: (options, params) =>
              `blobs  ${cliProgress.Format.BarFormat(params.progress, options)}  ${humanBytes(params.value)}/${humanBytes(params.total)}  ${humanRate(params.value, Date.now() - started)}`,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(Math.max(1, bytes), 0);
      }
    },
    blobBytes(bytes) {
      done += bytes;
      if (bar) bar.update(done);
      else if (Date.now() - lastLine >= 10_000) {
        lastLine = Date.now();
        write(`blobs: ${humanBytes(done)} of ${humanBytes(total)} (${humanRate(done, lastLine - started)})`);
      }
    },
    blobsEnd() {
      bar?.update(done);
      bar?.stop();
      bar = null;
      write(`blobs: done (${humanBytes(done)})`);
    },
    records(kind, counted) {
      if (counted.copied + counted.skipped > 0) write(`${kind}: ${counted.copied} copied, ${counted.skipped} already there`);
    },
    close() {
      bar?.stop();
      bar = null;
    },
  };
}
