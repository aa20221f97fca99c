/**
 * fsck: checks everything the registry stores against everything it records.
 *
 * - every blob re-hashes to its address;
 * - every image: JSON present, ancestry = [id, …parent's ancestry], parent present, a
 *   complete image has a layer whose blob exists and is intact;
 * - every tag points at a complete image; every image-list entry has its reverse link;
 * - orphans: blobs no image uses, images no repository reaches (GC's business), temp files.
 *
 * `repair` removes or resets only what is provably broken and never touches a complete
 * image: dangling tags are deleted, a pending image whose blob is missing or corrupt
 * loses its layer (it must be uploaded again), corrupt blobs no complete image uses are
 * deleted, missing reverse links are rewritten. Broken complete images are reported only.
 */
import { createHash } from 'node:crypto';
import { withAncestors } from '../domain/ancestry.js';
import { nameOfRepo, type ImageId, type Tag } from '../domain/names.js';
import type { ImageRecord } from '../domain/records.js';
import type { BlobStore } from '../store/blobs/blob-store.js';
import type { MetadataStore } from '../store/metadata/metadata-store.js';
import type { Gate } from './gate.js';

export interface FsckProblem {
  kind:
    | 'corrupt-blob'
    | 'missing-blob'
    | 'missing-json'
    | 'bad-ancestry'
    | 'missing-parent'
    | 'complete-without-layer'
    | 'dangling-tag'
    | 'missing-reverse-link';
  subject: string;
  detail: string;
  repaired: boolean;
}

export interface FsckReport {
  blobs: { checked: number; bytes: number; orphans: string[] };
  images: { checked: number; complete: number; pending: number; unreferenced: ImageId[] };
  tags: { checked: number };
  problems: FsckProblem[];
  repair: boolean;
  ok: boolean;
}

export class Fsck {
  constructor(
    private readonly meta: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly gate: Gate,
  ) {}

  run(repair: boolean): Promise<FsckReport> {
    return this.gate.withExclusive(() => this.check(repair));
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
        if (!record.imageId) continue; // a v2 tag of a manifest v1 cannot show: checked with the manifests
        const target = images.get(record.imageId);
        if (!target || target.status !== 'complete') {
          const detail = `points at ${target ? 'an incomplete' : 'a missing'} image ${record.imageId}`;
          const repaired = repair && (await this.meta.deleteTag(name, tag as Tag));
          problem('dangling-tag', `${name.full}:${tag}`, detail, repaired);
        }
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

    return {
      blobs: { checked: present.size, bytes, orphans: [...present].filter((d) => !used.has(d) && !deleted.has(d)).sort() },
      images: {
        checked: images.size,
        complete,
        pending: images.size - complete,
        unreferenced: [...images.keys()].filter((id) => !live.has(id)).sort(),
      },
      tags: { checked: tagsChecked },
      problems,
      repair,
      ok: problems.every((p) => p.repaired),
    };
  }
}
