/**
 * What happened to repositories, for the webhooks (and anything else that listens).
 * Listeners run after the write has been committed and must not slow it down: emit()
 * never awaits them, and a listener's failure is reported, not thrown.
 */
import type { ImageId, RepoName, Tag } from '../domain/names.js';
import type { RepoRecord } from '../domain/records.js';

export type RegistryEvent =
  /** `imageId`: the tagged v1 image (null: a v2 manifest v1 cannot show); `manifest`: set over v2. */
  | { type: 'push'; repo: RepoName; tag: Tag; imageId: ImageId | null; manifest?: string; actor: string | null; at: Date }
  | { type: 'tag_delete'; repo: RepoName; tag: Tag; actor: string | null; at: Date }
  /** `record`: the repository as it was before the delete (listeners cannot read it any more). */
  | { type: 'repo_delete'; repo: RepoName; actor: string | null; at: Date; record?: RepoRecord };

export type EventListener = (event: RegistryEvent) => void | Promise<void>;

export class EventBus {
  private readonly listeners: EventListener[] = [];

  constructor(private readonly onError: (err: unknown, event: RegistryEvent) => void = () => undefined) {}

  on(listener: EventListener): void {
    this.listeners.push(listener);
  }

  emit(event: RegistryEvent): void {
    for (const listener of this.listeners) {
      try {
        const result = listener(event);
        if (result) result.catch((err) => this.onError(err, event));
      } catch (err) {
        this.onError(err, event);
      }
    }
  }
}
