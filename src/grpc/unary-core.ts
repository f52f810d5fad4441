/**
 * The unary gRPC path of one destination and config version, compiled once: what the per-call
 * object (unary-call.ts) reads, from the same parameters and per-destination state the described
 * unary Stack (grpc-stack.ts) is written with. It is the gRPC counterpart of
 * `src/client/outbound-core.ts`: one object per call that is also the grpc-js listener of each
 * attempt's call below the interceptor, with no promise, context fork or closure per layer.
 *
 * The order it applies, outermost first, is the Stack's (`describe()` prints it):
 *   metrics (logical call) → route match → fault → timeout/deadline → retry (budget, backoff,
 *   per-try timeout, shed answers) → attempt metrics → rate limits → adaptive concurrency →
 *   circuit breaker → split → balancer → tracing → endpoint (load, outlier) → grpc-js call.
 *
 * Metrics are recorded through RequestRecorders resolved here per route (method is always
 * `POST`), the breaker is admitted and reported inline (`admit()`/`report()`), deadlines wait in
 * the route's DeadlineQueue (one timer per duration; a call's own or propagated deadline in the
 * mesh's `anyDeadlines` queue), trace ids come from the tracer's pool.
 */
import type { Clock, Random } from '../core/clock.js';
import type { Classifier } from '../core/classify.js';
import { DeadlineQueue } from '../core/deadline-queue.js';
import type { RouteSpec, ServiceSpec } from '../config/types.js';
import { exponentialBackoff } from '../resilience/backoff.js';
import type { CircuitBreaker } from '../resilience/circuit-breaker.js';
import type { RetryBudget } from '../resilience/retry-budget.js';
import type { MeshMetrics, RequestRecorder } from '../observability/metrics.js';
import type { MeshTracer } from '../observability/tracer.js';
import { compileRoutes } from '../traffic/route-table.js';
import type { RouteTable } from '../traffic/route-table.js';
import { backendPicker } from '../traffic/weighted-split.js';
import type { EndpointSet } from '../client/endpoint-set.js';
import { coreConcurrency } from '../client/outbound-core.js';
import type { CompiledRoute, CoreConcurrency, CoreLimit } from '../client/outbound-core.js';
import { coreFault } from '../client/injected-fault.js';
import type { ServiceCounters, ServiceState } from '../client/service-state.js';
import type { RetryPolicyView } from '../client/retry-decision.js';
import { grpcClassifier } from './classify.js';
import type { GrpcResult } from './grpc-call.js';

/** One route's unary policy (the service's own when it declares no routes). */
export interface GrpcRoutePolicy extends CompiledRoute<GrpcResult> {
  /** The status an injected abort answers with (with `fault`). */
  readonly abort: (() => GrpcResult) | undefined;
  /** Logical-call and attempt recorders (undefined without metrics). */
  readonly requests: RequestRecorder | undefined;
  readonly attemptsRecorder: RequestRecorder | undefined;
  onRetry(reason: string): void;
  onBudgetExhausted(): void;
  onLimited(): void;
  /**
   * A streaming call's retry policy on this route (stream-call.ts): gRPC's transparent retry
   * only, on `connect-failure` whatever `retries.on` says, with the route's backoff and at least
   * `TRANSPARENT_ATTEMPTS` attempts.
   */
  readonly transparent: RetryPolicyView;
}

/** Attempts a stream gets for transparent retries (or the route's `retries.attempts`, if more). */
export const TRANSPARENT_ATTEMPTS = 3;
const TRANSPARENT_ON: ReadonlySet<string> = new Set(['connect-failure']);

export interface GrpcUnaryCore {
  readonly service: string;
  readonly clock: Clock;
  readonly endpoints: EndpointSet;
  /** Declared routes, or undefined: then every call takes `routes[0]`, the `default` route. */
  readonly table: RouteTable | undefined;
  /** Whether a route matches on metadata (then the metadata is turned into headers to match). */
  readonly matchesHeaders: boolean;
  readonly routes: readonly GrpcRoutePolicy[];
  /** The service's classifier (its `retries.on`): logical-call metrics and endpoint reports. */
  readonly classify: Classifier<GrpcResult>;
  readonly budget: RetryBudget;
  readonly breaker: CircuitBreaker<unknown, unknown> | undefined;
  readonly concurrency: CoreConcurrency | undefined;
  readonly counters: ServiceCounters;
  readonly metrics: MeshMetrics | undefined;
  readonly tracer: MeshTracer | undefined;
  /** The mesh's queue for deadlines of any time (a call's own, a propagated one). */
  readonly anyDeadlines: DeadlineQueue;
}

