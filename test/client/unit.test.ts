/**
 * The client's parts without a server: references, the tar writer (read back by Python's
 * tarfile), the tar index (links, PAX, GNU long names), the v1 id derivation and the
 * config round trip.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { parseClientArgs } from '../../src/client/commands.js';
import { TarIndex } from '../../src/client/tar-index.js';
import { tarOf, TarWriter } from '../../src/client/tar-write.js';
import { chainIds, deriveV1Images, recoverConfig } from '../../src/domain/v1-ids.js';
import { defaultScheme, parseHost, parseRef } from '../../src/client/ref.js';
import { makeTempDir } from '../helpers/server.js';
import { makeImage, pyRead, pyTar, sha256 } from './helpers.js';

describe('client references', () => {
  it('host:port/ns/repo:tag, host/repo (library, latest), schemes', () => {
    const r = parseRef('127.0.0.1:5000/alice/app:1.0');
    assert.deepEqual(
      [r.scheme, r.host, r.base, r.namespace, r.repository, r.name, r.tag, r.tagGiven, r.display],
      ['http', '127.0.0.1:5000', 'http://127.0.0.1:5000', 'alice', 'app', 'alice/app', '1.0', true, '127.0.0.1:5000/alice/app'],
    );
    const lib = parseRef('localhost:5000/busybox');
    assert.deepEqual([lib.name, lib.tag, lib.tagGiven, lib.display], ['library/busybox', 'latest', false, 'localhost:5000/busybox']);
    assert.equal(parseRef('registry.example.com/ns/b').scheme, 'https');
    assert.equal(parseRef('registry.example.com/ns/b', { scheme: 'http' }).scheme, 'http');
    assert.equal(parseRef('https://10.1.2.3:5000/ns/b:c').scheme, 'https', 'an explicit prefix wins');
    assert.equal(parseRef('http://registry.example.com/ns/b').scheme, 'http');
    assert.equal(parseRef('ns/repo:t', { defaultHost: 'reg:5000' }).host, 'reg:5000');
    assert.equal(parseRef('[::1]:5000/ns/y').scheme, 'http');
  });

  it('refuses what v1 cannot name', () => {
    assert.throws(() => parseRef('alice/app:1'), /names no registry/);
    assert.throws(() => parseRef('h:5000/ns/b/c'), /invalid image reference/);
    assert.throws(() => parseRef('h:5000/Alice/app'), /Invalid namespace/);
    assert.throws(() => parseRef('h:5000/ns/app:-bad'), /Invalid tag/);
    assert.throws(() => parseRef('h:5000/ns/app@sha256:abcd'), /digest references/);
    assert.throws(() => parseHost('not a host'), /invalid registry host/);
  });

  it('http only for loopback and private networks', () => {
    for (const h of ['localhost:5000', '127.0.0.1', '10.0.0.1:80', '172.16.5.4', '172.31.0.1', '192.168.1.1', 'registry:5000', 'box.local', '[::1]:5000', '[fd00::1]', '169.254.1.1']) {
      assert.equal(defaultScheme(h), 'http', h);
    }
    for (const h of ['registry.example.com', '8.8.8.8', '172.32.0.1', '[2001:db8::1]:5000']) assert.equal(defaultScheme(h), 'https', h);
  });

  it('arguments: values, booleans, -, --, unknown options', () => {
    const a = parseClientArgs(['-', 'h:1/a/b', '-o', 'out.tar', '--json', '-q', '--layout=legacy']);
    assert.deepEqual(a.positional, ['-', 'h:1/a/b']);
    assert.deepEqual(Object.fromEntries(a.flags), { output: 'out.tar', json: true, quiet: true, layout: 'legacy' });
    assert.throws(() => parseClientArgs(['--bogus']), /unknown option/);
    assert.throws(() => parseClientArgs(['-o']), /needs a value/);
    assert.deepEqual(parseClientArgs(['--', '--json']).positional, ['--json']);
  });
});

describe('client tar writer and tar index', () => {
  let dir: string;
  before(async () => {
    dir = await makeTempDir('registry-client-tar-');
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('writes what Python reads: long names (prefix and PAX), empty files, streamed entries', async () => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const tar = new TarWriter(out);
    const longSplit = `${'d'.repeat(90)}/${'f'.repeat(90)}`;
    const longPax = 'x'.repeat(180);
    await tar.directory('dir');
    await tar.file('dir/small', 'hello');
    await tar.file('empty', Buffer.alloc(0));
    await tar.file(longSplit, 'split');
    await tar.file(longPax, 'pax');
    await tar.begin('streamed', 1500);
    await tar.write(Buffer.alloc(1000, 1));
    await tar.write(Buffer.alloc(500, 2));
    await tar.end();
    await tar.finish();
    const file = path.join(dir, 'w.tar');
    await fs.writeFile(file, Buffer.concat(chunks));
    // tarOf (the whole archive at once) writes the same bytes.
    const whole = tarOf([
      { name: 'dir' },
      { name: 'dir/small', data: Buffer.from('hello') },
      { name: 'empty', data: Buffer.alloc(0) },
      { name: longSplit, data: Buffer.from('split') },
      { name: longPax, data: Buffer.from('pax') },
      { name: 'streamed', data: Buffer.concat([Buffer.alloc(1000, 1), Buffer.alloc(500, 2)]) },
    ]);
    assert.ok(whole.equals(Buffer.concat(chunks)), 'tarOf and TarWriter agree');
    const m = pyRead(file);
    assert.deepEqual([...m.keys()], ['dir', 'dir/small', 'empty', longSplit, longPax, 'streamed']);
    assert.equal(m.get('dir/small')?.data?.toString(), 'hello');
    assert.equal(m.get(longPax)?.data?.toString(), 'pax');
    assert.ok(m.get('streamed')?.data?.equals(Buffer.concat([Buffer.alloc(1000, 1), Buffer.alloc(500, 2)])));
    await assert.rejects(async () => {
      const t = new TarWriter(new PassThrough());
      await t.begin('x', 2);
      await t.write(Buffer.alloc(3));
    }, /longer than/);
  });

  it('indexes Python-written archives: GNU and PAX long names, symlinks and hardlinks resolved', async () => {
    for (const pax of [false, true]) {
      const longName = `${'n'.repeat(120)}/layer.tar`;
      const bytes = pyTar(
        [
          { name: 'abc/', type: 'dir' },
          { name: 'blob.tar', data: 'the layer' },
          { name: 'abc/layer.tar', type: 'symlink', linkname: '../blob.tar' },
          { name: 'hard.tar', type: 'hardlink', linkname: 'blob.tar' },
          { name: longName, data: 'long one' },
          { name: './dotted/json', data: '{}' },
        ],
        { pax },
      );
      const file = path.join(dir, `i-${pax}.tar`);
      await fs.writeFile(file, bytes);
      const index = await TarIndex.open(file);
      const read = async (n: string) => (await index.readSmall(n)).toString();
      assert.equal(await read('abc/layer.tar'), 'the layer');
      assert.equal(await read('hard.tar'), 'the layer');
      assert.equal(await read(longName), 'long one');
      assert.equal(await read('dotted/json'), '{}');
      assert.equal(index.resolve('abc'), null, 'a directory is no file');
      assert.equal(index.resolve('missing'), null);
    }
  });
});

describe('v1 ids from a config', () => {
  it('chain ids, dependency ids and the top id as docker pushed them', () => {
    const img = makeImage('ids', 3);
    const { images, configDigest } = deriveV1Images(img.config);
    const h = (s: string) => createHash('sha256').update(s).digest('hex');
    const c0 = img.diffIds[0];
    const c1 = `sha256:${h(`${c0} ${img.diffIds[1]}`)}`;
    assert.deepEqual(chainIds(img.diffIds).slice(0, 2), [c0, c1]);
    assert.deepEqual(
      images.map((i) => [i.id, i.parent]),
      [
        [c0.slice(7), null],
        [c1.slice(7), c0.slice(7)],
        [img.configHex, c1.slice(7)],
      ],
    );
    assert.equal(configDigest, `sha256:${img.configHex}`);
    // Dependency JSON: id, parent, and the layer's history.
    assert.deepEqual(JSON.parse(images[1].json.toString()), {
      id: c1.slice(7),
      parent: c0.slice(7),
      created: img.history[1].created,
      container_config: { Cmd: [img.history[1].created_by] },
    });
    // Top JSON: the config bytes with id and parent in front.
    const top = images[2].json.toString();
    assert.ok(top.startsWith(`{"id":"${img.configHex}","parent":"${c1.slice(7)}","architecture":"amd64"`));
    assert.ok(top.endsWith(img.config.toString().slice(1)));
  });

  it('recovers the exact config from the top JSON, and rebuilds one otherwise', () => {
    const img = makeImage('recover', 2);
    const { images } = deriveV1Images(img.config);
    const chain = images.map((i) => ({ id: i.id, json: i.json }));
    const exact = recoverConfig(chain, img.diffIds);
    assert.equal(exact.exact, true);
    assert.ok(exact.bytes.equals(img.config));
    // A config with its own "parent" key cannot be spliced: content kept, bytes rebuilt.
    const withParent = Buffer.from(JSON.stringify({ ...JSON.parse(img.config.toString()), parent: 'sha256:' + '1'.repeat(64) }));
    const derived = deriveV1Images(withParent);
    assert.equal(JSON.parse(derived.images[1].json.toString()).parent, derived.images[0].id);
    const rebuilt = recoverConfig(
      derived.images.map((i) => ({ id: i.id, json: i.json })),
      img.diffIds,
    );
    assert.equal(rebuilt.exact, false);
    const cfg = JSON.parse(rebuilt.bytes.toString()) as { rootfs: unknown; config: unknown; history: unknown[] };
    assert.deepEqual(cfg.rootfs, { type: 'layers', diff_ids: img.diffIds });
    assert.deepEqual(cfg.config, JSON.parse(img.config.toString()).config);
    assert.equal(cfg.history.length, 3);
    // Diff ids that do not match are never taken from the JSON.
    const wrong = recoverConfig(chain, [img.diffIds[0], `sha256:${sha256('other')}`]);
    assert.equal(wrong.exact, false);
  });

  it('refuses configs without layers or diff ids', () => {
    assert.throws(() => deriveV1Images(Buffer.from('{"rootfs":{"type":"layers","diff_ids":[]}}')), /no layers/);
    assert.throws(() => deriveV1Images(Buffer.from('{"architecture":"amd64"}')), /rootfs\.diff_ids/);
    assert.throws(() => deriveV1Images(Buffer.from('nope')), /not valid JSON/);
  });
});
