/**
 * Crash safety, the bounded run inside `npm test` (the full one is `npm run torture`):
 * the real server as a child process, `kill -9` at chosen moments of multi-image pushes,
 * restart on the same storage, and the checks of crash-harness.ts after every kill
 * (complete images re-hash to their records, tags and served image lists only name
 * complete images, temp files are removed at start, fsck is clean, interrupted pushes
 * succeed when retried and everything pulls back byte-exact).
 *
 * CRASH_SEED=<n> replays a run; CRASH_KILLS=<n> changes the number of kills (default 5).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  checkRestarted,
  inspectStore,
  makeImage,
  prng,
  pushOnce,
  runCrashCycles,
  send,
  startChild,
  verifyPull,
  type HarnessImage,
} from './crash-harness.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('crash safety: kill -9 during pushes, restart on the same storage', () => {
  it('a layer upload killed mid-stream leaves a temp file that start-up removes; the image stays pending and the push can be retried', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'registry-crash-one-'));
    const rand = prng(7);
    const base = makeImage(rand, null, 1000);
    const image = makeImage(rand, base.id, 4 * 1024 * 1024);
    const known = new Map<string, HarnessImage>([
      [base.id, base],
      [image.id, image],
    ]);
    let server = await startChild(root);
    try {
      await pushOnce(server.url, { repo: 'crash/one', tag: 'base', images: [base] });
      assert.equal((await send(server.url, 'PUT', `/v1/images/${image.id}/json`, { body: image.json })).status, 200);
      // Stream half of the layer, wait until the server has its temp file, then kill it.
      const current = server;
      const upload = send(current.url, 'PUT', `/v1/images/${image.id}/layer`, {
        body: image.layer,
        pieceSize: 64 * 1024,
        onPiece: async (piece) => {
          if (piece !== 32) return;
          for (let i = 0; i < 100 && (await fs.readdir(path.join(root, 'tmp'))).length === 0; i++) await sleep(50);
          await current.kill9();
        },
      });
      await assert.rejects(upload, 'the upload dies with the server');
      const report = await inspectStore(root, known);
      assert.equal(report.tempFiles, 1, 'the killed upload left its temp file');
      assert.equal(report.complete, 1);
      assert.equal(report.pending, 1, 'the killed image is pending');

      server = await startChild(root);
      await checkRestarted(server, root, report);
      const probe = await send(server.url, 'GET', `/v1/images/${image.id}/json`);
      assert.equal(probe.status, 400, 'the interrupted image is not served');
      assert.equal((await send(server.url, 'GET', `/v1/images/${image.id}/layer`)).status, 400);
      await pushOnce(server.url, { repo: 'crash/one', tag: 'latest', images: [base, image] });
      await verifyPull(server.url, 'crash/one', 'latest', image.id, known);
    } finally {
      await server.kill9();
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it('survives repeated kills at random moments of concurrent multi-image pushes', async () => {
    const seed = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const kills = Number(process.env.CRASH_KILLS ?? 5);
    const lines: string[] = [];
    const summary = await runCrashCycles({ kills, seed, concurrency: 3, log: (line) => lines.push(line) });
    const context = `seed ${seed}:\n${lines.join('\n')}`;
    assert.equal(summary.killsSurvived, kills, context);
    assert.equal(summary.pushesRetried, summary.pushesInterrupted, `every interrupted push was retried successfully (${context})`);
    assert.ok(summary.finalStore, context);
    assert.equal(summary.finalStore.pending, 0, `after the retries nothing is left pending (${context})`);
    assert.equal(summary.finalStore.tempFiles, 0, context);
    console.log(
      `crash: ${summary.killsSurvived} kills survived (seed ${seed}; ${Object.entries(summary.killPoints).map(([k, v]) => `${k} ${v}`).join(', ')}), ` +
        `${summary.pushesInterrupted} pushes interrupted and retried, ${summary.tempFilesCleaned} temp files cleaned`,
    );
  });
});
