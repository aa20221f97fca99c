/**
 * One key ring for every signed thing: Index tokens (tokens.ts), Hub JWTs (jwt.ts), web UI
 * sessions and CSRF tokens (sessions.ts). The root is the storage root's random secret
 * (`<storage_root>/secret`, created 0600 on first use); every purpose gets a key of its own,
 *
 *   key(label) = HMAC-SHA256(secret, label)
 *
 * so a value signed for one purpose (a session cookie) never verifies for another (a CSRF
 * token, a JWT). Signatures are HMAC-SHA256 in base64url, compared in constant time.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export class KeyRing {
  private readonly keys = new Map<string, Buffer>();

  constructor(private readonly secret: Buffer) {}

  /** The ring of a storage root: its secret is read, or created (0600) on first use. */
  static load(storageRoot: string): KeyRing {
    return new KeyRing(loadSecret(storageRoot));
  }

  /** The key of one purpose (cached). */
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

  /** Does `mac` sign `data` for `label`? Constant time. */
  verify(label: string, data: string, mac: string): boolean {
    return safeEqual(mac, this.sign(label, data));
  }
}

/** Reads the secret from `<root>/secret`, creating it (32 random bytes, 0600) on first use. */
export function loadSecret(storageRoot: string): Buffer {
  const file = path.join(path.resolve(storageRoot), 'secret');
  try {
    const existing = fs.readFileSync(file);
    if (existing.length >= 32) return existing;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const secret = randomBytes(32);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, secret, { mode: 0o600 });
  return secret;
}

/** Compares two strings in time that depends only on their lengths. */
export function safeEqual(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
