/** /_status: is the metadata store readable, and can the storage root be written? */
import type { StoreLifecycle } from '../store/metadata/ports.js';

export interface HealthReport {
  status: 'ok' | 'fail';
  checks: Record<string, string>;
}

export class HealthService {
  constructor(
    private readonly meta: StoreLifecycle,
    /** Writes, reads back and removes a small file where uploads go. */
    private readonly probeStorage: () => Promise<void>,
  ) {}

  async check(): Promise<HealthReport> {
    const checks: Record<string, string> = {};
    const run = async (name: string, fn: () => Promise<void>) => {
      try {
        await fn();
        checks[name] = 'ok';
      } catch (err) {
        checks[name] = (err as Error).message || String(err);
      }
    };
    await Promise.all([run('metadata', () => this.meta.ping()), run('storage', this.probeStorage)]);
    return { status: Object.values(checks).every((v) => v === 'ok') ? 'ok' : 'fail', checks };
  }
}
