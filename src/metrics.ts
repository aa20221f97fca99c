/**
 * Prometheus metrics (prom-client), one registry per server instance so that several
 * servers in one process (the tests) never share counters.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'registry_http_requests_total',
    help: 'HTTP requests by route, method and status.',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'registry_http_request_duration_seconds',
    help: 'HTTP request latency (until the response finished) by route and method.',
    labelNames: ['route', 'method'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly bytesIn = new Counter({
    name: 'registry_http_request_bytes_total',
    help: 'Request body bytes received, by route and method.',
    labelNames: ['route', 'method'] as const,
    registers: [this.registry],
  });
  readonly bytesOut = new Counter({
    name: 'registry_http_response_bytes_total',
    help: 'Response body bytes sent, by route and method.',
    labelNames: ['route', 'method'] as const,
    registers: [this.registry],
  });
  readonly pushes = new Counter({
    name: 'registry_images_pushed_total',
    help: 'Images pushed: v1 images completed (PUT checksum verified) and v2 manifests stored.',
    registers: [this.registry],
  });
  readonly pulls = new Counter({
    name: 'registry_layer_pulls_total',
    help: 'Layer and blob downloads started (200 or 206), v1 and v2.',
    registers: [this.registry],
  });
  readonly uploadsInFlight = new Gauge({
    name: 'registry_uploads_in_flight',
    help: 'Layer uploads and v2 upload chunks being received right now.',
    registers: [this.registry],
  });

  /** `processMetrics`: prom-client's process figures (CPU, memory, GC, event loop lag). */
  constructor(storageBytes: () => Promise<number>, processMetrics = true) {
    if (processMetrics) collectDefaultMetrics({ register: this.registry });
    let cached = { at: 0, value: 0 };
    new Gauge({
      name: 'registry_storage_bytes',
      help: 'Bytes of layer blobs on disk (recomputed at most every 30 s).',
      registers: [this.registry],
      async collect() {
        if (Date.now() - cached.at > 30_000) cached = { at: Date.now(), value: await storageBytes() };
        this.set(cached.value);
      },
    });
  }
}
