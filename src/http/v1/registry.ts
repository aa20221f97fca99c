/**
 * Registry API v1: ping, image json/layer/ancestry/checksum, tags, repository facts and
 * properties, registry-side repository delete. Wire contract: shared/docs/protocol-v1.md.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { notFound } from '../../domain/errors.js';
import { isImageId, parseTag, type ImageId, type RepoName } from '../../domain/names.js';
import type { AccessService } from '../../services/access.js';
import type { ImageService } from '../../services/images.js';
import type { PullRecorder } from '../../services/hub.js';
import type { RepositoryService } from '../../services/repositories.js';
import { actorOf, principalOf } from '../shared/authenticate.js';
import { guardUploadBody, jsonBody, jsonValueOf, readRawBody } from '../shared/body.js';
import type { RegistryState } from '../shared/middleware.js';
import type { SendOptions } from '../shared/send-blob.js';
import { serveBlob } from '../shared/serve-blob.js';
import { IMMUTABLE, JSON_TYPE, NO_CACHE, sendJson, sendSharedJson } from '../shared/respond.js';
import { recordPull } from '../hub/routes.js';
import type { RepoRoutes } from './repo-routes.js';

export interface RegistryRouteDeps {
  images: ImageService;
  repos: RepositoryService;
  access: AccessService;
  /** Counts pulls for the Hub double (pull_count, tag_last_pulled). */
  pulls: PullRecorder;
  maxJsonBytes: number;
  /** How layers are sent (sendfile or streamed) and when a stalled download is cut off. */
  send: SendOptions;
  /** s3_redirect: a presigned URL that GETs a blob from the object store. */
  blobUrl?: (digest: string, expiresInSeconds: number) => Promise<string>;
}


/**
 * Adds the Registry API: `/v1/images/…` to `imageRouter` (app.ts matches only those paths
 * against it), the ping routes to `router`, repository paths to `routes`.
 */
