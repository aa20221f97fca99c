/**
 * fsck: checks everything the registry stores against everything it records.
 *
 * - every blob re-hashes to its address;
 * - every image: JSON present, ancestry = [id, …parent's ancestry], parent present, a
 *   complete image has a layer whose blob exists and is intact;
 * - every tag points at a complete image (v1) and at a manifest its repository holds (v2);
 *   every image-list entry has its reverse link;
 * - v2: every stored manifest re-hashes to its digest; every manifest a repository holds is
 *   stored, and so is every blob it names; every blob link names a stored blob; every upload
 *   session still has the bytes it acknowledged;
 * - orphans: blobs no image or manifest uses, images no repository reaches (GC's business).
 *
 * `repair` removes or resets only what is provably broken and never touches a complete
 * image or a stored manifest: dangling tags are deleted (a tag whose v1 image is fine but
 * whose manifest is gone keeps the image), a pending image whose blob is missing or corrupt
 * loses its layer (it must be uploaded again), corrupt blobs no complete image or manifest
 * uses are deleted, missing reverse links are rewritten, links to manifests whose bytes are
 * gone and links to missing blobs are removed, upload sessions that lost their bytes are
 * ended. Broken complete images and manifests are reported only.
 */
import { createHash } from 'node:crypto';
import { isForeignLayer, parseManifest } from '../domain/manifest.js';
import { withAncestors } from '../domain/ancestry.js';
import { nameOfRepo, type ImageId, type Tag } from '../domain/names.js';
import type { ImageRecord } from '../domain/records.js';
import type { BlobStore } from '../store/blobs/blob-store.js';
import type {
  BlobLinkStore,
  ImageListStore,
  ImageStore,
  ManifestStore,
  RepositoryStore,
  TagStore,
  UploadSessionStore,
} from '../store/metadata/ports.js';
import type { WriteGate } from '../store/locks/locks.js';

export interface FsckProblem {
  kind:
    | 'corrupt-blob'
    | 'missing-blob'
    | 'missing-json'
    | 'bad-ancestry'
    | 'missing-parent'
    | 'complete-without-layer'
    | 'dangling-tag'
    | 'missing-reverse-link'
    | 'corrupt-manifest'
    | 'missing-manifest'
    | 'dangling-blob-link'
    | 'lost-upload';
  subject: string;
  detail: string;
  repaired: boolean;
}

export interface FsckReport {
  blobs: { checked: number; bytes: number; orphans: string[] };
  images: { checked: number; complete: number; pending: number; unreferenced: ImageId[] };
  tags: { checked: number };
  manifests: { checked: number; links: number };
  uploads: { sessions: number };
  problems: FsckProblem[];
  repair: boolean;
  ok: boolean;
}

/** What fsck checks and repairs: images, tags, image lists, manifests, blob links and uploads. */
export type FsckStores =
  & ImageStore
  & RepositoryStore
  & TagStore
  & ImageListStore
  & ManifestStore
  & BlobLinkStore
  & UploadSessionStore;

export class Fsck {
  constructor(
    private readonly meta: FsckStores,
    private readonly blobs: BlobStore,
    private readonly gate: WriteGate,
  ) {}

  run(repair: boolean): Promise<FsckReport> {
    return this.gate.exclusive(() => this.check(repair));
  }

