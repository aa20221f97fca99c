/**
 * Copies one registry's stores into another's (`registry migrate`, src/cli/migrate.ts):
 * LevelDB + files into PostgreSQL + S3, or back. It speaks only the store interfaces, so
 * each side's key schema stays in the one file that owns it, and any pair of backends works.
 *
 * Order: blobs first, then the records that name them, the tags last, so a target read half
 * way through never has a tag naming an image without its layer, nor a complete image
 * without its blob.
 *
 * Resumable: every step compares what the target holds with the source and writes only what
 * differs, so a run that was interrupted (killed mid-blob, mid-record) is finished by running
 * it again. A blob counts as there when the target has it with the source's size (blobs are
 * committed only after their digest was verified, so a present one is whole); a record when
 * it is equal. Counters (pull counts) are raised to the source's value, never added twice.
 *
 * Blobs are streamed, never held whole: source read → sha256 → target writer, committed
 * only when the hash of the bytes that went through is the digest.
 *
 * Not copied, and reported: manifests no repository links (garbage that gc deletes),
 * OAuth authorization codes and tokens (codes live minutes; the store interface lists
 * neither: users of OAuth applications authorize them again, their grants stay).
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isDeepStrictEqual } from 'node:util';
import { nameOfRepo, type RepoName, type Tag } from '../domain/names.js';
import type { RepoImageEntry } from '../domain/records.js';
import type { BlobStore } from '../store/blobs/blob-store.js';
import type { MetadataStore } from '../store/metadata/metadata-store.js';

/** One side of a migration. */
export interface MigrationEnd {
  meta: MetadataStore;
  blobs: BlobStore;
}

export const RECORD_KINDS = [
  'layer facts',
  'users',
  'images',
  'manifests',
  'blob links',
  'image manifests',
  'repositories',
  'image lists',
  'tags',
  'pull statistics',
  'webhooks',
  'oauth clients',
  'oauth grants',
  'uploads',
] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

export interface Counted {
  /** Written to the target by this run. */
  copied: number;
  /** Already on the target, equal. */
  skipped: number;
}

export interface MigrationReport {
  blobs: Counted & { bytesCopied: number; bytesTotal: number };
  records: Record<RecordKind, Counted>;
  /** What was left behind on purpose (see the file comment). */
  notCopied: { unlinkedManifests: number; oauthTokensAndCodes: 'not listed' };
  ms: number;
}

export interface MigrationProgress {
  /** The blob phase starts: how many and how many bytes. */
  blobsStart(count: number, bytes: number): void;
  /** `bytes` more went through (copied or found on the target). */
  blobBytes(bytes: number): void;
  blobsEnd(): void;
  /** A record phase finished. */
  records(kind: RecordKind, counted: Counted): void;
}

export interface MigrationOptions {
  /** Blobs copied at once (default 4). */
  concurrency?: number;
  progress?: MigrationProgress;
}

/** A blob whose bytes did not hash to its address on the way: the source is damaged. */
export class BlobDigestMismatch extends Error {
  constructor(readonly digest: string, readonly actual: string) {
    super(`blob ${digest}: the source's bytes hash to ${actual}; run registry fsck on the source`);
  }
}

/** Image records copied at once. */
const RECORDS_AT_ONCE = 8;

const quiet: MigrationProgress = { blobsStart() {}, blobBytes() {}, blobsEnd() {}, records() {} };

