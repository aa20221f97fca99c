/**
 * Concurrency: many clients at once against one in-process server (standalone).
 *
 * - 32 clients push overlapping chains (shared parents) to the same and to different
 *   repositories at once, as a docker client does, waiting and probing again when another
 *   client is writing a shared image. Every refusal is a clean answer (400/409 with a JSON
 *   error), never a 5xx or a dropped connection, and every tag pulls back byte-exact.
 * - The same image id uploaded twice at the same moment: exactly one upload wins, the other
 *   gets 409 and a JSON error; with eight clients racing the whole push of one image,
 *   exactly one PUT checksum completes it.
 * - Tag writes racing tag deletes end in a consistent state.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openUpload, type RawResponse } from '../helpers/http-raw.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { makeImage, prng, send, verifyPull, type HarnessImage, type HttpResult } from './crash-harness.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const JSON_TYPE = { 'Content-Type': 'application/json' };

/** A refusal must be a JSON body {"error": "..."}. */
function assertCleanError(res: HttpResult | RawResponse, what: string): string {
  assert.ok(res.status >= 400 && res.status < 500, `${what}: ${res.status} is a client error, never a 5xx`);
  assert.match(String(res.headers['content-type']), /application\/json/, `${what}: JSON error body`);
  const parsed = JSON.parse(res.body.toString('utf8')) as { error?: unknown };
  assert.equal(typeof parsed.error, 'string', `${what}: {"error": "..."} (${res.body.toString('utf8')})`);
  return parsed.error as string;
}

interface Stats {
  refusals: Map<string, number>;
}

function count(stats: Stats, key: string): void {
  stats.refusals.set(key, (stats.refusals.get(key) ?? 0) + 1);
}

/**
 * Uploads one image the way a patient docker client would: probe, PUT json, PUT layer,
 * PUT checksum; on a clean 409 (someone else is writing it, or finished it) or a 400 for a
 * parent still being uploaded / a layer another client reset, waits and starts again from
 * the probe. Bounded: 400 rounds.
 */
async function uploadImage(base: string, image: HarnessImage, stats: Stats, rand: () => number): Promise<'uploaded' | 'present'> {
  for (let round = 0; round < 400; round++) {
    if (round > 0) await sleep(2 + Math.floor(rand() * 8));
    const probe = await send(base, 'GET', `/v1/images/${image.id}/json`);
    if (probe.status === 200) return 'present';
    assert.ok(probe.status === 400 || probe.status === 404, `probe ${image.id}: ${probe.status}`);
    const json = await send(base, 'PUT', `/v1/images/${image.id}/json`, { headers: JSON_TYPE, body: image.json });
    if (json.status !== 200) {
      const error = assertCleanError(json, `PUT json ${image.id}`);
      assert.ok(json.status === 409 || /parent/.test(error), `PUT json ${image.id}: ${json.status} ${error}`);
      count(stats, `PUT json ${json.status}`);
      continue;
    }
    const layer = await send(base, 'PUT', `/v1/images/${image.id}/layer`, {
      body: image.layer,
      pieceSize: 16 * 1024,
      // Yield between pieces so that uploads interleave.
      onPiece: () => new Promise((resolve) => setImmediate(resolve)),
    });
    if (layer.status !== 200) {
      assertCleanError(layer, `PUT layer ${image.id}`);
      assert.equal(layer.status, 409, `PUT layer ${image.id}: ${layer.body.toString()}`);
      count(stats, 'PUT layer 409');
      continue;
    }
    const checksum = await send(base, 'PUT', `/v1/images/${image.id}/checksum`, { headers: { 'X-Docker-Checksum-Payload': image.checksum } });
    if (checksum.status === 200) return 'uploaded';
    const error = assertCleanError(checksum, `PUT checksum ${image.id}`);
    // 409: another client completed it (or is writing it); 400: another client's PUT json
    // reset the layer it had uploaded (the state machine allows re-pushing a pending image).
    assert.ok(checksum.status === 409 || (checksum.status === 400 && /not been uploaded/.test(error)), `PUT checksum ${image.id}: ${checksum.status} ${error}`);
    count(stats, `PUT checksum ${checksum.status}`);
  }
  assert.fail(`image ${image.id} could not be pushed in 400 rounds`);
}

