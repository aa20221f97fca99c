/**
 * Registry API v1, repository side: tags, tag/repository client facts, properties,
 * registry-side repository delete, both repository shapes, _ping, docker headers, 404s.
 * Every request goes through `call`, which checks the headers every response must carry.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { errorOf, rawRequest, type RawResponse } from '../helpers/http-raw.js';
import { newImageId, startTestServer, type TestServer } from '../helpers/server.js';
import { imageJson, pushImage } from '../helpers/v1.js';

const PACKAGE_VERSION = (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;
const DOCKER_UA = 'docker/1.5.0 go/go1.4 git-commit/a8a31ef kernel/3.13.0 os/linux arch/amd64';
const OTHER_UA = 'docker/1.6.2 go/go1.4.2 git-commit/7c8fca2 kernel/4.0.0-1-arm os/linux arch/arm';
const BAD_TAG = 'Invalid tag name: expected [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}';
const BAD_NS = 'Invalid namespace name: expected 2 to 255 characters of [a-z0-9_-]';
const BAD_REPO = 'Invalid repository name: expected 1 to 255 characters of [a-z0-9_.-]';
const DEFAULT_INFO = { last_update: null, docker_version: null, docker_go_version: null, arch: 'amd64', os: 'linux', kernel: null };

interface CallOptions {
  body?: string | Buffer;
  /** Content-Type to send; null sends none. JSON by default when there is a body. */
  type?: string | null;
  ua?: string;
  headers?: Record<string, string>;
}

