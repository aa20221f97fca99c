/**
 * A real S3 server for the tests: Debian's Ceph (16, Pacific) RADOS Gateway on a one-monitor,
 * one-OSD cluster, all on loopback in a temp dir, started once per `npm test` (see
 * test/run.ts and engines.ts) or once per test file run on its own. It speaks SigV4,
 * presigned URLs, Range, multipart uploads and their listing: what S3BlobStore uses.
 * Packages: radosgw, ceph-mon, ceph-osd, ceph-common (ceph-authtool, monmaptool, ceph,
 * radosgw-admin). Needs root only for nothing: it runs as whoever starts it.
 *
 * The recipe, step by step (what `startCeph` does; <d> is the temp dir):
 *
 *  1. <d>/ceph.conf (see `cephConf` below): fsid; the monitor on 127.0.0.1:<mon port>,
 *     messenger v1 only; cephx for everything with <d>/keyring; every path (mon data, osd
 *     data, run dir, logs, admin sockets) under <d>; the OSD on `memstore` (objects in RAM,
 *     2 GiB); pools of size 1 with 8 PGs (one OSD) and no autoscaler; the gateway as
 *     [client.rgw.test] with `rgw frontends = beast endpoint=127.0.0.1:<rgw port>`.
 *  2. Keys: `ceph-authtool --create-keyring <d>/keyring --gen-key -n mon. --cap mon 'allow *'`,
 *     then --gen-key for client.admin (all caps), osd.0 (profile osd) and client.rgw.test
 *     (mon rw, osd rwx) into the same keyring.
 *  3. `monmaptool --create --add a v1:127.0.0.1:<mon port> --fsid <fsid> <d>/monmap`;
 *     `ceph-mon --mkfs -i a --monmap <d>/monmap --keyring <d>/keyring` (this also loads every
 *     key of the keyring into the monitor's auth database); `ceph-mon -i a -f`.
 *  4. `ceph osd new <uuid> 0`; `ceph-osd -i 0 --mkfs --osd-uuid <uuid>`; `ceph-osd -i 0 -f`.
 *  5. `radosgw-admin user create --uid test --access-key … --secret …` (the first call
 *     creates the gateway's pools: most of the start-up time); `radosgw -n client.rgw.test -f`;
 *     ready when GET / on the gateway answers.
 *
 * No manager daemon: nothing here needs one (pool creation is the monitor's job; `ceph -s`
 * shows no usage figures without it).
 *
 * Run it by hand: `node --import tsx test/helpers/ceph-engine.ts` prints the endpoint and
 * keys and keeps the cluster until Ctrl-C.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { isMain } from '../../src/is-main.js';
import { freePort, run, startDaemon, waitUntil, type Daemon } from './daemon.js';

export interface S3Engine {
  /** http://127.0.0.1:<port> (path-style addressing). */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  dir: string;
  stop(): Promise<void>;
}

const PROGRAMS = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'ceph-authtool', 'monmaptool'];

/** Why this machine cannot run the engine, or null when it can. */
export function cephUnavailable(): string | null {
  const missing = PROGRAMS.filter((p) => !['/usr/bin', '/usr/sbin'].some((d) => existsSync(path.join(d, p))));
  if (missing.length > 0) return `${missing.join(', ')} missing (apt-get install radosgw ceph-mon ceph-osd ceph-common)`;
  return null;
}

function cephConf(d: string, fsid: string, monPort: number, rgwPort: number): string {
  return `[global]
fsid = ${fsid}
mon host = v1:127.0.0.1:${monPort}
ms bind msgr2 = false
public addr = 127.0.0.1
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = ${d}/keyring
run dir = ${d}/run
admin socket = ${d}/run/$name.asok
log file = ${d}/log/$name.log
pid file = ${d}/run/$name.pid
mon data = ${d}/mon.$id
osd data = ${d}/osd.$id
osd objectstore = memstore
memstore device bytes = 2147483648
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
osd crush chooseleaf type = 0
mon allow pool delete = true

[client.rgw.test]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw data = ${d}/rgw
rgw enable usage log = false
`;
}

