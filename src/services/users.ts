/**
 * Accounts: sign-up, password checks, updates, the first admin, htpasswd import.
 * Passwords are bcrypt-hashed; a verified (name, password) pair is remembered for a short
 * while so that Basic auth on every registry request does not pay bcrypt each time.
 */
import { createHash } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { invalidInput, notFound, RegistryError } from '../domain/errors.js';
import { DEFAULT_NAMESPACE, parseUsername } from '../domain/names.js';
import type { UserProfile, UserRecord } from '../domain/records.js';
import type { AccountStore } from '../store/metadata/ports.js';
import { LoginThrottle } from './throttle.js';

export interface UserServiceOptions {
  bcryptCost: number;
  signupEnabled: boolean;
  /** How long a verified password stays verified in memory (ms). */
  credentialCacheMs?: number;
  /** Refuses password checks after too many failures (default: DEFAULT_LOGIN_THROTTLE). */
  loginThrottle?: LoginThrottle;
}

export interface NewUser {
  username: unknown;
  password: unknown;
  email: unknown;
}

const EMAIL = /^[^@\s"',;<>]+@[^@\s"',;<>]+$/;
const RESERVED = new Set([DEFAULT_NAMESPACE, 'admin', 'root', 'registry', 'v1', 'v2']);
export const EXISTS_MESSAGE = 'Username or email already exists';

/** The profile fields a user may set: wire name, record field, longest value. */
const PROFILE_FIELDS: ReadonlyArray<readonly [string, keyof UserProfile, number]> = [
  ['full_name', 'fullName', 100],
  ['location', 'location', 100],
  ['company', 'company', 100],
  ['url', 'url', 255],
];

/** A user's profile with every field present (unset ones empty), for the faces that show it. */
export function profileOf(user: UserRecord): Required<UserProfile> {
  const p = user.profile ?? {};
  return { fullName: p.fullName ?? '', location: p.location ?? '', company: p.company ?? '', url: p.url ?? '' };
}

export class UserService {
  private readonly verified = new Map<string, { hash: string; until: number }>();
  /** Serialises account writes: name and e-mail uniqueness are checked then written. */
  private writeChain: Promise<unknown> = Promise.resolve();
  /** Password checks of one account run one at a time, so the throttle counts every one. */
  private readonly checking = new Map<string, Promise<unknown>>();
  private readonly throttle: LoginThrottle;

  constructor(
    private readonly meta: AccountStore,
    private readonly options: UserServiceOptions,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.throttle = options.loginThrottle ?? new LoginThrottle();
  }

  get signupEnabled(): boolean {
    return this.options.signupEnabled;
  }

  /** POST /v1/users/: a new, active, non-admin account. */
  async signup(input: NewUser): Promise<void> {
    // An existing account answers the same whether sign-up is open or not, and before the
    // rules for new accounts are applied (reserved names such as the configured "admin",
    // passwords imported from htpasswd that a new account could not have, an e-mail the
    // client left out): the docker CLI takes that answer as "now log in" and checks the
    // password with GET /v1/users/.
    if (input !== null && typeof input === 'object' && (await this.get(String(input.username ?? '')))) {
      throw invalidInput(EXISTS_MESSAGE);
    }
    const { name, email, password } = this.validate(input);
    await this.serialised(async () => {
      if ((await this.meta.getUser(name)) || (await this.meta.getUserNameByEmail(email))) {
        throw invalidInput(EXISTS_MESSAGE);
      }
      if (!this.options.signupEnabled) {
        throw new RegistryError('SIGNUP_DISABLED', 'Sign-up is disabled on this registry; ask an administrator for an account');
      }
      await this.meta.putUser(await this.record(name, email, password, false));
    });
  }

  /** Creates or replaces an account (CLI, first admin from config). */
  async upsert(input: NewUser & { admin: boolean }): Promise<'created' | 'updated'> {
    // Operators may use reserved names (an account called "admin"), never the library namespace.
    const { name, email, password } = this.validate(input, { allowReserved: true });
    return this.serialised(async () => {
      const existing = await this.meta.getUser(name);
      const owner = await this.meta.getUserNameByEmail(email);
      if (owner && owner !== name) throw invalidInput(`E-mail already used by ${owner}`);
      const record = await this.record(name, email, password, input.admin);
      await this.meta.putUser(existing ? { ...record, createdAt: existing.createdAt, active: existing.active } : record, existing?.email);
      this.verified.clear();
      return existing ? 'updated' : 'created';
    });
  }

  /**
   * A new account made by an administrator (the web UI): like upsert, but an existing name
   * or e-mail is refused (EXISTS_MESSAGE) instead of replaced.
   */
  async create(input: NewUser & { admin: boolean }): Promise<void> {
    const { name, email, password } = this.validate(input, { allowReserved: true });
    await this.serialised(async () => {
      if ((await this.meta.getUser(name)) || (await this.meta.getUserNameByEmail(email))) throw invalidInput(EXISTS_MESSAGE);
      await this.meta.putUser(await this.record(name, email, password, input.admin));
    });
  }

  /**
   * An operator sets an account's password (CLI `user add|passwd`, the admin API): the
   * e-mail and the admin flag are kept unless given (default e-mail `NAME@localhost`);
   * `admin: true` makes it an admin, never the reverse; `mustExist` refuses a new account.
   */
  async setAccount(input: { username: unknown; password: unknown; email?: unknown; admin?: unknown; mustExist?: boolean }): Promise<{ result: 'created' | 'updated'; admin: boolean }> {
    const name = typeof input.username === 'string' ? input.username : '';
    const existing = await this.get(name);
    if (input.mustExist && !existing) throw notFound(`No such user: ${name}`);
    const admin = input.admin === true || (existing?.admin ?? false);
    const email = input.email ?? existing?.email ?? `${name}@localhost`;
    const result = await this.upsert({ username: input.username, password: input.password, email, admin });
    return { result, admin };
  }

  /** Ensures the configured first admin exists; an existing account is left as it is. */
  async ensureAdmin(name: string, password: string, email: string): Promise<boolean> {
    if (await this.meta.getUser(parseUsername(name))) return false;
    await this.upsert({ username: name, password, email, admin: true });
    return true;
  }

  /**
   * Checks a password: UNAUTHORIZED when wrong or unknown, INACTIVE_ACCOUNT when disabled,
   * TOO_MANY_REQUESTS (without looking at the password) while the account or the client
   * `address` has too many recent failures (see throttle.ts). Checks of one account run
   * one after the other, so a burst of parallel guesses cannot overrun the limit; a burst
   * of right passwords costs one bcrypt, the others hit the verified cache.
   */
  authenticate(name: string, password: string, address?: string): Promise<UserRecord> {
    const key = name.length > 64 ? name.slice(0, 64) : name;
    const previous = this.checking.get(key) ?? Promise.resolve();
    const run = previous.then(
      () => this.checkPassword(name, password, address),
      () => this.checkPassword(name, password, address),
    );
    const settled = run.catch(() => undefined);
    this.checking.set(key, settled);
    void settled.then(() => {
      if (this.checking.get(key) === settled) this.checking.delete(key);
    });
    return run;
  }

  private async checkPassword(name: string, password: string, address: string | undefined): Promise<UserRecord> {
    await this.throttle.check(name, address);
    const user = /^[a-z0-9_]{4,30}$/.test(name) ? await this.meta.getUser(name) : null;
    if (!user || !(await this.passwordMatches(user, password))) {
      await this.throttle.failure(name, address);
      throw new RegistryError('UNAUTHORIZED', 'Wrong login/password, please try again');
    }
    await this.throttle.success(name);
    if (!user.active) throw new RegistryError('INACTIVE_ACCOUNT', 'Account is not active');
    return user;
  }

  /** PUT /v1/users/:name/: new e-mail and/or password. */
  async update(name: string, body: unknown): Promise<void> {
    const changes = (body ?? {}) as { email?: unknown; password?: unknown };
    if (typeof changes !== 'object' || Array.isArray(changes)) throw invalidInput('Invalid data');
    await this.serialised(async () => {
      const user = await this.meta.getUser(name);
      if (!user) throw notFound('User not found');
      let next: UserRecord = { ...user };
      if (changes.email !== undefined) {
        const email = validEmail(changes.email);
        const owner = await this.meta.getUserNameByEmail(email);
        if (owner && owner !== name) throw invalidInput(EXISTS_MESSAGE);
        next.email = email;
      }
      if (changes.password !== undefined) {
        next = { ...next, passwordHash: await bcrypt.hash(validPassword(changes.password), this.options.bcryptCost) };
      }
      await this.meta.putUser(next, user.email);
      this.forgetUser(name);
    });
  }

  /**
   * Changes profile fields (`full_name`, `location`, `company`, `url`: strings, `url` an
   * http(s) URL or empty); other fields are ignored. Returns the updated account.
   */
  async updateProfile(name: string, body: unknown): Promise<UserRecord> {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalidInput('Invalid data: expected a JSON object');
    const input = body as Record<string, unknown>;
    const changes: UserProfile = {};
    for (const [wire, field, max] of PROFILE_FIELDS) {
      const value = input[wire];
      if (value === undefined) continue;
      if (typeof value !== 'string' || value.length > max || /[\u0000-\u001f\u007f]/.test(value)) {
        throw invalidInput(`Invalid ${wire}: text of at most ${max} characters`);
      }
      if (field === 'url' && value !== '' && !/^https?:\/\/[^\s]+$/i.test(value)) throw invalidInput('Invalid url: an http:// or https:// URL');
      changes[field] = value.trim();
    }
    return this.serialised(async () => {
      const user = await this.meta.getUser(name);
      if (!user) throw notFound('User not found');
      const next: UserRecord = { ...user, profile: { ...user.profile, ...changes } };
      await this.meta.putUser(next, user.email);
      return next;
    });
  }

  setActive(name: string, active: boolean): Promise<void> {
    return this.changeFlags(name, { active });
  }

  setAdmin(name: string, admin: boolean): Promise<void> {
    return this.changeFlags(name, { admin });
  }

  private async changeFlags(name: string, flags: Partial<Pick<UserRecord, 'active' | 'admin'>>): Promise<void> {
    await this.serialised(async () => {
      const user = await this.meta.getUser(parseUsername(name));
      if (!user) throw notFound('User not found');
      await this.meta.putUser({ ...user, ...flags }, user.email);
    });
  }

  get(name: string): Promise<UserRecord | null> {
    return /^[a-z0-9_]{4,30}$/.test(name) ? this.meta.getUser(name) : Promise.resolve(null);
  }

  list(): AsyncIterable<UserRecord> {
    return this.meta.listUsers();
  }

  /**
   * Imports an Apache htpasswd file (bcrypt entries only: `name:$2y$…`). Existing users get
   * the file's password; e-mail defaults to name@localhost for new ones.
   */
  async importHtpasswd(text: string): Promise<{ imported: string[]; skipped: Array<{ line: number; reason: string }> }> {
    const imported: string[] = [];
    const skipped: Array<{ line: number; reason: string }> = [];
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i].trim();
      if (line === '' || line.startsWith('#')) continue;
      const colon = line.indexOf(':');
      const name = line.slice(0, colon);
      const hash = line.slice(colon + 1).replace(/^\$2y\$/, '$2a$');
      if (colon <= 0 || !/^[a-z0-9_]{4,30}$/.test(name)) {
        skipped.push({ line: i + 1, reason: 'invalid user name' });
        continue;
      }
      if (!/^\$2[abxy]\$\d{2}\$[./A-Za-z0-9]{53}$/.test(hash)) {
        skipped.push({ line: i + 1, reason: 'not a bcrypt entry (use htpasswd -B)' });
        continue;
      }
      await this.serialised(async () => {
        const existing = await this.meta.getUser(name);
        const email = existing?.email ?? `${name}@localhost`;
        const record: UserRecord = existing
          ? { ...existing, passwordHash: hash }
          : { name, email, passwordHash: hash, active: true, admin: false, createdAt: this.now().toISOString() };
        await this.meta.putUser(record, existing?.email);
        this.forgetUser(name);
      });
      imported.push(name);
    }
    return { imported, skipped };
  }

  private validate(input: NewUser, opts: { allowReserved?: boolean } = {}) {
    if (input === null || typeof input !== 'object') throw invalidInput('Invalid data');
    let name: string;
    try {
      name = parseUsername(input.username);
    } catch {
      throw invalidInput('Invalid username: expected 4 to 30 characters of [a-z0-9_]');
    }
    if (name === DEFAULT_NAMESPACE || (!opts.allowReserved && RESERVED.has(name))) {
      throw invalidInput(`Username "${name}" is reserved`);
    }
    return { name, email: validEmail(input.email), password: validPassword(input.password) };
  }

  private async record(name: string, email: string, password: string, admin: boolean): Promise<UserRecord> {
    return {
      name,
      email,
      passwordHash: await bcrypt.hash(password, this.options.bcryptCost),
      active: true,
      admin,
      createdAt: this.now().toISOString(),
    };
  }

  private async passwordMatches(user: UserRecord, password: string): Promise<boolean> {
    const key = createHash('sha256').update(user.name).update('\0').update(password).digest('hex');
    const hit = this.verified.get(key);
    const now = Date.now();
    if (hit && hit.hash === user.passwordHash && hit.until > now) return true;
    const ok = await bcrypt.compare(password, user.passwordHash);
    if (ok) {
      if (this.verified.size > 10_000) this.verified.clear();
      this.verified.set(key, { hash: user.passwordHash, until: now + (this.options.credentialCacheMs ?? 60_000) });
    }
    return ok;
  }

  private forgetUser(_name: string): void {
    // Entries are keyed by a hash of name+password; a changed hash already invalidates them,
    // clearing simply frees the memory sooner.
    this.verified.clear();
  }

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.writeChain.then(fn, fn);
    this.writeChain = run.catch(() => undefined);
    return run;
  }
}

function validEmail(value: unknown): string {
  if (typeof value !== 'string' || value.length > 254 || !EMAIL.test(value)) throw invalidInput('Invalid e-mail address');
  return value.toLowerCase();
}

function validPassword(value: unknown): string {
  if (typeof value !== 'string' || value.length < 5) throw invalidInput('Invalid password: at least 5 characters');
  if (Buffer.byteLength(value) > 72) throw invalidInput('Invalid password: at most 72 bytes');
  return value;
}
