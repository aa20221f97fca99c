/**
 * Both repository shapes on every repository route: `/v1/repositories/ns/repo/...` and
 * `/v1/repositories/repo/...` (= `library/repo`). Where a path fits both shapes, the
 * namespaced reading wins, and routes with a suffix win over the bare repository route:
 * all namespaced suffix routes are registered first, then single-name suffix routes, then
 * the bare `ns/repo/` routes, then bare `repo/`.
 */
import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { parseRepoName, type RepoName } from '../../domain/names.js';

export type RepoHandler = (ctx: Context, name: RepoName) => Promise<void>;
type Method = 'get' | 'put' | 'delete' | 'post';

interface Def {
  method: Method;
  suffix: string;
  middleware: Middleware[];
  handler: RepoHandler;
}

export class RepoRoutes {
  private readonly defs: Def[] = [];

  add(method: Method, suffix: string, middleware: Middleware[], handler: RepoHandler): this {
    this.defs.push({ method, suffix, middleware, handler });
    return this;
  }

  mount(router: Router): void {
    const withSuffix = this.defs.filter((d) => d.suffix !== '');
    const bare = this.defs.filter((d) => d.suffix === '');
    for (const group of [withSuffix, bare]) {
      for (const shape of ['/v1/repositories/:namespace/:repository', '/v1/repositories/:repository']) {
        for (const def of group) {
          const run: Middleware = async (ctx) => {
            const params = ctx.params as Record<string, string | undefined>;
            await def.handler(ctx, parseRepoName(params.namespace, params.repository));
          };
          // Bare repository routes are written with a trailing slash by docker; accept both.
          const path = shape + (def.suffix || '/');
          router[def.method](path, ...def.middleware, run);
          if (def.suffix === '') router[def.method](shape, ...def.middleware, run);
        }
      }
    }
  }
}