  private async check(repair: boolean): Promise<FsckReport> {
    const problems: FsckProblem[] = [];
    const problem = (kind: FsckProblem['kind'], subject: string, detail: string, repaired = false) =>
      problems.push({ kind, subject, detail, repaired });

    // Blobs: re-hash every one.
    const corrupt = new Set<string>();
    const present = new Set<string>();
    let bytes = 0;
    for await (const digest of this.blobs.list()) {
      present.add(digest);
      const hash = createHash('sha256');
      for await (const chunk of await this.blobs.read(digest)) {
        hash.update(chunk as Buffer);
        bytes += (chunk as Buffer).length;
      }
      if (`sha256:${hash.digest('hex')}` !== digest) corrupt.add(digest);
    }

    const images = new Map<ImageId, ImageRecord>();
    for await (const record of this.meta.listImages()) images.set(record.id, record);
    const usedByComplete = new Set<string>();
    const used = new Set<string>();
    let complete = 0;
    for (const record of images.values()) {
      if (record.status === 'complete') complete += 1;
      if (!(await this.meta.getImageJson(record.id))) problem('missing-json', record.id, 'image JSON is missing');
      if (record.parent && !images.has(record.parent)) problem('missing-parent', record.id, `parent ${record.parent} does not exist`);
      const ancestry = (await this.meta.getAncestry(record.id)) ?? [];
      const parentAncestry = record.parent ? (await this.meta.getAncestry(record.parent)) ?? [] : [];
      if (ancestry[0] !== record.id || ancestry.slice(1).join() !== parentAncestry.join()) {
        problem('bad-ancestry', record.id, `ancestry ${JSON.stringify(ancestry.slice(0, 3))}… does not follow the parent links`);
      }
      if (!record.layer) {
        if (record.status === 'complete') problem('complete-without-layer', record.id, 'complete image has no layer');
        continue;
      }
      const digest = record.layer.digest;
      used.add(digest);
      if (record.status === 'complete') usedByComplete.add(digest);
      const broken = !present.has(digest) ? 'missing-blob' : corrupt.has(digest) ? 'corrupt-blob' : null;
      if (!broken) continue;
      const detail = `${broken === 'missing-blob' ? 'layer blob is missing' : 'layer blob does not match its digest'} (${digest})`;
      if (record.status === 'pending' && repair) {
        await this.meta.updateImage({ ...record, layer: null });
        problem(broken, record.id, `${detail}; the layer must be uploaded again`, true);
      } else {
        problem(broken, record.id, detail);
      }
    }
    // v2 manifests: stored bytes re-hash to their digest; what a repository holds is stored,
    // and so is every blob it names (those blobs are in use, like a complete image's).
    const names = [];
    for await (const repo of this.meta.listRepos()) names.push(nameOfRepo(repo));
    const stored = new Set<string>();
    let manifestsChecked = 0;
    for await (const digest of this.meta.listManifests()) {
      manifestsChecked += 1;
      stored.add(digest);
      const bytes = await this.meta.getManifest(digest);
      if (!bytes || `sha256:${createHash('sha256').update(bytes).digest('hex')}` !== digest) {
        problem('corrupt-manifest', digest, 'stored manifest bytes do not match their digest');
        continue;
      }
      let named: string[] = [];
      try {
        const m = parseManifest(bytes, undefined);
        named = m.kind === 'image' && m.config ? [m.config.digest, ...m.layers.filter((l) => !isForeignLayer(l)).map((l) => l.digest)] : [];
      } catch {
        problem('corrupt-manifest', digest, 'stored manifest is not a manifest');
        continue;
      }
      for (const blob of named) {
        used.add(blob);
        usedByComplete.add(blob);
        if (!present.has(blob) || corrupt.has(blob)) problem(corrupt.has(blob) ? 'corrupt-blob' : 'missing-blob', digest, `manifest blob ${blob} is ${corrupt.has(blob) ? 'corrupt' : 'missing'}`);
      }
    }
    let links = 0;
    const linkedIn = new Map<string, Set<string>>();
    for (const name of names) {
      const held = new Set<string>();
      for (const [digest] of await this.meta.listManifestLinks(name)) {
        links += 1;
        if (stored.has(digest)) {
          held.add(digest);
          continue;
        }
        const repaired = repair && (await this.meta.unlinkManifest(name, digest));
        problem('missing-manifest', `${name.full}@${digest}`, 'the repository holds a manifest that is not stored', repaired);
      }
      linkedIn.set(name.full, held);
      for (const [digest] of await this.meta.listBlobLinks(name)) {
        if (present.has(digest)) continue;
        const repaired = repair && (await this.meta.unlinkBlob(name, digest));
        problem('dangling-blob-link', `${name.full}@${digest}`, 'the repository holds a blob that is not stored', repaired);
      }
    }

    const deleted = new Set<string>();
    for (const digest of corrupt) {
      if (usedByComplete.has(digest)) continue; // reported with its image, never touched
      const repaired = repair && (await this.blobs.delete(digest));
      if (repaired) deleted.add(digest);
      problem('corrupt-blob', digest, 'blob does not match its digest', repaired);
    }

    // Tags and image lists.
    const reached = new Set<ImageId>();
    let tagsChecked = 0;
    for await (const repo of this.meta.listRepos()) {
      const name = nameOfRepo(repo);
      for (const [tag, record] of await this.meta.listTags(name)) {
        tagsChecked += 1;
        const target = record.imageId ? images.get(record.imageId) : null;
        const imageBroken = record.imageId !== null && (!target || target.status !== 'complete');
        const manifestBroken = record.manifest !== undefined && !linkedIn.get(name.full)?.has(record.manifest);
        if (!imageBroken && !manifestBroken) continue;
        const detail = imageBroken
          ? `points at ${target ? 'an incomplete' : 'a missing'} image ${record.imageId}`
          : `points at a manifest the repository does not hold: ${record.manifest}`;
        let repaired = false;
        if (repair && !imageBroken && record.imageId) {
          // The v1 image is fine: the tag keeps it, without the lost manifest.
          await this.meta.putTag(name, tag as Tag, { imageId: record.imageId, info: record.info }, repo);
          repaired = true;
        } else if (repair) {
          repaired = await this.meta.deleteTag(name, tag as Tag);
        }
        problem('dangling-tag', `${name.full}:${tag}`, detail, repaired);
      }
      const missingLinks = [];
      for (const entry of await this.meta.getRepoImages(name)) {
        reached.add(entry.id);
        const holders = await this.meta.reposOfImage(entry.id);
        if (!holders.some((h) => h.full === name.full)) missingLinks.push(entry);
      }
      if (missingLinks.length > 0) {
        if (repair) await this.meta.mergeRepoImages(name, missingLinks);
        for (const entry of missingLinks) problem('missing-reverse-link', `${name.full}@${entry.id}`, 'image list entry has no reverse link', repair);
      }
    }
    const live = withAncestors(reached, (id) => images.get(id)?.parent);

    // v2 upload sessions: each still has the bytes it acknowledged.
    let sessions = 0;
    for await (const record of this.meta.listUploads()) {
      sessions += 1;
      const info = await this.blobs.statUpload(record.id);
      if (record.offset === 0 || (info && info.size >= record.offset)) continue;
      if (repair) await this.meta.deleteUpload(record.id);
      problem('lost-upload', record.id, `upload session of ${record.repo} acknowledged ${record.offset} bytes, ${info?.size ?? 0} are left`, repair);
    }

    return {
      blobs: { checked: present.size, bytes, orphans: [...present].filter((d) => !used.has(d) && !deleted.has(d)).sort() },
      images: {
        checked: images.size,
        complete,
        pending: images.size - complete,
        unreferenced: [...images.keys()].filter((id) => !live.has(id)).sort(),
      },
      tags: { checked: tagsChecked },
      manifests: { checked: manifestsChecked, links },
      uploads: { sessions },
      problems,
      repair,
      ok: problems.every((p) => p.repaired),
    };
  }
}
