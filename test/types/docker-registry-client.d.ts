/**
 * The part of `docker-registry-client` (CommonJS, untyped) that the tests use: the v1
 * client (lib/registry-client-v1.js), the v2 client (lib/registry-client-v2.js) and the
 * repository-name parser (lib/common.js).
 */
declare module 'docker-registry-client' {
  import type { IncomingMessage } from 'node:http';

  /** A bunyan-like logger; the client calls `child()` and the level methods. */
  export interface Logger {
    child(fields: Record<string, unknown>, simple?: boolean): Logger;
    trace(...args: unknown[]): unknown;
    debug(...args: unknown[]): unknown;
    info(...args: unknown[]): unknown;
    warn(...args: unknown[]): unknown;
    error(...args: unknown[]): unknown;
    fatal(...args: unknown[]): unknown;
    serializers?: Record<string, unknown>;
  }

  export interface IndexInfo {
    name: string;
    official: boolean;
    scheme?: 'http' | 'https';
  }

  export interface RepoInfo {
    index: IndexInfo;
    official: boolean;
    remoteName: string;
    localName: string;
    canonicalName: string;
  }

  /** restify-clients response: `body` is the raw text of a JSON response. */
  export type ClientResponse = IncomingMessage & { body?: string };

  /** restify-clients errors carry the HTTP status. */
  export interface ClientError extends Error {
    statusCode?: number;
    body?: unknown;
  }

  export type Callback<T> = (err: ClientError | null, result: T, res: ClientResponse) => void;

  export interface RepoImage {
    id: string;
    checksum?: string;
  }

  export interface RegistryClientV1Options {
    /** `[INDEX/]REPO`, e.g. `127.0.0.1:5000/ns/repo` or `127.0.0.1:5000/busybox`. */
    name: string;
    scheme?: 'http' | 'https';
    log?: Logger;
    username?: string;
    password?: string;
    insecure?: boolean;
    userAgent?: string;
  }

  export interface RegistryClientV1 {
    readonly version: 1;
    readonly repo: RepoInfo;
    ping(cb: Callback<unknown>): void;
    listRepoImgs(cb: Callback<RepoImage[]>): void;
    listRepoImgs(opts: { retry?: boolean; connectTimeout?: number }, cb: Callback<RepoImage[]>): void;
    listRepoTags(cb: Callback<Record<string, string>>): void;
    getImgId(opts: { tag: string }, cb: Callback<string>): void;
    getImgAncestry(opts: { imgId: string }, cb: Callback<string[]>): void;
    getImgJson(opts: { imgId: string }, cb: Callback<Record<string, unknown>>): void;
    /** The stream is paused (and buffered): attach listeners, then call resume(). */
    getImgLayerStream(opts: { imgId: string }, cb: (err: ClientError | null, stream: IncomingMessage) => void): void;
    close(): void;
  }

  export interface RegistryClientV2Options extends RegistryClientV1Options {
    /** Bearer token sent as it is. */
    token?: string;
    /** 2: ask for Docker schema 2 manifests (else schema 1). */
    maxSchemaVersion?: number;
    acceptManifestLists?: boolean;
  }

  export interface ManifestV2 {
    schemaVersion: number;
    mediaType?: string;
    config?: { mediaType: string; size: number; digest: string };
    layers?: Array<{ mediaType: string; size: number; digest: string }>;
  }

  export interface RegistryClientV2 {
    readonly version: 2;
    readonly repo: RepoInfo;
    ping(cb: Callback<unknown>): void;
    listTags(cb: Callback<{ name: string; tags: string[] }>): void;
    getManifest(opts: { ref: string; maxSchemaVersion?: number; acceptManifestLists?: boolean }, cb: Callback<ManifestV2>): void;
    /** `ress`: the responses (redirects first); the stream is the last one, paused. */
    createBlobReadStream(opts: { digest: string }, cb: (err: ClientError | null, stream: IncomingMessage, ress: ClientResponse[]) => void): void;
    close(): void;
  }

  const drc: {
    createClientV1(opts: RegistryClientV1Options): RegistryClientV1;
    createClientV2(opts: RegistryClientV2Options): RegistryClientV2;
    parseRepo(name: string, defaultIndex?: string): RepoInfo;
  };
  export default drc;
}
