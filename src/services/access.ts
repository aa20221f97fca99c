/**
 * Access policy: the only place that decides who may do what.
 *
 * - A user owns the namespace named after them; `library` and every other namespace
 *   belong to the admins. Admins may do everything.
 * - A repository is public (anyone may read) or private (owner, collaborators, admins).
 *   Collaborators get read, write or admin on one repository.
 * - Anonymous callers may only read public data; they never write.
 * - A token (see tokens.ts) narrows its user's rights to one repository and one access:
 *   read → read; write → read + write; delete → read + delete. The user behind it must
 *   still hold the rights when the token is used.
 * - Images belong to the repositories that list them or tag them (or an ancestor). An
 *   image is readable through any repository the caller may read that holds it; with a
 *   token, only through the token's repository. A new image written with a repository's
 *   write token joins that repository.
 * - An OAuth access token (oauth.ts) acts for its user within its scopes: repo_read →
 *   read; repo_write → read, write, untag, delete; repository settings (admin) never.
 *   Without a repo scope it reads what an anonymous caller may. Profiles: profile_read to
 *   read, profile_write to change (the own profile only).
 * - A Registry API v2 bearer token (registry-tokens.ts) carries the actions it was granted
 *   per repository (pull, push, delete): an action outside them is UNAUTHORIZED (the client
 *   asks the realm for a token with more scope); its user must still hold the rights.
 * - Standalone mode (config) switches all of this off: everyone may do everything.
 *
 * Routes name the resource and the action; this answers by returning, or by throwing
 * UNAUTHORIZED (who are you?) or FORBIDDEN (you may not).
 */
import { RegistryError } from '../domain/errors.js';
import type { ImageId, RepoName } from '../domain/names.js';
import type { OAuthScope, Permission, RepoRecord, UserRecord } from '../domain/records.js';
import type { ImageListStore, ImageStore, RepositoryStore } from '../store/metadata/ports.js';
import type { TokenAccess } from './tokens.js';

/** read: pull; write: push; untag: delete a tag; delete: delete the repository; admin: settings. */
export type RepoAction = 'read' | 'write' | 'untag' | 'delete' | 'admin';
export type ImageAction = 'read' | 'write';

/** What a Registry API v2 token grants on a repository. */
export type V2Action = 'pull' | 'push' | 'delete';

export type Principal =
  | { kind: 'anonymous' }
  | { kind: 'user'; user: UserRecord }
  | { kind: 'token'; user: UserRecord | null; repo: RepoName; access: TokenAccess }
  | { kind: 'oauth'; user: UserRecord; scopes: readonly OAuthScope[]; clientId: string }
  /** A Registry API v2 bearer token: actions per repository (full name), and the catalog. */
  | { kind: 'bearer'; user: UserRecord | null; grants: ReadonlyMap<string, ReadonlySet<V2Action>>; catalog: boolean };

export const ANONYMOUS: Principal = Object.freeze({ kind: 'anonymous' });

const RANK: Record<Permission | 'none', number> = { none: 0, read: 1, write: 2, admin: 3 };
const NEEDS: Record<RepoAction, Permission> = { read: 'read', write: 'write', untag: 'write', delete: 'admin', admin: 'admin' };
/** Which token accesses allow an action (admin settings need real credentials). */
const TOKEN_ALLOWS: Record<RepoAction, TokenAccess[]> = {
  read: ['read', 'write', 'delete'],
  write: ['write'],
  untag: ['write', 'delete'],
  delete: ['delete'],
  admin: [],
};

/** The v2 token action each repository action needs (admin settings: none, real credentials only). */
const BEARER_NEEDS: Record<RepoAction, V2Action | null> = { read: 'pull', write: 'push', untag: 'delete', delete: 'delete', admin: null };
/** Which OAuth scopes allow an action (any one of them). */
const OAUTH_ALLOWS: Record<RepoAction, OAuthScope[]> = {
  read: ['repo_read', 'repo_write'],
  write: ['repo_write'],
  untag: ['repo_write'],
  delete: ['repo_write'],
  admin: [],
};

export function userOf(principal: Principal): UserRecord | null {
  return principal.kind === 'anonymous' ? null : principal.user;
}

export class AccessService {
  constructor(
    private readonly standalone: boolean,
    private readonly meta: ImageStore & RepositoryStore & ImageListStore,
  ) {}

  get isStandalone(): boolean {
    return this.standalone;
  }

