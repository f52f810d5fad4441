/**
 * What Trellis keeps per destination service across config versions: its endpoint set (pools,
 * load statistics, ejections), its retry budget and its circuit breaker. A new config version
 * rebuilds the (cheap, immutable) stack but reuses each stateful part whose parameters did not
 * change, so a route edit does not reset a breaker or forget which endpoint is slow.
 */
import { Readable } from 'node:stream';
import type { Clock, Random } from '../core/clock.js';
import type { ServiceSpec, MeshSpec } from '../config/types.js';
import type { Endpoint } from '../discovery/endpoint.js';
import { makeEndpointSource } from '../discovery/make-source.js';
import { RetryBudget } from '../resilience/retry-budget.js';
import { CircuitBreaker } from '../resilience/circuit-breaker.js';
import { GradientLimit } from '../resilience/gradient-limit.js';
import { SlotQueue } from '../resilience/concurrency-limit-filter.js';
import type { BreakerTicker } from '../resilience/circuit-breaker.js';
import { EndpointSet } from './endpoint-set.js';
import type { Connect } from './mtls-connector.js';
import { PoolSet } from './pool-set.js';
import type { HttpRequest } from './http-request.js';
import type { HttpResponse } from './http-transport.js';
import { httpClassifier, USER_RETRYABLE, whenBodySettled } from './http-classify.js';
import type { RateLimitSpec } from '../config/types.js';
import { localRateLimiter } from '../resilience/rate-limiter.js';
import type { RateLimiter } from '../resilience/rate-limiter.js';
import { globalRateLimiter } from '../resilience/global-rate-limiter.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

/** Per-destination counters, for inspection (demo, CLI, dashboard). */
export interface ServiceCounters {
  requests: number;
  retries: number;
  budgetExhausted: number;
  rateLimited: number;
  faults: number;
  mirrored: number;
  mirrorDropped: number;
  /** Calls the adaptive concurrency limit refused. */
  overloaded: number;
}

export interface ServiceStateDeps {
  clock: Clock;
  random: Random;
  /** The shared bucket-rotation ticker for a breaker window size. */
  ticker: (windowMs: number) => BreakerTicker;
  onEndpoints: (service: string, endpoints: readonly Endpoint[]) => void;
  onEjection: (service: string, endpoint: string, ejected: boolean) => void;
  /** The breaker changed state (a transition, not its creation). */
  onBreaker: (service: string, state: BreakerState) => void;
  /**
   * The destination's breaker now exists in `state`, or no longer exists (`undefined`): the
   * state gauge has a series from the breaker's creation, not from its first transition.
   */
  onBreakerPresence: (service: string, state: BreakerState | undefined) => void;
  onWarn: (message: string) => void;
}

export class ServiceState {
  readonly name: string;
  readonly endpoints: EndpointSet;
  #budgetKey = '';
  #budget: RetryBudget | undefined;
  #breakerKey = '';
  #concurrencyKey = '';
  #concurrency: SlotQueue | undefined;
  #breaker: CircuitBreaker<HttpRequest, HttpResponse> | undefined;
  readonly #deps: ServiceStateDeps;
  /** Rate limiters by scope (`service`, `route <name>`), kept while their parameters hold. */
  readonly #limiters = new Map<string, { key: string; limiter: RateLimiter }>();
  #redisUrl: string | undefined;
  /** Counters for inspection (the demo, CLI and dashboard read them). */
  readonly counters: ServiceCounters = { requests: 0, retries: 0, budgetExhausted: 0, rateLimited: 0, faults: 0, mirrored: 0, mirrorDropped: 0, overloaded: 0 };

  constructor(spec: ServiceSpec, deps: ServiceStateDeps) {
    this.name = spec.name;
    this.#deps = deps;
    const c = spec.connection;
    const pools = new PoolSet({ authority: spec.name, maxConnections: c.maxConnections, connectTimeoutMs: c.connectTimeoutMs, keepAliveTimeoutMs: c.keepAliveTimeoutMs, drainGraceMs: 30_000 });
    this.endpoints = new EndpointSet(spec.name, {
      clock: deps.clock,
      random: deps.random,
      pools,
      onEndpoints: deps.onEndpoints,
      onEjection: deps.onEjection,
      onWarn: deps.onWarn,
    });
  }

