/**
 * The handler-based outbound HTTP path of one destination and config version: what the
 * per-request object (outbound-call.ts) reads, compiled once from the same parameters and
 * per-destination state the described Stack (outbound-stack.ts) is built from. It is the mesh as
 * an undici Dispatcher at its core: `dispatch(opts, handler)` takes the caller's handler and
 * passes it down to the endpoint's Pool, with no promise per layer and no second response
 * stream (the caller's own handler gets the upstream's raw headers and body chunks).
 *
 * The order it applies, outermost first, is the Stack's (`describe()` prints it):
 *   metrics (logical) → route match + rewrite → fault → timeout/deadline → retry (budget, backoff,
 *   per-try timeout) → attempt metrics → rate limits → circuit breaker → split → balancer
 *   → tracing → endpoint (load, outlier) → Pool.
 *
 * Routes (match, rewrite, per-route timeout and retries), rate limits and weighted splits are
 * applied here too, and injected faults: route match and faults once per call, limits and split
 * once per attempt; with an OpenTelemetry SDK, one CLIENT span per attempt (attempt-span.ts).
 * With the access log on, one line per logical request (call-access-log.ts).
 * The adaptive concurrency limit admits each attempt (after the rate limits, before the breaker).
 * A mirrored route sends its fire-and-forget copy once per call, after the fault and alongside
 * the primary (call-mirror.ts), through the backend level the promise stack's copies took.
 */
import type { Clock, Random } from '../core/clock.js';
import type { Classifier } from '../core/classify.js';
import type { RouteSpec, ServiceSpec } from '../config/types.js';
import type { RateLimiter } from '../resilience/rate-limiter.js';
import { compileRoutes } from '../traffic/route-table.js';
import type { RouteTable } from '../traffic/route-table.js';
import { backendPicker } from '../traffic/weighted-split.js';
import type { BackendPicker } from '../traffic/weighted-split.js';
import type { CircuitBreaker } from '../resilience/circuit-breaker.js';
import type { RetryBudget } from '../resilience/retry-budget.js';
import { exponentialBackoff } from '../resilience/backoff.js';
import { DeadlineQueue } from '../core/deadline-queue.js';
import type { MeshMetrics, RequestRecorder } from '../observability/metrics.js';
import type { MeshTracer } from '../observability/tracer.js';
import type { EndpointSet } from './endpoint-set.js';
import type { HttpResponse } from './http-transport.js';
import type { HttpRequest } from './http-request.js';
import { coreFault } from './injected-fault.js';
import type { CoreAccessLog } from './call-access-log.js';
import { OverloadedError } from '../core/errors.js';
import type { SlotQueue } from '../resilience/concurrency-limit-filter.js';
import type { CoreFault } from './injected-fault.js';
import type { MirrorSender } from '../traffic/mirror-filter.js';
import type { ServiceCounters, ServiceState } from './service-state.js';
import { httpClassifier, USER_RETRYABLE } from './http-classify.js';

/** What the hot path needs of the mesh's observability (absent parts record nothing). */
export interface CoreObservability {
  readonly metrics: MeshMetrics | undefined;
  readonly tracer: MeshTracer | undefined;
  /** The outbound access log, when it is on. */
  readonly accessLog?: CoreAccessLog | undefined;
}

/** A rate limit an attempt must pass (the destination's, then the route's), as the stack pushes them. */
export interface CoreLimit {
  readonly limiter: RateLimiter;
  /** What is limited, for the refusal's message: `products` or `products/route catalog`. */
  readonly scope: string;
}

/** The logical-request and attempt metrics of one (route, method), labels resolved once. */
export interface CallRecorders {
  readonly request: RequestRecorder;
  readonly attempt: RequestRecorder;
}

/** Methods beyond this many per route are recorded through the label lookup, not cached. */
const MAX_CACHED_METHODS = 16;

/** A route's recorders by method, built on first use (undefined without metrics). */
function recordersFor(metrics: MeshMetrics | undefined, service: string, route: string): (method: string) => CallRecorders | undefined {
  if (metrics === undefined) return () => undefined;
  const byMethod = new Map<string, CallRecorders>();
  const make = (method: string): CallRecorders => ({ request: metrics.clientRequests(service, route, method), attempt: metrics.clientAttempts(service, route, method) });
  // The last method asked for and its recorders: a route mostly sees one method after another.
  let lastMethod: string | undefined;
  let last: CallRecorders | undefined;
  return (method) => {
    if (method === lastMethod) return last;
    let r = byMethod.get(method);
    if (r === undefined) {
      r = make(method);
      if (byMethod.size < MAX_CACHED_METHODS) byMethod.set(method, r);
    }
    lastMethod = method;
    last = r;
    return r;
  };
}

