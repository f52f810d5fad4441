/**
 * The handler-based outbound HTTP path of one destination and config version: what the
 * per-request object (outbound-call.ts) reads, compiled once from the same parameters and
 * per-destination state the described Stack (outbound-stack.ts) is built from. It is the mesh as
 * an undici Dispatcher at its core: `dispatch(opts, handler)` takes the caller's handler and
 * passes it down to the endpoint's Pool, with no promise per layer and no second response
 * stream (the caller's own handler gets the upstream's raw headers and body chunks).
 *
 * The order it applies, outermost first, is the Stack's (`describe()` prints it):
 *   metrics (logical) → timeout/deadline → retry (budget, backoff, per-try timeout)
 *   → attempt metrics → circuit breaker → balancer → tracing → endpoint (load, outlier) → Pool.
 *
 * Not every destination can take it yet: a destination with declared routes, faults, mirroring,
 * rate limits, adaptive concurrency or an access log, or a call while an OpenTelemetry SDK records
 * spans, runs the promise stack (`coreRefusal` says which), whose layers are not ported yet.
 */
import type { Clock, Random } from '../core/clock.js';
import type { Classifier } from '../core/classify.js';
import type { ServiceSpec } from '../config/types.js';
import type { CircuitBreaker } from '../resilience/circuit-breaker.js';
import type { RetryBudget } from '../resilience/retry-budget.js';
import { exponentialBackoff } from '../resilience/backoff.js';
import type { MeshMetrics } from '../observability/metrics.js';
import type { MeshTracer } from '../observability/tracer.js';
import type { EndpointSet } from './endpoint-set.js';
import type { HttpResponse } from './http-transport.js';
import type { HttpRequest } from './http-request.js';
import type { ServiceCounters, ServiceState } from './service-state.js';
import { USER_RETRYABLE } from './http-classify.js';

/** What the hot path needs of the mesh's observability (absent parts record nothing). */
export interface CoreObservability {
  readonly metrics: MeshMetrics | undefined;
  readonly tracer: MeshTracer | undefined;
  /** Why the hot path cannot carry a destination's observability (an access log), if it cannot. */
  readonly refusal: string | undefined;
}

export interface OutboundCore {
  readonly service: string;
  /** Route label: no routes declared, so every request is the `default` route's. */
  readonly route: string;
  readonly clock: Clock;
  readonly endpoints: EndpointSet;
  /** Overall timeout in ms; 0 = only a propagated deadline. */
  readonly timeoutMs: number;
  readonly attempts: number;
  readonly retryOn: ReadonlySet<string>;
  readonly perTryTimeoutMs: number | undefined;
  /** Whether `reset` is a retry condition and another attempt is allowed at all. */
  readonly retriesReset: boolean;
  readonly budget: RetryBudget;
  readonly backoff: (retry: number) => number;
  readonly breaker: CircuitBreaker<HttpRequest, HttpResponse> | undefined;
  readonly classify: Classifier<HttpResponse>;
  readonly maxReplayBytes: number;
  readonly counters: ServiceCounters;
  readonly metrics: MeshMetrics | undefined;
  readonly tracer: MeshTracer | undefined;
  onRetry(reason: string): void;
  onBudgetExhausted(): void;
}

/** Why `spec` cannot take the hot path yet, or undefined when it can. */
export function coreRefusal(spec: ServiceSpec, observability: CoreObservability | undefined): string | undefined {
  if (spec.routes.length > 0) return 'routes are declared';
  if (spec.rateLimit !== undefined) return 'a rate limit is set';
  if (spec.adaptiveConcurrency !== undefined) return 'adaptive concurrency is set';
  return observability?.refusal;
}

export interface OutboundCoreDeps {
  clock: Clock;
  random: Random;
  classify: Classifier<HttpResponse>;
  observability: CoreObservability | undefined;
  onRetry: (route: string, reason: string) => void;
  onBudgetExhausted: () => void;
}

/** Compiles the hot path of a destination, or undefined when `coreRefusal` refuses it. */
export function outboundCore(spec: ServiceSpec, state: ServiceState, deps: OutboundCoreDeps): OutboundCore | undefined {
  if (coreRefusal(spec, deps.observability) !== undefined) return undefined;
  const r = spec.retries;
  const on = new Set([...r.on, USER_RETRYABLE]);
  return {
    service: spec.name,
    route: 'default',
    clock: deps.clock,
    endpoints: state.endpoints,
    timeoutMs: spec.timeoutMs,
    attempts: r.attempts,
    retryOn: on,
    perTryTimeoutMs: r.perTryTimeoutMs,
    retriesReset: r.on.includes('reset') && r.attempts > 1,
    budget: state.budget(spec),
    backoff: exponentialBackoff(r.backoff, deps.random),
    breaker: state.breaker(spec),
    classify: deps.classify,
    maxReplayBytes: r.maxReplayBytes,
    counters: state.counters,
    metrics: deps.observability?.metrics,
    tracer: deps.observability?.tracer,
    onRetry: (reason) => {
      state.counters.retries++;
      deps.onRetry('default', reason);
    },
    onBudgetExhausted: () => {
      state.counters.budgetExhausted++;
      deps.onBudgetExhausted();
    },
  };
}
