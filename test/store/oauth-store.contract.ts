/**
 * The behaviour of the OAuth part of every MetadataStore (OAuthStore in
 * src/store/metadata/ports.ts). Not a test entry point: a backend's own *.test.ts
 * calls `oauthStoreContract` with the same factory as `metadataStoreContract`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { OAuthClientRecord, OAuthCodeRecord, OAuthGrantRecord, OAuthTokenRecord } from '../../src/domain/records.js';
import type { MetadataStore } from '../../src/store/metadata/metadata-store.js';
import type { MetadataStoreFactory, MetadataStoreFixture } from './metadata-store.contract.js';

const hex = (bytes = 32) => randomBytes(bytes).toString('hex');
const T0 = '2030-01-01T00:00:00.000Z';
const T1 = '2030-01-01T00:01:00.000Z';
const LATER = '2031-01-01T00:00:00.000Z';

function makeClient(extra: Partial<OAuthClientRecord> = {}): OAuthClientRecord {
  return { id: hex(16), name: 'CI app', secretHash: hex(), redirectUris: ['https://app.example/cb', 'http://127.0.0.1:9/cb?x=1'], createdAt: T0, ...extra };
}

function makeCode(extra: Partial<OAuthCodeRecord> = {}): OAuthCodeRecord {
  return {
    hash: hex(),
    clientId: hex(16),
    user: 'alice',
    redirectUri: 'https://app.example/cb',
    scopes: ['profile_read'],
    expiresAt: T1,
    codeChallenge: null,
    codeChallengeMethod: null,
    grantId: hex(16),
    usedAt: null,
    ...extra,
  };
}

function makeGrant(extra: Partial<OAuthGrantRecord> = {}): OAuthGrantRecord {
  return { id: hex(16), user: 'alice', clientId: hex(16), scopes: ['profile_read', 'repo_read'], createdAt: T0, revokedAt: null, ...extra };
}

function makeToken(grant: OAuthGrantRecord, kind: 'access' | 'refresh', extra: Partial<OAuthTokenRecord> = {}): OAuthTokenRecord {
  return { hash: hex(), kind, grantId: grant.id, clientId: grant.clientId, user: grant.user, scopes: grant.scopes, expiresAt: LATER, rotatedAt: null, ...extra };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}

export function oauthStoreContract(name: string, factory: MetadataStoreFactory): void {
  describe(`OAuthStore contract: ${name}`, () => {
    let fixture: MetadataStoreFixture;
    let store: MetadataStore;

    beforeEach(async () => {
      fixture = await factory();
      store = fixture.store;
    });

    afterEach(async () => {
      await fixture.cleanup();
    });

    describe('clients', () => {
      it('put, get, list by id, delete (false the second time)', async () => {
        const a = makeClient({ id: '0'.repeat(32) });
        const b = makeClient({ id: 'f'.repeat(32), name: 'other' });
        assert.equal(await store.getOAuthClient(a.id), null);
        await store.putOAuthClient(b);
        await store.putOAuthClient(a);
        assert.deepEqual(await store.getOAuthClient(a.id), a);
        assert.deepEqual(await collect(store.listOAuthClients()), [a, b]);
        assert.equal(await store.deleteOAuthClient(a.id), true);
        assert.equal(await store.deleteOAuthClient(a.id), false);
        assert.equal(await store.getOAuthClient(a.id), null);
        assert.deepEqual(await collect(store.listOAuthClients()), [b]);
      });
    });

    describe('codes', () => {
      it('a code is used once: the first use sees usedAt null, later ones see it set and change nothing', async () => {
        const code = makeCode();
        assert.equal(await store.useOAuthCode(code.hash, T0), null, 'unknown code');
        await store.putOAuthCode(code);
        assert.deepEqual(await store.getOAuthCode(code.hash), code);
        assert.deepEqual(await store.useOAuthCode(code.hash, T0), code);
        assert.deepEqual(await store.useOAuthCode(code.hash, T1), { ...code, usedAt: T0 });
        assert.deepEqual(await store.getOAuthCode(code.hash), { ...code, usedAt: T0 });
      });

      it('of 20 concurrent uses of one code exactly one wins', async () => {
        const code = makeCode();
        await store.putOAuthCode(code);
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.useOAuthCode(code.hash, `2030-01-01T00:00:${String(i).padStart(2, '0')}.000Z`)));
        assert.equal(results.filter((r) => r?.usedAt === null).length, 1);
      });
    });

    describe('grants and tokens', () => {
      it('issueOAuthTokens writes the grant and its tokens; listOAuthGrants lists one user only', async () => {
        const grant = makeGrant();
        const other = makeGrant({ user: 'bobby' });
        const access = makeToken(grant, 'access');
        const refresh = makeToken(grant, 'refresh');
        assert.equal(await store.issueOAuthTokens(grant, [access, refresh]), true);
        assert.equal(await store.issueOAuthTokens(other, [makeToken(other, 'access')]), true);
        assert.deepEqual(await store.getOAuthGrant('alice', grant.id), grant);
        assert.equal(await store.getOAuthGrant('bobby', grant.id), null);
        assert.deepEqual(await store.getOAuthToken(access.hash), access);
        assert.deepEqual(await store.getOAuthToken(refresh.hash), refresh);
        assert.deepEqual(await collect(store.listOAuthGrants('alice')), [grant]);
        // `alic` is a prefix of `alice`: the listing must not spill over.
        assert.deepEqual(await collect(store.listOAuthGrants('alic')), []);
      });

      it('rotateOAuthToken marks a refresh token once; access tokens and unknown tokens are refused', async () => {
        const grant = makeGrant();
        const access = makeToken(grant, 'access');
        const refresh = makeToken(grant, 'refresh');
        await store.issueOAuthTokens(grant, [access, refresh]);
        assert.equal(await store.rotateOAuthToken(access.hash, T1), false);
        assert.equal(await store.rotateOAuthToken(hex(), T1), false);
        const results = await Promise.all(Array.from({ length: 10 }, () => store.rotateOAuthToken(refresh.hash, T1)));
        assert.equal(results.filter(Boolean).length, 1, 'one of ten concurrent rotations wins');
        assert.deepEqual(await store.getOAuthToken(refresh.hash), { ...refresh, rotatedAt: T1 });
      });

      it('deleteOAuthToken removes one token (false the second time)', async () => {
        const grant = makeGrant();
        const access = makeToken(grant, 'access');
        const refresh = makeToken(grant, 'refresh');
        await store.issueOAuthTokens(grant, [access, refresh]);
        assert.equal(await store.deleteOAuthToken(access.hash), true);
        assert.equal(await store.deleteOAuthToken(access.hash), false);
        assert.equal(await store.getOAuthToken(access.hash), null);
        assert.deepEqual(await store.getOAuthToken(refresh.hash), refresh);
      });

      it('revokeOAuthGrant deletes every token of the grant, keeps the grant as revoked, and no token is issued to it again', async () => {
        const grant = makeGrant();
        const keep = makeGrant();
        const tokens = [makeToken(grant, 'access'), makeToken(grant, 'refresh'), makeToken(grant, 'refresh', { rotatedAt: T0 })];
        const kept = makeToken(keep, 'access');
        await store.issueOAuthTokens(grant, tokens);
        await store.issueOAuthTokens(keep, [kept]);
        assert.equal(await store.revokeOAuthGrant(grant, T1), true);
        assert.equal(await store.revokeOAuthGrant(grant, T1), false, 'already revoked');
        for (const token of tokens) assert.equal(await store.getOAuthToken(token.hash), null);
        assert.deepEqual(await store.getOAuthGrant('alice', grant.id), { ...grant, revokedAt: T1 });
        assert.deepEqual(await store.getOAuthToken(kept.hash), kept, 'another grant keeps its tokens');
        const late = makeToken(grant, 'access');
        assert.equal(await store.issueOAuthTokens(grant, [late]), false);
        assert.equal(await store.getOAuthToken(late.hash), null);
        assert.deepEqual(await store.getOAuthGrant('alice', grant.id), { ...grant, revokedAt: T1 }, 'the grant stays revoked');
      });

      it('revoking an unknown grant (a code exchange still in flight) leaves it revoked: its tokens are refused later', async () => {
        const grant = makeGrant();
        assert.equal(await store.revokeOAuthGrant(grant, T1), false);
        assert.deepEqual(await store.getOAuthGrant('alice', grant.id), { ...grant, scopes: [], createdAt: T1, revokedAt: T1 });
        const token = makeToken(grant, 'access');
        assert.equal(await store.issueOAuthTokens(grant, [token]), false);
        assert.equal(await store.getOAuthToken(token.hash), null);
        assert.equal(await store.revokeOAuthGrant(grant, T1), false);
      });

      it('tokens issued while a revocation runs are deleted by it or refused, never left behind', async () => {
        const grant = makeGrant();
        await store.issueOAuthTokens(grant, [makeToken(grant, 'refresh')]);
        const late = Array.from({ length: 10 }, () => makeToken(grant, 'access'));
        const issued = late.map((token) => store.issueOAuthTokens(grant, [token]));
        await store.revokeOAuthGrant(grant, T1);
        await Promise.all(issued);
        for (const token of late) assert.equal(await store.getOAuthToken(token.hash), null);
      });
    });

    it('pruneOAuth deletes expired codes and tokens only', async () => {
      const grant = makeGrant();
      const oldCode = makeCode({ expiresAt: T0 });
      const newCode = makeCode({ expiresAt: LATER });
      const oldToken = makeToken(grant, 'access', { expiresAt: T0 });
      const newToken = makeToken(grant, 'refresh', { expiresAt: LATER });
      await store.putOAuthCode(oldCode);
      await store.putOAuthCode(newCode);
      await store.issueOAuthTokens(grant, [oldToken, newToken]);
      assert.equal(await store.pruneOAuth(T1), 2);
      assert.equal(await store.getOAuthCode(oldCode.hash), null);
      assert.deepEqual(await store.getOAuthCode(newCode.hash), newCode);
      assert.equal(await store.getOAuthToken(oldToken.hash), null);
      assert.deepEqual(await store.getOAuthToken(newToken.hash), newToken);
      assert.deepEqual(await store.getOAuthGrant('alice', grant.id), grant);
      assert.equal(await store.pruneOAuth(T1), 0);
    });

    it('everything survives close and reopen', async () => {
      const client = makeClient();
      const code = makeCode();
      const grant = makeGrant();
      const token = makeToken(grant, 'refresh');
      await store.putOAuthClient(client);
      await store.putOAuthCode(code);
      await store.issueOAuthTokens(grant, [token]);
      await store.close();
      const reopened = await fixture.reopen();
      assert.deepEqual(await reopened.getOAuthClient(client.id), client);
      assert.deepEqual(await reopened.getOAuthCode(code.hash), code);
      assert.deepEqual(await reopened.getOAuthGrant('alice', grant.id), grant);
      assert.deepEqual(await reopened.getOAuthToken(token.hash), token);
      assert.equal(await reopened.revokeOAuthGrant(grant, T1), true, 'the grant still knows its tokens');
      assert.equal(await reopened.getOAuthToken(token.hash), null);
    });
  });
}