  /** What `user` (null: anonymous) may do on a repository, existing (`record`) or not. */
  permissionOf(user: UserRecord | null, repo: RepoName, record: RepoRecord | null): Permission | 'none' {
    if (this.standalone) return 'admin';
    if (user?.admin) return 'admin';
    if (user && user.name === repo.namespace) return 'admin';
    const granted = user ? record?.collaborators?.[user.name] : undefined;
    if (granted) return granted;
    return record?.access === 'public' ? 'read' : 'none';
  }

  async authorizeRepo(principal: Principal, repo: RepoName, action: RepoAction): Promise<void> {
    if (this.standalone) return;
    if (principal.kind === 'token') this.checkTokenScope(principal, repo, action);
    if (principal.kind === 'bearer') this.checkBearerScope(principal, repo, action);
    if (principal.kind === 'oauth') checkOAuthScope(principal, OAUTH_ALLOWS[action], `${action} ${repo.full}`);
    const record = await this.meta.getRepo(repo);
    // Reading what does not exist is answered by a 404 from the service, not a 401.
    if (!record && action === 'read') return;
    this.require(principal, this.permissionOf(userOf(principal), repo, record), NEEDS[action], `${action} ${repo.full}`);
  }

  /**
   * Who an Index token may be issued to (push start, pull start, the delete flow): an
   * authenticated caller, for the access the route already authorized. Anonymous callers
   * (and anonymous tokens) get none: public data needs no token.
   */
  tokenSubject(principal: Principal): UserRecord | null {
    return userOf(principal);
  }

  /** May the caller read every repository in `repos` (for search and listings)? */
  canRead(principal: Principal, repo: RepoName, record: RepoRecord): boolean {
    if (principal.kind === 'token' && principal.repo.full !== repo.full) return false;
    // An OAuth token without a repo scope sees what anonymous callers see.
    if (principal.kind === 'bearer' && !principal.catalog && !principal.grants.get(repo.full)?.has('pull')) return false;
    const user = principal.kind === 'oauth' && !hasScope(principal, OAUTH_ALLOWS.read) ? null : userOf(principal);
    return RANK[this.permissionOf(user, repo, record)] >= RANK.read;
  }

  /** Would authorizeRepo allow `action` on an existing repository (for showing controls)? */
  may(principal: Principal, repo: RepoName, record: RepoRecord, action: RepoAction): boolean {
    if (this.standalone) return true;
    if (principal.kind === 'token' && (principal.repo.full !== repo.full || !TOKEN_ALLOWS[action].includes(principal.access))) return false;
    if (principal.kind === 'oauth' && !hasScope(principal, OAUTH_ALLOWS[action])) return action === 'read' && this.canRead(principal, repo, record);
    if (principal.kind === 'anonymous' && action !== 'read') return false;
    return RANK[this.permissionOf(userOf(principal), repo, record)] >= RANK[NEEDS[action]];
  }

  /**
   * The repository's record, for a caller who may read it. A repository the caller may not
   * read is not revealed: NOT_FOUND, exactly as for one that does not exist (the web UI's
   * pages, where a 401 or 403 would tell that a private repository is there).
   */
  async visibleRepo(principal: Principal, repo: RepoName): Promise<RepoRecord> {
    const record = await this.meta.getRepo(repo);
    if (!record || !this.may(principal, repo, record, 'read')) throw new RegistryError('NOT_FOUND', 'Repository not found');
    return record;
  }