async function pushChainPatiently(base: string, repo: string, tag: string, images: HarnessImage[], stats: Stats, rand: () => number): Promise<number> {
  const start = await send(base, 'PUT', `/v1/repositories/${repo}/`, { headers: JSON_TYPE, body: Buffer.from(JSON.stringify(images.map((i) => ({ id: i.id })))) });
  assert.equal(start.status, 200, `push start ${repo}: ${start.body.toString()}`);
  let uploaded = 0;
  for (const image of images) if ((await uploadImage(base, image, stats, rand)) === 'uploaded') uploaded += 1;
  const top = images[images.length - 1];
  const tagged = await send(base, 'PUT', `/v1/repositories/${repo}/tags/${tag}`, { headers: JSON_TYPE, body: Buffer.from(JSON.stringify(top.id)) });
  assert.equal(tagged.status, 200, `PUT tag ${repo}:${tag}: ${tagged.body.toString()}`);
  const end = await send(base, 'PUT', `/v1/repositories/${repo}/images`, {
    headers: JSON_TYPE,
    body: Buffer.from(JSON.stringify(images.map((i) => ({ id: i.id, checksum: i.checksum })))),
  });
  assert.equal(end.status, 204, `push end ${repo}: ${end.body.toString()}`);
  return uploaded;
}

async function fsckClean(base: string): Promise<void> {
  const res = await send(base, 'POST', '/_admin/fsck');
  assert.equal(res.status, 200);
  const report = JSON.parse(res.body.toString()) as { ok: boolean; problems: unknown[] };
  assert.deepEqual(report.problems, [], 'fsck finds no problem');
}

