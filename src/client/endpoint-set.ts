/**
 * The live endpoints of one destination service: fed by its discovery source, filtered by
 * outlier detection, and split into backends (one per subset selector, each with its own
 * balancer over the healthy members). Lives as long as the service is configured, across
 * config versions, so connection pools and load statistics survive a config change.
 *
 * Invariants: a backend's balancer only sees members that are not ejected, unless every
 * member is ejected — then it sees them all (Envoy's panic mode: better to try than to fail
 * everything). Endpoints leaving the set have their pools drained, never cut.
 */
import type { Clock, Random } from '../core/clock.js';
import type { CallSignal } from '../core/call-signal.js';
import type { Endpoint, EndpointSource } from '../discovery/endpoint.js';
import type { Balancer, BalancerKind } from '../lb/balancer.js';
import { LbEndpoint } from '../lb/lb-endpoint.js';
import { makeBalancer } from '../lb/make-balancer.js';
import { OutlierDetector } from '../lb/outlier-detector.js';
import type { PoolSet } from './pool-set.js';

export interface OutlierParams {
  consecutiveFailures: number;
  ejectionTimeMs: number;
  maxEjectionTimeMs: number;
  maxEjectedPercent: number;
}

export interface EndpointSetDeps {
  clock: Clock;
  random: Random;
  pools: PoolSet;
  onEndpoints: (service: string, endpoints: readonly Endpoint[]) => void;
  onEjection: (service: string, endpoint: string, ejected: boolean) => void;
  onWarn: (message: string) => void;
}

export interface Backend {
  readonly key: string;
  readonly selector: Readonly<Record<string, string>> | undefined;
  readonly balancer: Balancer;
  /** Members matching the selector (ejected or not). */
  members: LbEndpoint[];
  /** Members handed to the balancer. */
  healthy: LbEndpoint[];
}

function selectorKey(sel: Readonly<Record<string, string>> | undefined): string {
  if (sel === undefined) return '';
  const keys = Object.keys(sel).sort();
  return keys.map((k) => `${k}=${sel[k]}`).join(',');
}

function matches(ep: Endpoint, sel: Readonly<Record<string, string>> | undefined): boolean {
  if (sel === undefined) return true;
  for (const k in sel) if (ep.labels[k] !== sel[k]) return false;
  return true;
}

export class EndpointSet {
  readonly service: string;
  readonly #deps: EndpointSetDeps;
  #source: EndpointSource | undefined;
  #sourceKey = '';
  #balancerKind: BalancerKind = 'ewma';
  #outlierKey = '';
  #outlier: OutlierDetector | undefined;
  readonly #endpoints = new Map<string, LbEndpoint>();
  readonly #backends = new Map<string, Backend>();
  /** The backend of every endpoint (no selector), the one most attempts ask for: no key built or looked up. */
  #all: Backend | undefined;
  #known = false;
  #waiters: (() => void)[] = [];
  #closed = false;

  constructor(service: string, deps: EndpointSetDeps) {
    this.service = service;
    this.#deps = deps;
  }

  get pools(): PoolSet {
    return this.#deps.pools;
  }

  /** True once the source delivered its first set. */
  get known(): boolean {
    return this.#known;
  }

