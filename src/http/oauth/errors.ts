/**
 * The OAuth face's error envelope: RFC 6749 §5.2 / RFC 6750 §3 JSON,
 * `{"error": "<code>", "error_description": "<text>"}`, from the same domain codes as every
 * face (error-map.ts gives the status) and from the token library's OAuthErrors:
 *
 *   library error (invalid_grant, invalid_request, unsupported_grant_type, …)  its status;
 *       invalid_client always 401 with `WWW-Authenticate: Basic`
 *   UNAUTHORIZED (no, bad, expired or revoked token)   401 invalid_token, `WWW-Authenticate: Bearer`
 *   FORBIDDEN with a missing scope                      403 insufficient_scope (+ the scope)
 *   FORBIDDEN, INACTIVE_ACCOUNT                          403 access_denied
 *   INVALID_INPUT, INVALID_NAME, 413, bad JSON           400/413 invalid_request
 *   NOT_FOUND                                            404 not_found
 *   TOO_MANY_REQUESTS                                    429 too_many_requests, Retry-After
 *   anything else                                        500 server_error (logged)
 */
import OAuth2Server from '@node-oauth/oauth2-server';
import type { Context, Middleware } from 'koa';
import { RegistryError } from '../../domain/errors.js';
import { STATUS_BY_CODE } from '../shared/error-map.js';
import type { RegistryState } from '../shared/middleware.js';
import { sendJson } from '../shared/respond.js';

/** A status without a domain code (405, and the refusals this face makes itself). */
export class OAuthHttpError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
  ) {
    super(message);
  }
}

export interface OAuthErrorBody {
  error: string;
  error_description: string;
}

/** The status, headers and body for an error of this face. */
export function describeOAuthError(err: unknown): { status: number; body: OAuthErrorBody; headers: Record<string, string> } {
  const headers: Record<string, string> = {};
  const answer = (status: number, error: string, description: string) => ({ status, body: { error, error_description: description }, headers });
  if (err instanceof OAuth2Server.OAuthError) {
    if (err.name === 'invalid_client') {
      headers['WWW-Authenticate'] = 'Basic realm="oauth"';
      return answer(401, err.name, err.message);
    }
    if (err.code >= 500) return answer(500, 'server_error', 'Internal server error');
    return answer(err.code, err.name, err.message);
  }
  if (err instanceof OAuthHttpError) return answer(err.status, err.error, err.message);
  if (err instanceof RegistryError) {
    const status = STATUS_BY_CODE[err.code];
    if (status === 401) {
      headers['WWW-Authenticate'] = 'Bearer realm="api", error="invalid_token"';
      return answer(401, 'invalid_token', err.message);
    }
    if (status === 403) {
      const scope = err.details.scope;
      if (typeof scope === 'string') {
        headers['WWW-Authenticate'] = `Bearer realm="api", error="insufficient_scope", scope="${scope}"`;
        return answer(403, 'insufficient_scope', err.message);
      }
      return answer(403, 'access_denied', err.message);
    }
    if (status === 404) return answer(404, 'not_found', err.message);
    if (status === 429) {
      if (typeof err.details.retryAfter === 'number') headers['Retry-After'] = String(err.details.retryAfter);
      return answer(429, 'too_many_requests', err.message);
    }
    if (status < 500) return answer(status, 'invalid_request', err.message);
    return answer(status, 'server_error', err.message);
  }
  const httpStatus = (err as { status?: unknown }).status;
  if (typeof httpStatus === 'number' && httpStatus >= 400 && httpStatus < 500) {
    return answer(httpStatus, 'invalid_request', httpStatus === 413 ? 'Request body too large' : 'Invalid request body');
  }
  return answer(500, 'server_error', 'Internal server error');
}

/** Every error of the face's JSON routes, in the envelope above. */
export function oauthErrors(): Middleware {
  return async (ctx: Context, next) => {
    try {
      await next();
    } catch (err) {
      const { status, body, headers } = describeOAuthError(err);
      if (status >= 500) (ctx.state as RegistryState).log?.error({ err: (err as { inner?: unknown }).inner ?? err }, 'request failed');
      if (ctx.headerSent || !ctx.writable) throw err;
      for (const [name, value] of Object.entries(headers)) ctx.res.setHeader(name, value);
      ctx.res.setHeader('Cache-Control', 'no-store');
      sendJson(ctx, status, body);
    }
  };
}
