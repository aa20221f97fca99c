/**
 * The structured logger (pino). Credentials never reach it: request logs carry no headers
 * and no bodies, and these paths are redacted wherever an object is logged (tokens travel
 * in Authorization, X-Docker-Token and WWW-Authenticate).
 */
import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-docker-token"]',
  'res.headers["x-docker-token"]',
  'res.headers["www-authenticate"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'headers["x-docker-token"]',
  'headers["www-authenticate"]',
  'password',
  '*.password',
  'token',
  '*.token',
];

/**
 * JSON lines on stdout, or on `destination`. On a terminal the same records are printed
 * readably (pino-pretty, loaded only then, in this thread).
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options = { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: undefined };
  if (destination) return pino(options, destination as never);
  if (process.stdout.isTTY) {
    const pretty = createRequire(import.meta.url)('pino-pretty') as (o: object) => NodeJS.WritableStream;
    return pino(options, pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }) as never);
  }
  // Buffered: lines go out in writes of at least 4 KiB instead of one write per request
  // (logging and metrics together were ~40% of the CPU of a small GET under wrk). Call
  // flushLogger after lines that someone waits for, and before exiting.
  // Bounded: when stdout is a pipe read slower than the lines come (a busy log collector),
  // lines beyond MAX_BUFFERED_LOG_BYTES are dropped, counted, and reported once it drains,
  // instead of growing the heap (+20 MiB RSS in 12 s of wrk against a starved pipe reader).
  const stdout = pino.destination({ dest: 1, sync: false, minLength: 4096, maxLength: MAX_BUFFERED_LOG_BYTES });
  const logger = pino(options, stdout);
  // The buffer is written once it holds minLength bytes: on a quiet server that could be
  // never (one request's line waited for ~18 more). What it holds goes out within this
  // interval, asynchronously, and only when there is something (`_len`: sonic-boom's count
  // of buffered bytes; without it, every tick flushes).
  setInterval(() => {
    const buffered = (stdout as unknown as { _len?: number })._len;
    if (buffered === 0) return;
    try {
      stdout.flush();
    } catch {
      // Destroyed (the process is exiting): nothing to write to.
    }
  }, LOG_FLUSH_MS).unref();
  let dropped = 0;
  let reporting = false;
  let reportDropped = false;
  stdout.on('drop', () => {
    if (reporting) reportDropped = true;
    else dropped += 1;
  });
  setInterval(() => {
    if (dropped === 0) return;
    const count = dropped;
    dropped = 0;
    reporting = true;
    reportDropped = false;
    logger.warn({ dropped: count }, 'log lines dropped: stdout is read slower than lines are written');
    reporting = false;
    // Still full: the report itself did not fit; it is tried again with the count kept.
    if (reportDropped) dropped += count;
  }, 1000).unref();
  return logger;
}

/** Longest a log line waits in the buffer on a quiet server. */
export const LOG_FLUSH_MS = 250;

/** How much a buffered logger holds before it drops lines (stdout not read fast enough). */
export const MAX_BUFFERED_LOG_BYTES = 1024 * 1024;

/** Writes out what a buffered logger holds (the start-up line, the last lines before exit). */
export function flushLogger(logger: Logger): void {
  const stream = (logger as unknown as Record<symbol, { flushSync?: () => void } | undefined>)[pino.symbols.streamSym];
  try {
    // Synchronously: the line must be out before anyone reads it or the process exits.
    stream?.flushSync?.();
  } catch {
    // A stream that cannot flush synchronously (pretty, a test's stream) buffers nothing.
  }
}
