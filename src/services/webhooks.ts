/**
 * Webhooks: every configured endpoint receives a JSON POST on push (a tag set), tag delete
 * and repository delete, in Docker Hub's webhook shape (`callback_url`, `push_data`,
 * `repository`) plus an `event` field. Notifications are written to a persistent queue in
 * the metadata store first and delivered by a background loop, so the request that caused
 * them is never slowed and a restart loses none. A failed delivery (network error, timeout,
 * non-2xx) is retried with exponential backoff until `maxAttempts`, then dropped and logged.
 *
 * Many nodes may share one queue (PostgreSQL): a node takes due notifications with a claim
 * (MetadataStore.claimWebhooks) that hides them from every other node for `leaseMs`, so
 * each notification is delivered by one node. A node that dies mid-delivery leaves its
 * claims to be retried by any node once the lease ends; a node that stops gracefully hands
 * back the ones it had not tried yet. A claim holds no more notifications than can be tried
 * within the lease, one at a time (each attempt is bounded by `timeoutMs`).
 *
 * A URL may carry credentials (`https://user:secret@host/…`): they are sent as
 * `Authorization: Basic` (fetch refuses URLs with credentials), and logs show the URL with
 * its credentials and query values masked, since either may be the receiver's secret.
 */
import { randomBytes } from 'node:crypto';
import type { RepoRecord, WebhookDelivery } from '../domain/records.js';
import type { Logger } from '../logger.js';
import type { RepositoryStore, WebhookQueue } from '../store/metadata/ports.js';
import type { RegistryEvent } from './events.js';

export interface WebhookOptions {
  urls: readonly string[];
  maxAttempts: number;
  retryBaseMs: number;
  timeoutMs: number;
  /** How long a claim hides the notifications it took from other deliverers (default: 60 s). */
  leaseMs?: number;
}

const MAX_BACKOFF_MS = 60 * 60 * 1000;
/** Most notifications one claim takes. */
const BATCH = 20;
const DEFAULT_LEASE_MS = 60_000;

export class WebhookService {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  /** Events being queued: stop() waits for them, so none is lost on a graceful stop. */
  private readonly queueing = new Set<Promise<void>>();
  /** Base URL of this registry, for `callback_url` and `repo_url` (set once listening). */
  publicUrl = 'http://127.0.0.1:5000';

  constructor(
    private readonly meta: RepositoryStore & WebhookQueue,
    private readonly options: WebhookOptions,
    private readonly logger: Logger,
    private readonly now: () => number = () => Date.now(),
  ) {}

  get enabled(): boolean {
    return this.options.urls.length > 0;
  }

