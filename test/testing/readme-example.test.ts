/**
 * The README's example of the test double ("Test double", the first `ts` block) runs as
 * written, as a test file of a project that depends on this package.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { makeTempDir } from '../helpers/server.js';

const REPO = path.resolve(import.meta.dirname, '../..');
let project: string;

before(async () => {
  project = await makeTempDir('readme-example-');
  await fs.mkdir(path.join(project, 'node_modules'));
  await fs.symlink(REPO, path.join(project, 'node_modules', 'v1-registry'));
  await fs.writeFile(path.join(project, 'package.json'), '{"type": "module"}');
});
after(() => fs.rm(project, { recursive: true, force: true }));

it('the README example passes', async () => {
  const readme = await fs.readFile(path.join(REPO, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Test double\n'));
  const example = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(example !== undefined && example.includes("from 'v1-registry/testing'"), 'the example imports the package');
  await fs.writeFile(path.join(project, 'example.test.ts'), example);
  const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn(process.execPath, ['--conditions=v1-registry-source', '--import', import.meta.resolve('tsx'), '--test', 'example.test.ts'], {
      cwd: project,
      // Its own test run, not a part of this one.
      env: { ...process.env, NODE_TEST_CONTEXT: undefined },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('close', (code) => resolve({ code, output }));
  });
  assert.equal(result.code, 0, result.output);
  assert.match(result.output, /^# pass 1$/m);
});
