/**
 * One key ring for every signed thing. Each purpose gets its own key, derived from the
 * storage root's secret (`<storage_root>/secret`, see TokenService.loadSecret) with a label:
 *
 *   key(label) = HMAC-SHA256(secret, label)
 *
 * so a value signed for one purpose (a CSRF token, a session cookie) is never accepted for
 * another, and every key survives restarts without a store. Signatures are base64url
 * HMAC-SHA256 and are compared in constant time. JwtService derives its key the same way
 * (label `docker-hub-api-double/jwt/v1`).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export class KeyRing {
  private readonly keys = new Map<string, Buffer>();

  constructor(private readonly secret: Buffer) {}

  /** The key for one purpose. */
  key(label: string): Buffer {
    let key = this.keys.get(label);
    if (!key) {
      key = createHmac('sha256', this.secret).update(label).digest();
      this.keys.set(label, key);
    }
    return key;
  }

  /** base64url HMAC-SHA256 of `data` under the key of `label`. */
  sign(label: string, data: string): string {
    return createHmac('sha256', this.key(label)).update(data).digest('base64url');
  }

  /** Is `signature` the signature of `data` under `label`'s key? Constant time. */
  verify(label: string, data: string, signature: string): boolean {
    return safeEqual(signature, this.sign(label, data));
  }
}

/** Constant-time comparison of two strings (false when the lengths differ). */
export function safeEqual(given: string, expected: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}
