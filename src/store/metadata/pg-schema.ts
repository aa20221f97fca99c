/**
 * The one file that owns the PostgreSQL schema of PostgresMetadataStore (as keys.ts owns the
 * LevelDB keys): its tables, its migrations and the advisory-lock keys.
 *
 *   table              key                 holds
 *   ─────────────────  ──────────────────  ────────────────────────────────────────────────
 *   schema_migrations  version             one row per applied migration (name, when)
 *   images             id                  ImageRecord (json), the image JSON bytes exactly
 *                                          as uploaded (bytea), the ancestry (json)
 *   repos              name (ns/repo)      RepoRecord (json); namespace for Hub listings
 *   tags               repo, tag           TagRecord (json)
 *   repo_images        repo, image_id      the Index image list: one row per image, with the
 *                                          checksum it was listed with (null: none); the
 *                                          image_id index answers "which repositories hold
 *                                          this image" (LevelDB's imgrepo! keys)
 *   users              name                UserRecord (json)
 *   user_emails        email               the user owning that e-mail
 *   webhooks           due_at, id          WebhookDelivery (json), in the order it is due
 *                                          (due_at: whole ms, as LevelDB's hook! keys)
 *   repo_pulls         repo                pull count and last pull (Hub double)
 *   tag_stats          repo, tag           last pull and last pusher of a tag (Hub double)
 *   oauth_clients      id                  OAuthClientRecord (json)
 *   oauth_codes        hash                OAuthCodeRecord (json); expires_at for pruning
 *   oauth_grants       user, id            OAuthGrantRecord (json)
 *   oauth_tokens       hash                OAuthTokenRecord (json); grant_id: the tokens a
 *                                          revocation deletes; expires_at for pruning
 *   manifests          digest              a Registry API v2 manifest's bytes (bytea), exactly
 *                                          as pushed, stored once whatever holds it
 *   manifest_links     repo, digest        ManifestLink (json): the repository holds the
 *                                          manifest; subject indexed for the referrers API
 *   blob_links         repo, digest        BlobLink (json): the repository holds the blob
 *   uploads            id                  UploadRecord (json): a v2 upload session
 *   layer_facts        digest              LayerFacts (json): compression and diff_id
 *   image_manifests    image_id, flavor    the manifest digest that shows a v1 image over v2
 *   login_failures     key, at             one row per failed login of an account (`user:<name>`)
 *                                          or a client address (`addr:<ip>`), at (ms): the
 *                                          login throttle every node counts in
 *   ended_sessions     id                  web UI sessions a logout ended, until expires_at
 *                                          (unix s), when the cookie would have expired anyway
 *
 * Names and tags are validated before they reach a query (domain/names.ts) and always go in
 * as parameters. Text keys sort with COLLATE "C" (byte order), so every listing comes in the
 * order LevelDB gives. Records are `json`, not `jsonb`: `json` keeps any string JSON.stringify
 * can write (jsonb refuses \u0000), and the store only ever reads them whole.
 *
 * Migrations run at open(), each in the one transaction that holds the migration advisory
 * lock, so nodes starting at once apply each migration exactly once: the first takes the
 * lock and migrates, the others wait, then find nothing left to do. A database whose schema
 * is newer than this code is refused. Migrations are append-only: never edit one that shipped.
 */

/** Advisory locks of the registry: pg_advisory_*(REGISTRY_LOCK_SPACE, key). */
export const REGISTRY_LOCK_SPACE = 0x52_47_53_54; // 'RGST'
/** Held (per transaction) while migrations run. Locks (store/locks/postgres-locks.ts) use the
 * single-bigint advisory lock space, which never meets this two-int4 one. */