/**
 * What a compiled route holds on either hot path (HTTP here, gRPC unary in grpc/unary-core.ts),
 * for answers of type `R`.
 */
export interface CompiledRoute<R> {
  readonly name: string;
  /** Overall timeout in ms; 0 = only the call's own or a propagated deadline. */
  readonly timeoutMs: number;
  readonly attempts: number;
  readonly retryOn: ReadonlySet<string>;
  readonly perTryTimeoutMs: number | undefined;
  readonly backoff: (retry: number) => number;
  /** The route's classifier (its `retries.on`): retries, breaker, attempt metrics. */
  readonly classify: Classifier<R>;
  readonly limits: readonly CoreLimit[];
  /** The overall timeout's deadlines (undefined without one). */
  readonly overall: DeadlineQueue | undefined;
  /** The per-try timeout's deadlines (undefined without one). */
  readonly perTry: DeadlineQueue | undefined;
  /** The weighted split over subsets, or undefined for every endpoint. */
  readonly split: BackendPicker | undefined;
  /** `hashOn.header`: the header (metadata key) whose value keys ring-hash and sticky splits. */
  readonly hashHeader: string | undefined;
  /** Injected faults (Istio's semantics, as traffic/fault-filter.ts), or undefined. */
  readonly fault: CoreFault | undefined;
}

/** One route's policy on the hot path (the service's own when it declares no routes). */
export interface RoutePolicy extends CompiledRoute<HttpResponse> {
  /** Position in the service's route list (the route table's index). */
  readonly index: number;
  /** Whether `reset` is a retry condition and another attempt is allowed at all. */
  readonly retriesReset: boolean;
  /** The route's traffic mirror (sampling and copies), or undefined. */
  readonly mirror: MirrorSender | undefined;
  /** The route's metric recorders for a method (undefined without metrics). */
  readonly recorders: (method: string) => CallRecorders | undefined;
  onRetry(reason: string): void;
  onBudgetExhausted(): void;
  onLimited(): void;
}

export interface OutboundCore {
  readonly service: string;
  readonly clock: Clock;
  readonly endpoints: EndpointSet;
  /** Declared routes, or undefined: then every request is `routes[0]`, the `default` route, as sent. */
  readonly table: RouteTable | undefined;
  readonly routes: readonly RoutePolicy[];
  readonly budget: RetryBudget;
  readonly breaker: CircuitBreaker<HttpRequest, HttpResponse> | undefined;
  readonly maxReplayBytes: number;
  readonly counters: ServiceCounters;
  readonly metrics: MeshMetrics | undefined;
  readonly tracer: MeshTracer | undefined;
  readonly accessLog: CoreAccessLog | undefined;
  readonly concurrency: CoreConcurrency | undefined;
  /**
   * The pick request every attempt of this destination fills in (attempt-admission.ts): `pick`
   * is synchronous and keeps no request (balancer.ts), so one object per destination serves
   * every attempt instead of a new one each.
   */
  readonly pickRequest: ReusablePickRequest;
}

/** A PickRequest whose fields are written per attempt. */
export interface ReusablePickRequest {
  key: string | undefined;
  avoid: ReadonlySet<string> | undefined;
  now: number | undefined;
}

/** The destination's adaptive concurrency limit on the hot path (resilience/concurrency-limit-filter.ts's rules). */
export interface CoreConcurrency {
  readonly queue: SlotQueue;
  /** How long an attempt may wait for a slot (never past the call's deadline); 0 = fail at once. */
  readonly maxWaitMs: number;
  /** Counts a refusal and returns its TRELLIS_OVERLOADED error. */
  refuse(): Error;
}

