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
  return pino(options);
}
