/** Tags and referrers of the Registry API v2 (the catalog is in face.ts: it has no name). */
import { sendJson, sendSharedJson } from '../shared/respond.js';
import { authorizeV2 } from './auth.js';
import { paging, type V2Deps, type V2Routes } from './face.js';

export function addDiscoveryRoutes(routes: V2Routes, deps: V2Deps): void {
  const { access, manifests } = deps;

  /** Whole-list answers, serialized once per (unchanged) tag list. */
  const whole = new WeakMap<object, Map<string, object>>();

  routes.add('tags/list', 'GET', async (ctx, { name, rawName }) => {
    await authorizeV2(ctx, access, name, rawName, 'read');
    const { n, last } = paging(ctx);
    const page = await manifests.tags(name, n, last);
    ctx.res.setHeader('Cache-Control', 'no-cache');
    if (page.next !== null && n !== null) {
      ctx.res.setHeader('Link', `</v2/${rawName}/tags/list?n=${n}&last=${encodeURIComponent(page.next)}>; rel="next"`);
    }
    if (n === null && last === null) {
      // The common case (docker, skopeo list-tags): the same frozen list until a tag changes.
      let byName = whole.get(page.items);
      if (!byName) whole.set(page.items, (byName = new Map()));
      let body = byName.get(rawName);
      if (!body) byName.set(rawName, (body = { name: rawName, tags: page.items }));
      return sendSharedJson(ctx, 200, body);
    }
    sendJson(ctx, 200, { name: rawName, tags: page.items });
  });

  routes.add('referrers/:digest', 'GET', async (ctx, { name, rawName, ref }) => {
    await authorizeV2(ctx, access, name, rawName, 'read');
    const artifactType = new URLSearchParams(ctx.querystring).get('artifactType');
    const { index, filtered } = await manifests.referrers(name, ref, artifactType || null);
    if (filtered) ctx.res.setHeader('OCI-Filters-Applied', 'artifactType');
    sendJson(ctx, 200, index);
    ctx.res.setHeader('Content-Type', 'application/vnd.oci.image.index.v1+json');
  });
}
