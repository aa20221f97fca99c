/**
 * Login throttle: counts wrong passwords per account and per client address in a sliding
 * window. Once an account (or an address) has `maxFailures` failures younger than the
 * window, further password checks for it are refused with TOO_MANY_REQUESTS (429 +
 * Retry-After) *before* the password is looked at, until its oldest counted failure leaves
 * the window. Nothing is locked for longer than the window: the rightful user can always
 * log in again once an attacker stops, and a successful login clears the account's count
 * (never the address's: one valid account must not reset the limit for guessing others).
 *
 * A refused attempt is not counted as a failure. The failures are kept in a
 * LoginFailureStore: in memory for one process (bounded: at most `maxKeys` accounts and
 * addresses are tracked), in PostgreSQL when nodes share it (metadata_store: postgres), so
 * every node refuses an account that failed on any of them. Checks of one account run one
 * at a time per node; nodes checking the same account at the same instant may each let one
 * more guess through before they all refuse.
 */
import { RegistryError } from '../domain/errors.js';
import { InMemoryLoginFailures } from '../store/login-failures.js';
import type { LoginFailureStore } from '../store/metadata/ports.js';

export interface LoginThrottleOptions {
  /** Failures per account within the window before its logins are refused. */
  maxFailuresPerUser: number;
  /** Failures per client address within the window before its logins are refused. */
  maxFailuresPerAddress: number;
  windowMs: number;
  /** Tracked accounts and addresses, in all, by the default in-memory store (default 200 000). */
  maxKeys?: number;
}

export const DEFAULT_LOGIN_THROTTLE: LoginThrottleOptions = {
  maxFailuresPerUser: 10,
  maxFailuresPerAddress: 100,
  windowMs: 300_000,
};

/** How often expired failures of every key are forgotten (the live keys are pruned as they fail). */
const PRUNE_EVERY_MS = 60_000;

export class LoginThrottle {
  private readonly failures: LoginFailureStore;
  private prunedAt = 0;

  constructor(
    readonly options: LoginThrottleOptions = DEFAULT_LOGIN_THROTTLE,
    private readonly now: () => number = () => Date.now(),
    failures?: LoginFailureStore,
  ) {
    this.failures = failures ?? new InMemoryLoginFailures(options.maxKeys);
  }

  /** Throws TOO_MANY_REQUESTS (with `retryAfter` seconds) when the account or the address is refused. */
  async check(user: string, address: string | undefined): Promise<void> {
    const now = this.now();
    const [byUser, byAddress] = await Promise.all([
      this.blockedFor(userKey(user), this.options.maxFailuresPerUser, now),
      address ? this.blockedFor(addressKey(address), this.options.maxFailuresPerAddress, now) : 0,
    ]);
    const wait = Math.max(byUser, byAddress);
    if (wait > 0) {
      const retryAfter = Math.ceil(wait / 1000);
      throw new RegistryError('TOO_MANY_REQUESTS', `Too many failed logins; retry in ${retryAfter} s`, { retryAfter });
    }
  }

  async failure(user: string, address: string | undefined): Promise<void> {
    const now = this.now();
    await Promise.all([
      this.failures.addFailure(userKey(user), now, this.options.maxFailuresPerUser),
      address ? this.failures.addFailure(addressKey(address), now, this.options.maxFailuresPerAddress) : undefined,
    ]);
    if (now - this.prunedAt >= PRUNE_EVERY_MS) {
      this.prunedAt = now;
      await this.failures.pruneFailures(now - this.options.windowMs);
    }
  }

  async success(user: string): Promise<void> {
    await this.failures.clearFailures(userKey(user));
  }

  /** Milliseconds until `key` may try again (0: now). */
  private async blockedFor(key: string, limit: number, now: number): Promise<number> {
    const times = await this.failures.recentFailures(key, now - this.options.windowMs, limit);
    if (times.length < limit) return 0;
    return Math.max(1, times[0] + this.options.windowMs - now);
  }
}

/** Names longer than any valid account name all count as one (bounded memory per key). */
function userKey(user: string): string {
  return `user:${user.length > 64 ? `${user.slice(0, 64)}…` : user}`;
}

function addressKey(address: string): string {
  return `addr:${address.slice(0, 64)}`;
}
