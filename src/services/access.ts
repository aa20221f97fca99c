/**
 * Access policy: the only place that decides who may do what. Routes state the resource
 * and the action they need; this answers by returning or throwing UNAUTHORIZED (who are
 * you?) or FORBIDDEN (you may not).
 */
import { RegistryError } from '../domain/errors.js';
import type { ImageId, RepoName } from '../domain/names.js';

export type Action = 'read' | 'write' | 'delete' | 'admin';

export type Principal = { kind: 'anonymous' };

export const ANONYMOUS: Principal = Object.freeze({ kind: 'anonymous' });

export class AccessService {
  constructor(private readonly standalone: boolean) {}

  get isStandalone(): boolean {
    return this.standalone;
  }

  async authorizeRepo(_principal: Principal, repo: RepoName, action: Action): Promise<void> {
    if (this.standalone) return;
    throw new RegistryError('UNAUTHORIZED', `Authentication required to ${action} ${repo.full}`);
  }

  async authorizeImage(_principal: Principal, image: ImageId, action: Action): Promise<void> {
    if (this.standalone) return;
    throw new RegistryError('UNAUTHORIZED', `Authentication required to ${action} image ${image}`);
  }
}