  /** Event listener: queue one delivery per endpoint, then wake the delivery loop. */
  onEvent(event: RegistryEvent): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    const queued = this.enqueue(event);
    this.queueing.add(queued);
    const forget = () => {
      this.queueing.delete(queued);
    };
    queued.then(forget, forget);
    return queued;
  }

  private async enqueue(event: RegistryEvent): Promise<void> {
    const payload = await this.payload(event, randomBytes(8).toString('hex'));
    const dueAt = this.now();
    await this.meta.enqueueWebhooks(
      this.options.urls.map((url) => ({
        id: randomBytes(8).toString('hex'),
        url,
        payload,
        attempts: 0,
        dueAt,
        createdAt: new Date(dueAt).toISOString(),
        lastError: null,
      })),
    );
    this.kick();
  }

  /** Starts the delivery loop (it also picks up what a previous run left queued). */
  start(): void {
    if (!this.enabled) return;
    this.stopped = false;
    this.schedule(0);
  }

  /**
   * Stops the loop and waits for the events still being queued (the store must stay open
   * until they are written) and for a delivery round in progress.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.queueing.size > 0) await Promise.allSettled([...this.queueing]);
    await this.running;
  }

  /** At least two attempts' time: a lease never ends while its one attempt may still run. */
  private get leaseMs(): number {
    return Math.max(this.options.leaseMs ?? DEFAULT_LEASE_MS, 2 * this.options.timeoutMs);
  }

  /** Notifications one claim takes: as many as can be tried one by one within the lease. */
  private get claimSize(): number {
    return Math.max(1, Math.min(BATCH, Math.floor(this.leaseMs / (this.options.timeoutMs + 1000))));
  }

  /** Claims what is due now and delivers it (one claim); returns how many deliveries were claimed. */
  async deliverDue(): Promise<number> {
    const claimed = await this.meta.claimWebhooks(this.now(), this.claimSize, this.leaseMs);
    for (let i = 0; i < claimed.length; i++) {
      if (this.stopped) {
        // Stopping: hand back what was not tried, due now for any node.
        const now = this.now();
        for (const left of claimed.slice(i)) await this.meta.rescheduleWebhook(left, { ...left, dueAt: now });
        break;
      }
      await this.attempt(claimed[i]);
    }
    return claimed.length;
  }

  private kick(): void {
    if (!this.stopped && !this.running) this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.round().finally(() => {
        this.running = null;
      });
    }, delayMs);
    this.timer.unref();
  }

  private async round(): Promise<void> {
    try {
      let claimed = this.claimSize;
      while (claimed === this.claimSize && !this.stopped) claimed = await this.deliverDue();
    } catch (err) {
      this.logger.error({ err }, 'webhook delivery round failed');
    }
    // Poll for retries that come due; new events kick the loop at once.
    this.schedule(Math.min(1000, this.options.retryBaseMs));
  }

  private async attempt(delivery: WebhookDelivery): Promise<void> {
    let error: string | null = null;
    const url = redactUrl(delivery.url);
    try {
      const { target, authorization } = splitCredentials(delivery.url);
      const res = await fetch(target, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'User-Agent': 'v1-registry-webhook',
          ...(authorization ? { Authorization: authorization } : {}),
        },
        body: JSON.stringify(delivery.payload),
        signal: AbortSignal.timeout(this.options.timeoutMs),
        redirect: 'manual',
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status < 200 || res.status >= 300) error = `HTTP ${res.status}`;
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      error = (err as Error).message || String(err);
      if (cause?.code || cause?.message) error += ` (${cause.code ?? cause.message})`;
      for (const form of new Set([delivery.url, new URL(delivery.url).href])) error = error.split(form).join(url);
    }
    if (error === null) {
      await this.meta.removeWebhook(delivery);
      this.logger.info({ url, id: delivery.id, attempts: delivery.attempts + 1 }, 'webhook delivered');
      return;
    }
    const attempts = delivery.attempts + 1;
    if (attempts >= this.options.maxAttempts) {
      await this.meta.removeWebhook(delivery);
      this.logger.error({ url, id: delivery.id, attempts, error }, 'webhook dropped after the last attempt');
      return;
    }
    const backoff = Math.min(MAX_BACKOFF_MS, this.options.retryBaseMs * 2 ** (attempts - 1));
    await this.meta.rescheduleWebhook(delivery, { ...delivery, attempts, dueAt: this.now() + backoff, lastError: error });
    this.logger.warn({ url, id: delivery.id, attempts, error, retryInMs: backoff }, 'webhook delivery failed; will retry');
  }

  private async payload(event: RegistryEvent, eventId: string): Promise<unknown> {
    const { repo } = event;
    const record: RepoRecord | null = event.type === 'repo_delete' ? event.record ?? null : await this.meta.getRepo(repo);
    const at = Math.floor(event.at.getTime() / 1000);
    const base = this.publicUrl.replace(/\/$/, '');
    return {
      event: event.type,
      callback_url: `${base}/_webhooks/callback/${eventId}`,
      push_data: {
        pushed_at: at,
        pusher: event.actor ?? '',
        tag: event.type === 'repo_delete' ? null : event.tag,
        images: event.type === 'push' ? [event.imageId ?? event.manifest].filter((x) => x) : [],
        ...(event.type === 'push' && event.manifest ? { digest: event.manifest } : {}),
      },
      repository: {
        repo_name: repo.full,
        namespace: repo.namespace,
        name: repo.repository,
        owner: repo.namespace,
        description: record?.description ?? '',
        is_private: record?.access === 'private',
        is_official: repo.namespace === 'library',
        is_trusted: false,
        star_count: 0,
        comment_count: 0,
        status: event.type === 'repo_delete' ? 'Deleted' : 'Active',
        date_created: record ? Math.floor(Date.parse(record.createdAt) / 1000) : null,
        repo_url: `${base}/v1/repositories/${repo.full}/`,
      },
    };
  }
}

/** The URL without credentials, and those credentials as a Basic authorization. */
function splitCredentials(raw: string): { target: string; authorization: string | null } {
  const u = new URL(raw);
  if (!u.username && !u.password) return { target: raw, authorization: null };
  const user = decodeURIComponent(u.username);
  const password = decodeURIComponent(u.password);
  u.username = '';
  u.password = '';
  return { target: u.toString(), authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}

/** The URL as it may be logged: credentials and query values masked. */
export function redactUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return '[invalid url]';
  }
  const userinfo = u.username || u.password ? '***@' : '';
  const query = [...u.searchParams.keys()].map((k) => `${encodeURIComponent(k)}=***`).join('&');
  return `${u.protocol}//${userinfo}${u.host}${u.pathname}${query ? `?${query}` : ''}`;
}
