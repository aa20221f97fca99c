/**
 * JSON Web Tokens (HS256 only, written with node:crypto):
 *
 *   base64url(header) "." base64url(payload) "." base64url(HMAC-SHA256(header "." payload))
 *
 * `HmacJwt` signs and checks any claims under one key of the key ring (keyring.ts: a key per
 * label, derived from the token secret), so tokens of one kind can never pass for another (Hub tokens here, Registry
 * API v2 bearer tokens in registry-tokens.ts). The rest of this file is the Docker Hub API
 * double's tokens:
 *
 * header {"alg": "HS256", "typ": "JWT"}; payload {sub, username, user_id, iat, exp, jti, typ,
 * pv}: `typ` is "access" (sent as `Authorization: JWT <t>` or `Bearer <t>`) or "refresh"
 * (only good for getting a new access token); `pv` fingerprints the password hash, so
 * changing the password ends every token issued before. The key is derived from the
 * storage root's secret (the one Index tokens use, see tokens.ts) with a label, so the two
 * kinds of token can never be confused. Verification: the header must name HS256 (never
 * "none"), the signature is compared in constant time, `exp` must lie in the future.
 * Whether the user still exists and is active is the caller's check (HubService).
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { RegistryError } from '../domain/errors.js';
import type { UserRecord } from '../domain/records.js';
import { KeyRing, safeEqual } from './keyring.js';

export type JwtKind = 'access' | 'refresh';

export interface JwtClaims {
  /** The user name (also in `username`, the claim Hub clients read). */
  sub: string;
  username: string;
  user_id: number;
  /** Issued at / expires at, unix seconds. */
  iat: number;
  exp: number;
  jti: string;
  typ: JwtKind;
  /** Fingerprint of the password hash the token was issued under. */
  pv: string;
}

export interface JwtSubject {
  name: string;
  passwordHash: string;
}

const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
const PART = /^[A-Za-z0-9_-]+$/;
const KEY_LABEL = 'docker-hub-api-double/jwt/v1';

/** HS256 signing and checking of any JSON claims, under one key of the key ring. */
export class HmacJwt {
  constructor(private readonly key: Buffer) {}

  sign(claims: object): string {
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `${HEADER}.${payload}.${this.mac(`${HEADER}.${payload}`)}`;
  }

  /**
   * The claims of a token this key signed: the header must say HS256 (never "none"), the
   * signature is compared in constant time. Null when malformed or forged; `exp` and the
   * rest are the caller's to check.
   */
  verify(token: string): { claims: Record<string, unknown> | null; forged: boolean } {
    const parts = token.trim().split('.');
    if (parts.length !== 3 || !parts.every((p) => PART.test(p))) return { claims: null, forged: false };
    const [header, payload, signature] = parts;
    const decodedHeader = decode(header) as { alg?: unknown } | null;
    if (!decodedHeader || decodedHeader.alg !== 'HS256') return { claims: null, forged: false };
    if (!safeEqual(signature, this.mac(`${header}.${payload}`))) return { claims: null, forged: true };
    return { claims: decode(payload) as Record<string, unknown> | null, forged: false };
  }

  private mac(input: string): string {
    return createHmac('sha256', this.key).update(input).digest('base64url');
  }
}

export class JwtService {
  private readonly signer: HmacJwt;

  constructor(
    secret: Buffer,
    private readonly accessTtlSeconds: number,
    private readonly refreshTtlSeconds: number = 30 * 24 * 3600,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.signer = new HmacJwt(new KeyRing(secret).key(KEY_LABEL));
  }

  issue(user: JwtSubject, kind: JwtKind = 'access'): string {
    const iat = Math.floor(this.now() / 1000);
    const claims: JwtClaims = {
      sub: user.name,
      username: user.name,
      user_id: numericId(`user:${user.name}`),
      iat,
      exp: iat + (kind === 'access' ? this.accessTtlSeconds : this.refreshTtlSeconds),
      jti: randomBytes(9).toString('base64url'),
      typ: kind,
      pv: passwordVersion(user.passwordHash),
    };
    return this.signer.sign(claims);
  }

  /** The claims of a valid token of `kind`; UNAUTHORIZED when malformed, forged or expired. */
  verify(token: string, kind: JwtKind = 'access'): JwtClaims {
    const checked = this.signer.verify(token);
    if (checked.forged) throw invalid('Error decoding signature.');
    const claims = checked.claims as Partial<JwtClaims> | null;
    if (
      !claims ||
      typeof claims.sub !== 'string' ||
      typeof claims.exp !== 'number' ||
      typeof claims.pv !== 'string' ||
      (claims.typ !== 'access' && claims.typ !== 'refresh')
    ) {
      throw invalid('Invalid token.');
    }
    if (claims.typ !== kind) throw invalid(kind === 'access' ? 'A refresh token is not an access token.' : 'Not a refresh token.');
    if (claims.exp * 1000 <= this.now()) throw invalid('Signature has expired.');
    return claims as JwtClaims;
  }

  /** The fingerprint of an account's password that tokens carry (`pv`). */
  passwordVersionOf(user: JwtSubject): string {
    return passwordVersion(user.passwordHash);
  }

  /** Was the token issued under this password hash (false: the password changed since)? */
  matchesPassword(claims: JwtClaims, passwordHash: string): boolean {
    return safeEqual(claims.pv, passwordVersion(passwordHash));
  }

  /**
   * The account behind a token of `kind`: signature, expiry, and the account still there,
   * active, with the password the token was issued under.
   */
  async userOf(token: string, kind: JwtKind, users: { get(name: string): Promise<UserRecord | null> }): Promise<UserRecord> {
    const claims = this.verify(token, kind);
    const user = await users.get(claims.sub);
    if (!user || !this.matchesPassword(claims, user.passwordHash)) {
      throw new RegistryError('UNAUTHORIZED', 'Invalid token: the account or its password changed.');
    }
    if (!user.active) throw new RegistryError('UNAUTHORIZED', 'User account is disabled.');
    return user;
  }
}

/** A stable positive integer for a name (Hub's objects carry numeric ids; we have none). */
export function numericId(name: string): number {
  return createHash('sha256').update(name).digest().readUIntBE(0, 6) % 2 ** 47 + 1;
}

/** A fingerprint of a password hash: what a credential issued under it remembers. */
export function passwordVersion(passwordHash: string): string {
  return createHash('sha256').update(passwordHash).digest('base64url').slice(0, 16);
}

function decode(part: string): unknown {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

function invalid(message: string): RegistryError {
  return new RegistryError('UNAUTHORIZED', message);
}