describe('concurrency', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
  });
  after(async () => {
    await srv?.destroy();
  });

  it('32 clients push overlapping chains (shared parents) to the same and different repositories at once; every pull is byte-exact', async () => {
    const rand = prng(32);
    const known = new Map<string, HarnessImage>();
    const image = (parent: string | null, size: number) => {
      const made = makeImage(rand, parent, size);
      known.set(made.id, made);
      return made;
    };
    // Four shared bases of two images each; every client adds two images of its own.
    const bases = Array.from({ length: 4 }, () => {
      const b0 = image(null, 200_000 + Math.floor(rand() * 100_000));
      return [b0, image(b0.id, 50_000)];
    });
    const clients = Array.from({ length: 32 }, (_, i) => {
      const shared = bases[i % 4];
      const own0 = image(shared[1].id, Math.floor(rand() * 120_000));
      const own1 = image(own0.id, Math.floor(rand() * 60_000));
      // Clients 28-31 all push the same repository and tag (last writer wins); the others
      // share five repositories with a tag each.
      const hot = i >= 28;
      return { repo: hot ? 'conc/hot' : `conc/r${i % 5}`, tag: hot ? 'latest' : `c${i}`, images: [...shared, own0, own1] };
    });
    const stats: Stats = { refusals: new Map() };
    const uploaded = await Promise.all(clients.map((c, i) => pushChainPatiently(srv.url, c.repo, c.tag, c.images, stats, prng(1000 + i))));

    // Each image was uploaded (completed) by exactly one client.
    assert.equal(
      uploaded.reduce((a, b) => a + b, 0),
      known.size,
      'every image completed exactly once (the other clients found it present or were refused)',
    );
    for (const [i, c] of clients.entries()) {
      if (c.repo === 'conc/hot') continue;
      await verifyPull(srv.url, c.repo, c.tag, c.images[3].id, known);
      assert.ok(i >= 0);
    }
    const hotTags = JSON.parse((await send(srv.url, 'GET', '/v1/repositories/conc/hot/tags')).body.toString()) as Record<string, string>;
    const candidates = clients.filter((c) => c.repo === 'conc/hot').map((c) => c.images[3].id);
    assert.ok(candidates.includes(hotTags.latest), 'the raced tag points at one of the pushed tops');
    await verifyPull(srv.url, 'conc/hot', 'latest', hotTags.latest, known);
    // The Index image lists name every image pushed through each repository.
    for (let r = 0; r < 5; r++) {
      const list = JSON.parse((await send(srv.url, 'GET', `/v1/repositories/conc/r${r}/images`)).body.toString()) as Array<{ id: string }>;
      const ids = new Set(list.map((e) => e.id));
      for (const c of clients.filter((c) => c.repo === `conc/r${r}`)) for (const img of c.images) assert.ok(ids.has(img.id), `conc/r${r} lists ${img.id}`);
    }
    await fsckClean(srv.url);
    console.log(`concurrency: 32 clients, ${known.size} images; refusals: ${JSON.stringify(Object.fromEntries(stats.refusals))}`);
  });

  it('the same image uploaded twice at the same moment: one wins, the other gets 409 and a JSON error', async () => {
    const rand = prng(2);
    const img = makeImage(rand, null, 512 * 1024);
    assert.equal((await send(srv.url, 'PUT', `/v1/images/${img.id}/json`, { headers: JSON_TYPE, body: img.json })).status, 200);
    // Both uploads are open and have sent their first bytes; the first answer can only be
    // the loser's (the winner's body is not finished).
    const a = openUpload(`${srv.url}/v1/images/${img.id}/layer`);
    const b = openUpload(`${srv.url}/v1/images/${img.id}/layer`);
    await Promise.all([a.write(img.layer.subarray(0, 1000)), b.write(img.layer.subarray(0, 1000))]);
    const first = await Promise.race([a.response.then((r) => ({ who: a, other: b, r })), b.response.then((r) => ({ who: b, other: a, r }))]);
    assert.equal(first.r.status, 409, `the loser is answered first: ${first.r.status} ${first.r.body.toString()}`);
    assert.match(assertCleanError(first.r, 'loser'), /Another request is uploading this image/);
    first.who.kill();
    await first.other.write(img.layer.subarray(1000));
    first.other.end();
    const winner = await first.other.response;
    assert.equal(winner.status, 200, winner.body.toString());
    const checksum = await send(srv.url, 'PUT', `/v1/images/${img.id}/checksum`, { headers: { 'X-Docker-Checksum-Payload': img.checksum } });
    assert.equal(checksum.status, 200);
    // Once complete, another upload is a clean 409 as well.
    const again = await send(srv.url, 'PUT', `/v1/images/${img.id}/layer`, { body: img.layer });
    assert.equal(again.status, 409);
    assertCleanError(again, 'upload of a complete image');
    const layer = await send(srv.url, 'GET', `/v1/images/${img.id}/layer`);
    assert.ok(layer.body.equals(img.layer), 'the stored layer is the winner’s bytes');
  });

  it('eight clients racing the whole push of one image: exactly one PUT checksum completes it, every other answer is clean', async () => {
    const rand = prng(8);
    const img = makeImage(rand, null, 256 * 1024);
    const answers: Array<{ step: string; res: HttpResult }> = [];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        const json = await send(srv.url, 'PUT', `/v1/images/${img.id}/json`, { headers: JSON_TYPE, body: img.json });
        answers.push({ step: 'json', res: json });
        if (json.status !== 200) return;
        const layer = await send(srv.url, 'PUT', `/v1/images/${img.id}/layer`, {
          body: img.layer,
          pieceSize: 16 * 1024,
          onPiece: () => new Promise((resolve) => setImmediate(resolve)),
        });
        answers.push({ step: 'layer', res: layer });
        if (layer.status !== 200) return;
        const checksum = await send(srv.url, 'PUT', `/v1/images/${img.id}/checksum`, { headers: { 'X-Docker-Checksum-Payload': img.checksum } });
        answers.push({ step: 'checksum', res: checksum });
      }),
    );
    for (const { step, res } of answers) {
      if (res.status === 200) continue;
      const error = assertCleanError(res, `PUT ${step}`);
      assert.ok(res.status === 409 || res.status === 400, `PUT ${step}: ${res.status} ${error}`);
    }
    const completions = answers.filter((a) => a.step === 'checksum' && a.res.status === 200);
    // Every client may have been refused before the checksum; then nobody completed it.
    const probe = await send(srv.url, 'GET', `/v1/images/${img.id}/json`);
    if (probe.status === 200) assert.equal(completions.length, 1, 'exactly one PUT checksum completed the image');
    else assert.equal(completions.length, 0);
    const layer = await send(srv.url, 'GET', `/v1/images/${img.id}/layer`);
    if (probe.status === 200) assert.ok(layer.body.equals(img.layer));
  });

  /**
   * PUT tag and DELETE tag racing on three tags of one repository, 25 waves of 12 requests;
   * after every wave the state is checked. `checkList`: also that the image list a pull
   * starts from (GET …/images) holds every image a tag reaches.
   */
  async function raceTags(repo: string, seed: number, checkList: boolean): Promise<void> {
    const rand = prng(seed);
    const known = new Map<string, HarnessImage>();
    const chainOf = (n: number) => {
      const out: HarnessImage[] = [];
      for (let i = 0; i < n; i++) {
        const img = makeImage(rand, out[i - 1]?.id ?? null, 2000);
        known.set(img.id, img);
        out.push(img);
      }
      return out;
    };
    const x = chainOf(2);
    const y = chainOf(3);
    for (const chain of [x, y]) {
      for (const img of chain) {
        assert.equal((await send(srv.url, 'PUT', `/v1/images/${img.id}/json`, { headers: JSON_TYPE, body: img.json })).status, 200);
        assert.equal((await send(srv.url, 'PUT', `/v1/images/${img.id}/layer`, { body: img.layer })).status, 200);
        assert.equal((await send(srv.url, 'PUT', `/v1/images/${img.id}/checksum`, { headers: { 'X-Docker-Checksum-Payload': img.checksum } })).status, 200);
      }
    }
    const tops = [x[1].id, y[2].id];
    const tags = ['a', 'b', 'c'];
    const checkConsistent = async (when: string) => {
      const listed = JSON.parse((await send(srv.url, 'GET', `/v1/repositories/${repo}/tags`)).body.toString()) as Record<string, string>;
      const list = JSON.parse((await send(srv.url, 'GET', `/v1/repositories/${repo}/images`)).body.toString()) as Array<{ id: string }>;
      const inList = new Set(list.map((e) => e.id));
      for (const tag of tags) {
        const one = await send(srv.url, 'GET', `/v1/repositories/${repo}/tags/${tag}`);
        if (listed[tag] === undefined) {
          assert.equal(one.status, 404, `${when}: ${tag} is absent from the list and from GET tag`);
          continue;
        }
        assert.equal(one.status, 200);
        assert.equal(JSON.parse(one.body.toString()), listed[tag], `${when}: GET tag ${tag} agrees with GET tags`);
        assert.ok(tops.includes(listed[tag]), `${when}: tag ${tag} points at an image that was tagged`);
        if (!checkList) continue;
        const ancestry = JSON.parse((await send(srv.url, 'GET', `/v1/images/${listed[tag]}/ancestry`)).body.toString()) as string[];
        for (const id of ancestry) {
          assert.ok(inList.has(id), `${when}: tag ${tag} → ${listed[tag]}, but ${id} is missing from the repository's image list (GET …/images)`);
        }
      }
      return listed;
    };
    let ops = 0;
    for (let wave = 0; wave < 25; wave++) {
      await Promise.all(
        Array.from({ length: 12 }, async () => {
          const tag = tags[Math.floor(rand() * tags.length)];
          ops += 1;
          if (rand() < 0.55) {
            const id = tops[Math.floor(rand() * tops.length)];
            const res = await send(srv.url, 'PUT', `/v1/repositories/${repo}/tags/${tag}`, { headers: JSON_TYPE, body: Buffer.from(JSON.stringify(id)) });
            assert.equal(res.status, 200, `PUT tag: ${res.body.toString()}`);
          } else {
            const res = await send(srv.url, 'DELETE', `/v1/repositories/${repo}/tags/${tag}`);
            if (res.status !== 200) {
              assert.equal(res.status, 404, res.body.toString());
              assertCleanError(res, 'DELETE tag');
            }
          }
        }),
      );
      await checkConsistent(`after wave ${wave + 1}`);
    }
    assert.equal(ops, 300);
    const listed = await checkConsistent('at the end');
    for (const [tag, id] of Object.entries(listed)) await verifyPull(srv.url, repo, tag, id, known);
    await fsckClean(srv.url);
  }

  it('tag writes racing tag deletes: every answer is clean, GET tags and GET tag agree after every wave, fsck is clean', async () => {
    await raceTags('race/tags', 99, false);
  });

  it(
    'tag writes racing tag deletes: every image a tag reaches stays in the image list',
    async () => {
      await raceTags('race/list', 100, true);
    },
  );
});
