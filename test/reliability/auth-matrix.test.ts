/**
 * Authorization matrix: every route that writes or reads private data × every kind of
 * caller that must not get in (anonymous, wrong password, inactive account, another user,
 * a read collaborator, a token for another repository, a read token used for a write, an
 * expired token, a forged token), plus the rightful owner last, so that every row also
 * shows the route working. Expected statuses follow the README ("Accounts, tokens,
 * permissions", "Statuses common to all routes") and src/services/access.ts. After the
 * hostile cells of each row the repository is unchanged.
 *
 * Then the login throttle (src/services/throttle.ts): 429 + Retry-After after too many
 * wrong passwords per account and per address, a burst of parallel guesses cannot overrun
 * the limit, a success resets the account's count, and nobody is locked out for longer
 * than the window.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { parseRepoPath } from '../../src/domain/names.js';
import { InMemoryLoginFailures } from '../../src/store/login-failures.js';
import { LoginThrottle } from '../../src/services/throttle.js';
import { TokenService } from '../../src/services/tokens.js';
import { basicAuth, login, push, tokenAuth, type Credentials, type Docker1Image } from '../helpers/docker1.js';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';
import { imageJson, payloadChecksum } from '../helpers/v1.js';
import { send, type HttpResult } from './crash-harness.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Who =
  | 'anonymous'
  | 'wrong password'
  | 'inactive user'
  | 'other user'
  | 'read collaborator'
  | 'token for another repo'
  | 'read token for a write'
  | 'expired token'
  | 'forged token'
  | 'owner';

const WHO: Who[] = [
  'anonymous',
  'wrong password',
  'inactive user',
  'other user',
  'read collaborator',
  'token for another repo',
  'read token for a write',
  'expired token',
  'forged token',
  'owner',
];

/** Expected status per caller; `search` rows check whether the private repository is listed. */
type Expect = Record<Who, number>;

/** Columns shared by most rows: bad credentials are 401, an inactive account 403, wherever. */
const BAD = { 'wrong password': 401, 'inactive user': 403, 'expired token': 401, 'forged token': 401 } as const;

const PRIVATE_READ: Omit<Expect, 'owner'> = {
  anonymous: 401,
  ...BAD,
  'other user': 403,
  'read collaborator': 200,
  'token for another repo': 403,
  'read token for a write': 200,
};
/**
 * Images of a private repository: another user is told they do not exist, and so is a token
 * of another repository (a token sees only its repository's images).
 */
const IMAGE_READ: Omit<Expect, 'owner'> = { ...PRIVATE_READ, 'other user': 404, 'token for another repo': 404 };
const WRITE: Omit<Expect, 'owner'> = {
  anonymous: 401,
  ...BAD,
  'other user': 403,
  'read collaborator': 403,
  'token for another repo': 403,
  'read token for a write': 403,
};
/** Settings, collaborators, repository delete: admin on the repository, real credentials. */
const ADMIN = WRITE;
/** Registry-wide admin routes: not even the owner of a repository. */
const SITE_ADMIN: Expect = { ...WRITE, owner: 403 };

interface Row {
  name: string;
  method: string;
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  expect: Expect;
  /** GET /v1/search: which callers see the private repository in the results. */
  listsPrivate?: Partial<Record<Who, boolean>>;
}

