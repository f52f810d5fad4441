/**
 * The control plane's own Prometheus metrics (served at `/metrics`, unauthenticated, as
 * Prometheus scrapes): API requests by route template, method and status; request latency by
 * route; store operation latency by operation and outcome; applies by result; plus Node's
 * process metrics (memory, CPU, event-loop lag) and whatever the instance stream registers.
 * Labels are bounded: route templates, never raw paths.
 */
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type { Store, StoreEntry, StoreOp, StoreWatch, StoreWatchHandlers } from './store/store.js';

export interface ControlPlaneMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'route' | 'method' | 'code'>;
  readonly requestDuration: Histogram<'route'>;
  readonly storeDuration: Histogram<'op' | 'outcome'>;
  readonly applies: Counter<'result'>;
}

export function controlPlaneMetrics(): ControlPlaneMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'trellis_controlplane_' });
  return {
    registry,
    requests: new Counter({ name: 'trellis_controlplane_requests_total', help: 'Control-plane API requests by route template, method and HTTP status.', labelNames: ['route', 'method', 'code'], registers: [registry] }),
    requestDuration: new Histogram({ name: 'trellis_controlplane_request_duration_seconds', help: 'Control-plane API request latency by route template.', labelNames: ['route'], buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [registry] }),
    storeDuration: new Histogram({ name: 'trellis_controlplane_store_duration_seconds', help: 'Store operation latency by operation and outcome (ok, error).', labelNames: ['op', 'outcome'], buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [registry] }),
    applies: new Counter({ name: 'trellis_controlplane_applies_total', help: 'Apply requests by result: applied, dry_run, unchanged, invalid, conflict.', labelNames: ['result'], registers: [registry] }),
  };
}

/** A Store that times every operation into `trellis_controlplane_store_duration_seconds`. */
export class TimedStore implements Store {
  readonly #inner: Store;
  readonly #histogram: Histogram<'op' | 'outcome'>;
  readonly #now: () => number;

  constructor(inner: Store, histogram: Histogram<'op' | 'outcome'>, now: () => number) {
    this.#inner = inner;
    this.#histogram = histogram;
    this.#now = now;
  }

  get kind(): Store['kind'] {
    return this.#inner.kind;
  }

  async #timed<T>(op: string, work: () => Promise<T>): Promise<T> {
    const start = this.#now();
    try {
      const out = await work();
      this.#histogram.observe({ op, outcome: 'ok' }, (this.#now() - start) / 1000);
      return out;
    } catch (err) {
      this.#histogram.observe({ op, outcome: 'error' }, (this.#now() - start) / 1000);
      throw err;
    }
  }

  commit(ops: readonly StoreOp[]): Promise<number> {
    return this.#timed('commit', () => this.#inner.commit(ops));
  }
  get<T = unknown>(key: string): Promise<StoreEntry<T> | undefined> {
    return this.#timed('get', () => this.#inner.get<T>(key));
  }
  list<T = unknown>(prefix: string): Promise<{ entries: StoreEntry<T>[]; revision: number }> {
    return this.#timed('list', () => this.#inner.list<T>(prefix));
  }
  watch(prefix: string, afterRevision: number, handlers: StoreWatchHandlers): StoreWatch {
    return this.#inner.watch(prefix, afterRevision, handlers);
  }
  grantLease(ttlMs: number): Promise<string> {
    return this.#timed('grant_lease', () => this.#inner.grantLease(ttlMs));
  }
  keepAlive(lease: string): Promise<void> {
    return this.#timed('keep_alive', () => this.#inner.keepAlive(lease));
  }
  revokeLease(lease: string): Promise<void> {
    return this.#timed('revoke_lease', () => this.#inner.revokeLease(lease));
  }
  revision(): Promise<number> {
    return this.#timed('revision', () => this.#inner.revision());
  }
  health(): Promise<{ ok: boolean; detail: string }> {
    return this.#timed('health', () => this.#inner.health());
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}
