/**
 * The client facts recorded on a tag PUT, read from the docker User-Agent.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_CLIENT_INFO, clientInfoFromUserAgent } from '../../src/domain/client-info.js';

const NOW = new Date('2015-03-01T12:34:56.789Z');
const NOW_SECONDS = Math.floor(NOW.getTime() / 1000);

describe('clientInfoFromUserAgent', () => {
  it('reads a docker 1.5 User-Agent', () => {
    const info = clientInfoFromUserAgent('docker/1.5.0 go/go1.4 git-commit/a8a31ef kernel/3.13.0 os/linux arch/amd64', NOW);
    assert.deepEqual(info, {
      last_update: NOW_SECONDS,
      docker_version: '1.5.0',
      docker_go_version: 'go1.4',
      arch: 'amd64',
      os: 'linux',
      kernel: '3.13.0',
    });
  });

  it('reads other platforms, in any order, with extra products', () => {
    const info = clientInfoFromUserAgent(
      'docker/1.6.2 go/go1.4.2 git-commit/7c8fca2 kernel/4.0.4-boot2docker os/Windows arch/ARM UpstreamClient(Docker-Client/1.6.2 \\(windows\\))',
      NOW,
    );
    assert.equal(info.docker_version, '1.6.2');
    assert.equal(info.docker_go_version, 'go1.4.2');
    assert.equal(info.kernel, '4.0.4-boot2docker');
    assert.equal(info.os, 'windows');
    assert.equal(info.arch, 'arm');
    const reordered = clientInfoFromUserAgent('arch/386 os/freebsd docker/1.4.1', NOW);
    assert.equal(reordered.arch, '386');
    assert.equal(reordered.os, 'freebsd');
    assert.equal(reordered.docker_version, '1.4.1');
    assert.equal(reordered.docker_go_version, null);
    assert.equal(reordered.kernel, null);
  });

  it('defaults to nulls and linux/amd64 when there is nothing to read', () => {
    for (const ua of [undefined, '', 'curl/7.38.0', 'Go 1.1 package http', 'docker', 'docker/ os/']) {
      const info = clientInfoFromUserAgent(ua, NOW);
      assert.equal(info.last_update, NOW_SECONDS, String(ua));
      assert.equal(info.docker_version, null, String(ua));
      assert.equal(info.docker_go_version, null, String(ua));
      assert.equal(info.kernel, null, String(ua));
      assert.equal(info.arch, 'amd64', String(ua));
      assert.equal(info.os, 'linux', String(ua));
    }
    assert.deepEqual({ ...DEFAULT_CLIENT_INFO }, {
      last_update: null,
      docker_version: null,
      docker_go_version: null,
      arch: 'amd64',
      os: 'linux',
      kernel: null,
    });
    assert.ok(Object.isFrozen(DEFAULT_CLIENT_INFO));
  });

  it('the first occurrence of a product wins, and values are bounded', () => {
    const info = clientInfoFromUserAgent('docker/1.5.0 docker/9.9.9 os/linux os/darwin', NOW);
    assert.equal(info.docker_version, '1.5.0');
    assert.equal(info.os, 'linux');
    const long = clientInfoFromUserAgent(`docker/${'1'.repeat(5000)}`, NOW);
    assert.ok((long.docker_version ?? '').length <= 128);
    const late = clientInfoFromUserAgent(`${'x'.repeat(5000)} docker/1.5.0`, NOW);
    assert.equal(late.docker_version, null, 'only the start of a huge header is read');
  });

  it('last_update is the given time in whole seconds', () => {
    assert.equal(clientInfoFromUserAgent('docker/1.5.0', new Date(999)).last_update, 0);
    assert.equal(clientInfoFromUserAgent('docker/1.5.0', new Date(1_425_000_000_999)).last_update, 1_425_000_000);
  });
});