describe('authorization matrix: every private route × every caller that must not get in', () => {
  let srv: TestServer;
  const owner: Credentials = { username: 'owner1', password: 'owner-pass' };
  const reader: Credentials = { username: 'reader', password: 'reader-pass' };
  const sleepy: Credentials = { username: 'sleepy', password: 'sleepy-pass' };
  const mallory: Credentials = { username: 'mallory', password: 'mallory-pass' };
  const helper: Credentials = { username: 'helper', password: 'helper-pass' };
  const admin: Credentials = { username: 'admin', password: 'adminpass' };
  const P = 'owner1/secret';
  const Q = 'owner1/other';
  const chain: Docker1Image[] = [];
  let pending: Docker1Image;
  const tokens: Record<string, string> = {};
  let cells = 0;

  const authFor = (who: Who): Record<string, string> => {
    switch (who) {
      case 'anonymous':
        return {};
      case 'wrong password':
        return { Authorization: basicAuth({ username: owner.username, password: 'not-the-password' }) };
      case 'inactive user':
        return { Authorization: basicAuth(sleepy) };
      case 'other user':
        return { Authorization: basicAuth(mallory) };
      case 'read collaborator':
        return { Authorization: basicAuth(reader) };
      case 'token for another repo':
        return { Authorization: tokenAuth(tokens.other) };
      case 'read token for a write':
        return { Authorization: tokenAuth(tokens.read) };
      case 'expired token':
        return { Authorization: tokenAuth(tokens.expired) };
      case 'forged token':
        return { Authorization: tokenAuth(tokens.forged) };
      case 'owner':
        return { Authorization: basicAuth(owner) };
    }
  };

  async function call(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<HttpResult> {
    const bytes = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    return send(srv.url, method, path, { headers: { 'Content-Type': 'application/json', ...headers }, body: bytes });
  }

  /** What a hostile caller could have changed: tags, image list, properties, collaborators, the pending image. */
  async function fingerprint(): Promise<string> {
    const auth = { Authorization: basicAuth(admin) };
    const parts = await Promise.all([
      call('GET', `/v1/repositories/${P}/tags`, auth),
      call('GET', `/v1/repositories/${P}/images`, auth),
      call('GET', `/v1/repositories/${P}/properties`, auth),
      call('GET', `/v1/repositories/${P}/collaborators`, auth),
      call('GET', `/v1/images/${pending.id}/json`, auth),
      call('GET', `/v1/repositories/${Q}/tags`, auth),
    ]);
    return parts.map((r) => `${r.status} ${r.body.toString()}`).join('\n');
  }

  before(async () => {
    srv = await startTestServer({
      overrides: {
        standalone: false,
        admin_username: admin.username,
        admin_password: admin.password,
        // The matrix sends a wrong password on every row: the throttle is tested below.
        login_max_failures: 1_000_000,
        login_max_failures_per_address: 1_000_000,
      },
    });
    for (const user of [owner, reader, sleepy, mallory, helper]) {
      assert.equal(await login(srv.url, { ...user, email: `${user.username}@example.test` }), 'created');
    }
    const a: Docker1Image = { id: newImageId(), layer: randomBytes(3000) };
    const b: Docker1Image = { id: newImageId(), parent: a.id, layer: randomBytes(2000) };
    chain.push(a, b);
    await push(srv.url, owner, P, 'latest', chain);
    await push(srv.url, owner, Q, 'latest', [{ id: newImageId(), layer: randomBytes(500) }]);
    const ownerAuth = { Authorization: basicAuth(owner) };
    assert.equal((await call('PUT', `/v1/repositories/${P}/properties`, ownerAuth, { access: 'private' })).status, 200);
    assert.equal((await call('PUT', `/v1/repositories/${P}/collaborators/reader`, ownerAuth, { permission: 'read' })).status, 200);
    // The inactive account holds write on the repository: being inactive must override it.
    assert.equal((await call('PUT', `/v1/repositories/${P}/collaborators/sleepy`, ownerAuth, { permission: 'write' })).status, 200);
    await srv.running.services.users.setActive('sleepy', false);
    // A push in progress: listed in P, json uploaded, no layer yet.
    pending = { id: newImageId(), parent: b.id, layer: randomBytes(1500) };
    assert.equal((await call('PUT', `/v1/repositories/${P}/`, ownerAuth, [{ id: pending.id }])).status, 200);
    assert.equal((await call('PUT', `/v1/images/${pending.id}/json`, ownerAuth, imageJson(pending))).status, 200);

    const readStart = await call('GET', `/v1/repositories/${P}/images`, { ...ownerAuth, 'X-Docker-Token': 'true' });
    tokens.read = String(readStart.headers['x-docker-token']);
    const otherStart = await call('PUT', `/v1/repositories/${Q}/`, { ...ownerAuth, 'X-Docker-Token': 'true' }, []);
    tokens.other = String(otherStart.headers['x-docker-token']);
    assert.match(tokens.read, /access=read$/);
    assert.match(tokens.other, /access=write$/);
    const past = new TokenService(TokenService.loadSecret(srv.root), 10, () => Date.now() - 3_600_000);
    tokens.expired = past.issue(owner.username, parseRepoPath(P), 'write');
    tokens.forged = new TokenService(randomBytes(32), 3600).issue(owner.username, parseRepoPath(P), 'write');
  });
  after(async () => {
    await srv?.destroy();
    console.log(`auth matrix: ${cells} cells checked`);
  });

  it('answers every cell as the permission rules say, and hostile callers change nothing', async () => {
    const [base, top] = chain;
    const rows: Row[] = [
      { name: 'image json', method: 'GET', path: `/v1/images/${top.id}/json`, expect: { ...IMAGE_READ, owner: 200 } },
      { name: 'image layer', method: 'GET', path: `/v1/images/${top.id}/layer`, expect: { ...IMAGE_READ, owner: 200 } },
      { name: 'image layer (HEAD)', method: 'HEAD', path: `/v1/images/${top.id}/layer`, expect: { ...IMAGE_READ, owner: 200 } },
      { name: 'image ancestry', method: 'GET', path: `/v1/images/${top.id}/ancestry`, expect: { ...IMAGE_READ, owner: 200 } },
      { name: 'tags', method: 'GET', path: `/v1/repositories/${P}/tags`, expect: { ...PRIVATE_READ, owner: 200 } },
      { name: 'tag', method: 'GET', path: `/v1/repositories/${P}/tags/latest`, expect: { ...PRIVATE_READ, owner: 200 } },
      { name: 'tag json', method: 'GET', path: `/v1/repositories/${P}/tags/latest/json`, expect: { ...PRIVATE_READ, owner: 200 } },
      { name: 'repository json', method: 'GET', path: `/v1/repositories/${P}/json`, expect: { ...PRIVATE_READ, owner: 200 } },
      { name: 'properties', method: 'GET', path: `/v1/repositories/${P}/properties`, expect: { ...PRIVATE_READ, owner: 200 } },
      { name: 'pull start (image list + token)', method: 'GET', path: `/v1/repositories/${P}/images`, headers: { 'X-Docker-Token': 'true' }, expect: { ...PRIVATE_READ, owner: 200 } },
      {
        name: 'token check (PUT auth)',
        method: 'PUT',
        path: `/v1/repositories/${P}/auth`,
        // Only a token is checked here: Basic credentials, even the owner's, are "no token".
        expect: { ...PRIVATE_READ, 'other user': 401, 'read collaborator': 401, owner: 401 },
      },
      { name: 'collaborators', method: 'GET', path: `/v1/repositories/${P}/collaborators`, expect: { ...ADMIN, owner: 200 } },
      {
        name: 'search',
        method: 'GET',
        path: '/v1/search?q=secret',
        expect: { anonymous: 200, ...BAD, 'other user': 200, 'read collaborator': 200, 'token for another repo': 200, 'read token for a write': 200, owner: 200 },
        listsPrivate: { anonymous: false, 'other user': false, 'read collaborator': true, 'token for another repo': false, 'read token for a write': true, owner: true },
      },
      {
        name: 'login (GET /v1/users/)',
        method: 'GET',
        path: '/v1/users/',
        expect: { anonymous: 401, ...BAD, 'other user': 200, 'read collaborator': 200, 'token for another repo': 401, 'read token for a write': 401, owner: 200 },
      },
      {
        name: "update the owner's account",
        method: 'PUT',
        path: `/v1/users/${owner.username}/`,
        body: { email: 'owner1@example.test' },
        expect: { ...WRITE, 'token for another repo': 401, 'read token for a write': 401, owner: 204 },
      },
      { name: 'PUT json of an image the repository holds', method: 'PUT', path: `/v1/images/${pending.id}/json`, body: imageJson(pending), expect: { ...WRITE, owner: 200 } },
      { name: 'PUT layer', method: 'PUT', path: `/v1/images/${pending.id}/layer`, body: pending.layer, expect: { ...WRITE, owner: 200 } },
      {
        name: 'PUT checksum',
        method: 'PUT',
        path: `/v1/images/${pending.id}/checksum`,
        headers: { 'X-Docker-Checksum-Payload': payloadChecksum(imageJson(pending), pending.layer) },
        expect: { ...WRITE, owner: 200 },
      },
      { name: 'PUT tag', method: 'PUT', path: `/v1/repositories/${P}/tags/v2`, body: base.id, expect: { ...WRITE, owner: 200 } },
      { name: 'push start', method: 'PUT', path: `/v1/repositories/${P}/`, body: [], expect: { ...WRITE, owner: 200 } },
      { name: 'push end', method: 'PUT', path: `/v1/repositories/${P}/images`, body: [], expect: { ...WRITE, owner: 204 } },
      { name: 'PUT properties', method: 'PUT', path: `/v1/repositories/${P}/properties`, body: { access: 'private' }, expect: { ...ADMIN, owner: 200 } },
      { name: 'add a collaborator', method: 'PUT', path: `/v1/repositories/${P}/collaborators/${helper.username}`, body: { permission: 'read' }, expect: { ...ADMIN, owner: 200 } },
      { name: 'remove a collaborator', method: 'DELETE', path: `/v1/repositories/${P}/collaborators/${helper.username}`, expect: { ...ADMIN, owner: 200 } },
      { name: 'garbage collection', method: 'POST', path: '/_admin/gc?dry_run=true', expect: SITE_ADMIN },
      { name: 'fsck', method: 'POST', path: '/_admin/fsck', expect: SITE_ADMIN },
      { name: 'delete an image', method: 'DELETE', path: `/v1/images/${base.id}`, expect: SITE_ADMIN },
      { name: 'delete a tag', method: 'DELETE', path: `/v1/repositories/${P}/tags/v2`, expect: { ...WRITE, owner: 200 } },
      { name: 'delete token (DELETE …/images)', method: 'DELETE', path: `/v1/repositories/${P}/images`, headers: { 'X-Docker-Token': 'true' }, expect: { ...ADMIN, owner: 204 } },
      { name: 'delete, Index step (DELETE …/ + X-Docker-Token)', method: 'DELETE', path: `/v1/repositories/${P}/`, headers: { 'X-Docker-Token': 'true' }, expect: { ...ADMIN, owner: 202 } },
      { name: 'delete the repository', method: 'DELETE', path: `/v1/repositories/${P}/`, expect: { ...ADMIN, owner: 200 } },
    ];
    const mismatches: string[] = [];
    for (const row of rows) {
      const before = await fingerprint();
      for (const who of WHO) {
        if (who === 'owner') {
          // Hostile callers changed nothing.
          assert.equal(await fingerprint(), before, `${row.name}: a refused caller changed the repository`);
        }
        const res = await call(row.method, row.path, { ...authFor(who), ...(row.headers ?? {}) }, row.body);
        cells += 1;
        const expected = row.expect[who];
        if (res.status !== expected) {
          mismatches.push(`${row.method} ${row.path} (${row.name}) as ${who}: expected ${expected}, got ${res.status} ${res.body.toString().slice(0, 120)}`);
          continue;
        }
        if (res.status >= 400 && row.method !== 'HEAD') {
          assert.match(res.body.toString(), /^\{"error":"/, `${row.name} as ${who}: a JSON error body`);
        }
        if (row.listsPrivate && res.status === 200) {
          const found = (JSON.parse(res.body.toString()) as { results: Array<{ name: string }> }).results.some((r) => r.name === P);
          const shouldList = row.listsPrivate[who] ?? false;
          if (found !== shouldList) mismatches.push(`search as ${who}: the private repository is ${found ? '' : 'not '}listed`);
        }
      }
    }
    assert.deepEqual(mismatches, [], `${mismatches.length} cells differ:\n${mismatches.join('\n')}`);
    assert.equal(cells, rows.length * WHO.length);
    // The admin-only rows work for an admin.
    const adminAuth = { Authorization: basicAuth(admin) };
    assert.equal((await call('POST', '/_admin/gc?dry_run=true', adminAuth)).status, 200);
    assert.equal((await call('POST', '/_admin/fsck', adminAuth)).status, 200);
  });
});

describe('login throttle: 429 + Retry-After per account and per address, never a lock-out for good', () => {
  const pass = (username: string): Credentials => ({ username, password: `${username}-pass` });
  const wrong = (username: string): Credentials => ({ username, password: 'wrong-password' });
  const getUsers = (base: string, who: Credentials) => send(base, 'GET', '/v1/users/', { headers: { Authorization: basicAuth(who) } });

  function assertThrottled(res: HttpResult, windowSeconds: number, what: string): void {
    assert.equal(res.status, 429, `${what}: ${res.status} ${res.body.toString()}`);
    const retryAfter = Number(res.headers['retry-after']);
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= windowSeconds, `${what}: Retry-After ${res.headers['retry-after']}`);
    assert.match(JSON.parse(res.body.toString()).error, /Too many failed logins/);
  }

  describe('counting (3 per account, 12 per address, 300 s window)', () => {
    let srv: TestServer;
    let erinToken = '';
    before(async () => {
      srv = await startTestServer({ overrides: { standalone: false, login_max_failures: 3, login_max_failures_per_address: 12, login_window_seconds: 300 } });
      for (const name of ['alice', 'bobby', 'carla', 'david', 'erin']) {
        assert.equal(await login(srv.url, { ...pass(name), email: `${name}@example.test` }), 'created');
      }
      // A read token for erin's repository, taken while nothing is refused.
      await push(srv.url, pass('erin'), 'erin/app', 'latest', [{ id: newImageId(), layer: randomBytes(100) }]);
      const start = await send(srv.url, 'GET', '/v1/repositories/erin/app/images', { headers: { Authorization: basicAuth(pass('erin')), 'X-Docker-Token': 'true' } });
      erinToken = String(start.headers['x-docker-token']);
    });
    after(async () => {
      await srv?.destroy();
    });

    it('after 3 wrong passwords the account is refused (even with the right one); others are not', async () => {
      for (let i = 0; i < 3; i++) assert.equal((await getUsers(srv.url, wrong('alice'))).status, 401);
      assertThrottled(await getUsers(srv.url, pass('alice')), 300, 'alice, right password, after 3 failures');
      assertThrottled(await getUsers(srv.url, wrong('alice')), 300, 'alice, wrong password');
      // The throttle guards every route that checks a password, not only the login route.
      assertThrottled(await send(srv.url, 'GET', '/v1/repositories/alice/none/tags', { headers: { Authorization: basicAuth(pass('alice')) } }), 300, 'alice on a registry route');
      assert.equal((await getUsers(srv.url, pass('bobby'))).status, 200, 'another account from the same address logs in');
    });

    it('a successful login resets the account’s count', async () => {
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 2; i++) assert.equal((await getUsers(srv.url, wrong('carla'))).status, 401, `round ${round}`);
        assert.equal((await getUsers(srv.url, pass('carla'))).status, 200, `round ${round}: 2 failures, then the right password`);
      }
    });

    it('a burst of parallel guesses cannot overrun the limit: exactly 3 are checked', async () => {
      const answers = await Promise.all(Array.from({ length: 10 }, () => getUsers(srv.url, wrong('david'))));
      const statuses = answers.map((r) => r.status).sort();
      assert.deepEqual(statuses, [401, 401, 401, 429, 429, 429, 429, 429, 429, 429]);
    });

    it('too many failures from one address refuse every account from it; tokens keep working', async () => {
      // So far 3 (alice) + 6 (carla) + 3 (david) = 12 failures from this address.
      assertThrottled(await getUsers(srv.url, pass('erin')), 300, 'erin, who never failed, from a refused address');
      assertThrottled(await getUsers(srv.url, wrong('nobody')), 300, 'an unknown account from a refused address');
      const tags = await send(srv.url, 'GET', '/v1/repositories/erin/app/tags', { headers: { Authorization: tokenAuth(erinToken) } });
      assert.equal(tags.status, 200, 'a token involves no password: not throttled');
    });
  });

  describe('the window passes (1 s window)', () => {
    let srv: TestServer;
    before(async () => {
      srv = await startTestServer({ overrides: { standalone: false, login_max_failures: 2, login_window_seconds: 1 } });
      assert.equal(await login(srv.url, { ...pass('frank'), email: 'frank@example.test' }), 'created');
    });
    after(async () => {
      await srv?.destroy();
    });

    it('the rightful user gets in again once the window has passed', async () => {
      for (let i = 0; i < 2; i++) assert.equal((await getUsers(srv.url, wrong('frank'))).status, 401);
      const seen: number[] = [];
      let res = await getUsers(srv.url, pass('frank'));
      // Bounded: 40 tries, waiting what Retry-After says (the window is 1 s).
      for (let i = 0; i < 40 && res.status === 429; i++) {
        assertThrottled(res, 1, 'frank while refused');
        seen.push(res.status);
        await sleep(Number(res.headers['retry-after']) * 1000);
        res = await getUsers(srv.url, pass('frank'));
      }
      assert.equal(res.status, 200, `frank logs in after the window (refused ${seen.length} times first)`);
    });
  });
});

