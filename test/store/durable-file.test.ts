/**
 * DurableFileWriter on this machine's temp filesystem: whatever mix of buffered and
 * O_DIRECT writes it chooses (a buffered head, direct slabs, a buffered unaligned tail, or
 * all buffered where O_DIRECT is refused), the file holds exactly the bytes written, in
 * chunks of any size.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { DurableFileWriter, type DurableFileOptions } from '../../src/store/blobs/durable-file.js';

const MiB = 1024 * 1024;

/** `bytes` in pieces of 1 byte to 300 KiB, so slab boundaries fall anywhere. */
function* pieces(bytes: Buffer): Generator<Buffer> {
  let offset = 0;
  let k = 0;
  while (offset < bytes.length) {
    const size = [1, 4095, 65536, 300 * 1024, 7][k++ % 5];
    yield bytes.subarray(offset, offset + size);
    offset += size;
  }
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('DurableFileWriter', () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'durable-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const cases: Array<[string, number, Partial<DurableFileOptions>]> = [
    ['all direct after the first byte, unaligned tail', 5 * MiB + 123, { bufferedHead: 0 }],
    ['buffered head, then direct slabs, then an unaligned tail', 4 * MiB + 4096 * 3 + 17, { bufferedHead: MiB }],
    ['direct, length a multiple of the slab (no tail)', 3 * MiB, { bufferedHead: 0 }],
    ['buffered only', 2 * MiB + 5, { direct: false }],
    ['smaller than one slab', 1000, { bufferedHead: 0 }],
    ['empty', 0, { bufferedHead: 0 }],
  ];
  for (const [name, size, options] of cases) {
    it(`${name}: the file holds exactly the bytes written (${size} bytes)`, async () => {
      const bytes = randomBytes(size);
      const file = path.join(dir, `${name.replace(/\W+/g, '-')}.bin`);
      await pipeline(Readable.from(pieces(bytes)), new DurableFileWriter(file, { syncEvery: MiB, ...options }));
      const stored = await fs.readFile(file);
      assert.equal(stored.length, size);
      assert.equal(sha(stored), sha(bytes));
    });
  }

  it('refuses to overwrite an existing file', async () => {
    const file = path.join(dir, 'exists.bin');
    await fs.writeFile(file, 'keep');
    await assert.rejects(pipeline(Readable.from([Buffer.from('x')]), new DurableFileWriter(file, { syncEvery: MiB })), { code: 'EEXIST' });
    assert.equal(await fs.readFile(file, 'utf8'), 'keep');
  });
});
