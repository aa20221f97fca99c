/**
 * Manifests of the Registry API v2: stored and served byte for byte, with
 * Docker-Content-Digest; pulls counted for the Hub double like v1 pulls.
 */
import { isIndexType } from '../../domain/manifest.js';
import { actorOf } from '../shared/authenticate.js';
import { readRawBody } from '../shared/body.js';
import type { RegistryState } from '../shared/middleware.js';
import { authorizeV2 } from './auth.js';
import { accepted } from './blobs.js';
import type { V2Deps, V2Routes } from './face.js';

export function addManifestRoutes(routes: V2Routes, deps: V2Deps): void {
  const { access, manifests } = deps;

  routes.add('manifests/:reference', 'GET', async (ctx, { name, rawName, ref }) => {
    await authorizeV2(ctx, access, name, rawName, 'read');
    const view = await manifests.get(name, ref, { accept: ctx.get('Accept') || undefined });
    const res = ctx.res;
    res.setHeader('Docker-Content-Digest', view.digest);
    res.setHeader('ETag', `"${view.digest}"`);
    res.setHeader('Content-Type', view.mediaType);
    ctx.status = 200;
    if (ctx.method === 'HEAD') {
      ctx.length = view.bytes.length;
      return;
    }
    ctx.body = view.bytes;
    // A pull, as Docker Hub counts them: every GET of an image manifest (an index alone is
    // not one: its client goes on to an image manifest), and the tag it came through.
    try {
      if (!isIndexType(view.mediaType)) await deps.pulls.repositoryPulled(name);
      if (view.tag !== undefined) await deps.pulls.tagPulled(name, view.tag);
    } catch (err) {
      (ctx.state as RegistryState).log?.error({ err, repo: name.full }, 'could not record a pull');
    }
  });

  routes.add('manifests/:reference', 'PUT', async (ctx, { name, rawName, ref }) => {
    await authorizeV2(ctx, access, name, rawName, 'write');
    const bytes = await readRawBody(ctx, deps.maxManifestBytes);
    const tags = new URLSearchParams(ctx.querystring).getAll('tag');
    const result = await manifests.put(name, ref, bytes, ctx.get('Content-Type') || undefined, {
      tags,
      userAgent: ctx.get('User-Agent') || undefined,
      actor: actorOf(ctx),
    });
    const res = ctx.res;
    res.setHeader('Location', `/v2/${rawName}/manifests/${result.digest}`);
    res.setHeader('Docker-Content-Digest', result.digest);
    if (result.subject) res.setHeader('OCI-Subject', result.subject);
    if (tags.length > 0) res.setHeader('OCI-Tag', result.tags.join(', '));
    accepted(ctx, 201);
  });

  routes.add('manifests/:reference', 'DELETE', async (ctx, { name, rawName, ref }) => {
    await authorizeV2(ctx, access, name, rawName, 'untag');
    await manifests.delete(name, ref, actorOf(ctx));
    accepted(ctx, 202);
  });
}
