/**
 * A small v1 HTTP client on node:http / node:https: requests whose bodies are streamed
 * (layers are never buffered), small JSON answers read into memory with a bound, errors
 * that carry the message the server sent (`{"error": …}` or a JSON string), and the two
 * Index sessions of the v1 protocol (push start with a write token, pull start with a
 * read token) that tell where the registry is (`X-Docker-Endpoints`).
 */
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { VERSION } from '../version.js';
import type { Credentials } from './credentials.js';
import type { RepoRef } from './ref.js';

/** The registry records docker/go/os/arch from the User-Agent; we say who we are. */
export const USER_AGENT = `v1-registry-client/${VERSION} node/${process.version} os/${process.platform} arch/${process.arch === 'x64' ? 'amd64' : process.arch}`;

const MAX_SMALL_BODY = 16 * 1024 * 1024;

/** An answer from the registry that was not the one expected. */
export class RegistryHttpError extends Error {
  override name = 'RegistryHttpError';
  constructor(
    readonly method: string,
    readonly url: string,
    readonly status: number,
    /** What the server said: the `error` of `{"error": …}`, a JSON string, or the text. */
    readonly serverMessage: string,
  ) {
    super(`${serverMessage || http.STATUS_CODES[status] || 'error'} (HTTP ${status} on ${method} ${new URL(url).pathname})`);
  }
}

/** The connection failed or broke (no answer, or the answer stopped half-way). */
export class TransportError extends Error {
  override name = 'TransportError';
  constructor(
    readonly url: string,
    override readonly cause: Error,
  ) {
    super(`${new URL(url).host}: ${cause.message}`);
  }
}

