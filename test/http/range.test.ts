/**
 * parseRange (RFC 9110 §14): one bytes range, else the whole layer; 416 when a well-formed
 * range cannot be served.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseRange } from '../../src/http/shared/range.js';

const full = { kind: 'full' };
const unsatisfiable = { kind: 'unsatisfiable' };
const partial = (start: number, end: number) => ({ kind: 'partial', range: { start, end } });

describe('parseRange', () => {
  it('serves the whole layer without a usable Range header', () => {
    for (const header of [
      undefined,
      '',
      'bytes=',
      'bytes=-',
      'bytes=0-1,5-6', // several ranges: allowed to ignore
      'bytes=0-1, 5-6',
      'bytes=-1,0-0',
      'items=0-1',
      'bytes 0-1',
      'bytes=a-b',
      'bytes=1-a',
      'bytes=-a',
      'bytes=1.5-2',
      'bytes=+1-2',
      'bytes=--1',
      'bytes=0x10-0x20',
      'bytes=5-2', // last < first: invalid, ignored
      'bytes=1000-999',
      'bytes=99999999999999999999-99999999999999999998',
      'bytes=\u0661-\u0662', // Arabic-Indic digits are not DIGIT
    ]) {
      assert.deepEqual(parseRange(header, 1000), full, JSON.stringify(header));
    }
  });

  it('reads first-last', () => {
    assert.deepEqual(parseRange('bytes=0-0', 1000), partial(0, 0));
    assert.deepEqual(parseRange('bytes=0-99', 1000), partial(0, 99));
    assert.deepEqual(parseRange('bytes=100-199', 1000), partial(100, 199));
    assert.deepEqual(parseRange('bytes=999-999', 1000), partial(999, 999));
    assert.deepEqual(parseRange('bytes=0-999', 1000), partial(0, 999));
    assert.deepEqual(parseRange(' bytes=10-20 ', 1000), partial(10, 20), 'surrounding whitespace');
    assert.deepEqual(parseRange('bytes=007-010', 1000), partial(7, 10), 'leading zeros are decimal');
    assert.deepEqual(parseRange('Bytes=1-2', 1000), partial(1, 2), 'the range unit is case-insensitive');
  });

  it('reads first- (to the end)', () => {
    assert.deepEqual(parseRange('bytes=0-', 1000), partial(0, 999));
    assert.deepEqual(parseRange('bytes=500-', 1000), partial(500, 999));
    assert.deepEqual(parseRange('bytes=999-', 1000), partial(999, 999));
  });

  it('reads -n (the last n bytes)', () => {
    assert.deepEqual(parseRange('bytes=-1', 1000), partial(999, 999));
    assert.deepEqual(parseRange('bytes=-100', 1000), partial(900, 999));
    assert.deepEqual(parseRange('bytes=-1000', 1000), partial(0, 999));
    assert.deepEqual(parseRange('bytes=-5000', 1000), partial(0, 999), 'longer than the layer: all of it');
  });

  it('clamps a last byte past the end', () => {
    assert.deepEqual(parseRange('bytes=0-1000', 1000), partial(0, 999));
    assert.deepEqual(parseRange('bytes=900-5000', 1000), partial(900, 999));
  });

  it('is unsatisfiable when the first byte is past the end, or for a zero suffix', () => {
    assert.deepEqual(parseRange('bytes=1000-', 1000), unsatisfiable);
    assert.deepEqual(parseRange('bytes=1000-1000', 1000), unsatisfiable);
    assert.deepEqual(parseRange('bytes=1001-2000', 1000), unsatisfiable);
    assert.deepEqual(parseRange('bytes=-0', 1000), unsatisfiable);
    assert.deepEqual(parseRange('bytes=-000', 1000), unsatisfiable);
  });

  it('an empty layer satisfies no range', () => {
    assert.deepEqual(parseRange(undefined, 0), full);
    assert.deepEqual(parseRange('bytes=0-', 0), unsatisfiable);
    assert.deepEqual(parseRange('bytes=0-0', 0), unsatisfiable);
    assert.deepEqual(parseRange('bytes=0-100', 0), unsatisfiable);
    assert.deepEqual(parseRange('bytes=-1', 0), unsatisfiable);
    assert.deepEqual(parseRange('bytes=-0', 0), unsatisfiable);
    assert.deepEqual(parseRange('bytes=1-0', 0), full, 'still invalid syntax: ignored');
  });

  it('copes with numbers beyond 2^53', () => {
    const huge = '9'.repeat(30);
    assert.deepEqual(parseRange(`bytes=0-${huge}`, 1000), partial(0, 999));
    assert.deepEqual(parseRange(`bytes=10-${huge}`, 1000), partial(10, 999));
    assert.deepEqual(parseRange(`bytes=${huge}-`, 1000), unsatisfiable);
    assert.deepEqual(parseRange(`bytes=${huge}-${huge}9`, 1000), unsatisfiable);
    assert.deepEqual(parseRange(`bytes=-${huge}`, 1000), partial(0, 999));
    assert.deepEqual(parseRange(`bytes=9007199254740993-`, 1000), unsatisfiable);
    // large layers stay exact
    const big = 2 ** 40;
    assert.deepEqual(parseRange(`bytes=${big - 10}-`, big), partial(big - 10, big - 1));
    assert.deepEqual(parseRange('bytes=-10', big), partial(big - 10, big - 1));
  });

  it('every partial range lies inside the layer', () => {
    for (const size of [1, 2, 511, 512, 1000]) {
      for (const a of ['', '0', '1', '510', '511', '512', '999', '1000', '5000']) {
        for (const b of ['', '0', '1', '510', '511', '512', '999', '1000', '5000']) {
          const r = parseRange(`bytes=${a}-${b}`, size);
          if (r.kind !== 'partial') continue;
          const { start, end } = r.range;
          assert.ok(Number.isSafeInteger(start) && Number.isSafeInteger(end), `${a}-${b} of ${size}`);
          assert.ok(start >= 0 && start <= end && end < size, `${a}-${b} of ${size}: ${start}-${end}`);
        }
      }
    }
  });
});
