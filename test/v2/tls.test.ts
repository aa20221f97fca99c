/**
 * HTTPS (`tls_certificate`, `tls_key`) on the same port, judged by a client that verifies:
 * Node's TLS client with the test CA, and the Docker engine trusting the CA through
 * `certs.d/HOST:PORT/ca.crt`.
 *
 * Engines treat registries on 127.0.0.0/8 as insecure and skip verification there, so the
 * registry listens on the IPv6 loopback ::1 under a name, `registry.test`, that only the
 * engine's /etc/hosts knows (::1 is outside 127.0.0.0/8: a secure registry, verified). The
 * engine runs in a mount namespace of its own where a temp dir is its /etc/docker and a
 * temp file its /etc/hosts: nothing outside temp dirs is written. That the engine really
 * verifies is shown by the same push failing against a CA it was not given.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dockerEngineUnavailable, startDockerEngine, tempDir, type DockerEngine } from '../helpers/docker-engine.js';
import { makeTempDir, startTestServer, type TestServer } from '../helpers/server.js';

const NAME = 'registry.test';

/** A CA and a server certificate for NAME, ::1 and 127.0.0.1, made with openssl. */
function makeCerts(dir: string, label: string): { ca: string; cert: string; key: string } {
  const file = (n: string) => path.join(dir, `${label}-${n}`);
  const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(['req', '-x509', ...ec, '-days', '2', '-subj', `/CN=${label} test CA`, '-keyout', file('ca.key'), '-out', file('ca.pem')]);
  openssl(['req', ...ec, '-subj', `/CN=${NAME}`, '-keyout', file('server.key'), '-out', file('server.csr')]);
  execFileSync('sh', ['-c', `printf 'subjectAltName=DNS:${NAME},IP:::1,IP:127.0.0.1\\n' > "${file('san.ext')}"`]);
  openssl(['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', file('san.ext'), '-out', file('server.pem')]);
  return { ca: file('ca.pem'), cert: file('server.pem'), key: file('server.key') };
}

function get(url: string, ca: Buffer | undefined, servername?: string): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, servername, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
  });
}

describe('HTTPS with tls_certificate and tls_key', { timeout: 300_000 }, () => {
  let dir: string;
  let certs: ReturnType<typeof makeCerts>;
  let other: ReturnType<typeof makeCerts>;
  let srv: TestServer;
  before(async () => {
    dir = await makeTempDir('registry-tls-');
    certs = makeCerts(dir, 'good');
    other = makeCerts(dir, 'other');
    srv = await startTestServer({ overrides: { host: '::1', tls_certificate: certs.cert, tls_key: certs.key } });
  });
  after(async () => {
    await srv?.destroy();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('serves v1 and v2 over HTTPS on the configured port, verified against the CA', async () => {
    assert.match(srv.url, /^https:\/\/\[::1\]:\d+$/);
    const ca = await fs.readFile(certs.ca);
    const ping = await get(`${srv.url}/v2/`, ca, NAME);
    assert.equal(ping.status, 200);
    assert.equal(ping.headers['docker-distribution-api-version'], 'registry/2.0');
    assert.equal((await get(`${srv.url}/v1/_ping`, ca, NAME)).body, 'true');
    await assert.rejects(get(`${srv.url}/v2/`, await fs.readFile(other.ca), NAME), /certificate|self.signed|unable to verify/i, 'another CA is refused');
    await assert.rejects(fetch(srv.url.replace('https:', 'http:') + '/v2/'), 'no plain HTTP on the TLS port');
  });

  it('refuses to start with one of the two keys, or a key that is not the certificate\'s', async () => {
    const { loadConfig } = await import('../../src/config/load.js');
    assert.throws(() => loadConfig({ env: { REGISTRY_CONFIG: 'config/test.yaml' }, overrides: { tls_certificate: certs.cert } }), /set both \(HTTPS\) or neither/);
    await assert.rejects(startTestServer({ overrides: { tls_certificate: certs.cert, tls_key: other.key } }), /not a usable pair/);
    await assert.rejects(startTestServer({ overrides: { tls_certificate: path.join(dir, 'missing.pem'), tls_key: certs.key } }), /cannot read tls_certificate/);
  });

  describe('the Docker engine trusting the CA through certs.d/HOST:PORT/ca.crt', { skip: dockerEngineUnavailable() ?? false }, () => {
    let engine: DockerEngine;
    let wrong: DockerEngine;
    let hostPort: string;
    before(async () => {
      hostPort = `${NAME}:${new URL(srv.url).port}`;
      const hosts = path.join(dir, 'hosts');
      await fs.writeFile(hosts, `127.0.0.1 localhost\n::1 ${NAME}\n`);
      const etc = async (caFile: string, label: string) => {
        const etcDocker = path.join(dir, `etc-docker-${label}`);
        await fs.mkdir(path.join(etcDocker, 'certs.d', hostPort), { recursive: true });
        await fs.copyFile(caFile, path.join(etcDocker, 'certs.d', hostPort, 'ca.crt'));
        return etcDocker;
      };
      engine = await startDockerEngine({ etcDocker: await etc(certs.ca, 'good'), hosts });
      wrong = await startDockerEngine({ etcDocker: await etc(other.ca, 'wrong'), hosts });
      await engine.importBusybox('busybox:local');
      await wrong.importBusybox('busybox:local');
    });
    after(async () => {
      await engine?.stop();
      await wrong?.stop();
    });

    it('pushes and pulls over verified HTTPS; the engine given another CA refuses the registry', async () => {
      const ctx = await tempDir();
      try {
        await fs.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox:local\nRUN echo over tls > /tls.txt\nCMD ["cat", "/tls.txt"]\n');
        await engine.dockerOk(['build', '-q', '-t', `${hostPort}/alice/tls:1`, ctx]);
        await engine.dockerOk(['push', `${hostPort}/alice/tls:1`]);
        await engine.dockerOk(['rmi', `${hostPort}/alice/tls:1`]);
        await engine.dockerOk(['pull', `${hostPort}/alice/tls:1`]);
        assert.equal((await engine.dockerOk(['run', '--rm', '--network', 'none', `${hostPort}/alice/tls:1`])).trim(), 'over tls');
        await wrong.dockerOk(['tag', 'busybox:local', `${hostPort}/alice/tls:2`]);
        const refused = await wrong.docker(['push', `${hostPort}/alice/tls:2`]);
        assert.notEqual(refused.code, 0);
        assert.match(refused.stderr, /x509|certificate/i, refused.stderr);
      } finally {
        await fs.rm(ctx, { recursive: true, force: true });
      }
    });
  });
});
