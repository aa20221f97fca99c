/**
 * The admin commands while the registry runs: the running registry holds the store
 * (LevelDB's lock), so `user …`, `gc`, `fsck` and `oauth-client …` go through its admin API
 * (found from the configuration, or `--url`), say so, and do the same work. On a stopped
 * registry `oauth-client` opens the store itself.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runScript } from '../helpers/cli.js';
import { makeTempDir, startTestServer, type TestServer } from '../helpers/server.js';

const CLI = 'src/cli/main.ts';
const ADMIN = { username: 'cliadmin', password: 'cli-admin-secret' };

describe('registry oauth-client on a stopped registry (the store opened by the CLI)', () => {
  let root: string;
  let env: Record<string, string>;
  before(async () => {
    root = await makeTempDir('registry-cli-oauth-');
    env = { REGISTRY_CONFIG: 'config/test.yaml', REGISTRY_STORAGE_ROOT: root };
  });
  after(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it('add prints {client_id, client_secret}; list shows the client (never the secret); remove removes it', async () => {
    const added = await runScript(CLI, ['oauth-client', 'add', 'Build Bot', '--redirect-uri', 'https://ci.example/cb', '--redirect-uri', 'http://127.0.0.1:8080/cb'], env);
    assert.equal(added.code, 0, added.stderr);
    const client = JSON.parse(added.stdout) as { client_id: string; client_secret: string };
    assert.deepEqual(Object.keys(client).sort(), ['client_id', 'client_secret']);
    assert.match(client.client_id, /^[0-9a-f]{32}$/);
    assert.match(client.client_secret, /^[0-9a-f]{64}$/);
    assert.doesNotMatch(added.stderr, /admin API/, 'no running registry: the store is opened here');

    const listed = await runScript(CLI, ['oauth-client', 'list', '--json'], env);
    // (the table form: `<client_id>\t<name>\t<redirect URIs>`)
    assert.equal(listed.code, 0, listed.stderr);
    const clients = JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
    assert.deepEqual(clients.map((c) => [c.client_id, c.name, c.redirect_uris]), [[client.client_id, 'Build Bot', ['https://ci.example/cb', 'http://127.0.0.1:8080/cb']]]);
    assert.doesNotMatch(listed.stdout, new RegExp(client.client_secret));

    const removed = await runScript(CLI, ['oauth-client', 'remove', client.client_id], env);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(removed.stdout.trim(), `removed OAuth client ${client.client_id}`);
  });

  it('refusals: no redirect URI (usage, 2), a bad one (2)', async () => {
    const none = await runScript(CLI, ['oauth-client', 'add', 'X'], env);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /usage: registry oauth-client add NAME --redirect-uri URI/);
    const bad = await runScript(CLI, ['oauth-client', 'add', 'X', '--redirect-uri', 'javascript:alert(1)'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Invalid redirect URI/);
  });
});

describe('admin commands while the registry runs (through its admin API)', () => {
  let srv: TestServer;
  let env: Record<string, string>;
  before(async () => {
    srv = await startTestServer({ overrides: { standalone: false, admin_username: ADMIN.username, admin_password: ADMIN.password } });
    // The CLI reads the same configuration as the server: it finds the registry at host:port.
    env = {
      REGISTRY_CONFIG: 'config/test.yaml',
      REGISTRY_STORAGE_ROOT: srv.root,
      REGISTRY_PORT: String(srv.running.port),
      V1_REGISTRY_USERNAME: ADMIN.username,
      V1_REGISTRY_PASSWORD: ADMIN.password,
      V1_REGISTRY_AUTH_FILE: path.join(srv.root, 'no-auth.json'),
    };
  });
  after(async () => {
    await srv.destroy();
  });

  it('user add, passwd, disable, enable, list: done by the running registry, which says so', async () => {
    const added = await runScript(CLI, ['user', 'add', 'gina_user', '--email', 'gina@example.test'], env, 'gina-secret-1\n');
    assert.equal(added.code, 0, added.stderr);
    assert.equal(added.stdout.trim(), 'created user gina_user');
    assert.match(added.stderr, /is held by a running registry; going through its admin API at http:\/\/127\.0\.0\.1:\d+/);
    await srv.running.services.users.authenticate('gina_user', 'gina-secret-1');

    const passwd = await runScript(CLI, ['user', 'passwd', 'gina_user'], env, 'gina-secret-2\n');
    assert.equal(passwd.code, 0, passwd.stderr);
    assert.equal(passwd.stdout.trim(), 'updated user gina_user');
    await srv.running.services.users.authenticate('gina_user', 'gina-secret-2');
    assert.equal((await srv.running.services.users.get('gina_user'))?.email, 'gina@example.test', 'the e-mail is kept');

    const unknown = await runScript(CLI, ['user', 'passwd', 'nobody_here'], env, 'whatever-1\n');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /No such user: nobody_here \(HTTP 404 on PUT \/_admin\/users\/nobody_here\)/);

    const disabled = await runScript(CLI, ['user', 'disable', 'gina_user'], env);
    assert.equal(disabled.code, 0, disabled.stderr);
    assert.equal((await srv.running.services.users.get('gina_user'))?.active, false);
    const listed = await runScript(CLI, ['user', 'list', '--json', '--url', srv.url], env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.doesNotMatch(listed.stderr, /held by a running registry/, 'with --url the store is not even tried');
    const rows = JSON.parse(listed.stdout) as Array<{ name: string; active: boolean; admin: boolean }>;
    assert.deepEqual(rows.map((r) => [r.name, r.admin, r.active]), [['cliadmin', true, true], ['gina_user', false, false]]);
  });

  it('user import-htpasswd, gc, fsck', async () => {
    const bcrypt = (await import('bcryptjs')).default;
    const file = path.join(srv.root, 'htpasswd');
    await fs.writeFile(file, `hank_user:${(await bcrypt.hash('hank-secret', 4)).replace(/^\$2a\$/, '$2y$')}\nivy:{SHA}x\n`);
    const imported = await runScript(CLI, ['user', 'import-htpasswd', file], env);
    assert.equal(imported.code, 1, 'a skipped line');
    assert.match(imported.stdout, /imported 1 user\(s\): hank_user/);
    assert.match(imported.stdout, /skipped line 2/);
    await srv.running.services.users.authenticate('hank_user', 'hank-secret');

    const gc = await runScript(CLI, ['gc', '--dry-run', '--grace', '0', '--json'], env);
    assert.equal(gc.code, 0, gc.stderr);
    const report = JSON.parse(gc.stdout) as { dryRun: boolean; images: { scanned: number } };
    assert.equal(report.dryRun, true);
    const fsck = await runScript(CLI, ['fsck'], env);
    assert.equal(fsck.code, 0, fsck.stderr);
    assert.match(fsck.stdout, /^ok$/m);
  });

  it('oauth-client add and remove on the running registry: the client works at once, and then not', async () => {
    const added = await runScript(CLI, ['oauth-client', 'add', 'Live App', '--redirect-uri', 'http://127.0.0.1:9/cb'], env);
    assert.equal(added.code, 0, added.stderr);
    const client = JSON.parse(added.stdout) as { client_id: string; client_secret: string };
    const consent = await fetch(`${srv.url}/api/v1.1/o/authorize/?client_id=${client.client_id}&redirect_uri=${encodeURIComponent('http://127.0.0.1:9/cb')}&response_type=code`);
    assert.equal(consent.status, 200);
    assert.match(await consent.text(), /Authorize Live App/);
    const removed = await runScript(CLI, ['oauth-client', 'remove', client.client_id], env);
    assert.equal(removed.code, 0, removed.stderr);
    const gone = await fetch(`${srv.url}/api/v1.1/o/authorize/?client_id=${client.client_id}&redirect_uri=${encodeURIComponent('http://127.0.0.1:9/cb')}&response_type=code`);
    assert.equal(gone.status, 400);
  });

  it('credentials: none and no terminal (1, says which variables), wrong (1, 401), not an admin (1, 403); nothing changes', async () => {
    const { V1_REGISTRY_USERNAME: _u, V1_REGISTRY_PASSWORD: _p, ...bare } = env;
    const none = await runScript(CLI, ['oauth-client', 'list'], bare);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /admin credentials for 127\.0\.0\.1:\d+ are needed: set V1_REGISTRY_USERNAME and V1_REGISTRY_PASSWORD/);
    const wrong = await runScript(CLI, ['oauth-client', 'add', 'Nope', '--redirect-uri', 'http://x.example/cb'], { ...env, V1_REGISTRY_PASSWORD: 'wrong-password' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /HTTP 401 on POST \/_admin\/oauth\/clients/);
    await srv.running.services.users.upsert({ username: 'jill_user', password: 'jill-secret-1', email: 'jill@example.test', admin: false });
    const notAdmin = await runScript(CLI, ['user', 'add', 'kim_user'], { ...env, V1_REGISTRY_USERNAME: 'jill_user', V1_REGISTRY_PASSWORD: 'jill-secret-1' }, 'kim-secret-1\n');
    assert.equal(notAdmin.code, 1);
    assert.match(notAdmin.stderr, /Only administrators may do this.*HTTP 403/);
    assert.equal(await srv.running.services.users.get('kim_user'), null);
    assert.deepEqual(await srv.running.services.oauth.listClients(), []);
  });
});
