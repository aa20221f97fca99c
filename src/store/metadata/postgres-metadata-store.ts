/**
 * MetadataStore on PostgreSQL (`pg`, node-postgres), for registries whose nodes share one
 * database. Schema and migrations: pg-schema.ts.
 *
 * Nothing is cached here: another node may write at any time, so every read asks the
 * database (list caches are for single-node stores). Writes that belong together run in one
 * transaction; read-modify-write sequences are single upserts (`ON CONFLICT … DO UPDATE`), so
 * concurrent requests on any nodes never lose an entry, a checksum or a pull. Rows touched by
 * one transaction are locked in a fixed order (repository, tag, image list sorted by id);
 * a deadlock or serialization failure is retried.
 */
import pg from 'pg';
import { parseStoredName, type ImageId, type RepoName, type Tag } from '../../domain/names.js';
import type {
  BlobLink,
  LayerFacts,
  ManifestLink,
  UploadRecord,
  ImageRecord,
  OAuthClientRecord,
  OAuthCodeRecord,
  OAuthGrantRecord,
  OAuthTokenRecord,
  RepoImageEntry,
  RepoRecord,
  TagRecord,
  UserRecord,
  WebhookDelivery,
} from '../../domain/records.js';
import type { MetadataStore } from './metadata-store.js';
import type { EndedSessionStore, LoginFailureStore, ManifestFlavor, RepoPullStats, TagStats } from './ports.js';
import { asUnavailable, isUnavailable, openPool, withClient } from '../pg-pool.js';
import { migrate, webhookDue } from './pg-schema.js';

type Client = pg.PoolClient;
type TagList = ReadonlyArray<readonly [Tag, TagRecord]>;

/** Rows fetched per round trip by the list*() iterators. */
const PAGE = 500;
/** SQLSTATEs worth another attempt of the whole transaction. */
const RETRYABLE = new Set(['40001', '40P01']);
const ATTEMPTS = 5;

export interface PostgresMetadataStoreOptions {
  /** Connections in the pool. */
  maxConnections?: number;
  /** Called when an idle pooled connection fails (the pool replaces it). */
  onIdleError?: (err: Error) => void;
}

export class PostgresMetadataStore implements MetadataStore, LoginFailureStore, EndedSessionStore {
  private pool: pg.Pool | null = null;

  constructor(
    private readonly url: string,
    private readonly options: PostgresMetadataStoreOptions = {},
  ) {}

  async open(): Promise<void> {
    this.pool = await openPool(this.url, this.options.maxConnections ?? 10, this.options.onIdleError, (pool) =>
      withClient(pool, async (client) => {
        await migrate(client);
      }),
    );
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    await pool?.end();
  }

  async ping(): Promise<void> {
    await this.query('SELECT 1');
  }

  private get db(): pg.Pool {
    if (!this.pool) throw new Error('the PostgreSQL metadata store is not open');
    return this.pool;
  }