export async function migrateStores(source: MigrationEnd, target: MigrationEnd, options: MigrationOptions = {}): Promise<MigrationReport> {
  const started = Date.now();
  const progress = options.progress ?? quiet;
  const records = Object.fromEntries(RECORD_KINDS.map((kind) => [kind, { copied: 0, skipped: 0 }])) as Record<RecordKind, Counted>;
  const count = (kind: RecordKind, copied: boolean) => void (copied ? records[kind].copied++ : records[kind].skipped++);
  const done = (kind: RecordKind) => progress.records(kind, records[kind]);
  const src = source.meta;
  const dst = target.meta;

  // ── blobs ──
  const blobs = await copyBlobs(source.blobs, target.blobs, options.concurrency ?? 4, progress);

  for (const digest of blobs.digests) {
    const facts = await src.getLayerFacts(digest);
    if (!facts) continue;
    const same = isDeepStrictEqual(await dst.getLayerFacts(digest), facts);
    if (!same) await dst.putLayerFacts(digest, facts);
    count('layer facts', !same);
  }
  done('layer facts');

  // ── users (and the OAuth grants of each, after the clients) ──
  const users: string[] = [];
  for await (const user of src.listUsers()) {
    users.push(user.name);
    const there = await dst.getUser(user.name);
    const same = isDeepStrictEqual(there, user);
    if (!same) await dst.putUser(user, there?.email);
    count('users', !same);
  }
  done('users');

  // ── images ──
  // Many images, each a few round trips: several at once.
  await forEachAtOnce(src.listImages(), RECORDS_AT_ONCE, async (record) => {
    const [json, ancestry] = await Promise.all([src.getImageJson(record.id), src.getAncestry(record.id)]);
    if (!json || !ancestry) throw new Error(`image ${record.id}: the source has its record without its JSON or ancestry; run registry fsck on the source`);
    const [thereRecord, thereJson, thereAncestry] = await Promise.all([dst.getImage(record.id), dst.getImageJson(record.id), dst.getAncestry(record.id)]);
    const same = isDeepStrictEqual(thereRecord, record) && thereJson !== null && thereJson.equals(json) && isDeepStrictEqual(thereAncestry, ancestry);
    if (!same) await dst.putImage(record, json, ancestry);
    count('images', !same);
  });
  done('images');

  // ── v2: manifests (through the repositories that link them), blob links ──
  const repos = [];
  for await (const repo of src.listRepos()) repos.push(repo);
  const names: RepoName[] = repos.map(nameOfRepo);
  const linked = new Set<string>();
  for (const name of names) {
    for (const [digest, link] of await src.listManifestLinks(name)) {
      linked.add(digest);
      const bytes = await src.getManifest(digest);
      if (!bytes) continue; // a dangling link: fsck on the source reports it
      const [thereLink, thereBytes] = await Promise.all([dst.getManifestLink(name, digest), dst.getManifest(digest)]);
      const same = isDeepStrictEqual(thereLink, link) && thereBytes !== null && thereBytes.equals(bytes);
      if (!same) await dst.putManifest(name, digest, bytes, link);
      count('manifests', !same);
    }
  }
  done('manifests');
  let unlinkedManifests = 0;
  for await (const digest of src.listManifests()) if (!linked.has(digest)) unlinkedManifests += 1;

  for (const name of names) {
    const missing = [];
    for (const [digest, link] of await src.listBlobLinks(name)) {
      const same = isDeepStrictEqual(await dst.getBlobLink(name, digest), link);
      if (!same) missing.push([digest, link] as const);
      count('blob links', !same);
    }
    // linkBlobs keeps a link that exists: one that differs goes first.
    for (const [digest] of missing) await dst.unlinkBlob(name, digest);
    await dst.linkBlobs(name, missing);
  }
  done('blob links');

  for await (const { id, flavor, digest } of src.listImageManifests()) {
    const there = await dst.getImageManifest(id, flavor);
    if (there !== digest) {
      // The first one recorded stays: a different one goes first.
      if (there !== null) await dst.deleteImageManifest(id, flavor);
      await dst.putImageManifest(id, flavor, digest);
    }
    count('image manifests', there !== digest);
  }
  done('image manifests');

  // ── repositories, their image lists, tags and statistics (tags last: they publish) ──
  for (const [i, repo] of repos.entries()) {
    const name = names[i];
    const same = isDeepStrictEqual(await dst.getRepo(name), repo);
    if (!same) await dst.putRepo(name, repo);
    count('repositories', !same);

    const there = new Map((await dst.getRepoImages(name)).map((entry) => [entry.id, entry]));
    const changed: RepoImageEntry[] = [];
    for (const entry of await src.getRepoImages(name)) {
      const equal = isDeepStrictEqual(there.get(entry.id), entry);
      if (!equal) changed.push(entry);
      count('image lists', !equal);
    }
    await dst.mergeRepoImages(name, changed);

    const tags = await src.listTags(name);
    for (const [tag, record] of tags) {
      const equal = isDeepStrictEqual(await dst.getTag(name, tag), record);
      if (!equal) await dst.putTag(name, tag, record, repo);
      count('tags', !equal);
    }

    const tagNames = tags.map(([tag]) => tag) as Tag[];
    const [stats, thereStats] = await Promise.all([src.getTagStats(name, tagNames), dst.getTagStats(name, tagNames)]);
    for (const [j, tag] of tagNames.entries()) {
      const { lastPulledAt, pusher } = stats[j];
      let wrote = false;
      if (lastPulledAt && lastPulledAt !== thereStats[j].lastPulledAt) {
        await dst.setTagsPulled(name, [tag], lastPulledAt);
        wrote = true;
      }
      if (pusher && pusher !== thereStats[j].pusher) {
        await dst.setTagPusher(name, tag, pusher);
        wrote = true;
      }
      if (lastPulledAt || pusher) count('pull statistics', wrote);
    }
    const pulls = await src.getRepoPulls(name);
    if (pulls) {
      const thereCount = (await dst.getRepoPulls(name))?.count ?? 0;
      const missing = pulls.count - thereCount;
      if (missing > 0) await dst.addRepoPull(name, pulls.lastPulledAt ?? new Date(0).toISOString(), missing);
      count('pull statistics', missing > 0);
    }
  }
  for (const kind of ['repositories', 'image lists', 'tags', 'pull statistics'] as const) done(kind);

  // ── the webhook queue ──
  const queued = new Set<string>();
  for await (const delivery of dst.listWebhooks()) queued.add(delivery.id);
  for await (const delivery of src.listWebhooks()) {
    const there = queued.has(delivery.id);
    if (!there) await dst.enqueueWebhooks([delivery]);
    count('webhooks', !there);
  }
  done('webhooks');

  // ── OAuth: clients, then each user's grants (without tokens: see the file comment) ──
  for await (const client of src.listOAuthClients()) {
    const same = isDeepStrictEqual(await dst.getOAuthClient(client.id), client);
    if (!same) await dst.putOAuthClient(client);
    count('oauth clients', !same);
  }
  done('oauth clients');
  for (const user of users) {
    for await (const grant of src.listOAuthGrants(user)) {
      const there = await dst.getOAuthGrant(user, grant.id);
      const same = isDeepStrictEqual(there, grant);
      if (!same && !there?.revokedAt) {
        await dst.issueOAuthTokens({ ...grant, revokedAt: null }, []);
        if (grant.revokedAt) await dst.revokeOAuthGrant(grant, grant.revokedAt);
      }
      count('oauth grants', !same);
    }
  }
  done('oauth grants');

  // ── v2 upload sessions: the bytes acknowledged so far, then the record ──
  for await (const upload of src.listUploads()) {
    const same = isDeepStrictEqual(await dst.getUpload(upload.id), upload);
    if (!same) {
      const info = await source.blobs.statUpload(upload.id);
      if (!info || info.size < upload.offset) continue; // lost its bytes: fsck on the source reports it
      const out = await target.blobs.appendUpload(upload.id, 0);
      await pipeline(await source.blobs.readUpload(upload.id, upload.offset), out);
      await dst.putUpload(upload);
    }
    count('uploads', !same);
  }
  done('uploads');

  return {
    blobs: { copied: blobs.copied, skipped: blobs.skipped, bytesCopied: blobs.bytesCopied, bytesTotal: blobs.bytesTotal },
    records,
    notCopied: { unlinkedManifests, oauthTokensAndCodes: 'not listed' },
    ms: Date.now() - started,
  };
}