export function serverMessageOf(body: Buffer, contentType?: string): string {
  const text = body.toString('utf8').trim();
  if (!text) return '';
  if (contentType?.includes('json') || /^[{"[]/.test(text)) {
    try {
      const doc = JSON.parse(text) as unknown;
      if (typeof doc === 'string') return doc;
      if (doc && typeof doc === 'object' && !Array.isArray(doc)) {
        const e = (doc as { error?: unknown; message?: unknown; errors?: unknown }).error ?? (doc as { message?: unknown }).message;
        if (typeof e === 'string') return e;
        if (e && typeof e === 'object') return JSON.stringify(e);
      }
    } catch {
      // not JSON after all
    }
  }
  return text.length > 500 ? text.slice(0, 500) + '…' : text;
}

export interface HttpOptions {
  /** Accept any TLS certificate (self-signed test registries). */
  insecure?: boolean;
  /** Socket idle timeout: a connection silent for this long is dropped. */
  timeoutMs?: number;
  userAgent?: string;
}

export interface RequestSpec {
  method: string;
  url: string;
  headers?: Record<string, string>;
  /** A buffer/string (sent with Content-Length) or a stream (with `length`, else chunked). */
  body?: Buffer | string | Readable;
  length?: number;
}

export interface SmallResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const RETRYABLE_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ETIMEDOUT', 'ECONNABORTED']);

export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export class HttpClient {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  readonly userAgent: string;
  private readonly timeoutMs: number;

  constructor(options: HttpOptions = {}) {
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 8, rejectUnauthorized: !options.insecure });
    this.userAgent = options.userAgent ?? USER_AGENT;
    this.timeoutMs = options.timeoutMs ?? 60_000;
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /**
   * Sends a request and resolves with the response once its headers arrived; the body is
   * the caller's to consume. GET/HEAD follow redirects (dropping Authorization when the
   * host changes, as layer CDNs need) and are retried once when a kept-alive connection
   * turned out to be dead.
   */
  async open(spec: RequestSpec): Promise<IncomingMessage> {
    let url = spec.url;
    let headers = { ...(spec.headers ?? {}) };
    const idempotent = spec.method === 'GET' || spec.method === 'HEAD';
    for (let hop = 0; ; hop++) {
      let res: IncomingMessage;
      try {
        res = await this.once({ ...spec, url, headers });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? '';
        if (idempotent && hop === 0 && (RETRYABLE_CODES.has(code) || /socket hang up/.test((err as Error).message))) {
          res = await this.once({ ...spec, url, headers }).catch((e: Error) => {
            throw new TransportError(url, e);
          });
        } else {
          throw err instanceof TransportError ? err : new TransportError(url, err as Error);
        }
      }
      if (idempotent && REDIRECTS.has(res.statusCode ?? 0) && res.headers.location && hop < 5) {
        res.resume();
        const next = new URL(res.headers.location, url);
        if (next.host !== new URL(url).host) {
          headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
        }
        url = next.toString();
        continue;
      }
      return res;
    }
  }

  private once(spec: RequestSpec): Promise<IncomingMessage> {
    const url = new URL(spec.url);
    const isHttps = url.protocol === 'https:';
    const headers: Record<string, string> = { 'User-Agent': this.userAgent, ...(spec.headers ?? {}) };
    const body = spec.body;
    if (typeof body === 'string' || Buffer.isBuffer(body)) {
      headers['Content-Length'] = String(Buffer.byteLength(body));
    } else if (body && spec.length !== undefined) {
      headers['Content-Length'] = String(spec.length);
    } else if (!body && !['GET', 'HEAD', 'DELETE'].includes(spec.method)) {
      headers['Content-Length'] = '0';
    }
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = (isHttps ? https : http).request(url, {
        method: spec.method,
        headers,
        agent: isHttps ? this.httpsAgent : this.httpAgent,
        timeout: this.timeoutMs,
      });
      let answered = false;
      req.once('response', (res) => {
        answered = true;
        res.setTimeout?.(this.timeoutMs);
        resolve(res);
      });
      req.once('timeout', () => req.destroy(Object.assign(new Error(`no data for ${Math.round(this.timeoutMs / 1000)} s`), { code: 'ETIMEDOUT' })));
      req.once('error', (err) => {
        if (!answered) reject(err);
      });
      if (body instanceof Readable) {
        body.once('error', (err) => req.destroy(err));
        // An early answer (404, 409, 403) ends the upload: stop reading the source.
        req.once('response', () => {
          body.unpipe(req);
          body.destroy();
        });
        body.pipe(req);
      } else {
        req.end(body);
      }
    });
  }

  /** A request whose answer is small (JSON): reads it whole and checks the status. */
  async call(spec: RequestSpec, expect: number[]): Promise<SmallResponse> {
    const res = await this.open(spec);
    const body = await readSmall(res, spec.url);
    const status = res.statusCode ?? 0;
    if (!expect.includes(status)) {
      throw new RegistryHttpError(spec.method, spec.url, status, serverMessageOf(body, header(res.headers, 'content-type')));
    }
    return { status, headers: res.headers, body };
  }
}

