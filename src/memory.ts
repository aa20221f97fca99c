/**
 * Keeps RSS flat while bytes stream in. Every chunk a socket delivers is a fresh buffer
 * whose memory lives outside the JS heap; a young-generation collection frees it, but V8
 * starts one only when the (small) JS heap fills or when ~64 MiB of such memory have piled
 * up. A layer upload therefore carried up to ~64 MiB of dead chunks. `releaseDeadBuffers`
 * runs a minor collection (well under a millisecond with a 1 MiB young generation) and is
 * called every few MiB of upload.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

type Gc = (options?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

let gc: Gc | null | undefined;

function collector(): Gc | null {
  if (gc === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      gc = vm.runInNewContext('gc') as Gc;
    } catch {
      gc = null;
    }
  }
  return gc;
}

export function releaseDeadBuffers(): void {
  collector()?.({ type: 'minor' });
}