export interface GrpcUnaryCoreDeps {
  clock: Clock;
  random: Random;
  metrics: MeshMetrics | undefined;
  tracer: MeshTracer | undefined;
  anyDeadlines: DeadlineQueue;
  /** The status an injected abort of `route` answers with (grpc-stack.ts's `abortResult`). */
  abortResult: (route: RouteSpec) => () => GrpcResult;
}

/** gRPC calls are HTTP/2 POSTs: the `method` label of their metrics. */
const METHOD = 'POST';

const DEFAULT_ROUTE: RouteSpec = { name: 'default', match: undefined, rewrite: undefined, backends: [{ subset: {}, weight: 1 }], mirror: undefined, fault: undefined, timeoutMs: undefined, retries: undefined, rateLimit: undefined, hashOn: undefined };

function limitsOf(spec: ServiceSpec, route: RouteSpec, state: ServiceState): CoreLimit[] {
  const out: CoreLimit[] = [];
  if (spec.rateLimit !== undefined) out.push({ limiter: state.limiter('service', spec.rateLimit), scope: spec.name });
  if (route.rateLimit !== undefined) {
    const scope = `route ${route.name}`;
    out.push({ limiter: state.limiter(scope, route.rateLimit), scope: `${spec.name}/${scope}` });
  }
  return out;
}

function routePolicy(spec: ServiceSpec, route: RouteSpec, state: ServiceState, classify: Classifier<GrpcResult>, deps: GrpcUnaryCoreDeps): GrpcRoutePolicy {
  const r = route.retries ?? spec.retries;
  const b = route.backends;
  const single = b.length === 1 && b[0] !== undefined && Object.keys(b[0].subset).length === 0;
  const timeoutMs = route.timeoutMs ?? spec.timeoutMs;
  const fault = coreFault(route, state, deps.random);
  const metrics = deps.metrics;
  const backoff = exponentialBackoff(r.backoff, deps.random);
  const onBudgetExhausted = (): void => {
    state.counters.budgetExhausted++;
    metrics?.retryBudgetExhausted(spec.name);
  };
  return {
    name: route.name,
    timeoutMs,
    attempts: r.attempts,
    retryOn: new Set(r.on),
    perTryTimeoutMs: r.perTryTimeoutMs,
    backoff,
    classify: r === spec.retries ? classify : grpcClassifier(r.on),
    limits: limitsOf(spec, route, state),
    overall: timeoutMs > 0 ? new DeadlineQueue(timeoutMs, deps.clock) : undefined,
    perTry: r.perTryTimeoutMs !== undefined ? new DeadlineQueue(r.perTryTimeoutMs, deps.clock) : undefined,
    split: single ? undefined : backendPicker(b, deps.random),
    hashHeader: route.hashOn?.header.toLowerCase(),
    fault,
    abort: fault === undefined ? undefined : deps.abortResult(route),
    requests: metrics?.clientRequests(spec.name, route.name, METHOD),
    attemptsRecorder: metrics?.clientAttempts(spec.name, route.name, METHOD),
    onRetry: (reason) => {
      state.counters.retries++;
      metrics?.retry(spec.name, route.name, reason);
    },
    onBudgetExhausted,
    onLimited: () => {
      state.counters.rateLimited++;
      metrics?.rateLimited(spec.name, route.name, 'outbound');
    },
    transparent: { retryOn: TRANSPARENT_ON, attempts: Math.max(r.attempts, TRANSPARENT_ATTEMPTS), backoff, onBudgetExhausted },
  };
}

/**
 * Compiles the unary path of a destination.
 *
 * @example
 * const core = grpcUnaryCore(spec, dest.state, { clock, random, metrics, tracer, anyDeadlines, abortResult });
 */
export function grpcUnaryCore(spec: ServiceSpec, state: ServiceState, deps: GrpcUnaryCoreDeps): GrpcUnaryCore {
  const classify = grpcClassifier(spec.retries.on);
  const declared = spec.routes.length > 0;
  const routes = (declared ? spec.routes : [DEFAULT_ROUTE]).map((route) => routePolicy(spec, route, state, classify, deps));
  return {
    service: spec.name,
    clock: deps.clock,
    endpoints: state.endpoints,
    table: declared ? compileRoutes(spec.routes) : undefined,
    matchesHeaders: spec.routes.some((r) => (r.match?.headers.length ?? 0) > 0),
    routes,
    classify,
    budget: state.budget(spec),
    breaker: state.breaker(spec) as CircuitBreaker<unknown, unknown> | undefined,
    concurrency: coreConcurrency(spec, state),
    counters: state.counters,
    metrics: deps.metrics,
    tracer: deps.tracer,
    anyDeadlines: deps.anyDeadlines,
  };
}
