/**
 * login / logout and pushes against a registry with authentication on: the credentials
 * file (mode 0600, V1_REGISTRY_AUTH_FILE), credentials from the environment, and the
 * server's own error messages when a push is not allowed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTempDir, startTestServer, type TestServer } from '../helpers/server.js';
import { client, dockerSaveTarball, hostOf, makeImage, runProcess } from './helpers.js';

describe('client login, logout and permissions', { timeout: 60_000 }, () => {
  let server: TestServer;
  let dir: string;
  let host: string;
  let env: NodeJS.ProcessEnv;
  let authFile: string;
  let tarball: string;

  before(async () => {
    server = await startTestServer({ overrides: { standalone: false, admin_username: 'admin', admin_password: 'admin-secret' } });
    host = hostOf(server.url);
    dir = await makeTempDir('registry-client-auth-');
    authFile = path.join(dir, 'conf', 'auth.json');
    env = { V1_REGISTRY_AUTH_FILE: authFile };
    tarball = path.join(dir, 'image.tar');
    await fs.writeFile(tarball, dockerSaveTarball(makeImage('authz', 1), 'example/authz:1'));
  });
  after(async () => {
    await server.destroy();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('push without credentials: the server says why, exit code 1', async () => {
    const res = await client('push', [tarball, `${host}/alice/app:1`], { env });
    assert.equal(res.code, 1);
    assert.match(res.stderr, /HTTP 401 on PUT \/v1\/repositories\/alice\/app\//);
  });

  it('login signs up (docker 1.x flow) and keeps the credentials in a 0600 file', async () => {
    const res = await client('login', [host, '-u', 'alice', '--password-stdin', '--json'], { env, stdin: 'alice-pass-1\n' });
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(JSON.parse(res.text), { host, username: 'alice', created: true, file: authFile });
    const stat = await fs.stat(authFile);
    assert.equal(stat.mode & 0o777, 0o600);
    assert.equal((await fs.stat(path.dirname(authFile))).mode & 0o777, 0o700);
    const doc = JSON.parse(await fs.readFile(authFile, 'utf8')) as { auths: Record<string, { auth: string }> };
    assert.equal(Buffer.from(doc.auths[host].auth, 'base64').toString(), 'alice:alice-pass-1');
    // The account exists on the server now.
    const check = await fetch(`${server.url}/v1/users/`, { headers: { Authorization: 'Basic ' + Buffer.from('alice:alice-pass-1').toString('base64') } });
    assert.equal(check.status, 200);
  });

  it('login again checks the password: a wrong one is refused and not saved', async () => {
    const ok = await client('login', [host, '-u', 'alice', '--password-stdin'], { env, stdin: 'alice-pass-1\n' });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.text, /^Login Succeeded/);
    const before = await fs.readFile(authFile, 'utf8');
    const bad = await client('login', [host, '-u', 'alice', '--password-stdin'], { env, stdin: 'wrong-pass\n' });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /HTTP 401 on GET \/v1\/users\//);
    assert.equal(await fs.readFile(authFile, 'utf8'), before);
    const missing = await client('login', [host, '-u', 'alice'], { env });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no password/);
  });

  it('push to the own namespace works with the saved credentials; to another one it is 403 with the server message', async () => {
    const ok = await client('push', [tarball, `${host}/alice/app:1`, '-q'], { env });
    assert.equal(ok.code, 0, ok.stderr);
    const denied = await client('push', [tarball, `${host}/library/app:1`, '-q'], { env });
    assert.equal(denied.code, 1);
    // The message the server sent in {"error": …}, and where.
    const direct = await fetch(`${server.url}/v1/repositories/library/app/`, {
      method: 'PUT',
      headers: { Authorization: 'Basic ' + Buffer.from('alice:alice-pass-1').toString('base64'), 'Content-Type': 'application/json' },
      body: '[]',
    });
    assert.equal(direct.status, 403);
    const serverMessage = ((await direct.json()) as { error: string }).error;
    assert.ok(serverMessage.length > 0);
    assert.equal(denied.stderr.trim(), `registry push: ${serverMessage} (HTTP 403 on PUT /v1/repositories/library/app/)`);
  });

  it('a private pull needs credentials; the environment ones win over the file', async () => {
    const props = await fetch(`${server.url}/v1/repositories/alice/app/properties`, {
      method: 'PUT',
      headers: { Authorization: 'Basic ' + Buffer.from('alice:alice-pass-1').toString('base64'), 'Content-Type': 'application/json' },
      body: JSON.stringify({ access: 'private' }),
    });
    assert.equal(props.status, 200);
    const anonymous = await client('tags', [`${host}/alice/app`], { env: { V1_REGISTRY_AUTH_FILE: path.join(dir, 'none.json') } });
    assert.equal(anonymous.code, 1);
    assert.match(anonymous.stderr, /HTTP 401 on GET \/v1\/repositories\/alice\/app\/images/);
    const viaFile = await client('tags', [`${host}/alice/app`, '--json'], { env });
    assert.equal(viaFile.code, 0, viaFile.stderr);
    assert.deepEqual(Object.keys(JSON.parse(viaFile.text) as object), ['1']);
    const wrongEnv = await client('tags', [`${host}/alice/app`], { env: { ...env, V1_REGISTRY_USERNAME: 'alice', V1_REGISTRY_PASSWORD: 'nope-nope' } });
    assert.equal(wrongEnv.code, 1, 'environment credentials are used instead of the file');
    const adminEnv = await client('tags', [`${host}/alice/app`, '--json'], { env: { V1_REGISTRY_USERNAME: 'admin', V1_REGISTRY_PASSWORD: 'admin-secret' } });
    assert.equal(adminEnv.code, 0, adminEnv.stderr);
  });

  it('logout removes the host from the file, which stays 0600', async () => {
    const res = await client('logout', [host], { env });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.text, new RegExp(`Removed login credentials for ${host.replace(/[.]/g, '\\.')}`));
    const doc = JSON.parse(await fs.readFile(authFile, 'utf8')) as { auths: Record<string, unknown> };
    assert.deepEqual(doc.auths, {});
    assert.equal((await fs.stat(authFile)).mode & 0o777, 0o600);
    const again = await client('logout', [host], { env });
    assert.equal(again.code, 0);
    assert.match(again.text, /Not logged in/);
    const denied = await client('push', [tarball, `${host}/alice/app:2`], { env });
    assert.equal(denied.code, 1);
  });

  it('the registry binary: login through src/cli/main.ts with the environment, server env untouched', async () => {
    const res = await runProcess(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'login', host, '--json'], {
      env: { PATH: process.env.PATH ?? '', HOME: dir, V1_REGISTRY_USERNAME: 'admin', V1_REGISTRY_PASSWORD: 'admin-secret' },
      timeoutMs: 40_000,
    });
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout) as { file: string; created: boolean };
    // Default place under the home directory.
    assert.equal(out.file, path.join(dir, '.config', 'v1-registry', 'auth.json'));
    assert.equal(out.created, false);
    assert.equal((await fs.stat(out.file)).mode & 0o777, 0o600);
  });
});