export const MIGRATION_LOCK = 1;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'v1 metadata: images, repositories, tags, image lists, users, webhooks, Hub statistics',
    sql: `
      CREATE TABLE images (
        id text COLLATE "C" PRIMARY KEY,
        record json NOT NULL,
        json bytea NOT NULL,
        ancestry json NOT NULL
      );
      CREATE TABLE repos (
        name text COLLATE "C" PRIMARY KEY,
        namespace text COLLATE "C" NOT NULL,
        record json NOT NULL
      );
      CREATE INDEX repos_namespace ON repos (namespace, name);
      CREATE TABLE tags (
        repo text COLLATE "C" NOT NULL,
        tag text COLLATE "C" NOT NULL,
        record json NOT NULL,
        PRIMARY KEY (repo, tag)
      );
      CREATE TABLE repo_images (
        repo text COLLATE "C" NOT NULL,
        image_id text COLLATE "C" NOT NULL,
        checksum text,
        PRIMARY KEY (repo, image_id)
      );
      CREATE INDEX repo_images_image ON repo_images (image_id);
      CREATE TABLE users (
        name text COLLATE "C" PRIMARY KEY,
        record json NOT NULL
      );
      CREATE TABLE user_emails (
        email text COLLATE "C" PRIMARY KEY,
        name text NOT NULL
      );
      CREATE TABLE webhooks (
        due_at bigint NOT NULL,
        id text COLLATE "C" NOT NULL,
        record json NOT NULL,
        PRIMARY KEY (due_at, id)
      );
      CREATE TABLE repo_pulls (
        repo text COLLATE "C" PRIMARY KEY,
        count bigint NOT NULL,
        last_pulled_at text
      );
      CREATE TABLE tag_stats (
        repo text COLLATE "C" NOT NULL,
        tag text COLLATE "C" NOT NULL,
        last_pulled_at text,
        pusher text,
        PRIMARY KEY (repo, tag)
      );
    `,
  },
  {
    version: 2,
    name: 'OAuth 2: clients, codes, grants, tokens (hashed)',
    sql: `
      CREATE TABLE oauth_clients (
        id text COLLATE "C" PRIMARY KEY,
        record json NOT NULL
      );
      CREATE TABLE oauth_codes (
        hash text COLLATE "C" PRIMARY KEY,
        expires_at text COLLATE "C" NOT NULL,
        record json NOT NULL
      );
      CREATE TABLE oauth_grants (
        "user" text COLLATE "C" NOT NULL,
        id text COLLATE "C" NOT NULL,
        record json NOT NULL,
        PRIMARY KEY ("user", id)
      );
      CREATE UNIQUE INDEX oauth_grants_id ON oauth_grants (id);
      CREATE TABLE oauth_tokens (
        hash text COLLATE "C" PRIMARY KEY,
        grant_id text COLLATE "C" NOT NULL,
        expires_at text COLLATE "C" NOT NULL,
        record json NOT NULL
      );
      CREATE INDEX oauth_tokens_grant ON oauth_tokens (grant_id);
    `,
  },
  {
    version: 3,
    name: 'Registry API v2: manifests, manifest and blob links, referrers, uploads, layer facts, manifests of v1 images',
    sql: `
      CREATE TABLE manifests (
        digest text COLLATE "C" PRIMARY KEY,
        bytes bytea NOT NULL
      );
      CREATE TABLE manifest_links (
        repo text COLLATE "C" NOT NULL,
        digest text COLLATE "C" NOT NULL,
        subject text COLLATE "C",
        record json NOT NULL,
        PRIMARY KEY (repo, digest)
      );
      CREATE INDEX manifest_links_subject ON manifest_links (repo, subject, digest) WHERE subject IS NOT NULL;
      CREATE TABLE blob_links (
        repo text COLLATE "C" NOT NULL,
        digest text COLLATE "C" NOT NULL,
        record json NOT NULL,
        PRIMARY KEY (repo, digest)
      );
      CREATE TABLE uploads (
        id text COLLATE "C" PRIMARY KEY,
        record json NOT NULL
      );
      CREATE TABLE layer_facts (
        digest text COLLATE "C" PRIMARY KEY,
        record json NOT NULL
      );
      CREATE TABLE image_manifests (
        image_id text COLLATE "C" NOT NULL,
        flavor text COLLATE "C" NOT NULL,
        digest text COLLATE "C" NOT NULL,
        PRIMARY KEY (image_id, flavor)
      );
    `,
  },
  {
    version: 4,
    name: 'State every node shares: login failures (the login throttle), web UI sessions ended by a logout',
    sql: `
      CREATE TABLE login_failures (
        key text COLLATE "C" NOT NULL,
        at bigint NOT NULL
      );
      CREATE INDEX login_failures_key ON login_failures (key, at);
      CREATE INDEX login_failures_at ON login_failures (at);
      CREATE TABLE ended_sessions (
        id text COLLATE "C" PRIMARY KEY,
        expires_at bigint NOT NULL
      );
      CREATE INDEX ended_sessions_expiry ON ended_sessions (expires_at);
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

/** The webhooks.due_at of a delivery (whole ms, never negative, as LevelDB's keys). */
export function webhookDue(dueAt: number): number {
  return Math.max(0, Math.floor(dueAt));
}

/** The subset of a pg client migrate() needs. */
interface Queryable {
  query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
}

/**
 * Brings the database to SCHEMA_VERSION on `client` (a dedicated connection). Returns the
 * versions it applied (none when another node had already done it).
 */
export async function migrate(client: Queryable): Promise<number[]> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [REGISTRY_LOCK_SPACE, MIGRATION_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await client.query<{ version: number | null }>('SELECT max(version) AS version FROM schema_migrations');
    const current = rows[0]?.version ?? 0;
    if (current > SCHEMA_VERSION) {
      throw new Error(`metadata schema version ${current} is not supported (expected ${SCHEMA_VERSION} at most): this registry is older than the database`);
    }
    const applied: number[] = [];
    for (const migration of MIGRATIONS) {
      if (migration.version <= current) continue;
      await client.query(migration.sql);
      await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
      applied.push(migration.version);
    }
    await client.query('COMMIT');
    return applied;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}