export function addRegistryRoutes(router: Router, imageRouter: Router, routes: RepoRoutes, deps: RegistryRouteDeps): void {
  const { images, repos, access } = deps;
  const json = jsonBody(deps.maxJsonBytes);

  const ping = async (ctx: Context) => {
    ctx.res.setHeader('X-Docker-Registry-Standalone', access.isStandalone ? 'true' : 'false');
    ctx.res.setHeader('Cache-Control', NO_CACHE);
    sendJson(ctx, 200, true);
  };
  router.get('/v1/_ping', ping);
  router.get('/_ping', ping);

  // ── images ────────────────────────────────────────────────────────────────────────

  /**
   * An image written through a repository's write token without being declared joins that
   * repository's image list once the write succeeded (AccessService.authorizeImage).
   */
  const joinRepository = async (home: RepoName | null, id: ImageId) => {
    if (home) await repos.addToImageList(home, [{ id }]);
  };

  imageRouter.put('/v1/images/:id/json', async (ctx) => {
    const id = imageIdParam(ctx);
    const home = await access.authorizeImage(principalOf(ctx), id, 'write');
    const body = await readRawBody(ctx, deps.maxJsonBytes);
    await images.putJson(id, body, ctx.get('X-Docker-Checksum') || undefined);
    await joinRepository(home, id);
    sendJson(ctx, 200, true);
  });

  imageRouter.put('/v1/images/:id/layer', async (ctx) => {
    const id = imageIdParam(ctx);
    const home = await access.authorizeImage(principalOf(ctx), id, 'write');
    // A client that stops sending for upload_idle_timeout_seconds gets 408: the upload is
    // aborted, its temp file removed, the image stays pending (see guardUploadBody).
    const body = guardUploadBody(ctx.req);
    try {
      (ctx.state as RegistryState).bytesIn = (await images.putLayer(id, body.stream, body.signal)).size;
    } catch (err) {
      if (body.timedOut) ctx.res.setHeader('Connection', 'close');
      throw err;
    } finally {
      body.dispose();
    }
    await joinRepository(home, id);
    sendJson(ctx, 200, true);
  });

  imageRouter.put('/v1/images/:id/checksum', async (ctx) => {
    const id = imageIdParam(ctx);
    const home = await access.authorizeImage(principalOf(ctx), id, 'write');
    const payload = ctx.req.headers['x-docker-checksum-payload'];
    const tarsum = ctx.req.headers['x-docker-checksum'];
    await images.putChecksum(id, single(payload), single(tarsum));
    await joinRepository(home, id);
    sendJson(ctx, 200, true);
  });

  imageRouter.get('/v1/images/:id/json', async (ctx) => {
    const id = imageIdParam(ctx);
    await access.authorizeImage(principalOf(ctx), id, 'read');
    const view = await images.getJson(id);
    if (view.layerSize !== null) ctx.res.setHeader('X-Docker-Size', String(view.layerSize));
    if (view.payloadChecksum) {
      ctx.res.setHeader('X-Docker-Checksum-Payload', view.payloadChecksum);
      ctx.res.setHeader('X-Docker-Payload-Checksum', view.payloadChecksum);
    }
    ctx.res.setHeader('Cache-Control', IMMUTABLE);
    ctx.status = 200;
    ctx.res.setHeader('Content-Type', JSON_TYPE);
    ctx.body = view.json;
  });

  imageRouter.get('/v1/images/:id/ancestry', async (ctx) => {
    const id = imageIdParam(ctx);
    await access.authorizeImage(principalOf(ctx), id, 'read');
    const ancestry = await images.getAncestry(id);
    ctx.res.setHeader('Cache-Control', IMMUTABLE);
    sendSharedJson(ctx, 200, ancestry);
  });

  imageRouter.get('/v1/images/:id/layer', async (ctx) => {
    const id = imageIdParam(ctx);
    await access.authorizeImage(principalOf(ctx), id, 'read');
    const layer = await images.getLayer(id);
    await serveBlob(ctx, layer, () => images.openLayer(layer), { send: deps.send, blobUrl: deps.blobUrl });
  });

  // ── repositories ──────────────────────────────────────────────────────────────────
  const tagOf = (ctx: Context) => parseTag((ctx.params as { tag: string }).tag);

  routes.add('get', '/tags', [], async (ctx, name) => {
    await access.authorizeRepo(principalOf(ctx), name, 'read');
    ctx.res.setHeader('Cache-Control', NO_CACHE);
    sendSharedJson(ctx, 200, await repos.listTags(name));
    await recordPull(ctx, deps.pulls, { repo: name, allTags: true });
  });
  routes.add('get', '/tags/:tag', [], async (ctx, name) => {
    const tag = tagOf(ctx);
    await access.authorizeRepo(principalOf(ctx), name, 'read');
    ctx.res.setHeader('Cache-Control', NO_CACHE);
    sendJson(ctx, 200, await repos.getTag(name, tag));
    await recordPull(ctx, deps.pulls, { repo: name, tag });
  });
  // The body is a JSON string (the image id). Anything else, including a body that is not
  // JSON at all (a bare id, an empty body), is 400 "Invalid data", as the reference server
  // answers; so the body is parsed here rather than by the generic JSON parser.
  routes.add('put', '/tags/:tag', [], async (ctx, name) => {
    const tag = tagOf(ctx);
    await access.authorizeRepo(principalOf(ctx), name, 'write');
    const body = jsonValueOf(await readRawBody(ctx, deps.maxJsonBytes));
    // Tagging links the image into this repository, which makes it readable here: the
    // caller must be allowed to read it where it already lives.
    if (isImageId(body)) await access.authorizeImageList(principalOf(ctx), name, [body]);
    await repos.putTag(name, tag, body, ctx.get('User-Agent'), actorOf(ctx));
    sendJson(ctx, 200, true);
  });
  // An empty tag names no tag: 404, as both reference servers answer (no route matches
  // there), rather than 405 from the tag list's path. Namespaced shape only: with a single
  // name, `PUT /v1/repositories/x/tags/` is the push start of `x/tags`.
  router.put('/v1/repositories/:namespace/:repository/tags/', async () => {
    throw notFound('Tag not found');
  });
  routes.add('delete', '/tags/:tag', [], async (ctx, name) => {
    const tag = tagOf(ctx);
    await access.authorizeRepo(principalOf(ctx), name, 'untag');
    await repos.deleteTag(name, tag, actorOf(ctx));
    sendJson(ctx, 200, true);
  });
  routes.add('get', '/tags/:tag/json', [], async (ctx, name) => {
    const tag = tagOf(ctx);
    await access.authorizeRepo(principalOf(ctx), name, 'read');
    ctx.res.setHeader('Cache-Control', NO_CACHE);
    sendJson(ctx, 200, await repos.tagInfo(name, tag));
  });
  routes.add('get', '/json', [], async (ctx, name) => {
    await access.authorizeRepo(principalOf(ctx), name, 'read');
    ctx.res.setHeader('Cache-Control', NO_CACHE);
    sendJson(ctx, 200, await repos.repoInfo(name));
  });
  routes.add('get', '/properties', [], async (ctx, name) => {
    await access.authorizeRepo(principalOf(ctx), name, 'read');
    ctx.res.setHeader('Cache-Control', NO_CACHE);
    sendJson(ctx, 200, { access: await repos.getAccess(name) });
  });
  routes.add('put', '/properties', [json], async (ctx, name) => {
    await access.authorizeRepo(principalOf(ctx), name, 'admin');
    await repos.setProperties(name, ctx.request.body);
    sendJson(ctx, 200, true);
  });
}

/**
 * The `:id` of a `/v1/images/:id/…` path. An id that is not 16–64 lowercase hex cannot
 * exist, so it is not found (404, as the reference server answers `Invalid image ID`); it
 * never reaches a key or a path.
 */
export function imageIdParam(ctx: Context): ImageId {
  const id = (ctx.params as { id: string }).id;
  if (!isImageId(id)) throw notFound('Invalid image ID');
  return id;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
