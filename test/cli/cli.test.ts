import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runScript } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/server.js';

const run = runScript;

describe('registry CLI', () => {
  let root: string;
  let env: Record<string, string>;
  before(async () => {
    root = await makeTempDir('registry-cli-');
    env = { REGISTRY_CONFIG: 'config/test.yaml', REGISTRY_STORAGE_ROOT: root };
  });
  after(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it('user add reads the password from stdin and user list shows the account', async () => {
    const added = await run('src/cli/main.ts', ['user', 'add', 'carol', '--admin', '--email', 'carol@example.com'], env, 'hunter22\n');
    assert.equal(added.code, 0, added.stderr);
    assert.equal(added.stdout.trim(), 'created user carol (admin)');
    const listed = await run('src/cli/main.ts', ['user', 'list', '--json'], env);
    assert.equal(listed.code, 0, listed.stderr);
    const users = JSON.parse(listed.stdout) as Array<{ name: string; email: string; admin: boolean; active: boolean }>;
    assert.deepEqual(
      users.map((u) => [u.name, u.email, u.admin, u.active]),
      [['carol', 'carol@example.com', true, true]],
    );
  });

  it('user add without a password on stdin fails with exit code 2', async () => {
    const res = await run('src/cli/main.ts', ['user', 'add', 'dave_x'], env, '');
    assert.equal(res.code, 2);
    assert.match(res.stderr, /no password on standard input/);
  });

  it('import-htpasswd imports bcrypt entries and reports the others', async () => {
    // bcrypt hash of "secret99" (cost 4), as `htpasswd -B` writes it ($2y$).
    const bcrypt = (await import('bcryptjs')).default;
    const hash = (await bcrypt.hash('secret99', 4)).replace(/^\$2a\$/, '$2y$');
    const file = path.join(root, 'htpasswd');
    await fs.writeFile(file, `erin:${hash}\nfrank:{SHA}abcdef\n# comment\n`);
    const res = await run('src/cli/main.ts', ['user', 'import-htpasswd', file], env);
    assert.equal(res.code, 1, 'a skipped line makes the exit code 1');
    assert.match(res.stdout, /imported 1 user\(s\): erin/);
    assert.match(res.stdout, /skipped line 2: not a bcrypt entry/);
  });

  it('config print masks secrets', async () => {
    const res = await run('src/cli/main.ts', ['config', 'print'], { ...env, REGISTRY_ADMIN_USERNAME: 'boss', REGISTRY_ADMIN_PASSWORD: 'topsecret' });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^admin_username: "boss"$/m);
    assert.match(res.stdout, /^admin_password: \*{8}$/m);
    assert.doesNotMatch(res.stdout, /topsecret/);
  });

  it('config print masks the shared stores\' secrets: S3 secret key, token secret, PostgreSQL password', async () => {
    const res = await run('src/cli/main.ts', ['config', 'print'], {
      ...env,
      REGISTRY_POSTGRES_URL: 'postgres://registry:pgsecret@db:5432/registry?password=pgsecret2',
      REGISTRY_S3_ACCESS_KEY_ID: 'AKIDVISIBLE',
      REGISTRY_S3_SECRET_ACCESS_KEY: 's3secret',
      REGISTRY_TOKEN_SECRET: 'tokensecret'.repeat(4),
    });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^postgres_url: "postgres:\/\/\*\*\*@db:5432\/registry\?password=\*\*\*"$/m);
    assert.match(res.stdout, /^s3_access_key_id: "AKIDVISIBLE"$/m);
    assert.match(res.stdout, /^s3_secret_access_key: \*{8}$/m);
    assert.match(res.stdout, /^token_secret: \*{8}$/m);
    assert.doesNotMatch(res.stdout, /pgsecret|s3secret|tokensecret/);
  });

  it('refuses to start with every configuration problem named', async () => {
    const res = await run('src/main.ts', [], { ...env, REGISTRY_PORT: 'abc', REGISTRY_NOPE: '1', REGISTRY_LOG_LEVEL: 'loud' });
    assert.equal(res.code, 2);
    assert.match(res.stderr, /REGISTRY_NOPE: unknown setting/);
    assert.match(res.stderr, /port/);
    assert.match(res.stderr, /log_level/);
  });

  it('the server entry point starts, answers _ping and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { PATH: process.env.PATH ?? '', ...env, REGISTRY_PORT: '0', REGISTRY_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const url = await new Promise<string>((resolve, reject) => {
      let buf = '';
      child.stdout.on('data', (d) => {
        buf += d;
        const m = /"url":"(http:\/\/[^"]+)"/.exec(buf);
        if (m) resolve(m[1]);
      });
      child.on('close', (code) => reject(new Error(`exited ${code}: ${buf}`)));
    });
    const res = await fetch(`${url}/v1/_ping`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'true');
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });
});
