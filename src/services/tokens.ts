/**
 * Index tokens, as docker 1.x uses them:
 *
 *   signature=<payload>.<mac>,repository="ns/repo",access=read|write|delete
 *
 * The Index hands one out (X-Docker-Token / WWW-Authenticate: Token …) and the client
 * sends it back to the registry as `Authorization: Token <same>`. <payload> is base64url
 * JSON {u: user or "", r: repository, a: access, e: expiry (unix s), n: nonce}; <mac> is
 * HMAC-SHA256 of <payload> with the server secret (kept in the storage root), compared in
 * constant time. Stateless, so it survives restarts and works behind a load balancer.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { RegistryError } from '../domain/errors.js';
import { parseRepoPath, type RepoName } from '../domain/names.js';

export type TokenAccess = 'read' | 'write' | 'delete';

export interface TokenClaims {
  user: string | null;
  repo: RepoName;
  access: TokenAccess;
  expiresAt: number;
}

const ACCESS = new Set<TokenAccess>(['read', 'write', 'delete']);
const TOKEN = /^signature=([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+),\s*repository="([^"]+)",\s*access=(\w+)$/;

export class TokenService {
  constructor(
    private readonly secret: Buffer,
    private readonly ttlSeconds: number,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** Reads the secret from `<root>/secret`, creating it (0600) on first use. */
  static loadSecret(storageRoot: string): Buffer {
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

  issue(user: string | null, repo: RepoName, access: TokenAccess): string {
    const claims = {
      u: user ?? '',
      r: repo.full,
      a: access,
      e: Math.floor(this.now() / 1000) + this.ttlSeconds,
      n: randomBytes(6).toString('base64url'),
    };
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `signature=${payload}.${this.mac(payload)},repository="${repo.full}",access=${access}`;
  }

  /** Verifies a token (the part after `Token `); UNAUTHORIZED if forged, malformed or expired. */
  verify(token: string): TokenClaims {
    // `Token Token signature=…`: clients of the reference servers build `Authorization`
    // from `WWW-Authenticate` (`Token <token>`) or prefix `X-Docker-Token` themselves.
    const m = TOKEN.exec(token.trim().replace(/^Token\s+/i, ''));
    if (!m) throw new RegistryError('UNAUTHORIZED', 'Invalid token');
    const [, payload, mac, repository, access] = m;
    const expected = Buffer.from(this.mac(payload));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new RegistryError('UNAUTHORIZED', 'Invalid token');
    }
    let claims: { u: string; r: string; a: TokenAccess; e: number };
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      throw new RegistryError('UNAUTHORIZED', 'Invalid token');
    }
    if (claims.r !== repository || claims.a !== access || !ACCESS.has(claims.a) || typeof claims.e !== 'number') {
      throw new RegistryError('UNAUTHORIZED', 'Invalid token');
    }
    if (claims.e * 1000 <= this.now()) throw new RegistryError('UNAUTHORIZED', 'Token expired');
    return { user: claims.u || null, repo: parseRepoPath(claims.r), access: claims.a, expiresAt: claims.e };
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.secret).update(payload).digest('base64url');
  }
}
