/**
 * Index API v1, accounts: sign-up, login check, account update — the docker 1.x login
 * flow: POST /v1/users/ → 201, or 400 "Username or email already exists" and then
 * GET /v1/users/ with Basic auth → 200 / 401 / 403.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { isRegistryError, RegistryError } from '../../domain/errors.js';
import { EXISTS_MESSAGE, type UserService } from '../../services/users.js';
import { principalOf } from '../shared/authenticate.js';
import { jsonBody } from '../shared/body.js';
import { NO_CACHE, sendJson } from '../shared/respond.js';

export interface UserRouteDeps {
  users: UserService;
  maxJsonBytes: number;
}

export function addUserRoutes(router: Router, deps: UserRouteDeps): void {
  const { users } = deps;
  const json = jsonBody(deps.maxJsonBytes);

  const signup = async (ctx: Context) => {
    try {
      await users.signup(ctx.request.body as never);
    } catch (err) {
      // The CLI compares this body byte for byte: a bare JSON string, not {"error": …}.
      if (isRegistryError(err, 'INVALID_INPUT') && err.message === EXISTS_MESSAGE) {
        sendJson(ctx, 400, EXISTS_MESSAGE);
        return;
      }
      throw err;
    }
    sendJson(ctx, 201, 'User Created');
  };
  router.post('/v1/users', json, signup);
  router.post('/v1/users/', json, signup);

  const login = async (ctx: Context) => {
    const principal = principalOf(ctx);
    if (principal.kind !== 'user') {
      throw new RegistryError('UNAUTHORIZED', 'Log in with Basic authentication (user name and password)');
    }
    ctx.res.setHeader('Cache-Control', NO_CACHE);
    sendJson(ctx, 200, 'OK');
  };
  router.get('/v1/users', login);
  router.get('/v1/users/', login);

  const update = async (ctx: Context) => {
    const principal = principalOf(ctx);
    const name = (ctx.params as { name: string }).name;
    if (principal.kind !== 'user') throw new RegistryError('UNAUTHORIZED', 'Log in with Basic authentication to change an account');
    if (principal.user.name !== name && !principal.user.admin) {
      throw new RegistryError('FORBIDDEN', 'You may only change your own account');
    }
    await users.update(name, ctx.request.body);
    ctx.status = 204;
  };
  router.put('/v1/users/:name', json, update);
  router.put('/v1/users/:name/', json, update);
}
