/**
 * Registry nodes of one registry for the multi-node tests: each its own process-local state
 * and storage root, all on one PostgreSQL schema and one S3 bucket (the run's engines), with
 * one token_secret. Not a test entry point.
 */
import assert from 'node:assert/strict';
import type { Engines } from '../helpers/engines.js';
import { newSchema } from '../helpers/postgres-engine.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { imageJson, payloadChecksum, put, type TestImage } from '../helpers/v1.js';
import { sharedConfig } from './cluster.js';

export const ADMIN = { username: 'nodeadmin', password: 'node-admin-password' };
export const TOKEN_SECRET = 'a secret every node of this registry shares';

export function basic(user: string, password: string): Record<string, string> {
  return { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}
export const adminAuth = basic(ADMIN.username, ADMIN.password);

export interface Cluster {
  nodes: TestServer[];
  /** The settings every node shares (for nodes started later, e.g. as child processes). */
  shared: Record<string, unknown>;
  schemaUrl: string;
  stop(): Promise<void>;
}

/** `count` nodes started at once on a fresh schema and bucket, with `extra` settings. */
export async function startCluster(engines: Engines, count: number, extra: Record<string, unknown> = {}): Promise<Cluster> {
  const schema = await newSchema(engines.postgres.url);
  const shared = sharedConfig(engines, schema.url, {
    standalone: false,
    admin_username: ADMIN.username,
    admin_password: ADMIN.password,
    token_secret: TOKEN_SECRET,
    ...extra,
  });
  const nodes = await Promise.all(Array.from({ length: count }, () => startTestServer({ overrides: shared })));
  return {
    nodes,
    shared,
    schemaUrl: schema.url,
    async stop() {
      for (const node of nodes) await node.destroy();
      await schema.drop();
    },
  };
}

/** Pushes `images` (oldest first) through `base` with `auth` and tags the last one. */
export async function pushAs(base: string, auth: Record<string, string>, repo: string, tag: string, images: TestImage[]): Promise<void> {
  for (const image of images) {
    const json = imageJson(image);
    let res = await put(`${base}/v1/images/${image.id}/json`, json, { ...auth, 'Content-Type': 'application/json' });
    assert.equal(res.status, 200, `PUT json: ${await res.text()}`);
    res = await put(`${base}/v1/images/${image.id}/layer`, image.layer, { ...auth, 'Content-Type': 'application/octet-stream' });
    assert.equal(res.status, 200, `PUT layer: ${await res.text()}`);
    res = await put(`${base}/v1/images/${image.id}/checksum`, undefined, { ...auth, 'X-Docker-Checksum-Payload': payloadChecksum(json, image.layer) });
    assert.equal(res.status, 200, `PUT checksum: ${await res.text()}`);
  }
  const res = await tagAs(base, auth, repo, tag, images[images.length - 1].id);
  assert.equal(res.status, 200, `PUT tag: ${await res.text()}`);
}

export function tagAs(base: string, auth: Record<string, string>, repo: string, tag: string, id: string): Promise<Response> {
  return put(`${base}/v1/repositories/${repo}/tags/${tag}`, JSON.stringify(id), { ...auth, 'Content-Type': 'application/json' });
}
