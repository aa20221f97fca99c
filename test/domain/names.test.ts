/**
 * Name validation (docs: protocol-v1.md, Names): image ids, tags, namespaces, repositories.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_NAMESPACE,
  isImageId,
  parseImageId,
  parseNamespace,
  parseRepoName,
  parseRepoPath,
  parseTag,
} from '../../src/domain/names.js';
import { isRegistryError } from '../../src/domain/errors.js';

const invalid = (fn: () => unknown, label: string) =>
  assert.throws(fn, (err: unknown) => isRegistryError(err, 'INVALID_NAME'), label);

const HEX64 = 'f1ee83f6b4a0d6b6b8ffd1b1b6a6c1d2b2e3a4c5d6e7f8091a2b3c4d5e6f7a8b';

/** Values no validated name may contain, whatever its kind. */
const HOSTILE = [
  '',
  '.',
  '..',
  '../etc',
  'a/../b',
  'a/b',
  '/abs',
  'a\\b',
  'a!b',
  'a\0b',
  'a b',
  'a\nb',
  'abc\n',
  '\tabc',
  'a%2fb',
  'a:b',
  'a@b',
  'a*b',
  'é',
  'café',
  'ａｂｃ', // fullwidth
  'aı', // dotless i: lowercases to nothing ASCII
  '\u212a', // Kelvin sign
  '\u200babc', // zero-width space
  'abc\u0301',
  '😀',
];

describe('image ids', () => {
  it('accepts 16 to 64 lowercase hex', () => {
    for (const id of [HEX64, HEX64.slice(0, 16), HEX64.slice(0, 32), HEX64.slice(0, 63), '0'.repeat(16), 'abcdef'.repeat(3)]) {
      assert.equal(parseImageId(id), id);
      assert.equal(isImageId(id), true);
    }
  });

  it('rejects 15 or 65 characters, uppercase, non-hex, empty and non-strings', () => {
    const bad: unknown[] = [
      HEX64.slice(0, 15),
      `${HEX64}0`,
      HEX64.toUpperCase(),
      `${HEX64.slice(0, 20)}A${HEX64.slice(21)}`,
      `${HEX64.slice(0, 20)}g${HEX64.slice(21)}`,
      `${HEX64.slice(0, 20)}-${HEX64.slice(21)}`,
      `${HEX64}\n`,
      ` ${HEX64}`,
      `sha256:${HEX64}`,
      '',
      undefined,
      null,
      123456789012345678,
      [HEX64],
      { id: HEX64 },
      ...HOSTILE,
      ...HOSTILE.filter((h) => h !== '').map((h) => HEX64.slice(0, 20) + h),
    ];
    for (const id of bad) {
      invalid(() => parseImageId(id), JSON.stringify(id) ?? String(id));
      assert.equal(isImageId(id), false);
    }
  });
});

describe('tags', () => {
  it('accepts [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}', () => {
    for (const tag of ['latest', 'v1.0.0', '_x', '_', 'A', '9', 'Release-2015_01.rc1', 'a..b', 'a.', 'a-', 'x'.repeat(128), `_${'-'.repeat(127)}`]) {
      assert.equal(parseTag(tag), tag);
    }
  });

  it('rejects .x, -x, $x, 129 characters and the rest', () => {
    for (const tag of ['.x', '-x', '$x', 'x'.repeat(129), 'a$b', 'a+b', 'a~1', '..', '.', ...HOSTILE, undefined, null, 5, ['latest']]) {
      invalid(() => parseTag(tag), JSON.stringify(tag) ?? String(tag));
    }
  });
});

describe('namespaces', () => {
  it('accepts [a-z0-9_-]{2,255}', () => {
    for (const ns of ['ab', 'library', 'my_org', 'my-org', '00', '__', '--', 'a'.repeat(255)]) {
      assert.equal(parseNamespace(ns), ns);
    }
  });

  it('rejects 1 or 256 characters, uppercase, dots and the rest', () => {
    for (const ns of ['a', 'a'.repeat(256), 'Library', 'my.org', 'a.b', ...HOSTILE, undefined, null, 42]) {
      invalid(() => parseNamespace(ns), JSON.stringify(ns) ?? String(ns));
    }
  });
});