  /**
   * One statement on any pooled connection. A read that meets a connection the server cut
   * (it restarted since the connection was pooled) is tried once more on a new one; a
   * database that cannot be reached is UNAVAILABLE (503), and the pool reconnects by itself.
   */
  private async query<R extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<R[]> {
    const reads = /^\s*SELECT\b/i.test(sql);
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.db.query<R>(sql, params)).rows;
      } catch (err) {
        if (!(reads && attempt === 1 && isUnavailable(err))) throw asUnavailable(err);
      }
    }
  }

  /** Runs `fn` in one transaction on one connection; retried on deadlock/serialization failure. */
  private async tx<T>(fn: (client: Client) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await withClient(this.db, async (client) => {
          try {
            await client.query('BEGIN');
            const result = await fn(client);
            await client.query('COMMIT');
            return result;
          } catch (err) {
            await client.query('ROLLBACK').catch(() => {});
            throw err;
          }
        });
      } catch (err) {
        if (attempt >= ATTEMPTS || !RETRYABLE.has((err as { code?: string }).code ?? '')) throw asUnavailable(err);
      }
    }
  }

  /** Rows of `sql` (which takes the last key as its last parameter, `$n`) page by page, in key order. */
  private async *scan<R extends pg.QueryResultRow, T>(sql: (after: string) => string, params: unknown[], keyOf: (row: R) => string, map: (row: R) => T): AsyncIterable<T> {
    let after: string | null = null;
    for (;;) {
      const rows: R[] = await this.query<R>(sql(after === null ? '' : `$${params.length + 1}`), after === null ? params : [...params, after]);
      for (const row of rows) yield map(row);
      if (rows.length < PAGE) return;
      after = keyOf(rows[rows.length - 1]);
    }
  }

  // ── images ─────────────────────────────────────────────────────────────────────────

  async getImage(id: ImageId): Promise<ImageRecord | null> {
    const rows = await this.query<{ record: ImageRecord }>('SELECT record FROM images WHERE id = $1', [id]);
    return rows[0]?.record ?? null;
  }

  async getImageJson(id: ImageId): Promise<Buffer | null> {
    const rows = await this.query<{ json: Buffer }>('SELECT json FROM images WHERE id = $1', [id]);
    return rows[0]?.json ?? null;
  }

  async getAncestry(id: ImageId): Promise<ImageId[] | null> {
    const rows = await this.query<{ ancestry: ImageId[] }>('SELECT ancestry FROM images WHERE id = $1', [id]);
    return rows[0]?.ancestry ?? null;
  }

  async putImage(record: ImageRecord, json: Buffer, ancestry: ImageId[]): Promise<void> {
    await this.query(
      `INSERT INTO images (id, record, json, ancestry) VALUES ($1, $2, $3, $4)
       ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record, json = EXCLUDED.json, ancestry = EXCLUDED.ancestry`,
      [record.id, JSON.stringify(record), json, JSON.stringify(ancestry)],
    );
  }

  async updateImage(record: ImageRecord): Promise<void> {
    await this.query('UPDATE images SET record = $2 WHERE id = $1', [record.id, JSON.stringify(record)]);
  }

  listImages(): AsyncIterable<ImageRecord> {
    return this.scan<{ id: string; record: ImageRecord }, ImageRecord>(
      (after) => `SELECT id, record FROM images ${after ? `WHERE id > ${after}` : ''} ORDER BY id LIMIT ${PAGE}`,
      [],
      (row) => row.id,
      (row) => row.record,
    );
  }

  async deleteImage(id: ImageId): Promise<void> {
    await this.query('DELETE FROM images WHERE id = $1', [id]);
  }

  // ── repositories ───────────────────────────────────────────────────────────────────

  async getRepo(name: RepoName): Promise<RepoRecord | null> {
    const rows = await this.query<{ record: RepoRecord }>('SELECT record FROM repos WHERE name = $1', [name.full]);
    return rows[0] ? Object.freeze(rows[0].record) : null;
  }

  async putRepo(name: RepoName, record: RepoRecord): Promise<void> {
    await this.query(UPSERT_REPO, repoParams(name, record));
  }

  deleteRepo(name: RepoName): Promise<boolean> {
    return this.tx(async (client) => {
      const gone = await client.query('DELETE FROM repos WHERE name = $1', [name.full]);
      if (gone.rowCount === 0) return false;
      await client.query('DELETE FROM tags WHERE repo = $1', [name.full]);
      await client.query('DELETE FROM repo_images WHERE repo = $1', [name.full]);
      await client.query('DELETE FROM manifest_links WHERE repo = $1', [name.full]);
      await client.query('DELETE FROM blob_links WHERE repo = $1', [name.full]);
      return true;
    });
  }

  listRepos(): AsyncIterable<RepoRecord> {
    return this.scan<{ name: string; record: RepoRecord }, RepoRecord>(
      (after) => `SELECT name, record FROM repos ${after ? `WHERE name > ${after}` : ''} ORDER BY name LIMIT ${PAGE}`,
      [],
      (row) => row.name,
      (row) => Object.freeze(row.record),
    );
  }

  /** A new frozen array on every call: another node may have written since the last one. */
  async allRepos(): Promise<readonly RepoRecord[]> {
    const rows = await this.query<{ record: RepoRecord }>('SELECT record FROM repos ORDER BY name');
    return Object.freeze(rows.map((row) => Object.freeze(row.record)));
  }

  // ── tags ───────────────────────────────────────────────────────────────────────────

  async getTag(name: RepoName, tag: Tag): Promise<TagRecord | null> {
    const rows = await this.query<{ record: TagRecord }>('SELECT record FROM tags WHERE repo = $1 AND tag = $2', [name.full, tag]);
    return rows[0]?.record ?? null;
  }

  async listTags(name: RepoName): Promise<TagList> {
    const rows = await this.query<{ tag: Tag; record: TagRecord }>('SELECT tag, record FROM tags WHERE repo = $1 ORDER BY tag', [name.full]);
    return Object.freeze(
      rows.map((row) => {
        Object.freeze(row.record.info);
        return Object.freeze([row.tag, Object.freeze(row.record)] as const);
      }),
    );
  }

  putTag(name: RepoName, tag: Tag, record: TagRecord, repo: RepoRecord, link: readonly ImageId[] = []): Promise<void> {
    return this.tx(async (client) => {
      await upsertRepo(client, name, repo);
      await client.query(
        'INSERT INTO tags (repo, tag, record) VALUES ($1, $2, $3) ON CONFLICT (repo, tag) DO UPDATE SET record = EXCLUDED.record',
        [name.full, tag, JSON.stringify(record)],
      );
      const ids = [...new Set(link)].sort();
      if (ids.length > 0) {
        // An entry that exists keeps its checksum (it may come from the Index image list).
        await client.query(
          `INSERT INTO repo_images (repo, image_id) SELECT $1, id FROM unnest($2::text[]) AS id
           ON CONFLICT (repo, image_id) DO NOTHING`,
          [name.full, ids],
        );
      }
    });
  }

  async deleteTag(name: RepoName, tag: Tag): Promise<boolean> {
    const rows = await this.query('DELETE FROM tags WHERE repo = $1 AND tag = $2 RETURNING tag', [name.full, tag]);
    return rows.length > 0;
  }

  // ── repository image lists ───────────────────────────────────────────────────────────

  async getRepoImages(name: RepoName): Promise<readonly RepoImageEntry[]> {
    const rows = await this.query<{ image_id: ImageId; checksum: string | null }>(
      'SELECT image_id, checksum FROM repo_images WHERE repo = $1 ORDER BY image_id',
      [name.full],
    );
    return Object.freeze(rows.map((row) => Object.freeze(row.checksum === null ? { id: row.image_id } : { id: row.image_id, checksum: row.checksum })));
  }

  async mergeRepoImages(name: RepoName, entries: RepoImageEntry[]): Promise<void> {
    if (entries.length === 0) return;
    // Fold the batch by id first: an id listed twice keeps the last checksum it was given.
    const merged = new Map<ImageId, string | undefined>();
    for (const entry of entries) merged.set(entry.id, entry.checksum || merged.get(entry.id));
    const ids = [...merged.keys()].sort();
    await this.tx(async (client) => {
      await client.query(
        `INSERT INTO repo_images (repo, image_id, checksum)
         SELECT $1, id, checksum FROM unnest($2::text[], $3::text[]) AS given (id, checksum)
         ON CONFLICT (repo, image_id) DO UPDATE SET checksum = COALESCE(EXCLUDED.checksum, repo_images.checksum)`,
        [name.full, ids, ids.map((id) => merged.get(id) ?? null)],
      );
    });
  }

  async unlinkRepoImages(name: RepoName, ids: ImageId[]): Promise<void> {
    if (ids.length === 0) return;
    await this.query('DELETE FROM repo_images WHERE repo = $1 AND image_id = ANY($2::text[])', [name.full, ids]);
  }

  async reposOfImage(id: ImageId): Promise<RepoName[]> {
    const rows = await this.query<{ repo: string }>('SELECT repo FROM repo_images WHERE image_id = $1 ORDER BY repo', [id]);
    return rows.map((row) => parseStoredName(row.repo));
  }

  // ── users ──────────────────────────────────────────────────────────────────────────

  async getUser(name: string): Promise<UserRecord | null> {
    const rows = await this.query<{ record: UserRecord }>('SELECT record FROM users WHERE name = $1', [name]);
    return rows[0]?.record ?? null;
  }

  async getUserNameByEmail(email: string): Promise<string | null> {
    const rows = await this.query<{ name: string }>('SELECT name FROM user_emails WHERE email = $1', [email]);
    return rows[0]?.name ?? null;
  }

  putUser(user: UserRecord, previousEmail?: string): Promise<void> {
    return this.tx(async (client) => {
      await client.query('INSERT INTO users (name, record) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record', [
        user.name,
        JSON.stringify(user),
      ]);
      await client.query('INSERT INTO user_emails (email, name) VALUES ($1, $2) ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name', [
        user.email,
        user.name,
      ]);
      if (previousEmail && previousEmail !== user.email) await client.query('DELETE FROM user_emails WHERE email = $1', [previousEmail]);
    });
  }

  listUsers(): AsyncIterable<UserRecord> {
    return this.scan<{ name: string; record: UserRecord }, UserRecord>(
      (after) => `SELECT name, record FROM users ${after ? `WHERE name > ${after}` : ''} ORDER BY name LIMIT ${PAGE}`,
      [],
      (row) => row.name,
      (row) => row.record,
    );
  }

  // ── webhook queue ──────────────────────────────────────────────────────────────────

  async enqueueWebhooks(deliveries: WebhookDelivery[]): Promise<void> {
    if (deliveries.length === 0) return;
    await this.query(
      `INSERT INTO webhooks (due_at, id, record) SELECT * FROM unnest($1::bigint[], $2::text[], $3::json[])
       ON CONFLICT (due_at, id) DO UPDATE SET record = EXCLUDED.record`,
      [deliveries.map((d) => webhookDue(d.dueAt)), deliveries.map((d) => d.id), deliveries.map((d) => JSON.stringify(d))],
    );
  }

  async dueWebhooks(now: number, limit: number): Promise<WebhookDelivery[]> {
    const rows = await this.query<{ due_at: string; record: WebhookDelivery }>('SELECT due_at, record FROM webhooks WHERE due_at <= $1 ORDER BY due_at, id LIMIT $2', [
      Math.floor(now),
      limit,
    ]);
    return rows.map(queued);
  }

  /**
   * One statement: the due rows are locked with SKIP LOCKED (a claim running at the same
   * time on another node takes other rows, never waits for these) and moved to the lease's
   * end. The row's due_at is the delivery's dueAt from then on (its json keeps the one it
   * was queued with).
   */
  async claimWebhooks(now: number, limit: number, leaseMs: number): Promise<WebhookDelivery[]> {
    const until = webhookDue(now + leaseMs);
    const rows = await this.query<{ was: string; due_at: string; record: WebhookDelivery }>(
      `WITH due AS (
         SELECT due_at, id FROM webhooks WHERE due_at <= $1 ORDER BY due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED
       )
       UPDATE webhooks AS w SET due_at = $3 FROM due WHERE w.due_at = due.due_at AND w.id = due.id
       RETURNING due.due_at AS was, w.due_at, w.record`,
      [Math.floor(now), limit, until],
    );
    return rows.sort((a, b) => Number(a.was) - Number(b.was) || (a.record.id < b.record.id ? -1 : 1)).map(queued);
  }

  async rescheduleWebhook(previous: WebhookDelivery, next: WebhookDelivery): Promise<void> {
    // One statement: the new row only if the old one was still there (a claim on another
    // node may have taken it once its lease ended; that claimer decides now).
    await this.query(
      `WITH gone AS (DELETE FROM webhooks WHERE due_at = $1 AND id = $2 RETURNING id)
       INSERT INTO webhooks (due_at, id, record) SELECT $3::bigint, $4::text, $5::json FROM gone
       ON CONFLICT (due_at, id) DO UPDATE SET record = EXCLUDED.record`,
      [webhookDue(previous.dueAt), previous.id, webhookDue(next.dueAt), next.id, JSON.stringify(next)],
    );
  }

  async removeWebhook(delivery: WebhookDelivery): Promise<void> {
    await this.query('DELETE FROM webhooks WHERE due_at = $1 AND id = $2', [webhookDue(delivery.dueAt), delivery.id]);
  }

  async *listWebhooks(): AsyncIterable<WebhookDelivery> {
    // Keyed on (due_at, id): page with a row comparison.
    let after: [string, string] | null = null;
    for (;;) {
      const rows: Array<{ due_at: string; id: string; record: WebhookDelivery }> = await this.query(
        `SELECT due_at, id, record FROM webhooks ${after ? 'WHERE (due_at, id) > ($1::bigint, $2)' : ''} ORDER BY due_at, id LIMIT ${PAGE}`,
        after ?? [],
      );
      for (const row of rows) yield queued(row);
      if (rows.length < PAGE) return;
      const last = rows[rows.length - 1];
      after = [last.due_at, last.id];
    }
  }

  // ── pull statistics and pushers (the Docker Hub API double) ───────────────────────

  listReposInNamespace(namespace: string): AsyncIterable<RepoRecord> {
    return this.scan<{ name: string; record: RepoRecord }, RepoRecord>(
      (after) => `SELECT name, record FROM repos WHERE namespace = $1 ${after ? `AND name > ${after}` : ''} ORDER BY name LIMIT ${PAGE}`,
      [namespace],
      (row) => row.name,
      (row) => Object.freeze(row.record),
    );
  }

  async getRepoPulls(name: RepoName): Promise<RepoPullStats | null> {
    const rows = await this.query<{ count: string; last_pulled_at: string | null }>('SELECT count, last_pulled_at FROM repo_pulls WHERE repo = $1', [
      name.full,
    ]);
    return rows[0] ? { count: Number(rows[0].count), lastPulledAt: rows[0].last_pulled_at } : null;
  }

  async addRepoPull(name: RepoName, at: string, count = 1): Promise<void> {
    await this.query(
      `INSERT INTO repo_pulls (repo, count, last_pulled_at) VALUES ($1, $3, $2)
       ON CONFLICT (repo) DO UPDATE SET count = repo_pulls.count + EXCLUDED.count, last_pulled_at = EXCLUDED.last_pulled_at`,
      [name.full, at, count],
    );
  }

  async setTagsPulled(name: RepoName, tags: Tag[], at: string): Promise<void> {
    if (tags.length === 0) return;
    await this.query(
      `INSERT INTO tag_stats (repo, tag, last_pulled_at) SELECT $1, tag, $3 FROM unnest($2::text[]) AS tag
       ON CONFLICT (repo, tag) DO UPDATE SET last_pulled_at = EXCLUDED.last_pulled_at`,
      [name.full, [...new Set(tags)].sort(), at],
    );
  }

  async setTagPusher(name: RepoName, tag: Tag, user: string): Promise<void> {
    await this.query(
      'INSERT INTO tag_stats (repo, tag, pusher) VALUES ($1, $2, $3) ON CONFLICT (repo, tag) DO UPDATE SET pusher = EXCLUDED.pusher',
      [name.full, tag, user],
    );
  }

  async getTagStats(name: RepoName, tags: Tag[]): Promise<TagStats[]> {
    if (tags.length === 0) return [];
    const rows = await this.query<{ tag: string; last_pulled_at: string | null; pusher: string | null }>(
      'SELECT tag, last_pulled_at, pusher FROM tag_stats WHERE repo = $1 AND tag = ANY($2::text[])',
      [name.full, tags],
    );
    const byTag = new Map(rows.map((row) => [row.tag, row]));
    return tags.map((tag) => ({ lastPulledAt: byTag.get(tag)?.last_pulled_at ?? null, pusher: byTag.get(tag)?.pusher ?? null }));
  }

  async deleteTagStats(name: RepoName, tag: Tag): Promise<void> {
    await this.query('DELETE FROM tag_stats WHERE repo = $1 AND tag = $2', [name.full, tag]);
  }

  deleteRepoStats(name: RepoName): Promise<void> {
    return this.tx(async (client) => {
      await client.query('DELETE FROM repo_pulls WHERE repo = $1', [name.full]);
      await client.query('DELETE FROM tag_stats WHERE repo = $1', [name.full]);
    });
  }

  // ── OAuth 2 ───────────────────────────────────────────────────────────────────────
  // Check-and-set sequences lock their grant's row (SELECT … FOR UPDATE) in one transaction,
  // so two exchanges of one code or two refreshes with one token have one winner on any node.

  async getOAuthClient(id: string): Promise<OAuthClientRecord | null> {
    const rows = await this.query<{ record: OAuthClientRecord }>('SELECT record FROM oauth_clients WHERE id = $1', [id]);
    return rows[0]?.record ?? null;
  }

  async putOAuthClient(client: OAuthClientRecord): Promise<void> {
    await this.query('INSERT INTO oauth_clients (id, record) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record', [
      client.id,
      JSON.stringify(client),
    ]);
  }

  async deleteOAuthClient(id: string): Promise<boolean> {
    return (await this.query('DELETE FROM oauth_clients WHERE id = $1 RETURNING id', [id])).length > 0;
  }

  listOAuthClients(): AsyncIterable<OAuthClientRecord> {
    return this.scan<{ id: string; record: OAuthClientRecord }, OAuthClientRecord>(
      (after) => `SELECT id, record FROM oauth_clients ${after ? `WHERE id > ${after}` : ''} ORDER BY id LIMIT ${PAGE}`,
      [],
      (row) => row.id,
      (row) => row.record,
    );
  }

  async putOAuthCode(code: OAuthCodeRecord): Promise<void> {
    await this.query(
      'INSERT INTO oauth_codes (hash, expires_at, record) VALUES ($1, $2, $3) ON CONFLICT (hash) DO UPDATE SET expires_at = EXCLUDED.expires_at, record = EXCLUDED.record',
      [code.hash, code.expiresAt, JSON.stringify(code)],
    );
  }

  async getOAuthCode(hash: string): Promise<OAuthCodeRecord | null> {
    const rows = await this.query<{ record: OAuthCodeRecord }>('SELECT record FROM oauth_codes WHERE hash = $1', [hash]);
    return rows[0]?.record ?? null;
  }

  useOAuthCode(hash: string, at: string): Promise<OAuthCodeRecord | null> {
    return this.tx(async (client) => {
      const { rows } = await client.query<{ record: OAuthCodeRecord }>('SELECT record FROM oauth_codes WHERE hash = $1 FOR UPDATE', [hash]);
      const code = rows[0]?.record ?? null;
      if (code && code.usedAt === null) {
        await client.query('UPDATE oauth_codes SET record = $2 WHERE hash = $1', [hash, JSON.stringify({ ...code, usedAt: at })]);
      }
      return code;
    });
  }

  async getOAuthGrant(user: string, id: string): Promise<OAuthGrantRecord | null> {
    const rows = await this.query<{ record: OAuthGrantRecord }>('SELECT record FROM oauth_grants WHERE "user" = $1 AND id = $2', [user, id]);
    return rows[0]?.record ?? null;
  }

  listOAuthGrants(user: string): AsyncIterable<OAuthGrantRecord> {
    return this.scan<{ id: string; record: OAuthGrantRecord }, OAuthGrantRecord>(
      (after) => `SELECT id, record FROM oauth_grants WHERE "user" = $1 ${after ? `AND id > ${after}` : ''} ORDER BY id LIMIT ${PAGE}`,
      [user],
      (row) => row.id,
      (row) => row.record,
    );
  }

  /** Locks the grant's row for the rest of the transaction; its record, or null when there is none. */
  private async lockGrant(client: Client, user: string, id: string): Promise<OAuthGrantRecord | null> {
    const { rows } = await client.query<{ record: OAuthGrantRecord }>('SELECT record FROM oauth_grants WHERE "user" = $1 AND id = $2 FOR UPDATE', [user, id]);
    return rows[0]?.record ?? null;
  }

  issueOAuthTokens(grant: OAuthGrantRecord, tokens: OAuthTokenRecord[]): Promise<boolean> {
    return this.tx(async (client) => {
      // A first issue races a revocation of the same (new) grant: both insert the row, one waits.
      await client.query('INSERT INTO oauth_grants ("user", id, record) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [grant.user, grant.id, JSON.stringify(grant)]);
      const existing = await this.lockGrant(client, grant.user, grant.id);
      if (existing?.revokedAt) return false;
      await client.query('UPDATE oauth_grants SET record = $3 WHERE "user" = $1 AND id = $2', [grant.user, grant.id, JSON.stringify(grant)]);
      if (tokens.length > 0) {
        await client.query(
          `INSERT INTO oauth_tokens (hash, grant_id, expires_at, record) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::json[])
           ON CONFLICT (hash) DO UPDATE SET grant_id = EXCLUDED.grant_id, expires_at = EXCLUDED.expires_at, record = EXCLUDED.record`,
          [tokens.map((t) => t.hash), tokens.map(() => grant.id), tokens.map((t) => t.expiresAt), tokens.map((t) => JSON.stringify(t))],
        );
      }
      return true;
    });
  }

  async getOAuthToken(hash: string): Promise<OAuthTokenRecord | null> {
    const rows = await this.query<{ record: OAuthTokenRecord }>('SELECT record FROM oauth_tokens WHERE hash = $1', [hash]);
    return rows[0]?.record ?? null;
  }

  rotateOAuthToken(hash: string, at: string): Promise<boolean> {
    return this.tx(async (client) => {
      const { rows } = await client.query<{ record: OAuthTokenRecord }>('SELECT record FROM oauth_tokens WHERE hash = $1 FOR UPDATE', [hash]);
      const token = rows[0]?.record;
      if (!token || token.kind !== 'refresh' || token.rotatedAt) return false;
      await client.query('UPDATE oauth_tokens SET record = $2 WHERE hash = $1', [hash, JSON.stringify({ ...token, rotatedAt: at })]);
      return true;
    });
  }

  async deleteOAuthToken(hash: string): Promise<boolean> {
    return (await this.query('DELETE FROM oauth_tokens WHERE hash = $1 RETURNING hash', [hash])).length > 0;
  }

  revokeOAuthGrant(ref: Pick<OAuthGrantRecord, 'id' | 'user' | 'clientId'>, at: string): Promise<boolean> {
    const { id, user } = ref;
    return this.tx(async (client) => {
      const tombstone: OAuthGrantRecord = { id, user, clientId: ref.clientId, scopes: [], createdAt: at, revokedAt: at };
      const inserted = await client.query('INSERT INTO oauth_grants ("user", id, record) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING id', [
        user,
        id,
        JSON.stringify(tombstone),
      ]);
      if (inserted.rowCount === 0) {
        const grant = await this.lockGrant(client, user, id);
        if (!grant || grant.revokedAt) return false;
        await client.query('UPDATE oauth_grants SET record = $3 WHERE "user" = $1 AND id = $2', [user, id, JSON.stringify({ ...grant, revokedAt: at })]);
      }
      await client.query('DELETE FROM oauth_tokens WHERE grant_id = $1', [id]);
      return inserted.rowCount === 0;
    });
  }

  pruneOAuth(before: string): Promise<number> {
    return this.tx(async (client) => {
      const codes = await client.query('DELETE FROM oauth_codes WHERE expires_at < $1', [before]);
      const tokens = await client.query('DELETE FROM oauth_tokens WHERE expires_at < $1', [before]);
      return (codes.rowCount ?? 0) + (tokens.rowCount ?? 0);
    });
  }

  // ── Registry API v2 ────────────────────────────────────────────────────────────────

  async getManifest(digest: string): Promise<Buffer | null> {
    const rows = await this.query<{ bytes: Buffer }>('SELECT bytes FROM manifests WHERE digest = $1', [digest]);
    return rows[0]?.bytes ?? null;
  }

  async getManifestLink(name: RepoName, digest: string): Promise<ManifestLink | null> {
    const rows = await this.query<{ record: ManifestLink }>('SELECT record FROM manifest_links WHERE repo = $1 AND digest = $2', [name.full, digest]);
    return rows[0]?.record ?? null;
  }

  async listManifestLinks(name: RepoName): Promise<Array<[string, ManifestLink]>> {
    const rows = await this.query<{ digest: string; record: ManifestLink }>('SELECT digest, record FROM manifest_links WHERE repo = $1 ORDER BY digest', [name.full]);
    return rows.map((row) => [row.digest, row.record]);
  }

  putManifest(name: RepoName, digest: string, bytes: Buffer, link: ManifestLink): Promise<void> {
    return this.tx(async (client) => {
      // Content-addressed: the same digest is the same bytes; stored ones are not rewritten.
      await client.query('INSERT INTO manifests (digest, bytes) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING', [digest, bytes]);
      await client.query(
        `INSERT INTO manifest_links (repo, digest, subject, record) VALUES ($1, $2, $3, $4)
         ON CONFLICT (repo, digest) DO UPDATE SET subject = EXCLUDED.subject, record = EXCLUDED.record`,
        [name.full, digest, link.subject ?? null, JSON.stringify(link)],
      );
    });
  }

  async unlinkManifest(name: RepoName, digest: string): Promise<boolean> {
    const rows = await this.query('DELETE FROM manifest_links WHERE repo = $1 AND digest = $2 RETURNING digest', [name.full, digest]);
    return rows.length > 0;
  }

  async listReferrers(name: RepoName, subject: string): Promise<Array<[string, ManifestLink]>> {
    const rows = await this.query<{ digest: string; record: ManifestLink }>(
      'SELECT digest, record FROM manifest_links WHERE repo = $1 AND subject = $2 ORDER BY digest',
      [name.full, subject],
    );
    return rows.map((row) => [row.digest, row.record]);
  }

  listManifests(): AsyncIterable<string> {
    return this.scan<{ digest: string }, string>(
      (after) => `SELECT digest FROM manifests ${after ? `WHERE digest > ${after}` : ''} ORDER BY digest LIMIT ${PAGE}`,
      [],
      (row) => row.digest,
      (row) => row.digest,
    );
  }

  async deleteManifest(digest: string): Promise<void> {
    await this.query('DELETE FROM manifests WHERE digest = $1', [digest]);
  }

  async getBlobLink(name: RepoName, digest: string): Promise<BlobLink | null> {
    const rows = await this.query<{ record: BlobLink }>('SELECT record FROM blob_links WHERE repo = $1 AND digest = $2', [name.full, digest]);
    return rows[0]?.record ?? null;
  }

  async linkBlobs(name: RepoName, blobs: ReadonlyArray<readonly [string, BlobLink]>): Promise<void> {
    if (blobs.length === 0) return;
    // One statement; an existing link stays as it is.
    await this.query(
      `INSERT INTO blob_links (repo, digest, record)
       SELECT $1, d, r FROM unnest($2::text[], $3::json[]) AS t(d, r)
       ON CONFLICT (repo, digest) DO NOTHING`,
      [name.full, blobs.map(([digest]) => digest), blobs.map(([, link]) => JSON.stringify(link))],
    );
  }

  async unlinkBlob(name: RepoName, digest: string): Promise<boolean> {
    const rows = await this.query('DELETE FROM blob_links WHERE repo = $1 AND digest = $2 RETURNING digest', [name.full, digest]);
    return rows.length > 0;
  }

  async listBlobLinks(name: RepoName): Promise<Array<[string, BlobLink]>> {
    const rows = await this.query<{ digest: string; record: BlobLink }>('SELECT digest, record FROM blob_links WHERE repo = $1 ORDER BY digest', [name.full]);
    return rows.map((row) => [row.digest, row.record]);
  }

  async getUpload(id: string): Promise<UploadRecord | null> {
    const rows = await this.query<{ record: UploadRecord }>('SELECT record FROM uploads WHERE id = $1', [id]);
    return rows[0]?.record ?? null;
  }

  async putUpload(record: UploadRecord): Promise<void> {
    await this.query('INSERT INTO uploads (id, record) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record', [record.id, JSON.stringify(record)]);
  }

  async deleteUpload(id: string): Promise<void> {
    await this.query('DELETE FROM uploads WHERE id = $1', [id]);
  }

  listUploads(): AsyncIterable<UploadRecord> {
    return this.scan<{ id: string; record: UploadRecord }, UploadRecord>(
      (after) => `SELECT id, record FROM uploads ${after ? `WHERE id > ${after}` : ''} ORDER BY id LIMIT ${PAGE}`,
      [],
      (row) => row.id,
      (row) => row.record,
    );
  }

  async getLayerFacts(digest: string): Promise<LayerFacts | null> {
    const rows = await this.query<{ record: LayerFacts }>('SELECT record FROM layer_facts WHERE digest = $1', [digest]);
    return rows[0]?.record ?? null;
  }

  async putLayerFacts(digest: string, facts: LayerFacts): Promise<void> {
    await this.query('INSERT INTO layer_facts (digest, record) VALUES ($1, $2) ON CONFLICT (digest) DO UPDATE SET record = EXCLUDED.record', [digest, JSON.stringify(facts)]);
  }

  async deleteLayerFacts(digest: string): Promise<void> {
    await this.query('DELETE FROM layer_facts WHERE digest = $1', [digest]);
  }

  async getImageManifest(id: ImageId, flavor: ManifestFlavor): Promise<string | null> {
    const rows = await this.query<{ digest: string }>('SELECT digest FROM image_manifests WHERE image_id = $1 AND flavor = $2', [id, flavor]);
    return rows[0]?.digest ?? null;
  }

  async putImageManifest(id: ImageId, flavor: ManifestFlavor, digest: string): Promise<void> {
    // The first one recorded stays.
    await this.query('INSERT INTO image_manifests (image_id, flavor, digest) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [id, flavor, digest]);
  }

  listImageManifests(): AsyncIterable<{ id: ImageId; flavor: ManifestFlavor; digest: string }> {
    return this.scan<{ image_id: ImageId; flavor: ManifestFlavor; digest: string; k: string }, { id: ImageId; flavor: ManifestFlavor; digest: string }>(
      (after) => `SELECT image_id, flavor, digest, image_id || '!' || flavor AS k FROM image_manifests ${after ? `WHERE image_id || '!' || flavor > ${after}` : ''} ORDER BY k LIMIT ${PAGE}`,
      [],
      (row) => row.k,
      (row) => ({ id: row.image_id, flavor: row.flavor, digest: row.digest }),
    );
  }

  async deleteImageManifest(id: ImageId, flavor: ManifestFlavor): Promise<void> {
    await this.query('DELETE FROM image_manifests WHERE image_id = $1 AND flavor = $2', [id, flavor]);
  }

  // ── login failures (the login throttle of every node) ──────────────────────────────

  async recentFailures(key: string, since: number, limit: number): Promise<number[]> {
    const rows = await this.query<{ at: string }>('SELECT at FROM login_failures WHERE key = $1 AND at > $2 ORDER BY at DESC LIMIT $3', [
      key,
      Math.floor(since),
      limit,
    ]);
    return rows.map((row) => Number(row.at)).reverse();
  }

  async addFailure(key: string, at: number, keep: number): Promise<void> {
    // Inserted, then the key's older rows past its `keep` newest are dropped, in one round
    // trip (the DELETE does not see the row the same statement inserts: at most keep + 1 stay).
    await this.query(
      `WITH added AS (INSERT INTO login_failures (key, at) VALUES ($1, $2))
       DELETE FROM login_failures WHERE key = $1 AND at < (
         SELECT at FROM login_failures WHERE key = $1 ORDER BY at DESC OFFSET $3 LIMIT 1
       )`,
      [key, Math.floor(at), Math.max(0, keep - 1)],
    );
  }

  async clearFailures(key: string): Promise<void> {
    await this.query('DELETE FROM login_failures WHERE key = $1', [key]);
  }

  async pruneFailures(before: number): Promise<number> {
    const rows = await this.query('DELETE FROM login_failures WHERE at <= $1 RETURNING 1', [Math.floor(before)]);
    return rows.length;
  }

  // ── web UI sessions ended by a logout ────────────────────────────────────────────────

  async endSession(id: string, expiresAt: number): Promise<void> {
    await this.query('INSERT INTO ended_sessions (id, expires_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING', [id, Math.floor(expiresAt)]);
  }

  async isSessionEnded(id: string, now: number): Promise<boolean> {
    const rows = await this.query('SELECT 1 FROM ended_sessions WHERE id = $1 AND expires_at > $2', [id, Math.floor(now)]);
    return rows.length > 0;
  }

  async pruneEndedSessions(now: number): Promise<number> {
    const rows = await this.query('DELETE FROM ended_sessions WHERE expires_at <= $1 RETURNING 1', [Math.floor(now)]);
    return rows.length;
  }
}

/** A queued delivery as its row says: due_at (moved by claims) is its dueAt. */
function queued(row: { due_at: string; record: WebhookDelivery }): WebhookDelivery {
  return { ...row.record, dueAt: Number(row.due_at) };
}

const UPSERT_REPO = 'INSERT INTO repos (name, namespace, record) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record';
const repoParams = (name: RepoName, record: RepoRecord) => [name.full, name.namespace, JSON.stringify(record)];

/** Writes a repository record inside a transaction. */
async function upsertRepo(client: Client, name: RepoName, record: RepoRecord): Promise<void> {
  await client.query(UPSERT_REPO, repoParams(name, record));
}
