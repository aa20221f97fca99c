/**
 * Raw HTTP for the cases fetch cannot express: chunked uploads with no Content-Length,
 * requests with no Content-Type at all, uploads that stall or die half-way.
 * Only ever used against 127.0.0.1 servers the tests start.
 */
import http from 'node:http';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface RawRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** One buffer (sent with Content-Length unless `chunked`), or pieces written one by one. */
  body?: Buffer | string | Iterable<Buffer> | AsyncIterable<Buffer>;
  /** Send `Transfer-Encoding: chunked` and no Content-Length. */
  chunked?: boolean;
}

/** Sends one request on a fresh connection and collects the whole response. */
export function rawRequest(url: string, options: RawRequestOptions = {}): Promise<RawResponse> {
  const { method = 'GET', body, chunked = false } = options;
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  const single = typeof body === 'string' ? Buffer.from(body) : Buffer.isBuffer(body) ? body : null;
  if (chunked) headers['Transfer-Encoding'] = 'chunked';
  else if (single) headers['Content-Length'] = String(single.length);
  else if (body === undefined && method !== 'GET' && method !== 'HEAD') headers['Content-Length'] = '0';

  return new Promise<RawResponse>((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('error', reject);
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.once('error', reject);
    void (async () => {
      try {
        if (single) {
          req.end(single);
          return;
        }
        if (body !== undefined) {
          for await (const piece of body as AsyncIterable<Buffer>) {
            if (!req.write(piece)) await new Promise((r) => req.once('drain', r));
          }
        }
        req.end();
      } catch (err) {
        req.destroy(err as Error);
      }
    })();
  });
}

/** Splits `data` into pieces of `size` bytes (the last one shorter). */
export function* pieces(data: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, Math.min(i + size, data.length));
}

/** Parses a JSON error body `{"error": "..."}` and returns the message. */
export function errorOf(res: RawResponse): string {
  const parsed = JSON.parse(res.body.toString('utf8')) as { error?: unknown };
  if (typeof parsed.error !== 'string') throw new Error(`not an error body: ${res.body.toString('utf8')}`);
  return parsed.error;
}

/**
 * Starts a chunked upload and returns controls to write more or to kill the connection
 * half-way; `response` settles when the server answers (or rejects when the socket dies).
 */
export function openUpload(url: string, headers: Record<string, string> = {}) {
  const req = http.request(url, {
    method: 'PUT',
    headers: { 'Transfer-Encoding': 'chunked', ...headers },
    agent: false,
  });
  const response = new Promise<RawResponse>((resolve, reject) => {
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('error', reject);
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.once('error', reject);
  });
  // Callers that kill the connection are not interested in the rejection.
  response.catch(() => {});
  return {
    response,
    write(data: Buffer): Promise<void> {
      return new Promise((resolve, reject) => req.write(data, (err) => (err ? reject(err) : resolve())));
    },
    end(): void {
      req.end();
    },
    kill(): void {
      req.destroy();
    },
  };
}
