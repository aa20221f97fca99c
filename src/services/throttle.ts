/**
 * Login throttle: counts wrong passwords per account and per client address in a sliding
 * window. Once an account (or an address) has `maxFailures` failures younger than the
 * window, further password checks for it are refused with TOO_MANY_REQUESTS (429 +
 * Retry-After) *before* the password is looked at, until its oldest counted failure leaves
 * the window. Nothing is locked for longer than the window: the rightful user can always
 * log in again once an attacker stops, and a successful login clears the account's count
 * (never the address's: one valid account must not reset the limit for guessing others).
 *
 * A refused attempt is not counted as a failure. State is in memory (one process per
 * storage root) and bounded: at most `maxKeys` accounts and addresses are tracked.
 */
import { RegistryError } from '../domain/errors.js';

export interface LoginThrottleOptions {
  /** Failures per account within the window before its logins are refused. */
  maxFailuresPerUser: number;
  /** Failures per client address within the window before its logins are refused. */
  maxFailuresPerAddress: number;
  windowMs: number;
  /** Tracked accounts / addresses, each (default 100 000). */
  maxKeys?: number;
}

export const DEFAULT_LOGIN_THROTTLE: LoginThrottleOptions = {
  maxFailuresPerUser: 10,
  maxFailuresPerAddress: 100,
  windowMs: 300_000,
};

/** Failure times per key, oldest first, at most `limit` of them (older ones cannot matter). */
class FailureWindow {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly maxKeys: number,
  ) {}

  /** Milliseconds until `key` may try again (0: now). */
  blockedFor(key: string, now: number): number {
    const times = this.live(key, now);
    if (!times || times.length < this.limit) return 0;
    return Math.max(1, times[0] + this.windowMs - now);
  }

  add(key: string, now: number): void {
    const times = this.live(key, now) ?? [];
    times.push(now);
    if (times.length > this.limit) times.splice(0, times.length - this.limit);
    // Re-insert so that Map order is least recently failed first (eviction order).
    this.failures.delete(key);
    this.failures.set(key, times);
    if (this.failures.size > this.maxKeys) this.prune(now);
  }

  clear(key: string): void {
    this.failures.delete(key);
  }

  get size(): number {
    return this.failures.size;
  }

  /** The failures of `key` still inside the window (expired ones are dropped). */
  private live(key: string, now: number): number[] | undefined {
    const times = this.failures.get(key);
    if (!times) return undefined;
    const cutoff = now - this.windowMs;
    let drop = 0;
    while (drop < times.length && times[drop] <= cutoff) drop += 1;
    if (drop === times.length) {
      this.failures.delete(key);
      return undefined;
    }
    if (drop > 0) times.splice(0, drop);
    return times;
  }

  private prune(now: number): void {
    for (const key of [...this.failures.keys()]) this.live(key, now);
    // Still too many: forget the keys that failed least recently.
    for (const key of this.failures.keys()) {
      if (this.failures.size <= this.maxKeys) break;
      this.failures.delete(key);
    }
  }
}

export class LoginThrottle {
  private readonly users: FailureWindow;
  private readonly addresses: FailureWindow;

  constructor(
    readonly options: LoginThrottleOptions = DEFAULT_LOGIN_THROTTLE,
    private readonly now: () => number = () => Date.now(),
  ) {
    const maxKeys = options.maxKeys ?? 100_000;
    this.users = new FailureWindow(options.maxFailuresPerUser, options.windowMs, maxKeys);
    this.addresses = new FailureWindow(options.maxFailuresPerAddress, options.windowMs, maxKeys);
  }

  /** Throws TOO_MANY_REQUESTS (with `retryAfter` seconds) when the account or the address is refused. */
  check(user: string, address: string | undefined): void {
    const now = this.now();
    const wait = Math.max(this.users.blockedFor(userKey(user), now), address ? this.addresses.blockedFor(address, now) : 0);
    if (wait > 0) {
      const retryAfter = Math.ceil(wait / 1000);
      throw new RegistryError('TOO_MANY_REQUESTS', `Too many failed logins; retry in ${retryAfter} s`, { retryAfter });
    }
  }

  failure(user: string, address: string | undefined): void {
    const now = this.now();
    this.users.add(userKey(user), now);
    if (address) this.addresses.add(address, now);
  }

  success(user: string): void {
    this.users.clear(userKey(user));
  }

  /** Tracked accounts and addresses (for tests). */
  get tracked(): { users: number; addresses: number } {
    return { users: this.users.size, addresses: this.addresses.size };
  }
}

/** Names longer than any valid account name all count as one (bounded memory per key). */
function userKey(user: string): string {
  return user.length > 64 ? `${user.slice(0, 64)}…` : user;
}
