/**
 * Transfer progress on stderr. On a terminal: one cli-progress bar per layer (bytes,
 * rate, ETA). Otherwise: one line per event (start, resume, done), plus a line every
 * 10 s for a long transfer so CI logs show that something moves. `--quiet`: nothing.
 */
import cliProgress from 'cli-progress';
import type { Writable } from 'node:stream';
import { humanBytes, humanDuration, humanRate } from './format.js';

export interface Progress {
  /** A transfer starts; `total` in bytes when known. */
  begin(key: string, label: string, total: number | null): void;
  /** `bytes` more were transferred. */
  advance(key: string, bytes: number): void;
  /** The transfer finished (or was skipped: `message` says so). */
  end(key: string, message: string): void;
  /** A one-off event line. */
  info(message: string): void;
  close(): void;
}

interface Transfer {
  label: string;
  total: number | null;
  done: number;
  started: number;
  lastLine: number;
  bar?: cliProgress.SingleBar;
}

export function createProgress(stream: Writable & { isTTY?: boolean }, options: { quiet?: boolean; tty?: boolean } = {}): Progress {
  if (options.quiet) return quietProgress();
  const tty = options.tty ?? Boolean(stream.isTTY);
  return tty ? new BarProgress(stream) : new LineProgress(stream);
}

function quietProgress(): Progress {
  const nothing = () => undefined;
  return { begin: nothing, advance: nothing, end: nothing, info: nothing, close: nothing };
}

class LineProgress implements Progress {
  private readonly transfers = new Map<string, Transfer>();
  constructor(private readonly out: Writable) {}

  private line(text: string): void {
    this.out.write(text + '\n');
  }

  begin(key: string, label: string, total: number | null): void {
    const now = Date.now();
    this.transfers.set(key, { label, total, done: 0, started: now, lastLine: now });
    this.line(`${label}: started${total !== null ? ` (${humanBytes(total)})` : ''}`);
  }

  advance(key: string, bytes: number): void {
    const t = this.transfers.get(key);
    if (!t) return;
    t.done += bytes;
    const now = Date.now();
    if (now - t.lastLine >= 10_000) {
      t.lastLine = now;
      const of = t.total !== null ? ` of ${humanBytes(t.total)}` : '';
      this.line(`${t.label}: ${humanBytes(t.done)}${of} (${humanRate(t.done, now - t.started)})`);
    }
  }

  end(key: string, message: string): void {
    const t = this.transfers.get(key);
    this.transfers.delete(key);
    if (!t) {
      this.line(`${key}: ${message}`);
      return;
    }
    this.line(`${t.label}: ${message}`);
  }

  info(message: string): void {
    this.line(message);
  }

  close(): void {
    this.transfers.clear();
  }
}

class BarProgress implements Progress {
  private readonly multi: cliProgress.MultiBar;
  private readonly transfers = new Map<string, Transfer>();
  /** The multibar draws (and flushes its log) only once a bar exists. */
  private started = false;

  constructor(private readonly stream: Writable) {
    this.multi = new cliProgress.MultiBar(
      {
        stream: stream as unknown as NodeJS.WritableStream,
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        autopadding: true,
        barsize: 25,
        format: (options, params, payload: { label: string; status: string }) => {
          if (payload.status) return `${payload.label}  ${payload.status}`;
          const bar = cliProgress.Format.BarFormat(params.progress, options);
          const elapsed = Date.now() - params.startTime;
          const rate = humanRate(params.value, elapsed);
          const eta = params.total > 0 && params.value > 0 ? humanDuration(((params.total - params.value) * elapsed) / params.value) : '?';
          return `${payload.label}  ${bar}  ${humanBytes(params.value)}/${humanBytes(params.total)}  ${rate}  ETA ${eta}`;
        },
      },
      cliProgress.Presets.shades_classic,
    );
  }

  begin(key: string, label: string, total: number | null): void {
    this.started = true;
    const bar = this.multi.create(total ?? 0, 0, { label, status: '' });
    this.transfers.set(key, { label, total, done: 0, started: Date.now(), lastLine: 0, bar });
  }

  advance(key: string, bytes: number): void {
    const t = this.transfers.get(key);
    if (!t?.bar) return;
    t.done += bytes;
    if (t.total === null || t.done > t.total) t.bar.setTotal(t.done);
    t.bar.update(t.done);
  }

  end(key: string, message: string): void {
    const t = this.transfers.get(key);
    if (!t?.bar) {
      // A transfer that never started (skipped): a finished line among the bars.
      this.started = true;
      this.multi.create(0, 0, { label: key, status: message }).stop();
      return;
    }
    t.bar.update(t.done, { label: t.label, status: message });
    t.bar.stop();
  }

  info(message: string): void {
    if (this.started) this.multi.log(message + '\n');
    else this.stream.write(message + '\n');
  }

  close(): void {
    if (this.started) this.multi.stop();
    this.started = false;
  }
}
