/**
 * `npm run torture`: the full crash-safety run. 100 `kill -9`s of the real server at
 * random moments of multi-image pushes (during a layer upload, between checksum and tag,
 * while an image list or a tag is written, at random), with the checks of
 * crash-harness.ts after every kill. Prints a summary; exits 1 on the first broken
 * guarantee (with the seed to replay it: TORTURE_SEED=<seed> npm run torture).
 *
 * Environment: TORTURE_KILLS (default 100), TORTURE_SEED (default: random),
 * TORTURE_CONCURRENCY (pushes per cycle, default 3).
 */
import { runCrashCycles } from './crash-harness.js';

const kills = Number(process.env.TORTURE_KILLS ?? 100);
const seed = Number(process.env.TORTURE_SEED ?? Math.floor(Math.random() * 2 ** 31));
const concurrency = Number(process.env.TORTURE_CONCURRENCY ?? 3);

const started = Date.now();
console.log(`torture: ${kills} kills, seed ${seed}, ${concurrency} pushes per cycle`);
try {
  const summary = await runCrashCycles({ kills, seed, concurrency, log: (line) => console.log(`  ${line}`) });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log('');
  console.log(`torture summary (seed ${summary.seed}, ${seconds} s)`);
  console.log(`  kills survived:              ${summary.killsSurvived} / ${summary.kills}`);
  console.log(`  kill points:                 ${Object.entries(summary.killPoints).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`  kills while a layer streamed: ${summary.killsMidLayer}`);
  console.log(`  restarts:                    ${summary.restarts}`);
  console.log(`  pushes started:              ${summary.pushesStarted}`);
  console.log(`  pushes finished before kill: ${summary.pushesCompletedBeforeKill}`);
  console.log(`  pushes interrupted:          ${summary.pushesInterrupted}`);
  console.log(`  pushes retried (all ok):     ${summary.pushesRetried}`);
  console.log(`  images uploaded:             ${summary.imagesUploaded}`);
  console.log(`  temp files cleaned at start: ${summary.tempFilesCleaned}`);
  const f = summary.finalStore;
  if (f) console.log(`  final store:                 ${f.complete} complete / ${f.pending} pending images, ${f.tags} tags, ${f.blobs} blobs, all re-hashed`);
  process.exitCode = summary.killsSurvived === summary.kills ? 0 : 1;
} catch (err) {
  console.error(`torture FAILED (seed ${seed}): ${(err as Error).stack ?? err}`);
  process.exitCode = 1;
}
