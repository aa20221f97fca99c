/**
 * Browser sessions: the web UI's scheme of the identity module (the OAuth consent page
 * counts one as logged in; http/web-session.ts carries it in a cookie).
 *
 * A session is stateless and signed with the key ring (label SESSION_LABEL):
 *
 *   <payload>.<mac>     payload = base64url JSON {s: id, u: user, e: expiry (unix s), p: pw}
 *
 * `s` is 16 random bytes, new at every login; `p` fingerprints the password hash, so a
 * password change ends every session issued before. Opening a session checks the signature,
 * the expiry, that the session was not ended by a logout, and that its account still exists,
 * is active and has the same password.
 *
 * A logout ends the session at once (its id is remembered until it would have expired, in
 * an EndedSessionStore); the cookie is also removed from the browser. With metadata_store
 * postgres the ended ids are in PostgreSQL: a logout on one node ends the session on every
 * node, and a restart forgets none. Otherwise they are in this process's memory (at most
 * MAX_ENDED ids): after a restart a copied cookie of an ended session works again until its
 * expiry (`ui_session_ttl_seconds`).
 */
import { randomBytes } from 'node:crypto';
import type { UserRecord } from '../domain/records.js';
import { InMemoryEndedSessions } from '../store/ended-sessions.js';
import type { EndedSessionStore } from '../store/metadata/ports.js';
import { passwordVersion } from './jwt.js';
import type { KeyRing } from './keyring.js';
import type { UserService } from './users.js';

const SESSION_LABEL = 'web-session/v1';
/** Longest cookie value accepted (a real one is ~150 characters). */
const MAX_VALUE = 1024;
/** Ended sessions remembered (oldest forgotten first). */
const MAX_ENDED = 100_000;
const PART = /^[A-Za-z0-9_-]+$/;

export interface Session {
  /** Random, base64url. */
  readonly id: string;
  /** The signed-in account. */
  readonly user: UserRecord;
  /** Unix seconds. */
  readonly expiresAt: number;
}

export interface IssuedSession {
  session: Session;
  /** The cookie value. */
  value: string;
  maxAgeSeconds: number;
}

interface Payload {
  s: string;
  u: string;
  e: number;
  p: string;
}

/** How often sessions past their expiry are dropped from the ended list (seconds). */
const PRUNE_EVERY_S = 600;

export class SessionService {
  private prunedAt = 0;

  constructor(
    private readonly keys: KeyRing,
    private readonly users: UserService,
    private readonly ttlSeconds: number,
    private readonly now: () => number = () => Date.now(),
    private readonly ended: EndedSessionStore = new InMemoryEndedSessions(MAX_ENDED),
  ) {}

  /** A new session for `user`. */
  issue(user: UserRecord): IssuedSession {
    const session: Session = { id: randomBytes(16).toString('base64url'), user, expiresAt: this.nowSeconds() + this.ttlSeconds };
    const payload: Payload = { s: session.id, u: user.name, e: session.expiresAt, p: passwordVersion(user.passwordHash) };
    const encoded = Buffer.from(JSON.stringify(payload)).toString('base64url');
    return { session, value: `${encoded}.${this.keys.sign(SESSION_LABEL, encoded)}`, maxAgeSeconds: this.ttlSeconds };
  }

  /**
   * The session a cookie value carries, or null: malformed, forged, expired, ended by a
   * logout, or its account deleted, deactivated or given a new password since.
   */
  async open(value: string | undefined): Promise<Session | null> {
    if (!value || value.length > MAX_VALUE) return null;
    const dot = value.indexOf('.');
    const encoded = value.slice(0, dot);
    const mac = value.slice(dot + 1);
    if (dot <= 0 || !PART.test(encoded) || !PART.test(mac) || !this.keys.verify(SESSION_LABEL, encoded, mac)) return null;
    let payload: Partial<Payload>;
    try {
      payload = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')) as Partial<Payload>;
    } catch {
      return null;
    }
    const { s, u, e, p } = payload;
    if (typeof s !== 'string' || typeof u !== 'string' || typeof e !== 'number' || typeof p !== 'string') return null;
    if (e <= this.nowSeconds() || (await this.ended.isSessionEnded(s, this.nowSeconds()))) return null;
    const user = await this.users.get(u);
    if (!user || !user.active || passwordVersion(user.passwordHash) !== p) return null;
    return { id: s, user, expiresAt: e };
  }

  /**
   * Checks a password (the login throttle applies: TOO_MANY_REQUESTS; a wrong one is
   * UNAUTHORIZED, a disabled account INACTIVE_ACCOUNT) and issues a new session for it.
   */
  async login(username: string, password: string, address: string): Promise<IssuedSession> {
    const user = await this.users.authenticate(username.trim().toLowerCase(), password, address);
    return this.issue(user);
  }

  /** Ends a session now (logout), on every node that shares the store. */
  async end(session: Session): Promise<void> {
    const now = this.nowSeconds();
    await this.ended.endSession(session.id, session.expiresAt);
    if (now - this.prunedAt >= PRUNE_EVERY_S) {
      this.prunedAt = now;
      await this.ended.pruneEndedSessions(now);
    }
  }

  private nowSeconds(): number {
    return Math.floor(this.now() / 1000);
  }
}
