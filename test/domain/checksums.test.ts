/**
 * LayerDigester (the v1 checksums beside the blob digest, which blob ingest computes) and the
 * checksum helpers, checked against node:crypto computed here.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  LayerDigester,
  assertNonEmptyChecksum,
  checksumMatches,
  isTarsum,
  parseChecksum,
} from '../../src/domain/checksums.js';
import { TarsumStream } from '../../src/domain/tarsum.js';
import { isRegistryError } from '../../src/domain/errors.js';
import { tarOf } from '../helpers/tar.js';

const sha256 = (...parts: Array<Buffer | string>) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

async function digestAll(json: Buffer, claimed: string | null, layer: Buffer, chunk: number) {
  const d = new LayerDigester(json, claimed);
  for (let off = 0; off < layer.length; off += chunk) await d.update(layer.subarray(off, off + chunk));
  return d.result();
}

describe('LayerDigester', () => {
  const json = Buffer.from('{"id":"0123456789abcdef","created":"2015-01-01T00:00:00Z","comment":"é"}');

  it('computes the payload checksum, whatever the chunking', async () => {
    const layer = randomBytes(70_000);
    const want = {
      payloadChecksum: `sha256:${sha256(json, '\n', layer)}`,
      tarsum: null,
    };
    for (const chunk of [layer.length, 1000, 4096, 65_537]) {
      assert.deepEqual(await digestAll(json, null, layer, chunk), want, `chunks of ${chunk}`);
    }
    // the payload covers the json: another json, another payload checksum
    const other = await digestAll(Buffer.from('{}'), null, layer, layer.length);
    assert.equal(other.payloadChecksum, `sha256:${sha256('{}\n', layer)}`);
    assert.notEqual(other.payloadChecksum, want.payloadChecksum);
  });

  it('handles an empty layer', async () => {
    const d = new LayerDigester(json, null);
    assert.deepEqual(await d.result(), {
      payloadChecksum: `sha256:${sha256(json, '\n')}`,
      tarsum: null,
    });
  });

  it('computes a tarsum only when a tarsum was announced', async () => {
    const layer = tarOf('hello.txt', Buffer.from('hello\n'));
    const tarsumOf = async (version: 'tarsum' | 'tarsum.v1') => {
      const ts = new TarsumStream(version, json);
      await ts.write(layer);
      return ts.digest();
    };
    const hex = 'e'.repeat(64);

    const plain = new LayerDigester(json, `sha256:${hex}`);
    assert.equal(plain.update(layer), undefined, 'no promise without a tarsum');
    assert.equal((await plain.result()).tarsum, null);

    const v0 = await digestAll(json, `tarsum+sha256:${hex}`, layer, 100);
    assert.equal(v0.tarsum, await tarsumOf('tarsum'));
    assert.match(v0.tarsum ?? '', /^tarsum\+sha256:[0-9a-f]{64}$/);
    const v1 = await digestAll(json, `tarsum.v1+sha256:${hex}`, layer, 100);
    assert.equal(v1.tarsum, await tarsumOf('tarsum.v1'));
    assert.match(v1.tarsum ?? '', /^tarsum\.v1\+sha256:[0-9a-f]{64}$/);
    assert.equal(v0.payloadChecksum, `sha256:${sha256(json, '\n', layer)}`);

    const notTar = await digestAll(json, `tarsum+sha256:${hex}`, Buffer.from('not a tar at all'), 3);
    assert.equal(notTar.tarsum, null, 'a layer that is not a tar has no tarsum');
    assert.equal((await digestAll(json, `tarsum.dev+sha256:${hex}`, layer, 512)).tarsum, null, 'unknown version');
  });

  it('the tarsum of a hand-built archive matches one computed here from the definition', async () => {
    const data = Buffer.from('hello\n');
    const layer = tarOf('hello.txt', data);
    const header =
      'namehello.txtmode420uid0gid0size6mtime1610612736typeflag0linkname' + 'unamegnamedevmajor0devminor0';
    const want = `tarsum+sha256:${sha256(json, sha256(header, data))}`;
    const got = await digestAll(json, `tarsum+sha256:${'0'.repeat(64)}`, layer, 7);
    assert.equal(got.tarsum, want);
  });
});

describe('parseChecksum', () => {
  const hex = '0123456789abcdef'.repeat(4);
  const rejects = (value: string) =>
    assert.throws(() => parseChecksum(value, 'X-Docker-Checksum'), (err: unknown) => {
      return isRegistryError(err, 'INVALID_INPUT') && /X-Docker-Checksum/.test((err as Error).message);
    }, JSON.stringify(value));

  it('accepts sha256:, tarsum+sha256: and tarsum.v1+sha256: with 64 lowercase hex', () => {
    for (const v of [`sha256:${hex}`, `tarsum+sha256:${hex}`, `tarsum.v1+sha256:${hex}`]) {
      assert.equal(parseChecksum(v, 'h'), v);
      assert.equal(parseChecksum(`  ${v}\t`, 'h'), v, 'surrounding whitespace is trimmed');
    }
  });

  it('rejects everything else', () => {
    for (const v of [
      '',
      'sha256:',
      `sha256:${hex.slice(1)}`,
      `sha256:${hex}0`,
      `sha256:${hex.toUpperCase()}`,
      `sha256:${hex.slice(1)}g`,
      `SHA256:${hex}`,
      `sha512:${hex}${hex}`,
      `md5:${hex.slice(0, 32)}`,
      `tarsum+sha512:${hex}`,
      `tarsum.v2+sha256:${hex}`,
      `tarsum.dev+sha256:${hex}`,
      `tarsum+sha256:${hex}x`,
      `tarsum+sha256${hex}`,
      `tarsum sha256:${hex}`,
      hex,
      `sha256:${hex} sha256:${hex}`,
      `sha256:${hex}\nsha256:${hex}`,
    ]) {
      rejects(v);
    }
  });

  it('isTarsum tells tarsums from sha256 checksums', () => {
    assert.equal(isTarsum(`tarsum+sha256:${hex}`), true);
    assert.equal(isTarsum(`tarsum.v1+sha256:${hex}`), true);
    assert.equal(isTarsum(`sha256:${hex}`), false);
    assert.equal(isTarsum(`tarsum+sha256:${hex.slice(2)}`), false);
  });
});

describe('checksum helpers', () => {
  it('checksumMatches accepts the payload checksum or the computed tarsum, nothing else', () => {
    const got = { payloadChecksum: `sha256:${'1'.repeat(64)}`, tarsum: `tarsum+sha256:${'2'.repeat(64)}` };
    assert.equal(checksumMatches(got.payloadChecksum, got), true);
    assert.equal(checksumMatches(got.tarsum, got), true);
    assert.equal(checksumMatches(`sha256:${'3'.repeat(64)}`, got), false);
    assert.equal(checksumMatches(got.tarsum, { ...got, tarsum: null }), false);
  });

  it('assertNonEmptyChecksum rejects a blank header only', () => {
    assert.doesNotThrow(() => assertNonEmptyChecksum(undefined));
    assert.doesNotThrow(() => assertNonEmptyChecksum('sha256:x'));
    assert.throws(() => assertNonEmptyChecksum('  '), (err: unknown) => isRegistryError(err, 'INVALID_INPUT'));
  });
});
