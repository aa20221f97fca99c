/**
 * Writes a tarball `docker load` accepts (and skopeo's `docker-archive:` reads), in both
 * layouts at once, streaming:
 *
 *   <id>/                 for each v1 image, base first
 *   <id>/VERSION          "1.0"
 *   <id>/json             the v1 image JSON, byte-exact as the registry served it
 *   <id>/layer.tar        the layer, uncompressed
 *   <sha256>.json         the image config (rootfs.diff_ids = sha256 of each layer.tar)
 *   manifest.json         [{"Config": "<sha256>.json", "RepoTags": ["host/ns/repo:tag"],
 *                           "Layers": ["<id>/layer.tar", …]}]
 *   repositories          {"host/ns/repo": {"tag": "<top id>"}}
 *
 * Layers come first (their diff_ids are only known once they are through), then the
 * config and the two indexes; readers of both layouts do not care about the order.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { Writable } from 'node:stream';
import { TarWriter } from './tar-write.js';

export interface FinishSpec {
  config: Buffer;
  /** `host/ns/repo:tag` for manifest.json RepoTags. */
  repoTag: string;
  /** `host/ns/repo` for `repositories`. */
  repoName: string;
  tag: string;
  /** v1 ids, base first; the last is the tagged image. */
  layerIds: string[];
}

export class DockerArchiveWriter {
  private readonly tar: TarWriter;

  constructor(out: Writable) {
    this.tar = new TarWriter(out);
  }

  async imageMeta(id: string, json: Buffer): Promise<void> {
    await this.tar.directory(id);
    await this.tar.file(`${id}/VERSION`, '1.0');
    await this.tar.file(`${id}/json`, json);
  }

  async layerBegin(id: string, size: number): Promise<void> {
    await this.tar.begin(`${id}/layer.tar`, size);
  }

  async layerWrite(chunk: Buffer): Promise<void> {
    await this.tar.write(chunk);
  }

  async layerEnd(): Promise<void> {
    await this.tar.end();
  }

  async layerFromFile(id: string, file: string, size: number): Promise<void> {
    await this.layerBegin(id, size);
    for await (const chunk of fs.createReadStream(file)) await this.tar.write(chunk as Buffer);
    await this.layerEnd();
  }

  /** Writes config, manifest.json, repositories and the end of the archive; returns the config digest. */
  async finish(spec: FinishSpec): Promise<string> {
    const hex = createHash('sha256').update(spec.config).digest('hex');
    await this.tar.file(`${hex}.json`, spec.config);
    const manifest = [{ Config: `${hex}.json`, RepoTags: [spec.repoTag], Layers: spec.layerIds.map((id) => `${id}/layer.tar`) }];
    await this.tar.file('manifest.json', JSON.stringify(manifest));
    const top = spec.layerIds[spec.layerIds.length - 1];
    await this.tar.file('repositories', JSON.stringify({ [spec.repoName]: { [spec.tag]: top } }) + '\n');
    await this.tar.finish();
    return `sha256:${hex}`;
  }
}
