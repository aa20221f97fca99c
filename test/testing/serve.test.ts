/**
 * `registry serve --memory`: the test double as a process, for test suites in other
 * languages. The URL on the first stdout line, the seed result on the second; seed and fault
 * files applied; SIGTERM stops it cleanly; bad files and flags are usage errors (exit 2).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import type { SeedResult, SeededImage } from 'v1-registry/testing';
import { dockerSaveTarball, makeImage } from '../client/helpers.js';
import { runScript } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/server.js';

const CLI = 'src/cli/main.ts';

describe('registry serve --memory', { timeout: 180_000 }, () => {
  let dir: string;
  before(async () => {
    dir = await makeTempDir('serve-memory-');
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  it('prints the URL, then the seed result; serves the seed with its users and faults; stops on SIGTERM', async () => {
    const img = makeImage('served', 2);
    await fs.writeFile(path.join(dir, 'saved.tar'), dockerSaveTarball(img, 'example/served:1'));
    const seedFile = path.join(dir, 'seed.json');
    await fs.writeFile(
      seedFile,
      JSON.stringify({
        users: [{ username: 'alice', password: 'alice-pw-1' }],
        repositories: [{ name: 'alice/app', private: true, tags: { latest: { layers: ['one', { base64: Buffer.from('two').toString('base64') }] } } }],
        tarballs: [{ file: 'saved.tar', ref: 'alice/saved:1' }],
      }),
    );
    const faultsFile = path.join(dir, 'faults.json');
    await fs.writeFile(faultsFile, JSON.stringify([{ method: 'GET', path: { regex: '^/v1/_ping$' }, status: 503, times: 1 }]));

    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', '--memory', '--seed', seedFile, '--faults', faultsFile, '--port', '0'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
      const url = (await lines.next()).value as string;
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/, stderr);
      const seeded = JSON.parse((await lines.next()).value as string) as SeedResult & { tarballs: SeededImage[] };
      const latest = seeded.repositories['alice/app'].tags.latest;
      assert.equal(seeded.tarballs[0].id, img.configHex);

      assert.equal((await fetch(`${url}/v1/_ping`)).status, 503, 'the fault file applies');
      assert.equal((await fetch(`${url}/v1/_ping`)).status, 200);
      const alice = { Authorization: `Basic ${Buffer.from('alice:alice-pw-1').toString('base64')}` };
      assert.equal((await fetch(`${url}/v1/repositories/alice/app/tags`)).status, 401, 'users from the seed file: authorization on');
      assert.deepEqual(await (await fetch(`${url}/v1/repositories/alice/app/tags`, { headers: alice })).json(), { latest: latest.id });
      const second = await fetch(`${url}/v1/images/${latest.layers[1].id}/layer`, { headers: alice });
      assert.equal(Buffer.from(await second.arrayBuffer()).toString(), 'two', 'base64 layers are the bytes as they are');
      assert.deepEqual(await (await fetch(`${url}/v1/repositories/alice/saved/tags`)).json(), { '1': img.configHex });
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
  });

  it('refuses bad flags and files with exit code 2 and the reason', async () => {
    const bad = path.join(dir, 'bad.json');
    await fs.writeFile(bad, '{"repositories": [{"name": "alice/app", "tags": {"latest": {"layers": []}}}]}');
    const notJson = path.join(dir, 'not.json');
    await fs.writeFile(notJson, '{');
    const badFault = path.join(dir, 'fault.json');
    await fs.writeFile(badFault, '[{"path": "/x", "drop": "later"}]');
    const cases: Array<[string[], RegExp]> = [
      [['--seed', bad], /seed file: seed: every image needs at least one layer/],
      [['--seed', notJson], /is not valid JSON/],
      [['--seed', path.join(dir, 'missing.json')], /seed file .*missing\.json: ENOENT/],
      [['--faults', badFault], /faults file: fault: `drop`/],
      [['--port', 'x'], /--port takes a port number/],
      [['--seed'], /--seed takes a file/],
    ];
    const results = await Promise.all(cases.map(([args]) => runScript(CLI, ['serve', '--memory', ...args], {})));
    cases.forEach(([args, message], i) => {
      assert.equal(results[i].code, 2, `${args.join(' ')}: ${results[i].stderr}`);
      assert.match(results[i].stderr, message);
      assert.equal(results[i].stdout, '', 'no URL: nothing is served');
    });
  });
});