describe('LoginThrottle (a clock of its own)', () => {
  const refusal = async (fn: () => Promise<void>): Promise<number | null> => {
    try {
      await fn();
      return null;
    } catch (err) {
      assert.equal((err as { code?: string }).code, 'TOO_MANY_REQUESTS');
      return (err as { details: { retryAfter: number } }).details.retryAfter;
    }
  };

  it('a sliding window: refused from the limit on, until the oldest counted failure is window-old', async () => {
    let now = 1_000_000;
    const t = new LoginThrottle({ maxFailuresPerUser: 3, maxFailuresPerAddress: 100, windowMs: 10_000 }, () => now);
    for (let i = 0; i < 3; i++) {
      assert.equal(await refusal(() => t.check('u', 'a')), null);
      await t.failure('u', 'a');
      now += 1000;
    }
    // Failures at 0 s, 1 s, 2 s; now 3 s: free again at 10 s (7 s from now).
    assert.equal(await refusal(() => t.check('u', 'a')), 7);
    now += 6500;
    assert.equal(await refusal(() => t.check('u', 'a')), 1, 'Retry-After is rounded up');
    now += 500;
    assert.equal(await refusal(() => t.check('u', 'a')), null, 'the first failure left the window');
    await t.failure('u', 'a');
    assert.equal(await refusal(() => t.check('u', 'a')), 1, 'three failures in the window again (1 s, 2 s, 10 s)');
    await t.success('u');
    assert.equal(await refusal(() => t.check('u', 'a')), null, 'a success clears the account');
  });

  it('per address, whatever the account; a success does not clear the address', async () => {
    const now = 5_000_000;
    const t = new LoginThrottle({ maxFailuresPerUser: 100, maxFailuresPerAddress: 4, windowMs: 60_000 }, () => now);
    for (const user of ['a1', 'a2', 'a3', 'a4']) await t.failure(user, '10.0.0.1');
    await t.success('a1');
    assert.equal(await refusal(() => t.check('someone', '10.0.0.1')), 60);
    assert.equal(await refusal(() => t.check('someone', '10.0.0.2')), null, 'another address is not refused');
    assert.equal(await refusal(() => t.check('someone', undefined)), null);
  });

  it('memory stays bounded', async () => {
    const failures = new InMemoryLoginFailures(200);
    const t = new LoginThrottle({ maxFailuresPerUser: 5, maxFailuresPerAddress: 5, windowMs: 60_000 }, () => 1, failures);
    for (let i = 0; i < 1000; i++) await t.failure(`user${i}`, `addr${i}`);
    assert.ok(failures.size <= 200, String(failures.size));
    await t.failure('x'.repeat(100_000), 'a');
    assert.ok(failures.size <= 200);
    assert.equal((await failures.recentFailures(`user:${'x'.repeat(64)}…`, 0, 5)).length, 1, 'a long name is one key of bounded length');
  });
});
