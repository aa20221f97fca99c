/**
 * search, tags, history, inspect, tag, rm: --json for scripts, tables for people, the
 * registry's messages on errors, usage errors with exit code 2, and progress output.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { runClient } from '../../src/client/commands.js';
import { makeTempDir, startTestServer, type TestServer } from '../helpers/server.js';
import { client, dockerSaveTarball, hostOf, legacyTarball, makeImage, type FixtureImage } from './helpers.js';

describe('client commands', { timeout: 30_000 }, () => {
  let server: TestServer;
  let dir: string;
  let host: string;
  let img: FixtureImage;
  let legacyIds: string[];

  before(async () => {
    server = await startTestServer();
    host = hostOf(server.url);
    dir = await makeTempDir('registry-client-cmd-');
    img = makeImage('cmds', 2);
    const file = path.join(dir, 'cmds.tar');
    await fs.writeFile(file, dockerSaveTarball(img, 'example/cmds:1'));
    const res = await client('push', [file, `${host}/team/web:1.0`, '-q']);
    assert.equal(res.code, 0, res.stderr);
    const legacy = legacyTarball('hist', 'old/hist', 'v1', 2);
    legacyIds = legacy.images.map((i) => i.id);
    const lfile = path.join(dir, 'legacy.tar');
    await fs.writeFile(lfile, legacy.tar);
    const res2 = await client('push', [lfile, `${host}/legacy:v1`, '-q']);
    assert.equal(res2.code, 0, res2.stderr);
  });
  after(async () => {
    await server.destroy();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('tags: JSON object and a sorted table', async () => {
    const json = await client('tags', [`${host}/team/web`, '--json']);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.text), { '1.0': img.configHex });
    const tag = await client('tag', [`${host}/team/web:1.0`, `${host}/team/web:stable`, '--json']);
    assert.equal(tag.code, 0, tag.stderr);
    assert.deepEqual(JSON.parse(tag.text), { source: `${host}/team/web:1.0`, target: `${host}/team/web:stable`, id: img.configHex });
    const table = await client('tags', [`${host}/team/web`]);
    assert.equal(table.text, `TAG      IMAGE ID\n1.0      ${img.configHex.slice(0, 12)}\nstable   ${img.configHex.slice(0, 12)}\n`);
  });

  it('tag into another repository of the same registry; a short DST uses the source host', async () => {
    const res = await client('tag', [`${host}/team/web:1.0`, 'team/mirror:1.0']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.text.trim(), `tagged ${host}/team/mirror:1.0 → ${img.configHex}`);
    const tags = (await (await fetch(`${server.url}/v1/repositories/team/mirror/tags`)).json()) as Record<string, string>;
    assert.deepEqual(tags, { '1.0': img.configHex });
    const other = await client('tag', [`${host}/team/web:1.0`, 'elsewhere.example.com:5000/team/web:x']);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /inside one registry/);
  });

  it('history: ancestry with sizes and created_by, newest first', async () => {
    const json = await client('history', [`${host}/team/web:1.0`, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const rows = JSON.parse(json.text) as Array<{ id: string; created: string; created_by: string; size: number }>;
    assert.equal(rows.length, 2);
    assert.equal(rows[0].id, img.configHex);
    assert.deepEqual(rows.map((r) => r.created_by), [img.history[1].created_by, img.history[0].created_by]);
    assert.deepEqual(rows.map((r) => r.size), [img.layers[1].length, img.layers[0].length]);
    const legacy = await client('history', [`${host}/legacy:v1`, '--json']);
    const lrows = JSON.parse(legacy.text) as Array<{ id: string; created_by: string; created: string }>;
    assert.deepEqual(lrows.map((r) => r.id), [...legacyIds].reverse());
    assert.deepEqual(lrows.map((r) => r.created_by), ['/bin/sh -c echo legacy 1 > /x', '/bin/sh -c echo legacy 0 > /x']);
    const table = await client('history', [`${host}/legacy:v1`]);
    assert.match(table.text, /^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\n/);
    assert.match(table.text, new RegExp(`${legacyIds[1].slice(0, 12)}\\s+2014-10-11 10:10:10\\s+/bin/sh -c echo legacy 1 > /x\\s+[\\d.]+ kB$`, 'm'));
  });

  it('inspect: the image JSON byte-exact with --json, a summary otherwise', async () => {
    const json = await client('inspect', [`${host}/legacy:v1`, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const served = Buffer.from(await (await fetch(`${server.url}/v1/images/${legacyIds[1]}/json`)).arrayBuffer());
    assert.ok(json.stdout.equals(Buffer.concat([served, Buffer.from('\n')])));
    const text = await client('inspect', [`${host}/team/web:1.0`]);
    assert.match(text.text, new RegExp(`^ID:\\s+${img.configHex}$`, 'm'));
    assert.match(text.text, /^OS\/Arch:\s+linux\/amd64$/m);
    assert.match(text.text, /^Labels:\s+\{"fixture":"cmds"\}$/m);
  });

  it('search: results of the registry, JSON or a table', async () => {
    const json = await client('search', [`${host}/web`, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const answer = JSON.parse(json.text) as { results: Array<{ name: string }> };
    assert.deepEqual(answer.results.map((r) => r.name), ['team/web']);
    const table = await client('search', [`http://${host}/legacy`]);
    assert.match(table.text, /^NAME\s+DESCRIPTION\s+STARS\s+OFFICIAL\nlegacy\s+0\s+\[OK\]\n$/);
    const all = await client('search', [host, '--json', '-n', '100']);
    assert.deepEqual(((JSON.parse(all.text) as { results: Array<{ name: string }> }).results.map((r) => r.name)).sort(), ['legacy', 'team/mirror', 'team/web']);
    const bad = await client('search', [`${host}/x`, '-n', '0']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /HTTP 400 on GET \/v1\/search/);
  });

  it('rm deletes a tag; deleting it again is the registry 404 message', async () => {
    const res = await client('rm', [`${host}/team/web:stable`, '--json']);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(JSON.parse(res.text), { ref: `${host}/team/web:stable`, deleted: true });
    const again = await client('rm', [`${host}/team/web:stable`]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^registry rm: .+ \(HTTP 404 on DELETE \/v1\/repositories\/team\/web\/tags\/stable\)\n$/);
    const noTag = await client('rm', [`${host}/team/web`]);
    assert.equal(noTag.code, 2);
    assert.match(noTag.stderr, /name the tag/);
  });

  it('usage errors exit 2; pull will not write a tarball to a terminal; --help', async () => {
    for (const [cmd, args] of [
      ['push', ['only-one-arg']],
      ['pull', []],
      ['tags', ['no-host/repo']],
      ['history', [`${host}/Bad`]], // upper case: not a v1 repository name
      ['push', ['x.tar', `${host}/team/web:1`, '--layout', 'weird']],
      ['login', []],
      ['inspect', [`${host}/team/web:1.0`, '--bogus']],
    ] as Array<[string, string[]]>) {
      const res = await client(cmd, args);
      assert.equal(res.code, 2, `${cmd} ${args.join(' ')}: ${res.stderr}`);
      assert.match(res.stderr, /^registry: /);
    }
    const tty = await client('pull', [`${host}/team/web:1.0`], { stdoutTTY: true });
    assert.equal(tty.code, 2);
    assert.match(tty.stderr, /refusing to write a tarball to a terminal/);
    const help = await client('push', ['--help']);
    assert.equal(help.code, 0);
    assert.match(help.text, /^usage: registry push FILE\|- /);
  });

  it('output errors: a missing directory, a reader that goes away (EPIPE) — exit 1, no crash, no partial file', async () => {
    const missing = await client('pull', [`${host}/team/web:1.0`, '-o', path.join(dir, 'no', 'such', 'dir.tar')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /ENOENT/);
    let written = 0;
    const broken = new Writable({
      write(chunk: Buffer, _enc, cb) {
        written += chunk.length;
        if (written > 3000) cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
        else cb();
      },
    });
    const errors: Buffer[] = [];
    const stderr = new PassThrough();
    stderr.on('data', (c: Buffer) => errors.push(c));
    const code = await runClient('pull', [`${host}/team/web:1.0`, '-o', '-', '-q'], { stdout: broken, stderr, stdin: Readable.from([]), env: {} });
    assert.equal(code, 1);
    assert.match(Buffer.concat(errors).toString(), /^registry pull: writing the tarball: write EPIPE\n$/);
  });

  it('progress: bars on a terminal, lines otherwise, nothing with --quiet', async () => {
    const out = path.join(dir, 'p.tar');
    const bars = await client('pull', [`${host}/team/web:1.0`, '-o', out], { stderrTTY: true });
    assert.equal(bars.code, 0, bars.stderr);
    assert.match(bars.stderr, /\u001b\[/, 'terminal control sequences');
    assert.match(bars.stderr, /pulled 10\.2 kB/);
    const lines = await client('pull', [`${host}/team/web:1.0`, '-o', out]);
    assert.equal(lines.code, 0, lines.stderr);
    assert.doesNotMatch(lines.stderr, /\u001b\[/);
    const events = lines.stderr.trim().split('\n');
    assert.deepEqual(
      events.map((l) => l.replace(/\(.*\)/g, '()').replace(/[0-9a-f]{12}/g, 'ID')),
      ['pulling 127.0.0.1:PORT/team/web:1.0 ()'.replace('127.0.0.1:PORT', host), 'ID: started ()', 'ID: pulled 10.2 kB ()', 'ID: started ()', 'ID: pulled 10.2 kB ()'],
    );
    assert.match(lines.text, /^pulled .* to /);
    const quiet = await client('pull', [`${host}/team/web:1.0`, '-o', out, '-q']);
    assert.equal(quiet.code, 0);
    assert.equal(quiet.stderr, '');
  });
});
