/**
 * Index API v1, accounts, with authentication on (standalone: false): sign-up, the docker
 * 1.x login flow (POST /v1/users/ → 201, or 400 "Username or email already exists" →
 * GET /v1/users/ with Basic auth), account updates, sign-up disabled, the configured admin,
 * and the third-party `docker-registry-client` login.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import drc from 'docker-registry-client';
import { basicAuth, Docker1Error, login } from '../helpers/docker1.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const EXISTS = 'Username or email already exists';

// The bundled declaration (test/types) does not cover loginV1: its shape, from
// lib/registry-client-v1.js#login.
interface LoginV1Options {
  indexName: string;
  username: string;
  password: string;
  email: string;
}
const loginV1 = (drc as unknown as {
  loginV1(opts: LoginV1Options, cb: (err: Error | null, result?: { status: string }) => void): void;
}).loginV1;

function drcLogin(opts: LoginV1Options): Promise<{ status: string }> {
  return new Promise((resolve, reject) => {
    loginV1(opts, (err, result) => (err ? reject(err) : resolve(result as { status: string })));
  });
}

interface Res {
  status: number;
  type: string;
  text: string;
}

async function call(url: string, init: RequestInit = {}): Promise<Res> {
  const res = await fetch(url, init);
  return { status: res.status, type: res.headers.get('Content-Type') ?? '', text: await res.text() };
}

let counter = 0;
/** A fresh, valid account (names are unique per process so tests never collide). */
function account(prefix = 'user') {
  counter += 1;
  const tag = `${randomBytes(3).toString('hex')}${counter}`;
  return { username: `${prefix}_${tag}`, password: `pw-${randomBytes(6).toString('hex')}`, email: `${prefix}.${tag}@example.test` };
}

function signup(base: string, body: unknown, raw = false): Promise<Res> {
  return call(`${base}/v1/users/`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: raw ? (body as string) : JSON.stringify(body),
  });
}

function checkLogin(base: string, credentials?: { username: string; password: string }): Promise<Res> {
  return call(`${base}/v1/users/`, { headers: credentials ? { Authorization: basicAuth(credentials) } : {} });
}

function updateUser(base: string, name: string, body: unknown, credentials?: { username: string; password: string }) {
  return call(`${base}/v1/users/${name}/`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json', ...(credentials ? { Authorization: basicAuth(credentials) } : {}) },
    body: JSON.stringify(body),
  });
}

function assertJsonError(res: Res, status: number, what: string) {
  assert.equal(res.status, status, `${what}: ${res.text}`);
  assert.match(res.type, /^application\/json/, what);
  const body = JSON.parse(res.text) as { error?: unknown };
  assert.equal(typeof body.error, 'string', `${what}: ${res.text}`);
  assert.notEqual(body.error, '', what);
}