  /** Applies a config version's endpoint-related settings, and the transport (mTLS or plaintext). */
  configure(spec: ServiceSpec, mesh: MeshSpec, connect: Connect | undefined): void {
    this.endpoints.pools.setTransport(connect, spec.protocol === 'http2');
    this.#redisUrl = mesh.redis?.url;
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
      onStateChange: (state) => {
        this.#deps.onBreakerPresence(spec.name, state);
        this.#deps.onBreaker(spec.name, state);
      },
      // gRPC results cross this breaker too (grpc/breaker-adapter.ts): only an HTTP body is awaited.
      whenDone: (res, done) => {
        if ((res as Partial<HttpResponse>).body instanceof Readable) whenBodySettled(res, done);
        else done(false);
      },
    });
    this.#deps.onBreakerPresence(spec.name, this.#breaker?.state);
    return this.#breaker;
  }

  /**
   * The limiter for a scope (`service` or `route <name>`), reused while its parameters are
   * unchanged so a config edit elsewhere does not refill or reset it. Global limits share one
   * bucket through Redis (key `<service>` or `<service>/<route>`), local ones are per instance.
   */
  limiter(scope: string, spec: RateLimitSpec): RateLimiter {
    const key = JSON.stringify({ spec, redis: spec.scope === 'global' ? this.#redisUrl : undefined });
    const cur = this.#limiters.get(scope);
    if (cur !== undefined && cur.key === key) return cur.limiter;
    cur?.limiter.close();
    let limiter: RateLimiter;
    if (spec.scope === 'global' && this.#redisUrl !== undefined) {
      limiter = globalRateLimiter(
        { key: scope === 'service' ? `out/${this.name}` : `out/${this.name}/${scope}`, requestsPerSecond: spec.requestsPerSecond, burst: spec.burst, redisUrl: this.#redisUrl },
        { clock: this.#deps.clock, random: this.#deps.random, onWarn: this.#deps.onWarn },
      );
    } else {
      limiter = localRateLimiter({ requestsPerSecond: spec.requestsPerSecond, burst: spec.burst }, this.#deps.clock);
    }
    this.#limiters.set(scope, { key, limiter });
    return limiter;
  }

  /** Closes limiters whose scope is no longer configured. */
  retainLimiters(scopes: ReadonlySet<string>): void {
    for (const [scope, l] of this.#limiters) {
      if (!scopes.has(scope)) {
        l.limiter.close();
        this.#limiters.delete(scope);
      }
    }
  }

  /** The destination's adaptive concurrency limit, kept while its parameters are unchanged. */
  concurrency(spec: ServiceSpec): SlotQueue | undefined {
    const ac = spec.adaptiveConcurrency;
    const key = ac === undefined ? '' : JSON.stringify({ initial: ac.initial, min: ac.min, max: ac.max });
    if (key !== this.#concurrencyKey) {
      this.#concurrencyKey = key;
      this.#concurrency = ac === undefined ? undefined : new SlotQueue(new GradientLimit(ac));
    }
    return this.#concurrency;
  }

  /** The current adaptive limit and requests in flight, when one is configured. */
  get concurrencyLimit(): { limit: number; inflight: number } | undefined {
    const q = this.#concurrency;
    return q === undefined ? undefined : { limit: q.limit.limit, inflight: q.limit.inflight };
  }

  get breakerState(): BreakerState | undefined {
    return this.#breaker?.state;
  }

  get retryBudget(): RetryBudget | undefined {
    return this.#budget;
  }

  /** Closes breaker, limiters and pools; requests still in flight after `graceMs` fail with TRELLIS_CLOSED. */
  async close(graceMs?: number): Promise<void> {
    if (this.#breaker !== undefined) this.#deps.onBreakerPresence(this.name, undefined);
    this.#breaker?.close();
    for (const l of this.#limiters.values()) l.limiter.close();
    this.#limiters.clear();
    await this.endpoints.close(graceMs);
  }
}
