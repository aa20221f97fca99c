/**
 * The one configuration schema: every key, its type, its default and its documentation.
 * Keys are flat snake_case; each can be set in the YAML file or as REGISTRY_<KEY>.
 *
 * valibot, not zod: it validates the same way at a tenth of the memory (zod alone added
 * ~10 MiB of RSS to a server whose budget is 80 MiB).
 */
import * as v from 'valibot';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

type Schema = v.GenericSchema<unknown, unknown>;

/** One key: its validation, its default, what it means. */
function key<const S extends Schema>(schema: S, fallback: v.InferOutput<S>, description: string) {
  return { schema: v.optional(schema, fallback as never) as v.OptionalSchema<S, never>, fallback, description };
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max));
const HOSTS = /^$|^[A-Za-z0-9.:[\]-]+(\s*,\s*[A-Za-z0-9.:[\]-]+)*$/;

const KEYS = {
  host: key(v.pipe(v.string(), v.minLength(1)), '127.0.0.1', 'Address to listen on (0.0.0.0 for all interfaces).'),
  port: key(int(0, 65535), 5000, 'TCP port to listen on (0 picks a free port).'),
  tls_certificate: key(v.string(), '', 'PEM file of the server certificate (and its chain): HTTPS on `port` instead of HTTP. Needs tls_key.'),
  tls_key: key(v.string(), '', 'PEM file of the private key of tls_certificate.'),
  storage_root: key(v.pipe(v.string(), v.minLength(1)), './storage', 'Directory holding db/ (LevelDB), blobs/ and tmp/; one registry process per root.'),
  flavor: key(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]{1,64}$/)), 'local', 'Name sent in X-Docker-Registry-Config.'),
  log_level: key(v.picklist(LOG_LEVELS), 'info', 'Minimum level of the JSON log on stdout.'),
  standalone: key(v.boolean(), false, 'Run without authorization: anyone may read and write (trusted networks and tests only).'),
  signup_enabled: key(v.boolean(), true, 'Allow self sign-up through POST /v1/users/ (the docker login flow); false: accounts come from an admin.'),
  bcrypt_cost: key(int(4, 15), 10, 'bcrypt cost factor for new password hashes.'),
  token_ttl_seconds: key(int(10), 3600, 'Lifetime of the tokens the Index hands out (X-Docker-Token).'),
  endpoints: key(v.pipe(v.string(), v.regex(HOSTS)), '', 'X-Docker-Endpoints sent to clients (host:port, comma-separated); empty: the Host the client used.'),
  admin_username: key(v.string(), '', 'First admin account, created at start if it does not exist (empty: none).'),
  admin_password: key(v.string(), '', 'Password of admin_username (at least 5 characters).'),
  admin_email: key(v.string(), '', 'E-mail of admin_username (default: <name>@localhost).'),
  metrics_token: key(v.string(), '', 'If set, GET /metrics needs Authorization: Bearer <metrics_token>; empty: open.'),
  gc_grace_seconds: key(int(0), 3600, 'Garbage collection keeps unreferenced images younger than this (a push may not have tagged them yet).'),
  upload_expiry_seconds: key(int(0), 24 * 3600, 'Garbage collection reclaims Registry API v2 upload sessions that received nothing for this long.'),
  webhooks: key(
    v.array(v.pipe(v.string(), v.url(), v.regex(/^https?:\/\//i, 'must be an http:// or https:// URL'))),
    [] as string[],
    'URLs that receive a JSON POST on push, tag delete and repository delete (env: a JSON list).',
  ),
  webhook_max_attempts: key(int(1), 10, 'Delivery attempts per notification before it is dropped.'),
  webhook_retry_base_ms: key(int(10), 1000, 'First retry delay; doubles on every failed attempt (at most one hour).'),
  webhook_timeout_ms: key(int(100), 5000, 'Timeout of one delivery attempt.'),
  webhook_lease_ms: key(
    int(1000),
    60_000,
    'How long a node holds the notifications it took from the queue to deliver; if it dies meanwhile, any node delivers them once this has passed (at least twice webhook_timeout_ms is used).',
  ),
  max_json_bytes: key(int(1024), 1024 * 1024, 'Largest JSON request body accepted (image JSON, tags, image lists); larger is 413.'),
  max_manifest_bytes: key(int(1024), 4 * 1024 * 1024, 'Largest Registry API v2 manifest accepted; larger is 413 (the spec asks for at least 4 MB).'),
  token_service: key(
    v.pipe(v.string(), v.regex(/^[A-Za-z0-9._:-]{1,128}$/)),
    'registry',
    'The service name of Registry API v2 bearer tokens: sent in the WWW-Authenticate challenge, checked in every token.',
  ),
  upload_idle_timeout_seconds: key(
    int(1),
    60,
    'A request body (a layer upload, a JSON body) that sends no byte for this long is aborted: a layer upload gets 408, its temp file is removed and the image stays pending.',
  ),
  download_stall_timeout_seconds: key(
    int(1),
    60,
    'A layer download whose client takes no byte for this long is cut off (its connection is closed).',
  ),
  layer_sendfile: key(
    v.boolean(),
    true,
    'Send layers with sendfile(2), from the page cache straight to the socket (Linux, with the native addon that npm install builds; without it layers are streamed through Node buffers whatever this says). false: always stream.',
  ),
  metadata_store: key(
    v.picklist(['level', 'postgres']),
    'level',
    'Where metadata lives: level (LevelDB in storage_root/db, one process) or postgres (postgres_url; any number of nodes share it).',
  ),
  postgres_url: key(
    v.pipe(v.string(), v.regex(/^$|^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')),
    '',
    'PostgreSQL connection URL for metadata_store: postgres, e.g. postgres://registry:secret@db:5432/registry (libpq URL parameters such as sslmode work).',
  ),
  blob_store: key(
    v.picklist(['fs', 's3']),
    'fs',
    'Where layer bytes live: fs (storage_root/blobs) or s3 (s3_bucket on any S3-compatible object store; any number of nodes share it).',
  ),
  s3_endpoint: key(
    v.pipe(v.string(), v.regex(/^$|^https?:\/\//i, 'must be an http:// or https:// URL')),
    '',
    'S3 endpoint URL (Ceph RADOS Gateway, MinIO, …); empty: AWS S3 of s3_region.',
  ),
  s3_region: key(v.pipe(v.string(), v.minLength(1)), 'us-east-1', 'S3 region (signs every request; most S3-compatible servers accept us-east-1).'),
  s3_bucket: key(v.string(), '', 'S3 bucket of the blobs (blob_store: s3); created at start if missing.'),
  s3_access_key_id: key(v.string(), '', 'S3 access key; empty: the AWS SDK default chain (AWS_ACCESS_KEY_ID, instance or pod role, …).'),
  s3_secret_access_key: key(v.string(), '', 'S3 secret key belonging to s3_access_key_id.'),
  s3_force_path_style: key(v.boolean(), false, 'Path-style S3 URLs (http://host/bucket/key) instead of bucket subdomains; most S3-compatible servers need true.'),
  s3_redirect: key(
    v.boolean(),
    false,
    'Answer layer GETs with a 307 to a presigned S3 URL, so the bytes go from the object store straight to the client (which must reach s3_endpoint).',
  ),
  token_secret: key(
    v.string(),
    '',
    'Secret that signs Index tokens and Hub JWTs (at least 32 characters); every node of one registry must share it. Empty: a random one kept in storage_root/secret.',
  ),
  login_max_failures: key(
    int(1),
    10,
    'Wrong passwords per account within login_window_seconds before further logins of that account are refused (429 + Retry-After).',
  ),
  login_max_failures_per_address: key(
    int(1),
    100,
    'Wrong passwords from one client address within login_window_seconds before further logins from it are refused (429 + Retry-After).',
  ),
  ui_enabled: key(v.boolean(), true, 'Serve the web UI (browse, search, manage) at / and /-/… on the registry port; false: those paths answer 404.'),
  ui_session_ttl_seconds: key(int(60), 43200, 'Lifetime of a web UI session (the signed session cookie); a logout ends it earlier.'),
  login_window_seconds: key(
    int(1),
    300,
    'Sliding window of the login throttle: a refused account or address may log in again once its oldest counted failure is this old.',
  ),
  oauth_code_ttl_seconds: key(int(1, 600), 60, 'Lifetime of an OAuth authorization code (single use; RFC 6749 advises at most 10 minutes).'),
  oauth_access_token_ttl_seconds: key(int(1), 3600, 'Lifetime of an OAuth access token.'),
  oauth_refresh_token_ttl_seconds: key(int(1), 30 * 24 * 3600, 'Lifetime of an OAuth refresh token (each refresh gives a new one).'),
};

type Keys = typeof KEYS;
const objectSchema = v.object(
  Object.fromEntries(Object.entries(KEYS).map(([k, def]) => [k, def.schema])) as { [K in keyof Keys]: Keys[K]['schema'] },
);

export type Config = Readonly<v.InferOutput<typeof objectSchema>>;

/** Every configuration key. */
export const CONFIG_KEYS: ReadonlySet<string> = new Set(Object.keys(KEYS));

/** The keys with their descriptions and defaults, for docs, tests and `config print`. */
export function describeConfig(): Array<{ key: string; description: string; default: unknown }> {
  return Object.entries(KEYS).map(([k, def]) => ({ key: k, description: def.description, default: structuredClone(def.fallback) }));
}

/**
 * Validates merged raw settings: the config, or every problem found (`key: message`).
 * Unknown keys and cross-key rules are reported together with type and range problems.
 */
export function validateConfig(raw: Record<string, unknown>): { config: Config } | { problems: string[] } {
  const problems: string[] = [];
  for (const k of Object.keys(raw)) if (!CONFIG_KEYS.has(k)) problems.push(`${k}: unknown setting`);
  const result = v.safeParse(objectSchema, raw, { abortPipeEarly: true });
  if (!result.success) {
    for (const issue of result.issues) {
      const where = issue.path?.map((p) => String(p.key)).join('.') || '(top level)';
      problems.push(`${where}: ${issue.message}`);
    }
  }
  const username = raw.admin_username;
  const password = raw.admin_password;
  if (username && !(typeof password === 'string' && password.length >= 5)) {
    problems.push('admin_password: required (at least 5 characters) when admin_username is set');
  }
  if (Boolean(raw.tls_certificate) !== Boolean(raw.tls_key)) {
    problems.push('tls_certificate, tls_key: set both (HTTPS) or neither (HTTP)');
  }
  if (raw.metadata_store === 'postgres' && !raw.postgres_url) problems.push('postgres_url: required when metadata_store is postgres');
  if (raw.blob_store === 's3' && !raw.s3_bucket) problems.push('s3_bucket: required when blob_store is s3');
  if (Boolean(raw.s3_access_key_id) !== Boolean(raw.s3_secret_access_key)) {
    problems.push('s3_secret_access_key: s3_access_key_id and s3_secret_access_key are set together (or both left empty)');
  }
  if (raw.s3_redirect === true && raw.blob_store !== 's3') problems.push('s3_redirect: needs blob_store: s3');
  if (typeof raw.token_secret === 'string' && raw.token_secret !== '' && raw.token_secret.length < 32) {
    problems.push('token_secret: at least 32 characters (or empty: a random secret kept in storage_root)');
  }
  if (problems.length > 0 || !result.success) return { problems };
  return { config: Object.freeze(result.output) };
}
