/**
 * loadConfig: schema defaults < YAML file < REGISTRY_* environment < overrides, with every
 * problem reported at once; and config/default.yaml and README.md kept in step with the schema.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { load as loadYaml } from 'js-yaml';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { CONFIG_KEYS, describeConfig } from '../../src/config/schema.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const README = join(ROOT, 'README.md');

const schemaDefaults = () => Object.fromEntries(describeConfig().map((k) => [k.key, k.default]));

/** Runs `fn` with the working directory set to `dir` (loadConfig looks for config/default.yaml there). */
function inDir<T>(dir: string, fn: () => T): T {
  const before = process.cwd();
  process.chdir(dir);
  try {
    return fn();
  } finally {
    process.chdir(before);
  }
}

/** The ConfigError that `fn` throws. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.name, 'ConfigError');
    for (const p of err.problems) assert.ok(err.message.includes(p), `the message lists "${p}"`);
    return err;
  }
  assert.fail('no ConfigError was thrown');
}

function assertProblem(err: ConfigError, pattern: RegExp): void {
  assert.ok(
    err.problems.some((p) => pattern.test(p)),
    `a problem matching ${pattern} in:\n${err.problems.join('\n')}`,
  );
}

describe('loadConfig', () => {
  let dir = '';
  let empty = '';
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'config-test-'));
    empty = join(dir, 'empty-cwd');
    mkdirSync(empty);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('uses the schema defaults when there is no file and no environment', () => {
    const config = inDir(empty, () => loadConfig({ env: {} }));
    assert.deepEqual({ ...config }, schemaDefaults());
    assert.equal(config.port, 5000);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.log_level, 'info');
    assert.ok(Object.isFrozen(config));
  });

  it('reads config/default.yaml from the working directory when REGISTRY_CONFIG is not set', () => {
    const cwd = join(dir, 'with-default');
    mkdirSync(join(cwd, 'config'), { recursive: true });
    writeFileSync(join(cwd, 'config', 'default.yaml'), 'port: 5123\nflavor: from-default-file\n');
    const config = inDir(cwd, () => loadConfig({ env: {} }));
    assert.equal(config.port, 5123);
    assert.equal(config.flavor, 'from-default-file');
    assert.equal(config.host, '127.0.0.1', 'keys the file does not set keep their default');
  });

  it('reads the YAML file named by REGISTRY_CONFIG', () => {
    const path = file('custom.yaml', 'port: 6000\nflavor: prod\nstandalone: true\nlog_level: debug\nmax_json_bytes: 2048\n');
    const config = inDir(empty, () => loadConfig({ env: { REGISTRY_CONFIG: path } }));
    assert.deepEqual({ ...config }, { ...schemaDefaults(), port: 6000, flavor: 'prod', standalone: true, log_level: 'debug', max_json_bytes: 2048 });
  });

  it('an empty file or one of comments only changes nothing', () => {
    for (const text of ['', '# nothing here\n']) {
      const config = loadConfig({ env: { REGISTRY_CONFIG: file('blank.yaml', text) } });
      assert.deepEqual({ ...config }, schemaDefaults());
    }
  });

  it('REGISTRY_* environment variables win over the file, overrides over both', () => {
    const path = file('base.yaml', 'port: 6000\nstandalone: true\nflavor: file\nlog_level: debug\n');
    const env = { REGISTRY_CONFIG: path, REGISTRY_PORT: '7000', REGISTRY_STANDALONE: 'false', REGISTRY_LOG_LEVEL: 'warn' };
    const config = loadConfig({ env });
    assert.equal(config.port, 7000);
    assert.equal(config.standalone, false);
    assert.equal(config.log_level, 'warn');
    assert.equal(config.flavor, 'file', 'not set in the environment: the file wins');
    const overridden = loadConfig({ env, overrides: { port: 0, flavor: 'override' } });
    assert.equal(overridden.port, 0);
    assert.equal(overridden.flavor, 'override');
    assert.equal(overridden.standalone, false);
  });

  it('converts environment strings by the type of the key', () => {
    const config = inDir(empty, () =>
      loadConfig({
        env: {
          REGISTRY_FLAVOR: '123',
          REGISTRY_PORT: ' 5001 ',
          REGISTRY_STANDALONE: 'true',
          REGISTRY_MAX_JSON_BYTES: '4096',
          REGISTRY_HOST: '0.0.0.0',
          ...(CONFIG_KEYS.has('metrics_token') ? { REGISTRY_METRICS_TOKEN: '007' } : {}),
          ...(CONFIG_KEYS.has('admin_password') ? { REGISTRY_ADMIN_PASSWORD: '12345', REGISTRY_ADMIN_USERNAME: 'true' } : {}),
        },
      }),
    );
    assert.equal(config.flavor, '123', 'a string key keeps a numeric-looking value as a string');
    assert.equal(config.port, 5001);
    assert.equal(config.standalone, true);
    assert.equal(config.max_json_bytes, 4096);
    assert.equal(config.host, '0.0.0.0');
    const loose = config as unknown as Record<string, unknown>;
    if (CONFIG_KEYS.has('metrics_token')) assert.equal(loose.metrics_token, '007');
    if (CONFIG_KEYS.has('admin_password')) {
      assert.equal(loose.admin_password, '12345');
      assert.equal(loose.admin_username, 'true', 'a string key keeps "true" as a string');
    }
  });

  it('shared stores: names the settings each choice needs, all at once; a full set loads from the environment', () => {
    const err = configError(() =>
      inDir(empty, () =>
        loadConfig({
          env: {
            REGISTRY_METADATA_STORE: 'postgres',
            REGISTRY_BLOB_STORE: 'fs',
            REGISTRY_S3_REDIRECT: 'true',
            REGISTRY_S3_ACCESS_KEY_ID: 'AK',
            REGISTRY_TOKEN_SECRET: 'too short',
            REGISTRY_POSTGRES_URL: '',
          },
        }),
      ),
    );
    assertProblem(err, /^postgres_url: required when metadata_store is postgres$/);
    assertProblem(err, /^s3_redirect: needs blob_store: s3$/);
    assertProblem(err, /^s3_secret_access_key: s3_access_key_id and s3_secret_access_key are set together/);
    assertProblem(err, /^token_secret: at least 32 characters/);
    assertProblem(configError(() => inDir(empty, () => loadConfig({ env: { REGISTRY_BLOB_STORE: 's3' } }))), /^s3_bucket: required when blob_store is s3$/);
    assertProblem(configError(() => inDir(empty, () => loadConfig({ env: { REGISTRY_METADATA_STORE: 'mysql' } }))), /^metadata_store\b/);
    assertProblem(configError(() => inDir(empty, () => loadConfig({ env: { REGISTRY_POSTGRES_URL: 'mysql://x' } }))), /^postgres_url: must be a postgres:\/\//);

    const config = inDir(empty, () =>
      loadConfig({
        env: {
          REGISTRY_METADATA_STORE: 'postgres',
          REGISTRY_POSTGRES_URL: 'postgres://registry:pw@db:5432/registry?sslmode=require',
          REGISTRY_BLOB_STORE: 's3',
          REGISTRY_S3_ENDPOINT: 'http://minio:9000',
          REGISTRY_S3_BUCKET: 'layers',
          REGISTRY_S3_FORCE_PATH_STYLE: 'true',
          REGISTRY_S3_REDIRECT: 'true',
          REGISTRY_TOKEN_SECRET: 'x'.repeat(32),
        },
      }),
    );
    assert.equal(config.metadata_store, 'postgres');
    assert.equal(config.blob_store, 's3');
    assert.equal(config.s3_force_path_style, true);
    assert.equal(config.s3_redirect, true);
    assert.equal(config.s3_region, 'us-east-1');
  });

  it('reports every problem of the file and the environment in one ConfigError', () => {
    const path = file('bad.yaml', 'port: 70000\ncolour: red\nlog_level: loud\n');
    const err = configError(() =>
      loadConfig({ env: { REGISTRY_CONFIG: path, REGISTRY_NOPE: 'x', REGISTRY_MAX_JSON_BYTES: 'abc', REGISTRY_STANDALONE: 'yes' } }),
    );
    assertProblem(err, /^port\b.*/);
    assertProblem(err, /colour.*unknown/);
    assertProblem(err, /^log_level\b/);
    assertProblem(err, /REGISTRY_NOPE.*unknown/);
    assertProblem(err, /^max_json_bytes\b/);
    assertProblem(err, /^standalone\b/);
    assert.ok(err.problems.length >= 6, err.message);
  });

  it('reports a cross-key problem (admin without password) together with the others', { skip: CONFIG_KEYS.has('admin_username') ? false : 'no admin_username key' }, () => {
    const err = configError(() => inDir(empty, () => loadConfig({ env: { REGISTRY_ADMIN_USERNAME: 'boss', REGISTRY_PORT: 'abc' } })));
    assertProblem(err, /^admin_password\b/);
    assertProblem(err, /^port\b/);
    const ok = inDir(empty, () => loadConfig({ env: { REGISTRY_ADMIN_USERNAME: 'boss', REGISTRY_ADMIN_PASSWORD: 'secret' } }));
    assert.equal((ok as unknown as Record<string, unknown>).admin_password, 'secret');
  });

  it('rejects a non-numeric port from the environment, and an out-of-range one from the file', () => {
    assertProblem(configError(() => inDir(empty, () => loadConfig({ env: { REGISTRY_PORT: 'abc' } }))), /^port\b/);
    assertProblem(configError(() => inDir(empty, () => loadConfig({ env: { REGISTRY_PORT: '5000.5' } }))), /^port\b/);
    assertProblem(configError(() => inDir(empty, () => loadConfig({ env: { REGISTRY_PORT: '' } }))), /^port\b/);
    assertProblem(configError(() => loadConfig({ env: { REGISTRY_CONFIG: file('p.yaml', 'port: 70000\n') } })), /^port\b/);
    assertProblem(configError(() => loadConfig({ env: { REGISTRY_CONFIG: file('p.yaml', 'port: "5000"\n') } })), /^port\b/);
    assertProblem(configError(() => loadConfig({ env: { REGISTRY_CONFIG: file('p.yaml', 'port: -1\n') } })), /^port\b/);
  });

  it('an unreadable file is reported together with the other problems', () => {
    const missing = join(dir, 'does-not-exist.yaml');
    const err = configError(() => loadConfig({ env: { REGISTRY_CONFIG: missing, REGISTRY_PORT: 'abc', REGISTRY_COLOUR: 'red' } }));
    assertProblem(err, new RegExp(`${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*cannot read`));
    assertProblem(err, /^port\b/);
    assertProblem(err, /REGISTRY_COLOUR.*unknown/);
    assertProblem(configError(() => loadConfig({ env: { REGISTRY_CONFIG: dir } })), /cannot read/);
  });

  it('invalid YAML, or YAML that is not a mapping, is reported together with the other problems', () => {
    const err = configError(() =>
      loadConfig({ env: { REGISTRY_CONFIG: file('broken.yaml', 'port: [1, 2\nhost: : :\n'), REGISTRY_LOG_LEVEL: 'loud' } }),
    );
    assertProblem(err, /broken\.yaml.*not valid YAML/);
    assertProblem(err, /^log_level\b/);
    for (const text of ['- port\n- 5000\n', 'just a string\n', '42\n']) {
      assertProblem(configError(() => loadConfig({ env: { REGISTRY_CONFIG: file('list.yaml', text) } })), /list\.yaml.*mapping/);
    }
  });
});