describe('Registry API v1: repositories and tags', () => {
  let srv: TestServer;
  let imageId: string;
  let otherImageId: string;
  let seen = 0;

  before(async () => {
    srv = await startTestServer();
    imageId = newImageId();
    otherImageId = newImageId();
    await pushImage(srv.url, { id: imageId, layer: randomBytes(100) });
    await pushImage(srv.url, { id: otherImageId, parent: imageId, layer: randomBytes(100) });
  });
  after(async () => {
    await srv.destroy();
    assert.ok(seen > 50, `expected many responses to be checked, saw ${seen}`);
  });

  async function call(method: string, path: string, options: CallOptions = {}): Promise<RawResponse> {
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    if (options.body !== undefined && options.type !== null) headers['Content-Type'] = options.type ?? 'application/json';
    if (options.ua) headers['User-Agent'] = options.ua;
    const res = await rawRequest(`${srv.url}${path}`, { method, headers, ...(options.body !== undefined ? { body: options.body } : {}) });
    // Every registry response, whatever its status, carries these.
    assert.equal(res.headers['x-docker-registry-version'], PACKAGE_VERSION, `${method} ${path}: X-Docker-Registry-Version`);
    assert.equal(res.headers['x-docker-registry-config'], srv.config.flavor, `${method} ${path}: X-Docker-Registry-Config`);
    if (res.body.length > 0) assert.match(String(res.headers['content-type']), /^application\/json/, `${method} ${path}: Content-Type`);
    seen += 1;
    return res;
  }

  const json = (res: RawResponse): unknown => JSON.parse(res.body.toString('utf8'));
  const putTag = (repo: string, tag: string, id: string, options: CallOptions = {}) =>
    call('PUT', `/v1/repositories/${repo}/tags/${tag}`, { body: JSON.stringify(id), ...options });
  const getTag = (repo: string, tag: string) => call('GET', `/v1/repositories/${repo}/tags/${tag}`);
  const listTags = (repo: string) => call('GET', `/v1/repositories/${repo}/tags`);
  let counter = 0;
  /** A fresh repository name per test, so tests never see each other's tags. */
  const freshRepo = (ns = 'alice') => `${ns}/repo${++counter}-${randomBytes(3).toString('hex')}`;

  describe('[PUT /v1/repositories/:ns/:repo/tags/:tag]', () => {
    it('200 and the tag is listed and readable as a JSON string', async () => {
      const repo = freshRepo();
      const res = await putTag(repo, 'latest', imageId);
      assert.equal(res.status, 200, res.body.toString());
      assert.deepEqual(json(res), true);
      const got = await getTag(repo, 'latest');
      assert.equal(got.status, 200);
      assert.equal(got.body.toString(), JSON.stringify(imageId), 'a tag is served as a JSON-encoded string');
      assert.equal(got.headers['content-type'], 'application/json; charset=utf-8');
      assert.deepEqual(json(await listTags(repo)), { latest: imageId });
    });

    it('200 when a tag is moved to another image', async () => {
      const repo = freshRepo();
      assert.equal((await putTag(repo, 'latest', imageId)).status, 200);
      assert.equal((await putTag(repo, 'v1', imageId)).status, 200);
      assert.equal((await putTag(repo, 'latest', otherImageId)).status, 200);
      assert.deepEqual(json(await listTags(repo)), { latest: otherImageId, v1: imageId });
    });

    it('200 when the body has no Content-Type, a form type or text/plain', async () => {
      for (const type of [null, 'application/x-www-form-urlencoded', 'text/plain', 'application/octet-stream']) {
        const repo = freshRepo();
        const res = await putTag(repo, 'latest', imageId, { type });
        assert.equal(res.status, 200, `${type}: ${res.body.toString()}`);
        assert.equal(json(await getTag(repo, 'latest')), imageId, String(type));
      }
    });

    it('404 "Tag not found" for an empty tag (PUT …/tags/), as both reference servers answer', async () => {
      const repo = freshRepo();
      assert.equal((await putTag(repo, 'latest', imageId)).status, 200);
      const res = await call('PUT', `/v1/repositories/${repo}/tags/`, { body: JSON.stringify(otherImageId) });
      assert.equal(res.status, 404, res.body.toString());
      assert.equal(errorOf(res), 'Tag not found');
      assert.deepEqual(json(await listTags(repo)), { latest: imageId }, 'nothing changed');
      // With a single name the path is the push start of `<name>/tags` (the namespaced reading wins).
      const name = `single${randomBytes(3).toString('hex')}`;
      assert.equal((await call('PUT', `/v1/repositories/${name}/tags/`, { body: '[]' })).status, 200);
      assert.equal((await listTags(`${name}/tags`)).status, 200);
    });

    it('400 "Invalid data" when the body is not a JSON string', async () => {
      const repo = freshRepo();
      for (const body of [JSON.stringify({ id: imageId }), JSON.stringify([imageId]), '123', 'null', 'true', '""', '{}']) {
        const res = await call('PUT', `/v1/repositories/${repo}/tags/latest`, { body });
        assert.equal(res.status, 400, body);
        assert.equal(errorOf(res), 'Invalid data', body);
      }
      assert.equal((await getTag(repo, 'latest')).status, 404);
    });

    it('400 "Invalid data" when the body is not JSON at all (a bare id, an empty body)', async () => {
      const repo = freshRepo();
      for (const body of [imageId, '', `"${imageId}`]) {
        const res = await call('PUT', `/v1/repositories/${repo}/tags/latest`, { body });
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal(errorOf(res), 'Invalid data', JSON.stringify(body));
      }
      assert.equal((await getTag(repo, 'latest')).status, 404);
    });

    it('400 when the JSON string is not an image id', async () => {
      const repo = freshRepo();
      const res = await putTag(repo, 'latest', '../../etc/passwd');
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'Invalid data: not an image id');
    });

    it('404 when the image does not exist', async () => {
      const repo = freshRepo();
      const res = await putTag(repo, 'latest', newImageId());
      assert.equal(res.status, 404);
      assert.equal(errorOf(res), 'Image not found');
      assert.equal((await listTags(repo)).status, 404, 'a failed tag PUT creates no repository');
    });

    it('400 when the image is still being uploaded', async () => {
      const repo = freshRepo();
      const id = newImageId();
      const put = await rawRequest(`${srv.url}/v1/images/${id}/json`, { method: 'PUT', body: imageJson({ id, layer: Buffer.alloc(0) }) });
      assert.equal(put.status, 200);
      const res = await putTag(repo, 'latest', id);
      assert.equal(res.status, 400);
      assert.equal(errorOf(res), 'Image is being uploaded, retry later');
      assert.equal((await getTag(repo, 'latest')).status, 404);
    });

    it('400 for invalid tag names: ".x", "-x", "$x", 129 chars', async () => {
      const repo = freshRepo();
      assert.equal((await putTag(repo, 'ok', imageId)).status, 200);
      for (const tag of ['.x', '-x', '$x', 'a'.repeat(129), 'x%20y', 'caf%C3%A9']) {
        for (const [method, path, body] of [
          ['PUT', `/v1/repositories/${repo}/tags/${tag}`, JSON.stringify(imageId)],
          ['GET', `/v1/repositories/${repo}/tags/${tag}`, undefined],
          ['DELETE', `/v1/repositories/${repo}/tags/${tag}`, undefined],
          ['GET', `/v1/repositories/${repo}/tags/${tag}/json`, undefined],
        ] as const) {
          const res = await call(method, path, body === undefined ? {} : { body });
          assert.equal(res.status, 400, `${method} ${tag}`);
          assert.deepEqual(json(res), { error: BAD_TAG }, `${method} ${tag}`);
        }
      }
      assert.deepEqual(json(await listTags(repo)), { ok: imageId });
    });

    it('200 for "_x", 128 chars and the other legal characters', async () => {
      const repo = freshRepo();
      const long = 'a' + 'b'.repeat(127);
      const tags = ['_x', long, 'V1.2.3-rc_1', '0'];
      for (const tag of tags) {
        const res = await putTag(repo, tag, imageId);
        assert.equal(res.status, 200, `${tag}: ${res.body.toString()}`);
        assert.equal(json(await getTag(repo, tag)), imageId, tag);
      }
      assert.deepEqual(Object.keys(json(await listTags(repo)) as object).sort(), [...tags].sort());
    });

    it('400 for invalid namespace or repository names', async () => {
      const cases: Array<[string, string]> = [
        ['Alice/app', BAD_NS],
        ['a/app', BAD_NS],
        [`${'n'.repeat(256)}/app`, BAD_NS],
        ['ali.ce/app', BAD_NS],
        ['alice/App', BAD_REPO],
        ['alice/...', BAD_REPO],
        ['alice/a$b', BAD_REPO],
        [`alice/${'r'.repeat(256)}`, BAD_REPO],
        ['Busybox', BAD_REPO],
      ];
      for (const [repo, message] of cases) {
        for (const [method, suffix, body] of [
          ['PUT', '/tags/latest', JSON.stringify(imageId)],
          ['GET', '/tags', undefined],
          ['GET', '/tags/latest', undefined],
          ['GET', '/json', undefined],
          ['GET', '/properties', undefined],
        ] as const) {
          const res = await call(method, `/v1/repositories/${repo}${suffix}`, body === undefined ? {} : { body });
          assert.equal(res.status, 400, `${method} ${repo}${suffix}`);
          assert.deepEqual(json(res), { error: message }, `${method} ${repo}${suffix}`);
        }
      }
    });

    it('200 for the shortest and longest legal names', async () => {
      for (const repo of ['ab/x', `${'n'.repeat(255)}/${'r'.repeat(255)}`, 'my_ns-1/my.repo_2-x']) {
        const res = await putTag(repo, 'latest', imageId);
        assert.equal(res.status, 200, `${repo}: ${res.body.toString()}`);
        assert.deepEqual(json(await listTags(repo)), { latest: imageId }, repo);
      }
    });

    it('413 when the body is larger than max_json_bytes', async () => {
      const repo = freshRepo();
      const res = await call('PUT', `/v1/repositories/${repo}/tags/latest`, {
        body: JSON.stringify('x'.repeat(srv.config.max_json_bytes + 10)),
      });
      assert.equal(res.status, 413);
      assert.equal(errorOf(res), `Request body larger than ${srv.config.max_json_bytes} bytes`);
    });
  });

  describe('[GET /v1/repositories/:ns/:repo/tags]', () => {
    it('404 for an unknown repository', async () => {
      const res = await listTags(freshRepo());
      assert.equal(res.status, 404);
      assert.equal(errorOf(res), 'Repository not found');
    });

    it('200 {} for a repository with no tags', async () => {
      const repo = freshRepo();
      assert.equal((await call('PUT', `/v1/repositories/${repo}/properties`, { body: '{"access":"public"}' })).status, 200);
      const res = await listTags(repo);
      assert.equal(res.status, 200);
      assert.deepEqual(json(res), {});
    });

    it('200 lists only the tags of that repository', async () => {
      const a = freshRepo('alice');
      const b = freshRepo('bobby');
      await putTag(a, 'one', imageId);
      await putTag(b, 'two', otherImageId);
      assert.deepEqual(json(await listTags(a)), { one: imageId });
      assert.deepEqual(json(await listTags(b)), { two: otherImageId });
    });
  });

  describe('[GET /v1/repositories/:ns/:repo/tags/:tag]', () => {
    it('404 for an unknown tag', async () => {
      const repo = freshRepo();
      await putTag(repo, 'latest', imageId);
      const res = await getTag(repo, 'nope');
      assert.equal(res.status, 404);
      assert.equal(errorOf(res), 'Tag not found');
    });

    it('404 for a tag of an unknown repository', async () => {
      const res = await getTag(freshRepo(), 'latest');
      assert.equal(res.status, 404);
      assert.equal(errorOf(res), 'Tag not found');
    });
  });

  describe('[DELETE /v1/repositories/:ns/:repo/tags/:tag]', () => {
    it('200 and the tag is gone; other tags stay', async () => {
      const repo = freshRepo();
      await putTag(repo, 'latest', imageId);
      await putTag(repo, 'keep', imageId);
      const res = await call('DELETE', `/v1/repositories/${repo}/tags/latest`);
      assert.equal(res.status, 200);
      assert.deepEqual(json(res), true);
      assert.equal((await getTag(repo, 'latest')).status, 404);
      assert.deepEqual(json(await listTags(repo)), { keep: imageId });
    });

    it('404 for an unknown tag', async () => {
      const repo = freshRepo();
      await putTag(repo, 'latest', imageId);
      const res = await call('DELETE', `/v1/repositories/${repo}/tags/nope`);
      assert.equal(res.status, 404);
      assert.equal(errorOf(res), 'Tag not found: nope');
    });
  });

  describe('single-name repositories are library/<name>', () => {
    it('a tag set on /busybox is visible on /library/busybox, and back', async () => {
      const name = `busybox${++counter}`;
      assert.equal((await putTag(name, 'latest', imageId, { ua: DOCKER_UA })).status, 200);
      assert.equal(json(await getTag(`library/${name}`, 'latest')), imageId);
      assert.deepEqual(json(await listTags(`library/${name}`)), { latest: imageId });

      assert.equal((await putTag(`library/${name}`, 'v2', otherImageId)).status, 200);
      assert.equal(json(await getTag(name, 'v2')), otherImageId);
      assert.deepEqual(json(await listTags(name)), { latest: imageId, v2: otherImageId });
    });

    it('tag json, repository json, properties and delete work on both shapes', async () => {
      const name = `ubuntu${++counter}`;
      await putTag(name, 'latest', imageId, { ua: DOCKER_UA });
      const short = json(await call('GET', `/v1/repositories/${name}/tags/latest/json`));
      const long = json(await call('GET', `/v1/repositories/library/${name}/tags/latest/json`));
      assert.deepEqual(short, long);
      assert.equal((short as { docker_version: unknown }).docker_version, '1.5.0');
      assert.deepEqual(json(await call('GET', `/v1/repositories/${name}/json`)), json(await call('GET', `/v1/repositories/library/${name}/json`)));

      assert.equal((await call('PUT', `/v1/repositories/${name}/properties`, { body: '{"access":"private"}' })).status, 200);
      assert.deepEqual(json(await call('GET', `/v1/repositories/library/${name}/properties`)), { access: 'private' });

      assert.equal((await call('DELETE', `/v1/repositories/${name}/tags/latest`)).status, 200);
      assert.equal((await getTag(`library/${name}`, 'latest')).status, 404);
      await putTag(`library/${name}`, 'latest', imageId);
      assert.equal((await call('DELETE', `/v1/repositories/${name}/`)).status, 200);
      assert.equal((await listTags(`library/${name}`)).status, 404);
    });

    it('a namespace other than library is a different repository', async () => {
      const name = `alpine${++counter}`;
      await putTag(name, 'latest', imageId);
      assert.equal((await listTags(`alice/${name}`)).status, 404);
    });
  });

  describe('[GET /v1/repositories/:ns/:repo/tags/:tag/json] and [GET /v1/repositories/:ns/:repo/json]', () => {
    it('200 with the client facts parsed from the User-Agent of the tag PUT', async () => {
      const repo = freshRepo();
      const before = Math.floor(Date.now() / 1000);
      assert.equal((await putTag(repo, 'latest', imageId, { ua: DOCKER_UA })).status, 200);
      const afterPut = Math.ceil(Date.now() / 1000);
      for (const path of [`/v1/repositories/${repo}/tags/latest/json`, `/v1/repositories/${repo}/json`]) {
        const res = await call('GET', path);
        assert.equal(res.status, 200, path);
        const info = json(res) as Record<string, unknown>;
        const { last_update, ...rest } = info;
        assert.deepEqual(rest, { docker_version: '1.5.0', docker_go_version: 'go1.4', arch: 'amd64', os: 'linux', kernel: '3.13.0' }, path);
        assert.equal(typeof last_update, 'number', path);
        assert.ok((last_update as number) >= before && (last_update as number) <= afterPut, `${path}: last_update ${last_update}`);
      }
    });

    it('200 with the facts of each tag, and the repository json follows the last tag PUT', async () => {
      const repo = freshRepo();
      await putTag(repo, 'old', imageId, { ua: DOCKER_UA });
      await putTag(repo, 'new', otherImageId, { ua: OTHER_UA });
      const pick = (r: RawResponse) => {
        const { last_update: _ignored, ...rest } = json(r) as Record<string, unknown>;
        return rest;
      };
      const other = { docker_version: '1.6.2', docker_go_version: 'go1.4.2', arch: 'arm', os: 'linux', kernel: '4.0.0-1-arm' };
      assert.deepEqual(pick(await call('GET', `/v1/repositories/${repo}/tags/old/json`)), {
        docker_version: '1.5.0',
        docker_go_version: 'go1.4',
        arch: 'amd64',
        os: 'linux',
        kernel: '3.13.0',
      });
      assert.deepEqual(pick(await call('GET', `/v1/repositories/${repo}/tags/new/json`)), other);
      assert.deepEqual(pick(await call('GET', `/v1/repositories/${repo}/json`)), other);
    });

    it('200 with nulls and the amd64/linux defaults when nothing was recorded', async () => {
      const repo = freshRepo();
      for (const path of [`/v1/repositories/${repo}/json`, `/v1/repositories/${repo}/tags/latest/json`]) {
        const res = await call('GET', path);
        assert.equal(res.status, 200, path);
        assert.deepEqual(json(res), DEFAULT_INFO, path);
      }
    });

    it('200 with null docker facts when the tag was set without a docker User-Agent', async () => {
      const repo = freshRepo();
      await putTag(repo, 'latest', imageId); // node:http sends no User-Agent at all
      await putTag(repo, 'curl', imageId, { ua: 'curl/8.5.0' });
      for (const tag of ['latest', 'curl']) {
        const info = json(await call('GET', `/v1/repositories/${repo}/tags/${tag}/json`)) as Record<string, unknown>;
        assert.equal(typeof info.last_update, 'number', tag);
        assert.deepEqual({ ...info, last_update: null }, DEFAULT_INFO, tag);
      }
    });
  });

  describe('[GET|PUT /v1/repositories/:ns/:repo/properties]', () => {
    it('404 for an unknown repository', async () => {
      const res = await call('GET', `/v1/repositories/${freshRepo()}/properties`);
      assert.equal(res.status, 404);
      assert.equal(errorOf(res), 'Repository not found');
    });

    it('200 public for a repository created by a tag PUT', async () => {
      const repo = freshRepo();
      await putTag(repo, 'latest', imageId);
      const res = await call('GET', `/v1/repositories/${repo}/properties`);
      assert.equal(res.status, 200);
      assert.deepEqual(json(res), { access: 'public' });
    });

    it('200 and the access is stored: private, then public again', async () => {
      const repo = freshRepo();
      await putTag(repo, 'latest', imageId);
      let res = await call('PUT', `/v1/repositories/${repo}/properties`, { body: JSON.stringify({ access: 'private' }) });
      assert.equal(res.status, 200, res.body.toString());
      assert.deepEqual(json(await call('GET', `/v1/repositories/${repo}/properties`)), { access: 'private' });
      res = await call('PUT', `/v1/repositories/${repo}/properties`, { body: '{"access": "public"}', type: null });
      assert.equal(res.status, 200, res.body.toString());
      assert.deepEqual(json(await call('GET', `/v1/repositories/${repo}/properties`)), { access: 'public' });
      // Tags are untouched by a properties change.
      assert.deepEqual(json(await listTags(repo)), { latest: imageId });
    });

    it('400 for an invalid body', async () => {
      const repo = freshRepo();
      await putTag(repo, 'latest', imageId);
      const notAnObject = 'Invalid data: expected {"access": "public"|"private"} and/or {"description": "..."}';
      const badAccess = 'Invalid data: access must be "public" or "private"';
      const cases: Array<[string, string]> = [
        ['{"access":"secret"}', badAccess],
        ['{"access":["private"]}', badAccess],
        ['{"access":"PRIVATE"}', badAccess],
        ['"private"', notAnObject],
        ['{}', notAnObject],
        ['[]', notAnObject],
        ['null', notAnObject],
        ['{"Access":"private"}', notAnObject],
        ['{access: private}', 'Invalid JSON'],
      ];
      for (const [body, message] of cases) {
        const res = await call('PUT', `/v1/repositories/${repo}/properties`, { body });
        assert.equal(res.status, 400, body);
        assert.equal(errorOf(res), message, body);
      }
      assert.deepEqual(json(await call('GET', `/v1/repositories/${repo}/properties`)), { access: 'public' });
    });
  });

  describe('[DELETE /v1/repositories/:ns/:repo/]', () => {
    it('200, then its tags are gone (404)', async () => {
      const repo = freshRepo();
      await putTag(repo, 'latest', imageId);
      await putTag(repo, 'v1', otherImageId);
      const res = await call('DELETE', `/v1/repositories/${repo}/`);
      assert.equal(res.status, 200, res.body.toString());
      assert.deepEqual(json(res), true);
      let got = await listTags(repo);
      assert.equal(got.status, 404);
      assert.equal(errorOf(got), 'Repository not found');
      got = await getTag(repo, 'latest');
      assert.equal(got.status, 404);
      assert.equal(errorOf(got), 'Tag not found');
      // A new push under the same name starts from nothing.
      await putTag(repo, 'fresh', imageId);
      assert.deepEqual(json(await listTags(repo)), { fresh: imageId });
    });

    it('200 without the trailing slash too', async () => {
      const repo = freshRepo();
      await putTag(repo, 'latest', imageId);
      assert.equal((await call('DELETE', `/v1/repositories/${repo}`)).status, 200);
      assert.equal((await listTags(repo)).status, 404);
    });

    it('404 for an unknown repository', async () => {
      const res = await call('DELETE', `/v1/repositories/${freshRepo()}/`);
      assert.equal(res.status, 404);
      assert.equal(errorOf(res), 'Repository not found');
    });

    it('leaves other repositories alone', async () => {
      const a = freshRepo();
      const b = `${a}x`;
      await putTag(a, 'latest', imageId);
      await putTag(b, 'latest', imageId);
      assert.equal((await call('DELETE', `/v1/repositories/${a}/`)).status, 200);
      assert.deepEqual(json(await listTags(b)), { latest: imageId });
    });
  });

  describe('[GET /v1/_ping] and [GET /_ping]', () => {
    for (const path of ['/v1/_ping', '/_ping']) {
      it(`200 JSON true on ${path} with X-Docker-Registry-Standalone`, async () => {
        const res = await call('GET', path);
        assert.equal(res.status, 200);
        assert.equal(res.body.toString(), 'true');
        assert.equal(res.headers['x-docker-registry-standalone'], String(srv.config.standalone));
        assert.equal(res.headers['cache-control'], 'no-cache');
      });
    }

    it('X-Docker-Registry-Standalone: false on a registry that is not standalone', async () => {
      const other = await startTestServer({ overrides: { standalone: false, flavor: 'prod' } });
      try {
        const res = await rawRequest(`${other.url}/v1/_ping`);
        assert.equal(res.status, 200);
        assert.equal(res.body.toString(), 'true');
        assert.equal(res.headers['x-docker-registry-standalone'], 'false');
        assert.equal(res.headers['x-docker-registry-config'], 'prod');
      } finally {
        await other.destroy();
      }
    });
  });

  describe('unknown routes', () => {
    it('404 JSON {"error": ...} for an unknown path', async () => {
      for (const path of ['/v3/', '/v1/nothing', `/v1/images/${imageId}/other`, '/v1/repositories/a/b/c/d/e']) {
        const res = await call('GET', path);
        assert.equal(res.status, 404, path);
        assert.deepEqual(json(res), { error: 'Not found' }, path);
      }
    });

    it('405 JSON {"error": ...} with Allow for a known path and another method', async () => {
      const res = await call('POST', '/v1/_ping', { body: '{}' });
      assert.equal(res.status, 405);
      assert.deepEqual(json(res), { error: 'Method not allowed' });
      assert.match(String(res.headers.allow), /\bGET\b/);
    });
  });
});