/** The destination's adaptive concurrency limit for a hot path (HTTP's, gRPC's unary one), or undefined. */
export function coreConcurrency(spec: ServiceSpec, state: ServiceState): CoreConcurrency | undefined {
  const ac = spec.adaptiveConcurrency;
  const queue = state.concurrency(spec);
  if (ac === undefined || queue === undefined) return undefined;
  return {
    queue,
    maxWaitMs: ac.maxWaitMs,
    refuse: () => {
      state.counters.overloaded++;
      return new OverloadedError(`adaptive concurrency limit of ${spec.name} reached (${queue.limit.limit} in flight)`, { service: spec.name });
    },
  };
}

export interface OutboundCoreDeps {
  clock: Clock;
  random: Random;
  /** The service's classifier (its own `retries.on`). */
  classify: Classifier<HttpResponse>;
  observability: CoreObservability | undefined;
  /** The route's and the service's limiters, the same objects the promise stack uses. */
  limits: (route: RouteSpec) => CoreLimit[];
  onRetry: (route: string, reason: string) => void;
  onBudgetExhausted: () => void;
  onLimited: (route: string) => void;
  /** The route's mirror, when it mirrors (its copies go to the backend level). */
  mirror: (route: RouteSpec) => MirrorSender | undefined;
}

/** The route used when a service declares none: every endpoint, the service's own policy. */
const DEFAULT_ROUTE: RouteSpec = { name: 'default', match: undefined, rewrite: undefined, backends: [{ subset: {}, weight: 1 }], mirror: undefined, fault: undefined, timeoutMs: undefined, retries: undefined, rateLimit: undefined, hashOn: undefined };

function routePolicy(spec: ServiceSpec, route: RouteSpec, index: number, state: ServiceState, deps: OutboundCoreDeps): RoutePolicy {
  const r = route.retries ?? spec.retries;
  const on = [...r.on, USER_RETRYABLE];
  const b = route.backends;
  const single = b.length === 1 && b[0] !== undefined && Object.keys(b[0].subset).length === 0;
  return {
    name: route.name,
    index,
    timeoutMs: route.timeoutMs ?? spec.timeoutMs,
    attempts: r.attempts,
    retryOn: new Set(on),
    perTryTimeoutMs: r.perTryTimeoutMs,
    retriesReset: r.on.includes('reset') && r.attempts > 1,
    backoff: exponentialBackoff(r.backoff, deps.random),
    classify: r === spec.retries ? deps.classify : httpClassifier(on),
    limits: deps.limits(route),
    overall: (route.timeoutMs ?? spec.timeoutMs) > 0 ? new DeadlineQueue(route.timeoutMs ?? spec.timeoutMs, deps.clock) : undefined,
    perTry: r.perTryTimeoutMs !== undefined ? new DeadlineQueue(r.perTryTimeoutMs, deps.clock) : undefined,
    split: single ? undefined : backendPicker(b, deps.random),
    hashHeader: route.hashOn?.header.toLowerCase(),
    fault: coreFault(route, state, deps.random),
    mirror: route.mirror !== undefined && route.mirror.percent > 0 ? deps.mirror(route) : undefined,
    recorders: recordersFor(deps.observability?.metrics, spec.name, route.name),
    onRetry: (reason) => {
      state.counters.retries++;
      deps.onRetry(route.name, reason);
    },
    onBudgetExhausted: () => {
      state.counters.budgetExhausted++;
      deps.onBudgetExhausted();
    },
    onLimited: () => {
      state.counters.rateLimited++;
      deps.onLimited(route.name);
    },
  };
}

/** Compiles the hot path of a destination (every destination takes it). */
export function outboundCore(spec: ServiceSpec, state: ServiceState, deps: OutboundCoreDeps): OutboundCore {
  const declared = spec.routes.length > 0;
  const routes = (declared ? spec.routes : [DEFAULT_ROUTE]).map((route, i) => routePolicy(spec, route, i, state, deps));
  return {
    service: spec.name,
    clock: deps.clock,
    endpoints: state.endpoints,
    table: declared ? compileRoutes(spec.routes) : undefined,
    routes,
    budget: state.budget(spec),
    breaker: state.breaker(spec),
    maxReplayBytes: spec.retries.maxReplayBytes,
    counters: state.counters,
    metrics: deps.observability?.metrics,
    tracer: deps.observability?.tracer,
    accessLog: deps.observability?.accessLog,
    concurrency: coreConcurrency(spec, state),
    pickRequest: { key: undefined, avoid: undefined, now: undefined },
  };
}
