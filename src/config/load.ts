/**
 * Loads the configuration once: schema defaults < YAML file < REGISTRY_* environment.
 * The file is REGISTRY_CONFIG if set, else config/default.yaml if present. Every problem
 * (unknown key, bad value, unreadable file) is collected and reported in one error.
 */
import fs from 'node:fs';
import { load as loadYaml } from 'js-yaml';
import { CONFIG_KEYS, describeConfig, validateConfig, type Config } from './schema.js';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

const ENV_PREFIX = 'REGISTRY_';
const ENV_FILE = 'REGISTRY_CONFIG';
export const DEFAULT_CONFIG_FILE = 'config/default.yaml';

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Values that win over everything (command-line flags, tests). */
  overrides?: Record<string, unknown>;
}

export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const problems: string[] = [];
  const raw: Record<string, unknown> = {};

  const file = env[ENV_FILE] ?? (fs.existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  if (file) Object.assign(raw, readFile(file, problems));

  const known = CONFIG_KEYS;
  const defaults = Object.fromEntries(describeConfig().map((k) => [k.key, k.default]));
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || name === ENV_FILE || value === undefined) continue;
    const key = name.slice(ENV_PREFIX.length).toLowerCase();
    if (!known.has(key)) {
      problems.push(`${name}: unknown setting (known: ${[...known].map((k) => ENV_PREFIX + k.toUpperCase()).join(', ')})`);
      continue;
    }
    raw[key] = coerceEnv(value, defaults[key]);
  }
  Object.assign(raw, options.overrides ?? {});

  const result = validateConfig(raw);
  if ('problems' in result) problems.push(...result.problems);
  if (problems.length > 0 || !('config' in result)) throw new ConfigError(problems);
  return result.config;
}

function readFile(file: string, problems: string[]): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`${file}: cannot read (${(err as Error).message})`);
    return {};
  }
  // Empty, or comments only: nothing to set (js-yaml refuses a document with no content).
  if (!/^[ \t]*[^#\s]/m.test(text)) return {};
  let doc: unknown;
  try {
    doc = loadYaml(text);
  } catch (err) {
    problems.push(`${file}: not valid YAML (${(err as Error).message.split('\n')[0]})`);
    return {};
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    problems.push(`${file}: expected a mapping of settings`);
    return {};
  }
  return doc as Record<string, unknown>;
}

/**
 * Environment values are strings: convert them to the type the key has in the schema (the
 * type of its default), so REGISTRY_FLAVOR=123 stays the string "123" while
 * REGISTRY_PORT=5001 becomes a number. A value that does not convert is passed on as the
 * string, and the schema reports it.
 */
function coerceEnv(value: string, like: unknown): unknown {
  const v = value.trim();
  switch (typeof like) {
    case 'string':
      return value;
    case 'boolean':
      return v === 'true' ? true : v === 'false' ? false : value;
    case 'number':
      return /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : value;
    default:
      if (like !== null && typeof like === 'object') {
        try {
          return JSON.parse(v);
        } catch {
          return value;
        }
      }
      return value;
  }
}