describe('config/default.yaml and README.md', () => {
  it('config/default.yaml sets every key of the schema to exactly its default', () => {
    const doc = loadYaml(readFileSync(join(ROOT, 'config', 'default.yaml'), 'utf8')) as Record<string, unknown>;
    const defaults = schemaDefaults();
    assert.deepEqual(Object.keys(doc).sort(), Object.keys(defaults).sort(), 'the same keys');
    for (const [key, value] of Object.entries(defaults)) assert.deepEqual(doc[key], value, key);
    // and loading it gives the defaults
    assert.deepEqual({ ...loadConfig({ env: { REGISTRY_CONFIG: join(ROOT, 'config', 'default.yaml') } }) }, defaults);
  });

  it('config/test.yaml is a valid configuration', () => {
    assert.doesNotThrow(() => loadConfig({ env: { REGISTRY_CONFIG: join(ROOT, 'config', 'test.yaml') } }));
  });

  it('README.md mentions every key', { skip: existsSync(README) ? false : 'README.md does not exist' }, () => {
    const text = readFileSync(README, 'utf8');
    const missing = describeConfig()
      .map((k) => k.key)
      .filter((key) => !text.includes(`\`${key}\``));
    assert.deepEqual(missing, [], 'keys the README does not mention (as `key`)');
  });
});
