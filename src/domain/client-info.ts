/**
 * The client facts the v1 registry records on a tag PUT, parsed from a docker User-Agent
 * such as `docker/1.5.0 go/go1.4 git-commit/a8a31ef kernel/3.13.0 os/linux arch/amd64`.
 */
import type { ClientInfo } from './records.js';

const PAIR = /([^\s/]+)\/([^\s/]+)/g;
const MAX_VALUE = 128;

export const DEFAULT_CLIENT_INFO: ClientInfo = Object.freeze({
  last_update: null,
  docker_version: null,
  docker_go_version: null,
  arch: 'amd64',
  os: 'linux',
  kernel: null,
});

export function clientInfoFromUserAgent(userAgent: string | undefined, now: Date): ClientInfo {
  const pairs = new Map<string, string>();
  for (const m of (userAgent ?? '').slice(0, 2048).matchAll(PAIR)) {
    if (!pairs.has(m[1])) pairs.set(m[1], m[2].slice(0, MAX_VALUE));
  }
  return {
    last_update: Math.floor(now.getTime() / 1000),
    docker_version: pairs.get('docker') ?? null,
    docker_go_version: pairs.get('go') ?? null,
    arch: pairs.get('arch')?.toLowerCase() ?? DEFAULT_CLIENT_INFO.arch,
    os: pairs.get('os')?.toLowerCase() ?? DEFAULT_CLIENT_INFO.os,
    kernel: pairs.get('kernel')?.toLowerCase() ?? null,
  };
}
