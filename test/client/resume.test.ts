/**
 * An interrupted layer download resumes with Range: a loopback proxy in front of the test
 * registry drops the connection half-way through the first layer once.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTempDir, startTestServer, type TestServer } from '../helpers/server.js';
import { client, dockerSaveTarball, hostOf, makeImage, pyRead, startProxy, type Proxy } from './helpers.js';

describe('client pull resumes interrupted layer downloads', { timeout: 30_000 }, () => {
  let server: TestServer;
  let proxy: Proxy;
  let dir: string;
  const img = makeImage('resume', 2, { layerBytes: 200_000 });

  before(async () => {
    server = await startTestServer();
    proxy = await startProxy(server.url);
    dir = await makeTempDir('registry-client-resume-');
    const file = path.join(dir, 'resume.tar');
    await fs.writeFile(file, dockerSaveTarball(img, 'example/resume:1'));
    const pushed = await client('push', [file, `${hostOf(server.url)}/alice/resume:1`, '-q']);
    assert.equal(pushed.code, 0, pushed.stderr);
  });
  after(async () => {
    await proxy.close();
    await server.destroy();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('the first layer is cut half-way once; the pull asks for the rest with Range and the tarball is complete', async () => {
    const direct = path.join(dir, 'direct.tar');
    const res0 = await client('pull', [`${hostOf(server.url)}/alice/resume:1`, '-o', direct, '-q']);
    assert.equal(res0.code, 0, res0.stderr);

    proxy.requests.length = 0;
    proxy.cutLayerDownloads = 1;
    const viaProxy = path.join(dir, 'proxy.tar');
    const res = await client('pull', [`${proxy.host}/alice/resume:1`, '-o', viaProxy, '--json', '--progress', 'lines']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(proxy.cutLayerDownloads, 0, 'the proxy did cut a download');
    const layerGets = proxy.requests.filter((r) => r.method === 'GET' && r.url.endsWith('/layer'));
    assert.equal(layerGets.length, 3, `two layers, one resumed: ${JSON.stringify(layerGets)}`);
    const resumed = layerGets[1];
    assert.equal(layerGets[0].url, resumed.url, 'the resumed request is for the same layer');
    assert.match(resumed.range ?? '', /^bytes=\d+-$/);
    const offset = Number(/bytes=(\d+)-/.exec(resumed.range as string)?.[1]);
    assert.ok(offset > 0 && offset < img.layers[0].length, `resumed at ${offset}`);
    assert.equal(resumed.status, 206);
    assert.match(res.stderr, /interrupted after .*resuming \(1\/5\)/);
    const report = JSON.parse(res.text) as { layers: Array<{ resumed: number; diffId: string }> };
    assert.deepEqual(report.layers.map((l) => l.resumed), [1, 0]);
    assert.deepEqual(report.layers.map((l) => l.diffId), img.diffIds);

    // The same members as a clean pull writes (only the names in manifest.json and
    // repositories differ: they carry the host, here the proxy's).
    const members = pyRead(viaProxy);
    const clean = pyRead(direct);
    assert.deepEqual([...members.keys()], [...clean.keys()]);
    for (const [name, m] of clean) {
      if (name === 'manifest.json' || name === 'repositories') continue;
      assert.ok(m.data === undefined ? members.get(name)?.data === undefined : members.get(name)?.data?.equals(m.data), `${name} differs`);
    }
    const manifest = JSON.parse((members.get('manifest.json')?.data as Buffer).toString()) as Array<{ Layers: string[] }>;
    manifest[0].Layers.forEach((p, i) => assert.ok(members.get(p)?.data?.equals(img.layers[i])));
  });

  it('gives up after --retries attempts and leaves no partial file', async () => {
    proxy.cutLayerDownloads = 10;
    const out = path.join(dir, 'never.tar');
    const res = await client('pull', [`${proxy.host}/alice/resume:1`, '-o', out, '--retries', '2', '-q']);
    proxy.cutLayerDownloads = 0;
    assert.equal(res.code, 1);
    assert.match(res.stderr, /registry pull: /);
    const left = await fs.readdir(dir);
    assert.ok(!left.includes('never.tar'), 'no output file');
    assert.ok(!left.some((f) => f.includes('never.tar') && f.endsWith('.part')), `no partial file: ${left.join(', ')}`);
  });
});
