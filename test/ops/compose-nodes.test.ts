/**
 * docker-compose.nodes.yml, the multi-node setup: validated by the real `docker-compose config`
 * (1.29, what .ci/run installs; the postgres, minio and nginx images cannot be pulled here, so
 * nothing is started), then read back: every node runs on the shared PostgreSQL + MinIO with
 * the one token_secret, its environment (the _FILE secrets read as the image's entrypoint
 * reads them) is a configuration our loader accepts, the load balancer is published on
 * loopback only and sends to every node. The single-node docker-compose.yml is checked by
 * test/image/container.image.ts, unchanged.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { load as loadYaml } from 'js-yaml';
import { loadConfig } from '../../src/config/load.js';
import { makeTempDir } from '../helpers/server.js';

const FILE = 'docker-compose.nodes.yml';
const SECRETS: Record<string, string> = {
  admin_password: 'admin-password-from-a-file',
  token_secret: 'a-token-secret-of-at-least-32-characters!',
  postgres_password: 'pg-password',
  postgres_url: 'postgres://registry:pg-password@postgres:5432/registry',
  s3_access_key: 'registry',
  s3_secret_key: 'minio-secret-key',
};

interface Service {
  image?: string;
  environment?: Record<string, string>;
  secrets?: Array<{ source: string }>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
}

describe(`${FILE}: PostgreSQL, MinIO, registry nodes and nginx`, () => {
  let dir: string;
  let services: Record<string, Service>;

  before(async () => {
    if (spawnSync('docker-compose', ['version']).status !== 0) throw new Error('docker-compose is missing (apt-get install docker-compose; .ci/run installs it)');
    dir = await makeTempDir('registry-compose-nodes-');
    await fs.copyFile(FILE, path.join(dir, FILE));
    await fs.mkdir(path.join(dir, 'secrets'));
    for (const [name, value] of Object.entries(SECRETS)) await fs.writeFile(path.join(dir, 'secrets', name), value + '\n');
    const result = spawnSync('docker-compose', ['-f', FILE, 'config'], { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: dir } });
    assert.equal(result.status, 0, `docker-compose config: ${result.stderr}`);
    services = (loadYaml(result.stdout) as { services: Record<string, Service> }).services;
  });

  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const nodes = () => Object.keys(services).filter((name) => /^node-\d+$/.test(name));

  it('has PostgreSQL, MinIO, two or more registry nodes and a load balancer', () => {
    assert.ok(nodes().length >= 2, `nodes: ${nodes().join(', ')}`);
    assert.match(services.postgres.image ?? '', /^postgres:/);
    assert.match(services.minio.image ?? '', /^minio\/minio/);
    assert.match(services.lb.image ?? '', /^nginx:/);
  });

  it('every node: a configuration the registry accepts, on the shared stores, with the one token_secret', () => {
    for (const name of nodes()) {
      const node = services[name];
      const env: Record<string, string> = {};
      for (const [key, value] of Object.entries(node.environment ?? {})) {
        const file = /^(REGISTRY_[A-Z0-9_]+)_FILE$/.exec(key);
        if (!file) {
          env[key] = value;
          continue;
        }
        // The entrypoint: a secret's file, without its trailing newlines.
        const secret = /^\/run\/secrets\/(.+)$/.exec(value)?.[1] ?? '';
        assert.ok(node.secrets?.some((s) => s.source === secret), `${name}: ${key} names a secret it is given (${value})`);
        env[file[1]] = SECRETS[secret];
      }
      const config = loadConfig({ env });
      assert.equal(config.metadata_store, 'postgres', name);
      assert.equal(config.postgres_url, SECRETS.postgres_url, name);
      assert.equal(config.blob_store, 's3', name);
      assert.equal(config.s3_endpoint, 'http://minio:9000', name);
      assert.equal(config.s3_force_path_style, true, name);
      assert.equal(config.s3_access_key_id, SECRETS.s3_access_key, `${name}: MinIO's root user`);
      assert.equal(config.s3_secret_access_key, SECRETS.s3_secret_key, name);
      assert.equal(config.token_secret, SECRETS.token_secret, `${name}: the shared token_secret`);
      assert.equal(config.signup_enabled, false, name);
      assert.equal(node.depends_on?.postgres?.condition, 'service_healthy', `${name} waits for PostgreSQL`);
      assert.ok(!(node.ports ?? []).length, `${name} is reached through the load balancer only`);
      assert.ok(!(node.volumes ?? []).some((v) => v.includes(':/app/storage')), `${name} keeps nothing in a storage volume`);
    }
    // MinIO's root credentials are the nodes' S3 keys (the same secret files).
    assert.equal(services.minio.environment?.MINIO_ROOT_USER_FILE, '/run/secrets/s3_access_key');
    assert.equal(services.minio.environment?.MINIO_ROOT_PASSWORD_FILE, '/run/secrets/s3_secret_key');
    assert.equal(services.postgres.environment?.POSTGRES_PASSWORD_FILE, '/run/secrets/postgres_password');
  });

  it('the load balancer is published on loopback and sends to every node', async () => {
    assert.deepEqual(services.lb.ports, ['127.0.0.1:5000:80/tcp']);
    const mount = (services.lb.volumes ?? []).find((v) => v.endsWith(':/etc/nginx/conf.d/default.conf:ro'));
    assert.ok(mount, 'the nginx configuration is mounted');
    const conf = await fs.readFile('docker/nginx-nodes.conf', 'utf8');
    const upstream = [...conf.matchAll(/^\s*server\s+([\w-]+):5000\b/gm)].map((m) => m[1]).sort();
    assert.deepEqual(upstream, nodes().sort());
    assert.match(conf, /client_max_body_size 0;/, 'layers of any size pass');
    assert.match(conf, /proxy_request_buffering off;/, 'uploads stream through');
    assert.match(conf, /proxy_set_header Host \$http_host;/, 'the registry sees the Host the client used');
  });
});
