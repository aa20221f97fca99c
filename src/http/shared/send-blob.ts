/**
 * Sends a byte range of a blob to the response. A blob that is a local file goes out with
 * sendfile(2) when the addon is built (see sendfile.ts): no byte passes through JavaScript.
 *
 * Otherwise (a blob in memory, a response the test double watches) it is streamed with a
 * few reusable buffers: read into a buffer, hand it to the socket, and reuse it only once
 * the socket has taken it. A ReadStream allocates a fresh
 * buffer per chunk instead, and at gigabytes per second that garbage costs more CPU (and
 * RSS) than the copy itself. Buffers come from a small shared pool, so memory stays flat
 * however many downloads run.
 */
import type { ServerResponse } from 'node:http';
import { IdlePool } from '../../memory.js';
import type { BlobReader } from '../../store/blobs/blob-store.js';
import { sendFileBody } from './sendfile.js';

export interface SendOptions {
  /** Use sendfile(2) where it is available (config `layer_sendfile`). */
  sendfile: boolean;
  /** A client that takes no byte for this long is cut off (config `download_stall_timeout_seconds`). */
  stallMs: number;
}

const CHUNK = 512 * 1024;
const PER_STREAM = 2;
/** Up to 8 MiB kept for reuse; emptied after 2 s unused. */
const pool = new IdlePool<Buffer>(16);

/** Responses whose body must pass through JavaScript (the test double counts and cuts it). */
const watched = new WeakSet<ServerResponse>();

/** Sends this response's body through `res.write`, never with sendfile (see src/testing/faults.ts). */
export function watchBody(res: ServerResponse): void {
  watched.add(res);
}

function take(): Buffer {
  return pool.take() ?? Buffer.allocUnsafeSlow(CHUNK);
}

/**
 * Writes bytes [start, start + length) of `reader` to `res`, then ends it. `sent.bytesOut`
 * counts what was handed to the response so far (also when it fails half-way).
 */
export async function sendBlob(reader: BlobReader, start: number, length: number, res: ServerResponse, sent: { bytesOut?: number }, options: SendOptions): Promise<void> {
  sent.bytesOut = 0;
  if (options.sendfile && reader.fd !== undefined && !watched.has(res) && (await sendFileBody(res, reader.fd, start, length, options.stallMs, sent))) {
    await new Promise<void>((resolve) => res.end(resolve));
    return;
  }
  res.setTimeout(options.stallMs);
  await streamBlob(reader, start, length, res, sent as { bytesOut: number });
}

async function streamBlob(reader: BlobReader, start: number, length: number, res: ServerResponse, sent: { bytesOut: number }): Promise<void> {
  const buffers = Array.from({ length: PER_STREAM }, take);
  const inFlight: Array<Promise<void> | null> = buffers.map(() => null);
  // Until every write has called back, a buffer may still be queued in the socket: such
  // buffers are not returned to the pool.
  let settled = true;
  try {
    let position = start;
    let remaining = length;
    for (let i = 0; remaining > 0; i = (i + 1) % PER_STREAM) {
      await inFlight[i];
      if (res.destroyed) throw new Error('client went away');
      const buffer = buffers[i];
      const n = await reader.read(buffer, Math.min(CHUNK, remaining), position);
      if (n <= 0) throw new Error('blob ended before its recorded size');
      position += n;
      remaining -= n;
      settled = false;
      sent.bytesOut += n;
      const written = new Promise<void>((resolve, reject) => {
        res.write(n === buffer.length ? buffer : buffer.subarray(0, n), (err) => (err ? reject(err) : resolve()));
      });
      // Awaited later (or never, if another write failed first): never an unhandled rejection.
      written.catch(() => undefined);
      inFlight[i] = written;
    }
    await Promise.all(inFlight);
    settled = true;
    // Back to the server's own idle handling (keep-alive) for what follows on this connection.
    res.socket?.setTimeout(0);
    await new Promise<void>((resolve) => res.end(resolve));
  } finally {
    if (settled) buffers.forEach((buffer) => pool.give(buffer));
  }
}
