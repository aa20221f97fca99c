/**
 * The administrators' console (the web UI's admin pages): accounts, garbage collection and
 * fsck, each checked by access.ts before it runs. The JSON admin API (`/_admin/…`) and the
 * command line reach the same services.
 */
import type { UserRecord } from '../domain/records.js';
import type { AccessService, Principal } from './access.js';
import type { Fsck, FsckReport } from './fsck.js';
import type { GarbageCollector, GcReport } from './gc.js';
import type { UserService } from './users.js';

/** An account as the console shows it (never the password hash). */
export interface AccountView {
  name: string;
  email: string;
  active: boolean;
  admin: boolean;
  createdAt: string;
}

export interface NewAccount {
  username: unknown;
  email: unknown;
  password: unknown;
  admin: boolean;
}

export class ConsoleService {
  constructor(
    private readonly access: AccessService,
    private readonly users: UserService,
    private readonly gc: GarbageCollector,
    private readonly fsck: Fsck,
  ) {}

  /** UNAUTHORIZED / FORBIDDEN unless the caller is an administrator (pages without data). */
  authorize(principal: Principal): void {
    this.access.authorizeAdmin(principal);
  }

  /** Every account, by name. */
  async accounts(principal: Principal): Promise<AccountView[]> {
    this.access.authorizeAdmin(principal);
    const out: AccountView[] = [];
    for await (const user of this.users.list()) out.push(view(user));
    return out.sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  async createAccount(principal: Principal, account: NewAccount): Promise<void> {
    this.access.authorizeAdmin(principal);
    await this.users.create(account);
  }

  async setActive(principal: Principal, name: string, active: boolean): Promise<void> {
    this.access.authorizeAccountChange(principal, name);
    await this.users.setActive(name, active);
  }

  async setAdmin(principal: Principal, name: string, admin: boolean): Promise<void> {
    this.access.authorizeAccountChange(principal, name);
    await this.users.setAdmin(name, admin);
  }

  /** Garbage collection; a dry run reports what would go and deletes nothing. */
  async collectGarbage(principal: Principal, dryRun: boolean): Promise<GcReport> {
    this.access.authorizeAdmin(principal);
    return this.gc.run({ dryRun });
  }

  /** A consistency check that repairs nothing. */
  async check(principal: Principal): Promise<FsckReport> {
    this.access.authorizeAdmin(principal);
    return this.fsck.run(false);
  }
}

function view(user: UserRecord): AccountView {
  return { name: user.name, email: user.email, active: user.active, admin: user.admin, createdAt: user.createdAt };
}
