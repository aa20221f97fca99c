/**
 * Presigned GET URLs (AWS Signature Version 4, query-string form) for s3_redirect, computed
 * here rather than by the SDK's presigner: a redirected layer GET must cost the node well under
 * a millisecond of CPU, and the SDK's middleware stack spent ~2 ms per URL (bench:nodes). The
 * signing key is derived once a day; each URL is one SHA-256 and one HMAC.
 *
 * Only for static credentials (s3_access_key_id / s3_secret_access_key): with the SDK's default
 * chain (instance roles, session tokens that rotate) S3BlobStore keeps using the SDK.
 * Spec: https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
 */
import { createHash, createHmac } from 'node:crypto';

export interface PresignOptions {
  /** e.g. http://127.0.0.1:7480; empty: AWS S3 of `region`. */
  endpoint?: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: boolean;
}

/** RFC 3986 unreserved characters stay; everything else is %XX (what SigV4 signs). */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export class Presigner {
  private readonly origin: string;
  private readonly host: string;
  /** The path before the key: `/<bucket>/` (path style) or `/`. */
  private readonly prefix: string;
  private keyDay = '';
  private signingKey: Buffer = Buffer.alloc(0);

  constructor(private readonly options: PresignOptions) {
    const endpoint = new URL(options.endpoint || `https://s3.${options.region}.amazonaws.com`);
    if (options.forcePathStyle) {
      this.host = endpoint.host;
      this.prefix = `${endpoint.pathname.replace(/\/$/, '')}/${uriEncode(options.bucket)}/`;
    } else {
      this.host = `${options.bucket}.${endpoint.host}`;
      this.prefix = `${endpoint.pathname.replace(/\/$/, '')}/`;
    }
    this.origin = `${endpoint.protocol}//${this.host}`;
  }

  /** A URL that GETs `key` until `expiresInSeconds` after `now`. */
  presignGet(key: string, expiresInSeconds: number, now = new Date()): string {
    const amzDate = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, ''); // 20240102T030405Z
    const day = amzDate.slice(0, 8);
    const scope = `${day}/${this.options.region}/s3/aws4_request`;
    const path = this.prefix + key.split('/').map(uriEncode).join('/');
    // Sorted by name, as the canonical request wants them.
    const query =
      `X-Amz-Algorithm=AWS4-HMAC-SHA256` +
      `&X-Amz-Credential=${uriEncode(`${this.options.accessKeyId}/${scope}`)}` +
      `&X-Amz-Date=${amzDate}` +
      `&X-Amz-Expires=${expiresInSeconds}` +
      `&X-Amz-SignedHeaders=host`;
    const canonical = `GET\n${path}\n${query}\nhost:${this.host}\n\nhost\nUNSIGNED-PAYLOAD`;
    const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${createHash('sha256').update(canonical).digest('hex')}`;
    const signature = createHmac('sha256', this.keyOf(day)).update(toSign).digest('hex');
    return `${this.origin}${path}?${query}&X-Amz-Signature=${signature}`;
  }

  private keyOf(day: string): Buffer {
    if (day !== this.keyDay) {
      const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();
      const dated = hmac(`AWS4${this.options.secretAccessKey}`, day);
      this.signingKey = hmac(hmac(hmac(dated, this.options.region), 's3'), 'aws4_request');
      this.keyDay = day;
    }
    return this.signingKey;
  }
}
