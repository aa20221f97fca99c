/**
 * The Range header of a layer GET (RFC 9110 §14): one `bytes=` range, open-ended or
 * suffix. Several ranges or a malformed header are ignored (the whole layer is served),
 * as the RFC allows; a well-formed range outside the layer is unsatisfiable (416).
 */
import type { ByteRange } from '../../store/blobs/blob-store.js';

export type RangeResult = { kind: 'full' } | { kind: 'partial'; range: ByteRange } | { kind: 'unsatisfiable' };

const SINGLE = /^bytes=(\d*)-(\d*)$/i;

/** A decimal position; numbers beyond 2^53 are certainly past any layer: Infinity. */
function position(digits: string): number {
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : Infinity;
}

export function parseRange(header: string | undefined, size: number): RangeResult {
  if (!header) return { kind: 'full' };
  const m = SINGLE.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'full' };
  if (m[1] === '') {
    const suffix = position(m[2]);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', range: { start: Math.max(0, size - suffix), end: size - 1 } };
  }
  // last-pos < first-pos is a syntactically invalid range: ignore the header.
  if (m[2] !== '' && BigInt(m[2]) < BigInt(m[1])) return { kind: 'full' };
  const start = position(m[1]);
  if (start >= size) return { kind: 'unsatisfiable' };
  const end = m[2] === '' ? size - 1 : Math.min(position(m[2]), size - 1);
  return { kind: 'partial', range: { start, end } };
}