interface BlobsCopied {
  digests: string[];
  copied: number;
  skipped: number;
  bytesCopied: number;
  bytesTotal: number;
}

async function copyBlobs(from: BlobStore, to: BlobStore, concurrency: number, progress: MigrationProgress): Promise<BlobsCopied> {
  const sizes = new Map<string, number>();
  for await (const digest of from.list()) {
    const info = await from.stat(digest);
    if (info) sizes.set(digest, info.size);
  }
  const digests = [...sizes.keys()].sort();
  const out: BlobsCopied = { digests, copied: 0, skipped: 0, bytesCopied: 0, bytesTotal: 0 };
  for (const size of sizes.values()) out.bytesTotal += size;
  progress.blobsStart(digests.length, out.bytesTotal);
  let next = 0;
  const worker = async () => {
    while (next < digests.length) {
      const digest = digests[next++];
      const size = sizes.get(digest) as number;
      const there = await to.stat(digest);
      if (there && there.size === size) {
        out.skipped += 1;
        progress.blobBytes(size);
        continue;
      }
      // A blob of another size under this address is a damaged object: it is replaced.
      if (there) await to.delete(digest);
      await copyBlob(from, to, digest, progress);
      out.copied += 1;
      out.bytesCopied += size;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  progress.blobsEnd();
  return out;
}

/** Streams one blob, hashing it on the way; committed only when the hash is its digest. */
async function copyBlob(from: BlobStore, to: BlobStore, digest: string, progress: MigrationProgress): Promise<void> {
  const writer = await to.createWriter();
  try {
    const hash = createHash('sha256');
    const tap = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        progress.blobBytes(chunk.length);
        cb(null, chunk);
      },
    });
    await pipeline(await from.read(digest), tap, writer.stream);
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== digest) throw new BlobDigestMismatch(digest, actual);
    await writer.commit(digest);
  } finally {
    await writer.abort();
  }
}

/** Runs `fn` on every item of `items`, at most `limit` at a time; the first failure stops it. */
async function forEachAtOnce<T>(items: AsyncIterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const running = new Set<Promise<void>>();
  let failed: unknown = null;
  for await (const item of items) {
    if (failed) break;
    const p: Promise<void> = fn(item).then(
      () => void running.delete(p),
      (err) => {
        running.delete(p);
        failed ??= err;
      },
    );
    running.add(p);
    if (running.size >= limit) await Promise.race(running);
  }
  await Promise.all(running);
  if (failed) throw failed;
}
