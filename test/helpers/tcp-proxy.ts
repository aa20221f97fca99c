/**
 * A TCP proxy on loopback in front of a real server (the test S3 gateway), that a test can
 * take down and bring back: an object store that goes away and returns, without stopping
 * the engine other test files share.
 *
 *   const proxy = await startTcpProxy(engines.s3.endpoint);
 *   proxy.url                    // http://127.0.0.1:<port>: what the node is configured with
 *   await proxy.down('refuse');  // connections refused (nothing listens), open ones cut
 *   await proxy.down('reset');   // connections accepted, then reset at once
 *   await proxy.up();            // forwards again, on the same port
 *
 * Bytes pass through unchanged (the Host header names the proxy, which is what SigV4 signs).
 */
import net from 'node:net';

export type ProxyFault = 'refuse' | 'reset';

export interface TcpProxy {
  readonly url: string;
  readonly port: number;
  /** Cuts every open connection and refuses or resets new ones. */
  down(fault?: ProxyFault): Promise<void>;
  up(): Promise<void>;
  /** Cuts the connections that are open now (requests in flight fail mid-way). */
  cut(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const { hostname, port: targetPort } = new URL(target);
  const sockets = new Set<net.Socket>();
  let mode: 'up' | ProxyFault = 'up';
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const onConnection = (client: net.Socket) => {
    track(client);
    if (mode !== 'up') {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(Number(targetPort), hostname);
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  };
  let server = net.createServer(onConnection);
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(0);
  const port = (server.address() as net.AddressInfo).port;
  const cut = () => {
    for (const socket of sockets) socket.resetAndDestroy();
  };
  const closeServer = () => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    cut,
    async down(fault = 'refuse') {
      mode = fault;
      cut();
      if (fault === 'refuse') await closeServer();
    },
    async up() {
      mode = 'up';
      if (!server.listening) {
        server = net.createServer(onConnection);
        await listen(port);
      }
    },
    async close() {
      mode = 'refuse';
      cut();
      await closeServer();
    },
  };
}