export async function startCeph(options: { startTimeoutMs?: number } = {}): Promise<S3Engine> {
  const unavailable = cephUnavailable();
  if (unavailable) throw new Error(`cannot start Ceph: ${unavailable}`);
  const d = await fs.mkdtemp(path.join('/tmp', 'ceph-'));
  for (const sub of ['mon.a', 'osd.0', 'run', 'log', 'rgw']) await fs.mkdir(path.join(d, sub));
  const fsid = randomUUID();
  const monPort = await freePort();
  const rgwPort = await freePort();
  const conf = path.join(d, 'ceph.conf');
  await fs.writeFile(conf, cephConf(d, fsid, monPort, rgwPort));
  const C = ['-c', conf];
  const keyring = path.join(d, 'keyring');
  const daemons: Daemon[] = [];
  const stopAll = async () => {
    // The gateway first, the monitor last (the others talk to it while they stop).
    for (const daemon of [...daemons].reverse()) await daemon.stop(5_000);
    await fs.rm(d, { recursive: true, force: true });
  };
  const timeout = options.startTimeoutMs ?? 120_000;
  const accessKeyId = `AK${randomBytes(9).toString('hex').toUpperCase()}`;
  const secretAccessKey = randomBytes(24).toString('base64url');
  try {
    await run('ceph-authtool', [...C, '--create-keyring', keyring, '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *']);
    const keys: Array<[string, string[]]> = [
      ['client.admin', ['--cap', 'mon', 'allow *', '--cap', 'osd', 'allow *', '--cap', 'mgr', 'allow *']],
      ['osd.0', ['--cap', 'mon', 'allow profile osd', '--cap', 'osd', 'allow *', '--cap', 'mgr', 'allow profile osd']],
      ['client.rgw.test', ['--cap', 'mon', 'allow rw', '--cap', 'osd', 'allow rwx']],
    ];
    for (const [name, caps] of keys) await run('ceph-authtool', [...C, keyring, '--gen-key', '-n', name, ...caps]);
    await run('monmaptool', ['--create', '--add', 'a', `v1:127.0.0.1:${monPort}`, '--fsid', fsid, path.join(d, 'monmap')]);
    await run('ceph-mon', [...C, '--mkfs', '-i', 'a', '--monmap', path.join(d, 'monmap'), '--keyring', keyring]);
    daemons.push(await startDaemon('ceph-mon', 'ceph-mon', [...C, '-i', 'a', '-f'], path.join(d, 'log', 'mon.out')));

    const osdUuid = randomUUID();
    // `ceph` waits for the monitor to form its quorum (a second or so).
    await run('ceph', [...C, '--connect-timeout', String(Math.ceil(timeout / 1000)), 'osd', 'new', osdUuid, '0']);
    await run('ceph-osd', [...C, '-i', '0', '--mkfs', '--osd-uuid', osdUuid]);
    daemons.push(await startDaemon('ceph-osd', 'ceph-osd', [...C, '-i', '0', '-f'], path.join(d, 'log', 'osd.out')));

    await run('radosgw-admin', [...C, 'user', 'create', '--uid', 'test', '--display-name', 'registry tests', '--access-key', accessKeyId, '--secret', secretAccessKey]);
    daemons.push(await startDaemon('radosgw', 'radosgw', [...C, '-n', 'client.rgw.test', '-f'], path.join(d, 'log', 'rgw.out')));
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    await waitUntil('the RADOS Gateway', async () => (await fetch(endpoint)).ok, daemons, timeout);
    return { endpoint, region: 'us-east-1', accessKeyId, secretAccessKey, dir: d, stop: stopAll };
  } catch (err) {
    const tails = await Promise.all(daemons.map(async (daemon) => `── ${daemon.name}\n${await daemon.logTail(10)}`));
    await stopAll();
    throw new Error(`${(err as Error).message}\n${tails.join('\n')}`);
  }
}

if (isMain(import.meta.url)) {
  const started = Date.now();
  const engine = await startCeph();
  console.log(`RADOS Gateway ready in ${Date.now() - started} ms: ${engine.endpoint} region ${engine.region}`);
  console.log(`access key ${engine.accessKeyId} secret ${engine.secretAccessKey} (cluster in ${engine.dir}); Ctrl-C stops it`);
  const stop = () => void engine.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
