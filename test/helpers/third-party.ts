/**
 * Driving the third-party clients the tests judge us with: npm `docker-registry-client`
 * (the v1 client; callback style) and npm `docker-hub-api` (the Hub client; no base-URL
 * option, so its one URL-building function is wrapped to point it at a loopback server).
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import type { ClientError, ClientResponse, Logger, RegistryClientV1 } from 'docker-registry-client';

/** A bunyan-like logger that drops everything (`log.trace()` with no args: "disabled"). */
export const silentLogger: Logger = {
  child: () => silentLogger,
  trace: () => false,
  debug: () => false,
  info: () => false,
  warn: () => false,
  error: () => false,
  fatal: () => false,
  serializers: { err: () => null, req: () => null, res: () => null, client_req: () => null, client_res: () => null },
};

/** Calls one callback-style client method; resolves with its result and the response. */
export function call<T>(fn: (cb: (err: ClientError | null, result: T, res: ClientResponse) => void) => void): Promise<{ result: T; res: ClientResponse }> {
  return new Promise((resolve, reject) => {
    fn((err, result, res) => (err ? reject(err) : resolve({ result, res })));
  });
}

/** Downloads a layer with getImgLayerStream (which hands back a paused response). */
export function layerOf(client: RegistryClientV1, imgId: string): Promise<{ bytes: Buffer; res: IncomingMessage }> {
  return new Promise((resolve, reject) => {
    client.getImgLayerStream({ imgId }, (err, stream) => {
      if (err) return reject(err);
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', reject);
      stream.on('end', () => resolve({ bytes: Buffer.concat(chunks), res: stream }));
      stream.resume();
    });
  });
}

/** The part of docker-hub-api the tests use (the package ships no types). */
export interface DockerHubApi {
  login(username: string, password: string): Promise<{ token: string }>;
  setLoginToken(token: string | null): void;
  setCacheOptions(options: { enabled?: boolean; time?: number }): void;
  loggedInUser(): Promise<{ username: string }>;
  user(username: string): Promise<{ username: string; type: string }>;
  repository(username: string, name?: string): Promise<Record<string, unknown>>;
  repositories(username: string): Promise<{ count: number; results: Array<{ name: string }> }>;
  createRepository(username: string, name: string, details: Record<string, unknown>): Promise<Record<string, unknown>>;
  setRepositoryDescription(username: string, name: string, descriptions: { short?: string; full?: string }): Promise<Record<string, unknown>>;
  tags(username: string, name?: unknown, options?: { page?: number; perPage?: number }): Promise<Array<Record<string, unknown>>>;
  deleteTag(username: string, name: string, tag: string): Promise<void>;
  deleteRepository(username: string, name: string): Promise<void>;
  makeRequestParams(method: string, path: string, data?: unknown): { url: string; method: string; headers: Record<string, string> };
}

export const HUB_PACKAGE = 'docker-hub-api';
const HUB_ORIGIN = 'https://hub.docker.com';

/** docker-hub-api, or null when it is not installed. */
export function loadHubClient(): DockerHubApi | null {
  try {
    return createRequire(import.meta.url)(HUB_PACKAGE) as DockerHubApi;
  } catch {
    return null;
  }
}

/**
 * Points the library at `origin()` instead of https://hub.docker.com (refusing any other
 * URL, so nothing leaves 127.0.0.1), with caching off and no token; `seen` receives
 * `METHOD /path` of every call. Returns what undoes it.
 */
export function pointHubClientAt(client: DockerHubApi, origin: () => string, seen: string[] = []): () => void {
  const original = client.makeRequestParams;
  client.makeRequestParams = function (this: DockerHubApi, method, path, data) {
    const params = original.call(this, method, path, data);
    if (!params.url.startsWith(`${HUB_ORIGIN}/`)) throw new Error(`unexpected URL ${params.url}`);
    params.url = origin() + params.url.slice(HUB_ORIGIN.length);
    seen.push(`${method.toUpperCase()} ${params.url.slice(origin().length)}`);
    return params;
  };
  client.setCacheOptions({ enabled: false });
  client.setLoginToken(null);
  return () => {
    client.makeRequestParams = original;
    client.setLoginToken(null);
  };
}

/** The library's error: `new Error(JSON.stringify(body))` for a body with `detail`. */
export function hubErrorOf(err: unknown): { detail: string } {
  assert.ok(err instanceof Error, String(err));
  return JSON.parse(err.message) as { detail: string };
}