describe('Index accounts, sign-up open', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ overrides: { standalone: false } });
  });
  after(async () => {
    await srv?.destroy();
  });

  it('POST /v1/users/ creates an account: 201 "User Created", and the account can log in', async () => {
    const a = account();
    // Fields a client may not set are ignored.
    const res = await signup(srv.url, { ...a, admin: true, active: false });
    assert.equal(res.status, 201, res.text);
    assert.match(res.type, /^application\/json/);
    assert.equal(res.text, JSON.stringify('User Created'));
    const user = await srv.running.services.users.get(a.username);
    assert.ok(user, 'the account is stored');
    assert.equal(user.email, a.email);
    assert.equal(user.active, true);
    assert.equal(user.admin, false);
    assert.notEqual(user.passwordHash, a.password, 'the password is not stored in clear');
    assert.equal((await checkLogin(srv.url, a)).status, 200);
  });

  it('a second sign-up with the same name or the same e-mail is 400 with the exact JSON string', async () => {
    const a = account();
    assert.equal((await signup(srv.url, a)).status, 201);
    const other = account();
    for (const [what, body] of [
      ['same name', { ...other, username: a.username }],
      ['same e-mail', { ...other, email: a.email }],
      ['same e-mail, other case', { ...other, email: a.email.toUpperCase() }],
      ['same everything', a],
    ] as const) {
      const res = await signup(srv.url, body);
      assert.equal(res.status, 400, `${what}: ${res.text}`);
      assert.equal(res.text, '"Username or email already exists"', what);
      assert.match(res.type, /^application\/json/, what);
    }
    // Nothing was overwritten: the first password still works, the other one does not.
    assert.equal((await checkLogin(srv.url, a)).status, 200);
    assert.equal((await checkLogin(srv.url, { username: a.username, password: other.password })).status, 401);
    assert.equal(await srv.running.services.users.get(other.username), null, 'the e-mail clash created nothing');
  });

  it('GET /v1/users/: 200 "OK" with the right password; 401 for a wrong one, none, an unknown user or garbage', async () => {
    const a = account();
    assert.equal((await signup(srv.url, a)).status, 201);
    const ok = await checkLogin(srv.url, a);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.text, JSON.stringify('OK'));

    assertJsonError(await checkLogin(srv.url, { username: a.username, password: a.password + 'x' }), 401, 'wrong password');
    assertJsonError(await checkLogin(srv.url), 401, 'no credentials');
    assertJsonError(await checkLogin(srv.url, { username: 'nobody_here', password: a.password }), 401, 'unknown user');
    assertJsonError(await checkLogin(srv.url, { username: a.username.toUpperCase(), password: a.password }), 401, 'name in another case');
    const garbage = await call(`${srv.url}/v1/users/`, { headers: { Authorization: 'Basic bm9jb2xvbg==' } });
    assertJsonError(garbage, 401, 'Basic without a colon');
    const scheme = await call(`${srv.url}/v1/users/`, { headers: { Authorization: 'Bearer abc' } });
    assertJsonError(scheme, 401, 'unknown scheme');
    // A wrong password after a right one (the verified-password cache) is still wrong.
    assert.equal((await checkLogin(srv.url, a)).status, 200);
    assert.equal((await checkLogin(srv.url, { username: a.username, password: a.password.slice(0, -1) })).status, 401);
  });

  it('an inactive account gets 403 on login (even with the right password), 401 with a wrong one', async () => {
    const a = account();
    assert.equal((await signup(srv.url, a)).status, 201);
    assert.equal((await checkLogin(srv.url, a)).status, 200);
    await srv.running.services.users.setActive(a.username, false);
    assertJsonError(await checkLogin(srv.url, a), 403, 'inactive');
    assert.equal((await checkLogin(srv.url, { ...a, password: 'wrong-password' })).status, 401);
    // docker login then reports the account as not active.
    await assert.rejects(login(srv.url, a), (err: unknown) => err instanceof Docker1Error && err.step === 'GET /v1/users/' && err.status === 403);
    await srv.running.services.users.setActive(a.username, true);
    assert.equal((await checkLogin(srv.url, a)).status, 200);
  });

  it('PUT /v1/users/:name/ by the user changes the password and the e-mail', async () => {
    const a = account();
    assert.equal((await signup(srv.url, a)).status, 201);
    const fresh = account();
    const res = await updateUser(srv.url, a.username, { password: fresh.password, email: fresh.email }, a);
    assert.equal(res.status, 204, res.text);
    assert.equal((await checkLogin(srv.url, a)).status, 401, 'the old password no longer works');
    assert.equal((await checkLogin(srv.url, { username: a.username, password: fresh.password })).status, 200, 'the new one does');
    assert.equal((await srv.running.services.users.get(a.username))?.email, fresh.email);
    // The old e-mail is free again; the new one is taken.
    const third = account();
    assert.equal((await signup(srv.url, { ...third, email: fresh.email })).text, JSON.stringify(EXISTS));
    assert.equal((await signup(srv.url, { ...third, email: a.email })).status, 201);
    // The trailing slash is optional; e-mail alone.
    const later = account().email;
    const again = await call(`${srv.url}/v1/users/${a.username}`, {
      method: 'PUT',
      headers: { Authorization: basicAuth({ username: a.username, password: fresh.password }), 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: later }),
    });
    assert.equal(again.status, 204, again.text);
    assert.equal((await srv.running.services.users.get(a.username))?.email, later);
  });

  it('PUT /v1/users/:name/: another user 403, anonymous 401, invalid values 400, taken e-mail 400', async () => {
    const a = account();
    const b = account();
    assert.equal((await signup(srv.url, a)).status, 201);
    assert.equal((await signup(srv.url, b)).status, 201);
    assertJsonError(await updateUser(srv.url, a.username, { password: 'hijacked1' }, b), 403, 'another user');
    assertJsonError(await updateUser(srv.url, a.username, { password: 'hijacked1' }), 401, 'anonymous');
    assertJsonError(await updateUser(srv.url, a.username, { password: 'abc' }, a), 400, 'short password');
    assertJsonError(await updateUser(srv.url, a.username, { email: 'not-an-email' }, a), 400, 'bad e-mail');
    assertJsonError(await updateUser(srv.url, a.username, ['x'], a), 400, 'a list');
    // A user cannot make themselves an admin.
    const escalate = await updateUser(srv.url, a.username, { admin: true, active: true, name: b.username }, a);
    assert.ok(escalate.status === 204 || escalate.status === 400, `${escalate.status} ${escalate.text}`);
    assert.equal((await srv.running.services.users.get(a.username))?.admin, false);
    const taken = await updateUser(srv.url, a.username, { email: b.email }, a);
    assert.equal(taken.status, 400, taken.text);
    // Nothing changed.
    assert.equal((await checkLogin(srv.url, a)).status, 200);
    assert.equal((await checkLogin(srv.url, { username: a.username, password: 'hijacked1' })).status, 401);
    assert.equal((await srv.running.services.users.get(a.username))?.email, a.email);
  });

  it('invalid sign-up bodies are 400 with a JSON {"error"}', async () => {
    const ok = account();
    const cases: Array<[string, unknown, boolean?]> = [
      ['username too short', { ...ok, username: 'abc' }],
      ['username with a capital', { ...ok, username: 'Alice_' + counter }],
      ['username with a dash', { ...ok, username: 'al-ice' }],
      ['username too long', { ...ok, username: 'a'.repeat(31) }],
      ['username not a string', { ...ok, username: 12345 }],
      ['reserved username', { ...ok, username: 'library' }],
      ['password too short', { ...ok, password: 'abcd' }],
      ['password missing', { username: ok.username, email: ok.email }],
      ['password longer than 72 bytes', { ...ok, password: 'p'.repeat(73) }],
      ['e-mail without @', { ...ok, email: 'alice.example.test' }],
      ['e-mail with a space', { ...ok, email: 'al ice@example.test' }],
      ['e-mail missing', { username: ok.username, password: ok.password }],
      ['not JSON', '{"username": "alice",', true],
      ['a JSON list', [ok]],
      ['a JSON string', 'alice'],
      ['null', null],
    ];
    for (const [what, body, raw] of cases) assertJsonError(await signup(srv.url, body, raw), 400, what);
    assert.equal(await srv.running.services.users.get(ok.username), null, 'no invalid sign-up created the account');
    assert.equal((await signup(srv.url, ok)).status, 201, 'the valid body still works afterwards');
  });

  it('docker login (docker 1.x flow): creates the account, then logs in, and rejects a wrong password', async () => {
    const a = account();
    assert.equal(await login(srv.url, a), 'created');
    assert.equal(await login(srv.url, a), 'logged-in');
    await assert.rejects(
      login(srv.url, { ...a, password: a.password + '!' }),
      (err: unknown) => err instanceof Docker1Error && err.step === 'GET /v1/users/' && err.status === 401,
    );
  });

  it('docker-registry-client loginV1: new account, existing account, wrong password', async () => {
    const a = account('drc');
    const created = await drcLogin({ indexName: srv.url, ...a });
    assert.match(created.status, /^Account created/);
    assert.ok(await srv.running.services.users.get(a.username), 'the client created the account');
    const again = await drcLogin({ indexName: srv.url, ...a });
    assert.equal(again.status, 'Login Succeeded');
    await assert.rejects(drcLogin({ indexName: srv.url, ...a, password: 'wrong-password' }), /Wrong login\/password/);
  });
});

