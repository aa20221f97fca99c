/**
 * The Registry API v2 error envelope, `{"errors": [{"code", "message", "detail"}]}`, with the
 * OCI distribution spec's codes. Domain error codes are mapped here, once (compare
 * distribution's registry/api/errcode); unknown errors are 500 and logged.
 */
import type { Context, Next } from 'koa';
import { RegistryError, type ErrorCode } from '../../domain/errors.js';
import type { RegistryState } from '../shared/middleware.js';
import { JSON_TYPE, NO_CACHE } from '../shared/respond.js';

interface V2Code {
  code: string;
  status: number;
}

/** Domain code → v2 code and status. */
export const V2_ERRORS: Record<ErrorCode, V2Code> = {
  INVALID_NAME: { code: 'NAME_INVALID', status: 400 },
  INVALID_INPUT: { code: 'BLOB_UPLOAD_INVALID', status: 400 },
  NOT_FOUND: { code: 'NAME_UNKNOWN', status: 404 },
  IMAGE_INCOMPLETE: { code: 'MANIFEST_UNKNOWN', status: 404 },
  ALREADY_EXISTS: { code: 'DENIED', status: 409 },
  UPLOAD_IN_PROGRESS: { code: 'BLOB_UPLOAD_INVALID', status: 409 },
  IN_USE: { code: 'DENIED', status: 409 },
  CHECKSUM_MISMATCH: { code: 'DIGEST_INVALID', status: 400 },
  CHECKSUM_REQUIRED: { code: 'DIGEST_INVALID', status: 400 },
  RANGE_NOT_SATISFIABLE: { code: 'BLOB_UPLOAD_INVALID', status: 416 },
  PAYLOAD_TOO_LARGE: { code: 'SIZE_INVALID', status: 413 },
  REQUEST_TIMEOUT: { code: 'BLOB_UPLOAD_INVALID', status: 408 },
  UNAUTHORIZED: { code: 'UNAUTHORIZED', status: 401 },
  FORBIDDEN: { code: 'DENIED', status: 403 },
  INACTIVE_ACCOUNT: { code: 'DENIED', status: 403 },
  SIGNUP_DISABLED: { code: 'DENIED', status: 403 },
  TOO_MANY_REQUESTS: { code: 'TOOMANYREQUESTS', status: 429 },
  INSUFFICIENT_STORAGE: { code: 'UNKNOWN', status: 507 },
  UNAVAILABLE: { code: 'UNAVAILABLE', status: 503 },
  BLOB_UNKNOWN: { code: 'BLOB_UNKNOWN', status: 404 },
  BLOB_UPLOAD_UNKNOWN: { code: 'BLOB_UPLOAD_UNKNOWN', status: 404 },
  BLOB_UPLOAD_INVALID: { code: 'BLOB_UPLOAD_INVALID', status: 400 },
  DIGEST_INVALID: { code: 'DIGEST_INVALID', status: 400 },
  SIZE_INVALID: { code: 'SIZE_INVALID', status: 400 },
  MANIFEST_UNKNOWN: { code: 'MANIFEST_UNKNOWN', status: 404 },
  MANIFEST_INVALID: { code: 'MANIFEST_INVALID', status: 400 },
  MANIFEST_BLOB_UNKNOWN: { code: 'MANIFEST_BLOB_UNKNOWN', status: 400 },
  NAME_UNKNOWN: { code: 'NAME_UNKNOWN', status: 404 },
  UNSUPPORTED: { code: 'UNSUPPORTED', status: 400 },
};

/** An answer of the v2 face that is not a domain error (unknown route, method not allowed). */
export class V2HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export interface V2ErrorOptions {
  /** The `WWW-Authenticate` value for a 401 on this request (the challenge). */
  challenge(ctx: Context): string;
}

/** Sends one v2 error body. */
export function sendV2Error(ctx: Context, status: number, code: string, message: string, detail?: unknown): void {
  ctx.status = status;
  ctx.res.setHeader('Content-Type', JSON_TYPE);
  ctx.res.setHeader('Cache-Control', NO_CACHE);
  ctx.body = JSON.stringify({ errors: [{ code, message, detail: detail ?? null }] });
}

/** First in the v2 chain: every error becomes the v2 envelope. */
export function v2Errors(options: V2ErrorOptions) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (err) {
      const state = ctx.state as RegistryState;
      let status: number;
      let code: string;
      let message: string;
      let detail: unknown;
      const headers: Record<string, string> = {};
      if (err instanceof RegistryError) {
        ({ status, code } = V2_ERRORS[err.code]);
        message = err.message;
        if (typeof err.details.digest === 'string') detail = { digest: err.details.digest };
        if (typeof err.details.size === 'number') headers['Content-Range'] = `bytes */${err.details.size}`;
        if (typeof err.details.uploadOffset === 'number') headers.Range = `0-${Math.max(0, err.details.uploadOffset - 1)}`;
        if (typeof err.details.retryAfter === 'number') headers['Retry-After'] = String(err.details.retryAfter);
      } else if (err instanceof V2HttpError) {
        ({ status, code, message } = err);
        Object.assign(headers, err.headers);
      } else {
        const httpStatus = (err as { status?: unknown }).status;
        if (typeof httpStatus === 'number' && httpStatus >= 400 && httpStatus < 500) {
          status = httpStatus;
          code = httpStatus === 413 ? 'SIZE_INVALID' : 'UNSUPPORTED';
          message = httpStatus === 413 ? 'Request body too large' : 'Bad request';
        } else {
          status = 500;
          code = 'UNKNOWN';
          message = 'Internal server error';
          state.log?.error({ err }, 'request failed');
        }
      }
      // Headers of a partly-sent response cannot change: the socket is torn down instead.
      if (ctx.headerSent || !ctx.writable) {
        ctx.req.socket.destroy();
        return;
      }
      const res = ctx.res;
      for (const name of ['Content-Length', 'Content-Range', 'ETag', 'Docker-Content-Digest', 'Accept-Ranges']) res.removeHeader(name);
      for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
      if (status === 401) res.setHeader('WWW-Authenticate', options.challenge(ctx));
      sendV2Error(ctx, status, code, message, detail);
    }
  };
}