export async function readSmall(res: IncomingMessage, url: string, limit = MAX_SMALL_BODY): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res) {
      size += (chunk as Buffer).length;
      if (size > limit) {
        res.destroy();
        throw new Error(`answer larger than ${limit} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    throw new TransportError(url, err as Error);
  }
  return Buffer.concat(chunks);
}

export function parseJsonBody<T>(res: SmallResponse, what: string): T {
  try {
    return JSON.parse(res.body.toString('utf8')) as T;
  } catch {
    throw new Error(`${what}: the registry answered with something that is not JSON: ${res.body.toString('utf8').slice(0, 200)}`);
  }
}

export function basicAuth(credentials: Credentials): string {
  return 'Basic ' + Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64');
}

/**
 * Where to send registry calls and with what authorization. The Index part (`index`) is
 * the host of the reference; the registry part comes from `X-Docker-Endpoints` with the
 * Index's scheme, as docker 1.x did.
 */
export class Session {
  constructor(
    readonly client: HttpClient,
    readonly ref: RepoRef,
    readonly credentials: Credentials | null,
    /** `scheme://host` of the registry (from X-Docker-Endpoints, or the index itself). */
    readonly registry: string,
    readonly token: string | null,
    /** The raw X-Docker-Endpoints value, sent back on push end. */
    readonly endpoints: string,
  ) {}

  get index(): string {
    return this.ref.base;
  }

  /** Authorization for registry calls: the token, else Basic, else none. */
  registryAuth(): Record<string, string> {
    if (this.token) return { Authorization: `Token ${this.token}` };
    if (this.credentials) return { Authorization: basicAuth(this.credentials) };
    return {};
  }

  indexAuth(): Record<string, string> {
    return this.credentials ? { Authorization: basicAuth(this.credentials) } : {};
  }

  repoUrl(suffix: string): string {
    return `${this.registry}/v1/repositories/${this.ref.name}${suffix}`;
  }

  imageUrl(id: string, what: 'json' | 'layer' | 'checksum' | 'ancestry'): string {
    return `${this.registry}/v1/images/${id}/${what}`;
  }

  /** A registry call with the session's authorization, answered with small JSON. */
  async registryCall(method: string, url: string, expect: number[], init: Omit<RequestSpec, 'method' | 'url'> = {}): Promise<SmallResponse> {
    return this.client.call({ ...init, method, url, headers: { ...this.registryAuth(), ...(init.headers ?? {}) } }, expect);
  }

  async getJson<T>(url: string, what: string): Promise<T> {
    return parseJsonBody<T>(await this.registryCall('GET', url, [200]), what);
  }

  /** The image id a tag points at. */
  async tagId(tag: string): Promise<string> {
    const id = await this.getJson<unknown>(this.repoUrl(`/tags/${encodeURIComponent(tag)}`), `tag ${tag}`);
    if (typeof id !== 'string') throw new Error(`tag ${tag}: the registry answered ${JSON.stringify(id)}, not an image id`);
    return id;
  }
}

function registryFrom(ref: RepoRef, endpoints: string | undefined): { registry: string; endpoints: string } {
  const first = endpoints?.split(',').map((s) => s.trim()).find(Boolean);
  if (!first) return { registry: ref.base, endpoints: ref.host };
  const registry = /^https?:\/\//.test(first) ? first.replace(/\/+$/, '') : `${ref.scheme}://${first}`;
  return { registry, endpoints: endpoints as string };
}

/** Push start: `PUT /v1/repositories/ns/repo/` with the image list; a write token. */
export async function startPush(client: HttpClient, ref: RepoRef, credentials: Credentials | null, ids: string[]): Promise<Session> {
  const res = await client.call(
    {
      method: 'PUT',
      url: `${ref.base}/v1/repositories/${ref.name}/`,
      headers: {
        ...(credentials ? { Authorization: basicAuth(credentials) } : {}),
        'X-Docker-Token': 'true',
        'Content-Type': 'application/json',
      },
      body: JSON.stringify(ids.map((id) => ({ id }))),
    },
    [200, 201],
  );
  const { registry, endpoints } = registryFrom(ref, header(res.headers, 'x-docker-endpoints'));
  return new Session(client, ref, credentials, registry, header(res.headers, 'x-docker-token') ?? null, endpoints);
}

/** Pull start: `GET /v1/repositories/ns/repo/images`; a read token. */
export async function startPull(client: HttpClient, ref: RepoRef, credentials: Credentials | null): Promise<{ session: Session; images: Array<{ id: string; checksum?: string }> }> {
  const res = await client.call(
    {
      method: 'GET',
      url: `${ref.base}/v1/repositories/${ref.name}/images`,
      headers: { ...(credentials ? { Authorization: basicAuth(credentials) } : {}), 'X-Docker-Token': 'true' },
    },
    [200],
  );
  const { registry, endpoints } = registryFrom(ref, header(res.headers, 'x-docker-endpoints'));
  const images = parseJsonBody<Array<{ id: string; checksum?: string }>>(res, 'image list');
  return { session: new Session(client, ref, credentials, registry, header(res.headers, 'x-docker-token') ?? null, endpoints), images: Array.isArray(images) ? images : [] };
}

/** No Index round trip: registry calls go to the reference's host with Basic auth. */
export function directSession(client: HttpClient, ref: RepoRef, credentials: Credentials | null): Session {
  return new Session(client, ref, credentials, ref.base, null, ref.host);
}
