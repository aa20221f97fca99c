/**
 * HTML built from template literals: every interpolated value is escaped unless it is
 * already Html (another template, or raw()). Arrays are rendered item by item; null,
 * undefined and false render nothing, so `${cond && html`…`}` works.
 *
 * A page is written straight into UTF-8 bytes (toBytes), not joined into one big string:
 * with the small young generation `npm start` runs with, a 500-row page kept as a tree of
 * strings until the end survived every scavenge and was promoted, and garbage collection
 * took three quarters of its rendering time. Long lists are given as each(items, render):
 * a row is rendered when it is written and is garbage right after.
 */
import { escapeHtml } from '../shared/escape-html.js';

type Part = string | Html | Each<unknown>;

export class Html {
  constructor(readonly parts: readonly Part[]) {}
}

class Each<T> {
  constructor(
    readonly items: readonly T[],
    readonly render: (item: T, index: number) => Html,
  ) {}
}

type Value = Html | Each<never> | string | number | boolean | null | undefined | readonly Value[];


function add(parts: Part[], value: Value): void {
  if (value instanceof Html || value instanceof Each) parts.push(value as Part);
  else if (value === null || value === undefined || value === false) return;
  else if (Array.isArray(value)) for (const item of value as readonly Value[]) add(parts, item);
  else parts.push(escapeHtml(String(value)));
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  const parts: Part[] = [strings[0]];
  for (let i = 0; i < values.length; i++) {
    add(parts, values[i]);
    parts.push(strings[i + 1]);
  }
  return new Html(parts);
}

/** Trusted markup, as is. */
export function raw(text: string): Html {
  return new Html([text]);
}

/** `render` of each item, called only when the page is written. */
export function each<T>(items: readonly T[], render: (item: T, index: number) => Html): Each<never> {
  return new Each(items, render) as unknown as Each<never>;
}

const CHUNK = 64 * 1024;

/** Short strings are joined into this many characters before they are encoded. */
const PENDING = 8192;

/**
 * Appends strings as UTF-8 to 64 KiB buffers (off the JavaScript heap); short strings are
 * gathered first (one encode per ~8 KiB instead of one per piece).
 */
class ByteWriter {
  private readonly chunks: Buffer[] = [];
  private buffer = Buffer.allocUnsafe(CHUNK);
  private used = 0;
  private total = 0;
  private pending = '';

  write(text: string): void {
    this.pending += text;
    if (this.pending.length >= PENDING) this.encode();
  }

  finish(): Buffer {
    this.encode();
    this.flush();
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.total);
  }

  private encode(): void {
    const text = this.pending;
    this.pending = '';
    // A UTF-16 code unit is at most 3 UTF-8 bytes.
    if (text.length * 3 > this.buffer.length - this.used) {
      this.flush();
      if (text.length * 3 > this.buffer.length) {
        const bytes = Buffer.from(text, 'utf8');
        this.chunks.push(bytes);
        this.total += bytes.length;
        return;
      }
    }
    this.used += this.buffer.write(text, this.used, 'utf8');
  }

  private flush(): void {
    if (this.used === 0) return;
    this.chunks.push(this.buffer.subarray(0, this.used));
    this.total += this.used;
    this.buffer = Buffer.allocUnsafe(CHUNK);
    this.used = 0;
  }
}

function writeTo(writer: ByteWriter, part: Part): void {
  if (typeof part === 'string') writer.write(part);
  else if (part instanceof Html) for (const p of part.parts) writeTo(writer, p);
  else part.items.forEach((item, i) => writeTo(writer, part.render(item, i)));
}

/** The UTF-8 bytes of `page`. */
export function toBytes(page: Html): Buffer {
  const writer = new ByteWriter();
  writeTo(writer, page);
  return writer.finish();
}

/** The text of `fragment` (tests, small pieces). */
export function toText(fragment: Html): string {
  return toBytes(fragment).toString('utf8');
}
