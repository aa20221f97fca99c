/** Output helpers: human sizes, rates, durations, plain-text tables. */
import { humanBytes } from '../domain/units.js';

export { humanBytes };

export function humanRate(bytes: number, ms: number): string {
  if (ms <= 0) return '-';
  return `${humanBytes((bytes * 1000) / ms)}/s`;
}

export function humanDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function shortId(id: string): string {
  return id.slice(0, 12);
}

/** Columns separated by at least three spaces, as docker prints its tables. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : (c ?? '').padEnd(widths[i])))
      .join('   ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, max - 1) + '…';
}

/** `2015-02-10T10:10:10.123Z` → `2015-02-10 10:10:10`; anything unparsable as is. */
export function shortTime(value: unknown): string {
  if (typeof value !== 'string') return '';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return value;
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, '').replace('Z', '');
}
