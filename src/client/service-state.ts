/**
 * What Trellis keeps per destination service across config versions: its endpoint set (pools,
 * load statistics, ejections), its retry budget and its circuit breaker. A new config version
 * rebuilds the (cheap, immutable) stack but reuses each stateful part whose parameters did not
 * change, so a route edit does not reset a breaker or forget which endpoint is slow.
 */
import type { Clock, Random } from '../core/clock.js';
import type { ServiceSpec, MeshSpec } from '../config/types.js';
import type { Endpoint } from '../discovery/endpoint.js';
import { makeEndpointSource } from '../discovery/make-source.js';
import { RetryBudget } from '../resilience/retry-budget.js';
import { CircuitBreaker } from '../resilience/circuit-breaker.js';
import type { BreakerTicker } from '../resilience/circuit-breaker.js';
import { EndpointSet } from './endpoint-set.js';
import { PoolSet } from './pool-set.js';
import type { HttpRequest } from './http-request.js';
import type { HttpResponse } from './http-transport.js';
import { httpClassifier, USER_RETRYABLE } from './http-classify.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface ServiceStateDeps {
  clock: Clock;
  random: Random;
  /** The shared bucket-rotation ticker for a breaker window size. */
  ticker: (windowMs: number) => BreakerTicker;
  onEndpoints: (service: string, endpoints: readonly Endpoint[]) => void;
  onEjection: (service: string, endpoint: string, ejected: boolean) => void;
  onBreaker: (service: string, state: BreakerState) => void;
  onWarn: (message: string) => void;
}

export class ServiceState {
  readonly name: string;
  readonly endpoints: EndpointSet;
  #budgetKey = '';
  #budget: RetryBudget | undefined;
  #breakerKey = '';
  #breaker: CircuitBreaker<HttpRequest, HttpResponse> | undefined;
  readonly #deps: ServiceStateDeps;
  /** Counters for inspection (the demo, CLI and dashboard read them). */
  readonly counters = { requests: 0, retries: 0, budgetExhausted: 0 };

  constructor(spec: ServiceSpec, deps: ServiceStateDeps) {
    this.name = spec.name;
    this.#deps = deps;
    const c = spec.connection;
    const pools = new PoolSet({ maxConnections: c.maxConnections, connectTimeoutMs: c.connectTimeoutMs, keepAliveTimeoutMs: c.keepAliveTimeoutMs, drainGraceMs: 30_000 });
    this.endpoints = new EndpointSet(spec.name, {
      clock: deps.clock,
      random: deps.random,
      pools,
      onEndpoints: deps.onEndpoints,
      onEjection: deps.onEjection,
      onWarn: deps.onWarn,
    });
  }

  /** Applies a config version's endpoint-related settings. */
  configure(spec: ServiceSpec, mesh: MeshSpec): void {
    const sourceKey = JSON.stringify({ e: spec.endpoints, d: spec.dns, m: mesh.dns });
    this.endpoints.configure({
      source: makeEndpointSource(spec, mesh, { clock: this.#deps.clock, onWarn: this.#deps.onWarn }),
      sourceKey,
      balancer: spec.loadBalancer,
      outlier: spec.outlierDetection,
    });
  }

  budget(spec: ServiceSpec): RetryBudget {
    const key = JSON.stringify(spec.retries.budget);
    if (this.#budget === undefined || key !== this.#budgetKey) {
      this.#budgetKey = key;
      this.#budget = new RetryBudget(spec.retries.budget, this.#deps.clock);
    }
    return this.#budget;
  }

  breaker(spec: ServiceSpec): CircuitBreaker<HttpRequest, HttpResponse> | undefined {
    const cb = spec.circuitBreaker;
    const key = cb === undefined ? '' : JSON.stringify({ cb, on: spec.retries.on });
    if (key === this.#breakerKey) return this.#breaker;
    this.#breaker?.close();
    this.#breakerKey = key;
    this.#breaker = cb === undefined ? undefined : new CircuitBreaker<HttpRequest, HttpResponse>(cb, {
      classify: httpClassifier([...spec.retries.on, USER_RETRYABLE]),
      service: spec.name,
      rotate: this.#deps.ticker(cb.windowMs),
      onStateChange: (state) => this.#deps.onBreaker(spec.name, state),
    });
    return this.#breaker;
  }

  get breakerState(): BreakerState | undefined {
    return this.#breaker?.state;
  }

  get retryBudget(): RetryBudget | undefined {
    return this.#budget;
  }

  async close(): Promise<void> {
    this.#breaker?.close();
    await this.endpoints.close();
  }
}
