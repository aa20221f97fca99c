/** A small v1 push client for tests: the docker 1.x sequence, one image at a time. */
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';

export interface TestImage {
  id: string;
  parent?: string;
  layer: Buffer;
  /** Exact JSON bytes to upload; built from id/parent when absent. */
  json?: Buffer;
}

export function imageJson(image: TestImage): Buffer {
  if (image.json) return image.json;
  const doc: Record<string, unknown> = { id: image.id, created: '2014-10-10T10:10:10.000000000Z', container_config: { Cmd: ['/bin/sh'] } };
  if (image.parent) doc.parent = image.parent;
  return Buffer.from(JSON.stringify(doc));
}

export function payloadChecksum(json: Buffer, layer: Buffer): string {
  return 'sha256:' + createHash('sha256').update(json).update('\n').update(layer).digest('hex');
}

export async function put(url: string, body: RequestInit['body'] | Buffer | undefined, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'PUT', body: body as RequestInit['body'], headers });
}

/** PUT json, layer and checksum; asserts each step answered 200. */
export async function pushImage(base: string, image: TestImage): Promise<void> {
  const json = imageJson(image);
  let res = await put(`${base}/v1/images/${image.id}/json`, json, { 'Content-Type': 'application/json' });
  assert.equal(res.status, 200, `PUT json: ${await res.text()}`);
  res = await put(`${base}/v1/images/${image.id}/layer`, image.layer, { 'Content-Type': 'application/octet-stream' });
  assert.equal(res.status, 200, `PUT layer: ${await res.text()}`);
  res = await put(`${base}/v1/images/${image.id}/checksum`, undefined, {
    'X-Docker-Checksum-Payload': payloadChecksum(json, image.layer),
  });
  assert.equal(res.status, 200, `PUT checksum: ${await res.text()}`);
}

export async function setTag(base: string, repo: string, tag: string, id: string, userAgent?: string): Promise<Response> {
  return put(`${base}/v1/repositories/${repo}/tags/${tag}`, JSON.stringify(id), {
    'Content-Type': 'application/json',
    ...(userAgent ? { 'User-Agent': userAgent } : {}),
  });
}

/** Pushes a chain of images (oldest first) and tags the last one. */
export async function pushChain(base: string, repo: string, tag: string, images: TestImage[]): Promise<void> {
  for (const image of images) await pushImage(base, image);
  const res = await setTag(base, repo, tag, images[images.length - 1].id);
  assert.equal(res.status, 200, `PUT tag: ${await res.text()}`);
}