  /**
   * May the caller read or write image `id`? With a token (or a session that carries one),
   * only through the token's repository:
   * - an image that repository holds: allowed (if the user still holds the rights);
   * - read, anything else: not found (an image the token cannot see is never revealed,
   *   and one that does not exist is not found);
   * - write, a new image, or a pending one no repository holds: allowed, and it joins the
   *   token's repository (images need not be declared at push start). The repository is
   *   returned: the route links the image once its write succeeded, so its layer and
   *   checksum writes with the same token are the repository's own;
   * - write, a pending image other repositories hold: FORBIDDEN (another repository's push
   *   in progress; declaring it at push start is how a push shares it, see
   *   authorizeImageList);
   * - write, a complete image held elsewhere: not found unless the user may read it there
   *   (then the image service refuses the write: complete images are immutable).
   * Returns null otherwise (nothing to join).
   */
  async authorizeImage(principal: Principal, id: ImageId, action: ImageAction): Promise<RepoName | null> {
    if (this.standalone) return null;
    const user = userOf(principal);
    if (principal.kind === 'oauth') checkOAuthScope(principal, OAUTH_ALLOWS[action], `${action} image ${id}`);
    if (principal.kind === 'token') {
      this.checkTokenScope(principal, principal.repo, action);
      const record = await this.meta.getRepo(principal.repo);
      this.require(principal, this.permissionOf(user, principal.repo, record), action, `${action} ${principal.repo.full}`);
      const holders = await this.meta.reposOfImage(id);
      if (holders.some((r) => r.full === principal.repo.full)) return null;
      const image = action === 'write' ? await this.meta.getImage(id) : null;
      if (!image) {
        if (action === 'read') throw new RegistryError('NOT_FOUND', 'Image not found');
        return principal.repo;
      }
      if (image.status === 'complete') {
        if (user?.admin || (await this.someGrants(user, holders, 'read'))) return null;
        throw new RegistryError('NOT_FOUND', 'Image not found');
      }
      if (holders.length === 0) return principal.repo;
      throw new RegistryError('FORBIDDEN', `Access denied: image ${id} is being pushed through another repository`);
    }
    if (action === 'write') {
      if (!user) throw new RegistryError('UNAUTHORIZED', 'Authentication required to push images');
      // A new image (or one no repository holds yet) may be uploaded by anyone logged in;
      // an image some repository holds only by someone who may push to one of them, so
      // nobody can rewrite another user's image while its push is still under way.
      if (user.admin) return null;
      const holders = await this.meta.reposOfImage(id);
      if (holders.length === 0 || (await this.someGrants(user, holders, 'write'))) return null;
      throw new RegistryError('FORBIDDEN', `Access denied: image ${id} belongs to repositories you may not push to`);
    }
    if (await this.someGrants(user, await this.meta.reposOfImage(id), 'read')) return null;
    if (user?.admin) return null;
    if (!user) throw new RegistryError('UNAUTHORIZED', `Authentication required to read image ${id}`);
    // Not readable through any repository: answer as if it did not exist.
    throw new RegistryError('NOT_FOUND', 'Image not found');
  }

  /**
   * May the caller list these images in `repo`'s image list (push start and push end)? A
   * listed image becomes readable through the repository, and writable with its token, so
   * an image that already exists and that other repositories hold may only be listed by
   * someone who may read it through one of them (a complete image) or push to one of them
   * (a pending image: its push is still under way). Unknown images (about to be pushed)
   * and images no repository holds are free to list.
   */
  async authorizeImageList(principal: Principal, repo: RepoName, ids: readonly ImageId[]): Promise<void> {
    if (this.standalone) return;
    const user = userOf(principal);
    if (user?.admin) return;
    for (const id of new Set(ids)) {
      const image = await this.meta.getImage(id);
      if (!image) continue;
      const holders = await this.meta.reposOfImage(id);
      if (holders.length === 0 || holders.some((r) => r.full === repo.full)) continue;
      if (image.status === 'complete' && (await this.someGrants(user, holders, 'read'))) continue;
      if (image.status !== 'complete' && (await this.someGrants(user, holders, 'write'))) continue;
      throw new RegistryError('FORBIDDEN', `Access denied: image ${id} belongs to a repository you may not ${image.status === 'complete' ? 'read' : 'push to'}`);
    }
  }

  /** Does one of `repos` (existing ones) give `user` at least `need`? */
  private async someGrants(user: UserRecord | null, repos: readonly RepoName[], need: Permission): Promise<boolean> {
    for (const repo of repos) {
      const record = await this.meta.getRepo(repo);
      if (record && RANK[this.permissionOf(user, repo, record)] >= RANK[need]) return true;
    }
    return false;
  }

  /**
   * What a v2 token for `user` (null: anonymous) may carry on `repo`: the asked actions the
   * user's permission allows (pull: read; push and delete: write). Nothing in standalone
   * mode is refused.
   */
  async grantable(user: UserRecord | null, repo: RepoName, asked: readonly V2Action[]): Promise<V2Action[]> {
    const have = RANK[this.permissionOf(user, repo, await this.meta.getRepo(repo))];
    const needs: Record<V2Action, Permission> = { pull: 'read', push: 'write', delete: 'write' };
    // Anonymous callers never write, whatever standalone says about reading.
    return asked.filter((a) => have >= RANK[needs[a]] && (a === 'pull' || user !== null || this.standalone));
  }

  /** May the caller list the catalog through a v2 token (any user; anonymous only in standalone)? */
  grantsCatalog(user: UserRecord | null): boolean {
    return this.standalone || user !== null;
  }

