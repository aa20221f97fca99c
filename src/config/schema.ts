/**
 * The one configuration schema: every key, its type, its default and its documentation.
 * Keys are flat snake_case; each can be set in the YAML file or as REGISTRY_<KEY>.
 */
import { z } from 'zod';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const configSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1').describe('Address to listen on (0.0.0.0 for all interfaces).'),
    port: z.number().int().min(0).max(65535).default(5000).describe('TCP port to listen on (0 picks a free port).'),
    storage_root: z
      .string()
      .min(1)
      .default('./storage')
      .describe('Directory holding db/ (LevelDB), blobs/ and tmp/; one registry process per root.'),
    flavor: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/)
      .default('local')
      .describe('Name sent in X-Docker-Registry-Config.'),
    log_level: z.enum(LOG_LEVELS).default('info').describe('Minimum level of the JSON log on stdout.'),
    standalone: z
      .boolean()
      .default(false)
      .describe('Run without authorization: anyone may read and write (trusted networks and tests only).'),
    signup_enabled: z
      .boolean()
      .default(true)
      .describe('Allow self sign-up through POST /v1/users/ (the docker login flow); false: accounts come from an admin.'),
    bcrypt_cost: z.number().int().min(4).max(15).default(10).describe('bcrypt cost factor for new password hashes.'),
    token_ttl_seconds: z
      .number()
      .int()
      .min(10)
      .default(3600)
      .describe('Lifetime of the tokens the Index hands out (X-Docker-Token).'),
    endpoints: z
      .string()
      .regex(/^$|^[A-Za-z0-9.:\[\]-]+(\s*,\s*[A-Za-z0-9.:\[\]-]+)*$/)
      .default('')
      .describe('X-Docker-Endpoints sent to clients (host:port, comma-separated); empty: the Host the client used.'),
    admin_username: z
      .string()
      .default('')
      .describe('First admin account, created at start if it does not exist (empty: none).'),
    admin_password: z.string().default('').describe('Password of admin_username (at least 5 characters).'),
    admin_email: z.string().default('').describe('E-mail of admin_username (default: <name>@localhost).'),
    metrics_token: z
      .string()
      .default('')
      .describe('If set, GET /metrics needs Authorization: Bearer <metrics_token>; empty: open.'),
    gc_grace_seconds: z
      .number()
      .int()
      .min(0)
      .default(3600)
      .describe('Garbage collection keeps unreferenced images younger than this (a push may not have tagged them yet).'),
    webhooks: z
      .array(z.url({ protocol: /^https?$/ }))
      .default([])
      .describe('URLs that receive a JSON POST on push, tag delete and repository delete (env: a JSON list).'),
    webhook_max_attempts: z.number().int().min(1).default(10).describe('Delivery attempts per notification before it is dropped.'),
    webhook_retry_base_ms: z
      .number()
      .int()
      .min(10)
      .default(1000)
      .describe('First retry delay; doubles on every failed attempt (at most one hour).'),
    webhook_timeout_ms: z.number().int().min(100).default(5000).describe('Timeout of one delivery attempt.'),
    max_json_bytes: z
      .number()
      .int()
      .min(1024)
      .default(1024 * 1024)
      .describe('Largest JSON request body accepted (image JSON, tags, image lists); larger is 413.'),
    upload_idle_timeout_seconds: z
      .number()
      .int()
      .min(1)
      .default(60)
      .describe(
        'A request body (a layer upload, a JSON body) that sends no byte for this long is aborted: a layer upload gets 408, its temp file is removed and the image stays pending.',
      ),
    login_max_failures: z
      .number()
      .int()
      .min(1)
      .default(10)
      .describe('Wrong passwords per account within login_window_seconds before further logins of that account are refused (429 + Retry-After).'),
    login_max_failures_per_address: z
      .number()
      .int()
      .min(1)
      .default(100)
      .describe('Wrong passwords from one client address within login_window_seconds before further logins from it are refused (429 + Retry-After).'),
    login_window_seconds: z
      .number()
      .int()
      .min(1)
      .default(300)
      .describe('Sliding window of the login throttle: a refused account or address may log in again once its oldest counted failure is this old.'),
  })
  .strict()
  .superRefine(
    (c, ctx) => {
      // Runs even when other keys failed (`when` below), so that every problem is reported
      // at once: the values may then be of any type.
      const v = c as unknown as Record<string, unknown> | null;
      if (typeof v !== 'object' || v === null) return;
      const password = v.admin_password;
      if (v.admin_username && !(typeof password === 'string' && password.length >= 5)) {
        ctx.addIssue({ code: 'custom', path: ['admin_password'], message: 'required (at least 5 characters) when admin_username is set' });
      }
    },
    { when: () => true },
  );

export type Config = Readonly<z.infer<typeof configSchema>>;

/** The keys with their descriptions and defaults, for docs and `config print`. */
export function describeConfig(): Array<{ key: string; description: string; default: unknown }> {
  const defaults = configSchema.parse({});
  return Object.entries(configSchema.shape).map(([key, field]) => ({
    key,
    description: field.description ?? '',
    default: (defaults as Record<string, unknown>)[key],
  }));
}