describe('Index accounts, sign-up disabled, with a configured admin', () => {
  let srv: TestServer;
  const admin = { username: 'admin', password: 'adminpass', email: 'admin@localhost' };
  before(async () => {
    srv = await startTestServer({
      overrides: { standalone: false, signup_enabled: false, admin_username: admin.username, admin_password: admin.password },
    });
  });
  after(async () => {
    await srv?.destroy();
  });

  it('the configured admin exists and can log in (GET /v1/users/ and the docker login flow)', async () => {
    const record = await srv.running.services.users.get(admin.username);
    assert.ok(record, 'the admin account was created at start');
    assert.equal(record.admin, true);
    const res = await checkLogin(srv.url, admin);
    assert.equal(res.status, 200, res.text);
    assert.equal((await checkLogin(srv.url, { ...admin, password: 'adminpasS' })).status, 401);
    assert.equal(await login(srv.url, admin), 'logged-in');
    const drcResult = await drcLogin({ indexName: srv.url, ...admin });
    assert.equal(drcResult.status, 'Login Succeeded');
  });

  it('a new sign-up is refused (403) and creates nothing', async () => {
    const a = account();
    const res = await signup(srv.url, a);
    assertJsonError(res, 403, 'sign-up disabled');
    assert.equal(await srv.running.services.users.get(a.username), null);
    await assert.rejects(login(srv.url, a), (err: unknown) => err instanceof Docker1Error && err.step === 'POST /v1/users/' && err.status === 403);
    await assert.rejects(drcLogin({ indexName: srv.url, ...a }), /403/);
  });

  it('an existing account still gets the 400 "exists" string, so docker login works', async () => {
    const a = account();
    await srv.running.services.users.upsert({ ...a, admin: false });
    const res = await signup(srv.url, a);
    assert.equal(res.status, 400, res.text);
    assert.equal(res.text, JSON.stringify(EXISTS));
    assert.equal(await login(srv.url, a), 'logged-in');
    assert.equal((await drcLogin({ indexName: srv.url, ...a })).status, 'Login Succeeded');
    await assert.rejects(drcLogin({ indexName: srv.url, ...a, password: 'wrong-password' }), /Wrong login\/password/);
  });

  it('an imported account whose password a new account could not have still logs in with docker login', async () => {
    // htpasswd import keeps any bcrypt password, even one shorter than sign-up allows.
    const name = account().username;
    const hash = bcrypt.hashSync('abc', 4);
    const { imported } = await srv.running.services.users.importHtpasswd(`${name}:${hash}\n`);
    assert.deepEqual(imported, [name]);
    // The CLI sends whatever e-mail the user typed (here none that is valid).
    const res = await signup(srv.url, { username: name, password: 'abc', email: '' });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.text, JSON.stringify(EXISTS));
    assert.equal(await login(srv.url, { username: name, password: 'abc', email: `${name}@localhost` }), 'logged-in');
    await assert.rejects(login(srv.url, { username: name, password: 'abd', email: '' }), (err: unknown) => err instanceof Docker1Error && err.status === 401);
  });

  it('the admin may change another account; the account owner then logs in with the new password', async () => {
    const a = account();
    await srv.running.services.users.upsert({ ...a, admin: false });
    const res = await updateUser(srv.url, a.username, { password: 'reset-by-admin' }, admin);
    assert.equal(res.status, 204, res.text);
    assert.equal((await checkLogin(srv.url, a)).status, 401);
    assert.equal((await checkLogin(srv.url, { username: a.username, password: 'reset-by-admin' })).status, 200);
    // An unknown account: 404, not a silent success.
    assertJsonError(await updateUser(srv.url, 'nobody_at_all', { password: 'whatever1' }, admin), 404, 'unknown account');
  });
});