describe('repository names', () => {
  it('accepts [a-z0-9_.-]{1,255}', () => {
    for (const repo of ['a', 'busybox', 'my.repo', 'my-repo', 'my_repo', '.hidden', 'a..b', '_', '-', 'a'.repeat(255)]) {
      const name = parseRepoName('someone', repo);
      assert.deepEqual(name, { namespace: 'someone', repository: repo, full: `someone/${repo}` });
    }
  });

  it('rejects "." and "..", 256 characters, uppercase and the rest', () => {
    for (const repo of ['.', '..', 'a'.repeat(256), 'Busybox', ...HOSTILE, undefined, null, 1]) {
      invalid(() => parseRepoName('someone', repo), JSON.stringify(repo) ?? String(repo));
    }
  });

  it('a missing namespace is library; a bad namespace is rejected', () => {
    assert.deepEqual(parseRepoName(undefined, 'busybox'), { namespace: 'library', repository: 'busybox', full: 'library/busybox' });
    assert.equal(DEFAULT_NAMESPACE, 'library');
    invalid(() => parseRepoName('A', 'busybox'), 'bad namespace');
    invalid(() => parseRepoName('', 'busybox'), 'empty namespace');
  });
});

describe('parseRepoPath', () => {
  it('reads repo and ns/repo', () => {
    assert.deepEqual(parseRepoPath('busybox'), { namespace: 'library', repository: 'busybox', full: 'library/busybox' });
    assert.deepEqual(parseRepoPath('library/busybox'), { namespace: 'library', repository: 'busybox', full: 'library/busybox' });
    assert.deepEqual(parseRepoPath('joe_1/my.app'), { namespace: 'joe_1', repository: 'my.app', full: 'joe_1/my.app' });
  });

  it('rejects three segments, empty segments and traversal', () => {
    for (const path of ['a/b/c', 'ns/repo/', '/repo', 'ns/', '', '/', '//', 'ns//repo', '../repo', 'ns/..', 'ns/.', '../..', 'ns\\repo']) {
      invalid(() => parseRepoPath(path), JSON.stringify(path));
    }
  });
});

describe('no accepted name can carry a path or a surprise', () => {
  const FORBIDDEN = /[/!\0\\]|^\.{1,2}$|[^\x21-\x7e]/;

  function accepted(fn: () => unknown): boolean {
    try {
      fn();
      return true;
    } catch (err) {
      assert.ok(isRegistryError(err, 'INVALID_NAME'), `unexpected error ${String(err)}`);
      return false;
    }
  }

  it('every name accepted from a generated set is plain printable ASCII without / ! \\0 or a dot segment', () => {
    // every pair of characters from an alphabet of specials, around a core that is valid
    const alphabet = ['a', 'Z', '0', '_', '-', '.', '/', '!', '\0', '\\', ' ', '$', '%', '\n', 'é', '\u0130', '\u212a', '\uff41'];
    const candidates = new Set<string>(HOSTILE);
    for (const x of alphabet) {
      candidates.add(x);
      for (const y of alphabet) {
        candidates.add(x + y);
        candidates.add(`${x}${y}ab`);
        candidates.add(`ab${x}${y}`);
        candidates.add(`a${x}b${y}`);
      }
    }
    let acceptedCount = 0;
    for (const c of candidates) {
      for (const [kind, fn] of [
        ['tag', () => parseTag(c)],
        ['namespace', () => parseNamespace(c)],
        ['repository', () => parseRepoName('ns', c)],
        ['image id', () => parseImageId(c)],
      ] as const) {
        if (accepted(fn)) {
          acceptedCount += 1;
          assert.doesNotMatch(c, FORBIDDEN, `${kind} accepted ${JSON.stringify(c)}`);
        }
      }
      if (accepted(() => parseRepoPath(c))) {
        const { namespace, repository } = parseRepoPath(c);
        assert.doesNotMatch(namespace, FORBIDDEN, `path ${JSON.stringify(c)}`);
        assert.doesNotMatch(repository, FORBIDDEN, `path ${JSON.stringify(c)}`);
      }
    }
    assert.ok(acceptedCount > 100, 'the generated set includes plenty of valid names');
  });
});