  /**
   * Applies the parts of a new config version that concern endpoints. Each part is replaced
   * only when it changed, so state (pools, EWMA, ejections) survives unrelated changes.
   */
  configure(opts: { source: EndpointSource | undefined; sourceKey: string; balancer: BalancerKind; outlier: OutlierParams | undefined }): void {
    if (opts.sourceKey !== this.#sourceKey || (opts.source === undefined) !== (this.#source === undefined)) {
      this.#source?.close();
      this.#source = opts.source;
      this.#sourceKey = opts.sourceKey;
      if (opts.source === undefined) {
        // No discovery (the registry is not built yet): an empty set that is known, so calls
        // fail fast with TRELLIS_NO_ENDPOINTS instead of waiting for their timeout.
        this.#onUpdate([]);
      }
      opts.source?.start(
        (eps) => this.#onUpdate(eps),
        (err) => this.#deps.onWarn(`discovery for ${this.service} (${opts.source?.description ?? '?'}) failed, keeping the last good endpoints: ${err.message}`),
      );
    } else {
      opts.source?.close();
    }
    const outlierKey = opts.outlier === undefined ? '' : JSON.stringify(opts.outlier);
    if (outlierKey !== this.#outlierKey) {
      this.#outlier?.close();
      this.#outlierKey = outlierKey;
      this.#outlier = opts.outlier === undefined ? undefined : new OutlierDetector(opts.outlier, {
        clock: this.#deps.clock,
        onChange: () => this.#rebuild(),
        onEject: (id) => this.#deps.onEjection(this.service, id, true),
        onReturn: (id) => this.#deps.onEjection(this.service, id, false),
      });
      this.#outlier?.setEndpoints([...this.#endpoints.keys()]);
    }
    if (opts.balancer !== this.#balancerKind) {
      this.#balancerKind = opts.balancer;
      this.#backends.clear();
      this.#all = undefined;
    }
    this.#rebuild();
  }

  #onUpdate(eps: readonly Endpoint[]): void {
    if (this.#closed) return;
    const now = this.#deps.clock.now();
    const next = new Set<string>();
    for (const ep of eps) {
      next.add(ep.id);
      const cur = this.#endpoints.get(ep.id);
      // Labels may change for the same address: keep the load state, take the new labels.
      if (cur === undefined || JSON.stringify(cur.endpoint.labels) !== JSON.stringify(ep.labels) || cur.endpoint.weight !== ep.weight) {
        const fresh = new LbEndpoint(ep, now);
        if (cur !== undefined) {
          fresh.outstanding = cur.outstanding;
          fresh.ewmaMs = cur.ewmaMs;
          fresh.ewmaStamp = cur.ewmaStamp;
        }
        this.#endpoints.set(ep.id, fresh);
      }
    }
    for (const id of [...this.#endpoints.keys()]) if (!next.has(id)) this.#endpoints.delete(id);
    this.#outlier?.setEndpoints([...next]);
    this.#deps.pools.retain(next);
    this.#known = true;
    this.#rebuild();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
    this.#deps.onEndpoints(this.service, eps);
  }

  #rebuild(): void {
    const all = [...this.#endpoints.values()];
    for (const b of this.#backends.values()) this.#fill(b, all);
  }

  #fill(b: Backend, all: LbEndpoint[]): void {
    b.members = all.filter((e) => matches(e.endpoint, b.selector));
    const outlier = this.#outlier;
    const healthy = outlier === undefined ? b.members : b.members.filter((e) => !outlier.isEjected(e.id));
    b.healthy = healthy.length > 0 ? healthy : b.members;
    b.balancer.update(b.healthy);
  }

  /** The backend for a subset selector (undefined = every endpoint), created on first use. */
  backend(selector: Readonly<Record<string, string>> | undefined): Backend {
    if (selector === undefined && this.#all !== undefined) return this.#all;
    const key = selectorKey(selector);
    let b = this.#backends.get(key);
    if (b === undefined) {
      b = { key, selector, balancer: makeBalancer(this.#balancerKind, { clock: this.#deps.clock, random: this.#deps.random }), members: [], healthy: [] };
      this.#backends.set(key, b);
      this.#fill(b, [...this.#endpoints.values()]);
    }
    if (selector === undefined) this.#all = b;
    return b;
  }

  /** Resolves once the source delivered a set, or when `signal` aborts (then rejects). */
  ready(signal: CallSignal | undefined): Promise<void> {
    if (this.#known) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(signal?.reason);
      this.#waiters.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Outcome of one attempt on an endpoint, for outlier detection. */
  report(id: string, ok: boolean): void {
    if (this.#outlier === undefined) return;
    if (ok) this.#outlier.success(id);
    else this.#outlier.failure(id);
  }

  endpoints(): LbEndpoint[] {
    return [...this.#endpoints.values()];
  }

  isEjected(id: string): boolean {
    return this.#outlier?.isEjected(id) ?? false;
  }

  get balancerKind(): BalancerKind {
    return this.#balancerKind;
  }

  get sourceDescription(): string {
    return this.#source?.description ?? 'none (registry)';
  }

  /** Stops discovery and closes the pools; requests still in flight after `graceMs` fail with TRELLIS_CLOSED. */
  async close(graceMs?: number): Promise<void> {
    this.#closed = true;
    this.#source?.close();
    this.#outlier?.close();
    await this.#deps.pools.close(graceMs);
  }
}