  /** Registry-wide operations (garbage collection, fsck, image delete): admins only. */
  authorizeAdmin(principal: Principal): void {
    if (this.standalone) return;
    if (principal.kind === 'user' && principal.user.admin) return;
    if (principal.kind === 'anonymous') throw new RegistryError('UNAUTHORIZED', 'Authentication required (admin)');
    throw new RegistryError('FORBIDDEN', 'Only administrators may do this');
  }

  /**
   * Changing an account (activate, deactivate, grant or revoke admin): admins only, and not
   * their own activity or admin flag, so that the last admin cannot lock everyone out by a
   * slip of the mouse (another admin, or the command line, can do it).
   */
  authorizeAccountChange(principal: Principal, account: string): void {
    this.authorizeAdmin(principal);
    if (userOf(principal)?.name === account) throw new RegistryError('FORBIDDEN', 'You cannot deactivate or demote your own account');
  }

  /**
   * Profiles (Accounts API): anyone logged in may read one, but its private fields
   * (e-mail) only its owner and admins; only the owner changes it. An OAuth token needs
   * profile_read to read and profile_write to change. Answers whether the caller sees the
   * private fields.
   */
  authorizeProfile(principal: Principal, name: string, action: 'read' | 'write'): { private: boolean } {
    const user = userOf(principal);
    if (!user) throw new RegistryError('UNAUTHORIZED', 'Authentication required');
    if (principal.kind === 'token') throw new RegistryError('FORBIDDEN', 'A repository token does not give access to profiles');
    if (principal.kind === 'oauth') checkOAuthScope(principal, [action === 'read' ? 'profile_read' : 'profile_write'], `${action} profiles`);
    if (action === 'write' && user.name !== name) throw new RegistryError('FORBIDDEN', 'You may only change your own profile');
    return { private: user.name === name || (user.admin && principal.kind !== 'oauth') };
  }

  /**
   * Account settings (the applications a user authorized): the user's own password or
   * session only, never a token, an OAuth one included. Returns the account.
   */
  accountOwner(principal: Principal): UserRecord {
    if (principal.kind === 'user') return principal.user;
    if (principal.kind === 'anonymous') throw new RegistryError('UNAUTHORIZED', 'Authentication required');
    throw new RegistryError('FORBIDDEN', 'Log in with your password to manage your account');
  }

  private checkTokenScope(principal: Extract<Principal, { kind: 'token' }>, repo: RepoName, action: RepoAction): void {
    if (principal.repo.full !== repo.full) {
      throw new RegistryError('FORBIDDEN', `Token is for ${principal.repo.full}, not ${repo.full}`);
    }
    if (!TOKEN_ALLOWS[action].includes(principal.access)) {
      throw new RegistryError('FORBIDDEN', `A ${principal.access} token does not allow ${action}`);
    }
  }

  /** A v2 token without the action: UNAUTHORIZED, so the client asks for one with more scope. */
  private checkBearerScope(principal: Extract<Principal, { kind: 'bearer' }>, repo: RepoName, action: RepoAction): void {
    const need = BEARER_NEEDS[action];
    if (need && principal.grants.get(repo.full)?.has(need)) return;
    throw new RegistryError('UNAUTHORIZED', `The token does not grant ${need ?? action} on ${repo.full}`, { insufficientScope: true });
  }

  private require(principal: Principal, have: Permission | 'none', need: Permission, what: string): void {
    if (RANK[have] >= RANK[need]) return;
    if (principal.kind === 'anonymous' || ((principal.kind === 'token' || principal.kind === 'bearer') && !principal.user)) {
      throw new RegistryError('UNAUTHORIZED', `Authentication required to ${what}`);
    }
    throw new RegistryError('FORBIDDEN', `Access denied: you may not ${what}`);
  }
}

function hasScope(principal: Extract<Principal, { kind: 'oauth' }>, anyOf: readonly OAuthScope[]): boolean {
  return anyOf.some((scope) => principal.scopes.includes(scope));
}

/** FORBIDDEN (with the `scope` needed, for the OAuth face's insufficient_scope) unless the token has one of `anyOf`. */
function checkOAuthScope(principal: Extract<Principal, { kind: 'oauth' }>, anyOf: readonly OAuthScope[], what: string): void {
  if (hasScope(principal, anyOf)) return;
  if (anyOf.length === 0) throw new RegistryError('FORBIDDEN', `OAuth tokens may not ${what}`);
  throw new RegistryError('FORBIDDEN', `This token's scope does not allow to ${what} (needs ${anyOf.join(' or ')})`, { scope: anyOf.join(' ') });
}
