/**
 * SessionService and KeyRing on their own clock, on a real metadata store: expiry, logout,
 * forgery, accounts that change, and keys per purpose.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { RegistryError } from '../../src/domain/errors.js';
import { KeyRing } from '../../src/services/keyring.js';
import { SessionService } from '../../src/services/sessions.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('SessionService', () => {
  let srv: TestServer;
  let now = Date.now();
  let sessions: SessionService;
  const keys = new KeyRing(randomBytes(32));

  before(async () => {
    srv = await startTestServer({ overrides: { standalone: false } });
    await srv.running.services.users.upsert({ username: 'sessuser', password: 'sess-secret-1', email: 's@example.test', admin: false });
    sessions = new SessionService(keys, srv.running.services.users, 600, () => now);
  });

  after(async () => {
    await srv?.destroy();
  });

  const user = async () => (await srv.running.services.users.get('sessuser'))!;

  test('a session opens until its expiry, not after', async () => {
    const issued = sessions.issue(await user());
    assert.equal(issued.maxAgeSeconds, 600);
    assert.equal((await sessions.open(issued.value))?.user?.name, 'sessuser');
    now += 599_000;
    assert.ok(await sessions.open(issued.value));
    now += 1_000;
    assert.equal(await sessions.open(issued.value), null);
  });

  test('every session has its own id', async () => {
    const a = sessions.issue(await user());
    const b = sessions.issue(await user());
    assert.notEqual(a.session.id, b.session.id);
    assert.notEqual(a.value, b.value);
    assert.equal((await sessions.open(a.value))?.id, a.session.id);
  });

  test('forged, truncated, re-signed with another key or garbage values are refused', async () => {
    const issued = sessions.issue(await user());
    const [payload, mac] = issued.value.split('.');
    const other = new SessionService(new KeyRing(randomBytes(32)), srv.running.services.users, 600, () => now).issue(await user());
    for (const value of [
      undefined,
      '',
      payload,
      `${payload}.`,
      `${payload}.${mac.slice(1)}`,
      `${payload}x.${mac}`,
      other.value,
      `${Buffer.from('{"s":"x","u":"sessuser","e":99999999999,"p":""}').toString('base64url')}.${mac}`,
      'a'.repeat(5000),
      '..',
    ]) {
      assert.equal(await sessions.open(value), null, String(value).slice(0, 40));
    }
  });

  test('a logout ends the session; other sessions of the same account go on', async () => {
    const one = sessions.issue(await user());
    const two = sessions.issue(await user());
    await sessions.end(one.session);
    assert.equal(await sessions.open(one.value), null);
    assert.ok(await sessions.open(two.value));
  });

  test('a deactivated account or a new password ends its sessions', async () => {
    const issued = sessions.issue(await user());
    await srv.running.services.users.setActive('sessuser', false);
    assert.equal(await sessions.open(issued.value), null);
    await srv.running.services.users.setActive('sessuser', true);
    assert.ok(await sessions.open(issued.value));
    await srv.running.services.users.update('sessuser', { password: 'sess-secret-2' });
    assert.equal(await sessions.open(issued.value), null);
    assert.ok(await sessions.open(sessions.issue(await user()).value));
  });

  test('login checks the password (throttled like every password check) and issues a new session', async () => {
    await assert.rejects(sessions.login('sessuser', 'wrong', '10.0.0.1'), (err: RegistryError) => err.code === 'UNAUTHORIZED');
    const issued = await sessions.login(' SessUser ', 'sess-secret-2', '10.0.0.1');
    assert.equal((await sessions.open(issued.value))?.user?.name, 'sessuser');
  });
});

describe('KeyRing', () => {
  test('one key per purpose: a signature for one label never verifies for another', () => {
    const ring = new KeyRing(randomBytes(32));
    const mac = ring.sign('web-session/v1', 'data');
    assert.equal(ring.verify('web-session/v1', 'data', mac), true);
    assert.equal(ring.verify('web-csrf/v1', 'data', mac), false);
    assert.equal(ring.verify('web-session/v1', 'datA', mac), false);
    assert.equal(new KeyRing(randomBytes(32)).verify('web-session/v1', 'data', mac), false);
    assert.notDeepEqual(ring.key('a'), ring.key('b'));
    assert.equal(ring.key('a'), ring.key('a'));
  });
});
