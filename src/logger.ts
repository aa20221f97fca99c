/**
 * The structured logger (pino). Credentials never reach it: request logs carry no headers
 * and no bodies, and these paths are redacted wherever an object is logged (tokens travel
 * in Authorization, X-Docker-Token and WWW-Authenticate).
 */
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

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options = { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: undefined };
  return destination ? pino(options, destination as never) : pino(options);
}
