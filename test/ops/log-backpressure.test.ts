/**
 * A log reader slower than the server (a busy collector on the other end of the stdout
 * pipe) must not grow the server's memory: the buffered logger holds at most
 * MAX_BUFFERED_LOG_BYTES, drops what does not fit, and once the pipe moves again says how
 * many lines it dropped. Every line is either written or counted as dropped. And on a
 * quiet server a line is not held back waiting for the buffer to fill.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { it } from 'node:test';

const LINES = 40_000;

// The child: the real logger on its stdout, LINES lines of ~250 bytes (~10 MB, ten times
// the buffer) written at once, then it waits for the drop report and exits.
const CHILD = `
import { createLogger, flushLogger } from ${JSON.stringify(path.resolve('src/logger.ts'))};
const logger = createLogger('info');
const pad = 'x'.repeat(200);
for (let i = 0; i < ${LINES}; i++) logger.info({ i, pad }, 'line');
setTimeout(() => { flushLogger(logger); process.exit(0); }, 3500);
`;

it('a stdout pipe that is not read: lines beyond the buffer are dropped, counted and reported', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], { stdio: ['ignore', 'pipe', 'inherit'] });
  // Nobody reads for a while: the pipe fills and the logger's buffer reaches its bound.
  child.stdout.pause();
  await new Promise((resolve) => setTimeout(resolve, 1500));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stdout.resume();
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0);
  const records = out
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { msg: string; i?: number; dropped?: number });
  const written = records.filter((r) => r.msg === 'line');
  const reports = records.filter((r) => r.msg.startsWith('log lines dropped'));
  assert.ok(written.length > 0 && written.length < LINES, `some lines were written, not all: ${written.length}`);
  assert.ok(reports.length >= 1, 'the drop was reported');
  const dropped = reports.reduce((sum, r) => sum + (r.dropped ?? 0), 0);
  assert.equal(written.length + dropped, LINES, 'every line was either written or counted as dropped');
  // What was written is whole lines in order (the first ones, up to the bound).
  written.forEach((r, k) => assert.equal(r.i, k));
});

it('a single line on a quiet logger reaches stdout within the flush interval, not at exit', async () => {
  // One short line (far below the 4 KiB write threshold), then 3 s alive without a flush.
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', `
import { createLogger } from ${JSON.stringify(path.resolve('src/logger.ts'))};
createLogger('info').info({ quiet: true }, 'one line');
setTimeout(() => process.exit(0), 3000);
`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let arrived: number | null = null;
  child.stdout.on('data', (d: Buffer) => {
    if (arrived === null && d.toString().includes('"msg":"one line"')) arrived = Date.now();
  });
  await new Promise((resolve) => child.on('close', resolve));
  const exited = Date.now();
  assert.ok(arrived !== null, 'the line never reached stdout');
  // Timed from the child's exit, so a slow start-up does not matter: held back until the
  // exit, the line would arrive just before it; flushed (every 250 ms), ~3 s before.
  assert.ok(exited - arrived > 1500, `the line arrived only ${exited - arrived} ms before the child exited`);
});
