/**
 * Zero-copy layer sends: the native addon in `native/` (built by `npm install`) runs
 * sendfile(2) from the blob's file descriptor to the response's socket on a thread of its
 * own, so the bytes go from the page cache to the socket without passing through
 * JavaScript buffers. Without the addon (not Linux, no compiler at install time), or on a
 * socket without a descriptor, `sendFileBody` returns false and the caller streams.
 */
import { constants as osConstants } from 'node:os';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { ServerResponse } from 'node:http';

interface Addon {
  start(socketFd: number, fileFd: number, offset: number, length: number, stallMs: number, done: (errno: number, sent: number) => void): object;
  cancel(handle: object): void;
}

function loadAddon(): Addon | null {
  if (process.platform !== 'linux') return null;
  const require = createRequire(import.meta.url);
  // src/http/shared/ when run from source, dist/src/http/shared/ when built.
  for (const relative of ['../../../native/build/Release/sendfile.node', '../../../../native/build/Release/sendfile.node']) {
    try {
      return require(fileURLToPath(new URL(relative, import.meta.url))) as Addon;
    } catch {
      // try the next place
    }
  }
  return null;
}

const addon = loadAddon();

/** True when the sendfile addon is built and loaded. */
export const sendfileAvailable = addon !== null;

const errnoNames = new Map(Object.entries(osConstants.errno).map(([name, code]) => [code, name]));

/** Why a send stopped: `code` is the errno name (ECANCELED: the client went away, ETIMEDOUT: stalled). */
export class SendfileError extends Error {
  constructor(readonly code: string) {
    super(`sendfile failed: ${code}`);
  }
}

function socketFd(res: ServerResponse): number {
  const handle = (res.socket as unknown as { _handle?: { fd?: number } } | null)?._handle;
  return typeof handle?.fd === 'number' ? handle.fd : -1;
}

const NOTHING = Buffer.alloc(0);

/**
 * Writes the response head, then `length` bytes of `fileFd` from `start` with sendfile.
 * Returns false when sendfile cannot be used on this response (no addon: nothing sent; no
 * socket descriptor, or no thread to spare: the head may be out), and the caller sends the
 * body itself. `sent.bytesOut` counts the body bytes sent, also
 * when the send fails half-way. A client that reads nothing for `stallMs` is cut off.
 */
export async function sendFileBody(res: ServerResponse, fileFd: number, start: number, length: number, stallMs: number, sent: { bytesOut?: number }): Promise<boolean> {
  // The head goes out through Node, and only once it has left may the thread write: the
  // socket's own queue is empty from then on, because nothing else writes to it until
  // this response ends.
  if (addon === null) return false;
  await new Promise<void>((resolve, reject) => res.write(NOTHING, (err) => (err ? reject(err) : resolve())));
  const sock = res.destroyed ? -1 : socketFd(res);
  if (sock < 0) return false;
  const { start: startSend, cancel: cancelSend } = addon;
  let finished!: (outcome: { errno: number; count: number }) => void;
  const outcome = new Promise<{ errno: number; count: number }>((resolve) => (finished = resolve));
  let job: object;
  try {
    job = startSend(sock, fileFd, start, length, stallMs, (errno, count) => {
      res.off('close', cancel);
      finished({ errno, count });
    });
  } catch {
    return false; // no thread or descriptor to spare right now: the caller streams instead
  }
  const cancel = (): void => cancelSend(job);
  res.on('close', cancel);
  const result = await outcome;
  sent.bytesOut = result.count;
  if (result.errno !== 0) throw new SendfileError(errnoNames.get(result.errno) ?? `errno ${result.errno}`);
  return true;
}
