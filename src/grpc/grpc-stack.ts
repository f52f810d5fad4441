/**
 * The order of a destination's outbound gRPC stack, written in one place as
 * `src/client/outbound-stack.ts` writes the HTTP one, from the same protocol-neutral filters
 * and the destination's shared state (endpoint set, retry budget, breaker, rate limiters), so
 * a service called over HTTP and gRPC has one budget, one breaker and one set of load figures.
 *
 *   metrics (logical call) → route match
 *   per route: fault → timeout → retry → attempt metrics → rate limit → breaker → split
 *   backend:   balancer → tracing → endpoint → grpc-js call (the endpoint on its pick ticket)
 *
 * Two stacks per destination and config version: `unary` (unary calls: retried, bounded by the
 * route's timeout) and `stream` (streaming calls, bounded only by the call's own and the
 * propagated deadline, as a long-lived stream must not be cut by a request timeout). Both run
 * this order compiled (unary-core.ts; one object per call, unary-call.ts and stream-call.ts, no
 * promise per layer): the Stacks here are their description, never built. A stream is
 * retried only transparently, as gRPC does: when an attempt never left the process (the picker
 * had no connection to the endpoint the balancer chose), it is played again on another endpoint
 * before its first message reaches a server; once a server answered, never. Route `rewrite` and `mirror` do not apply to gRPC.
 */
import type { Clock, Random } from '../core/clock.js';
import type { Classifier } from '../core/classify.js';
import { formatDuration } from '../core/duration.js';
import { applyFilter } from '../core/service.js';
import { Stack } from '../core/stack.js';
import type { StackModule } from '../core/stack.js';
import type { RouteSpec, ServiceSpec } from '../config/types.js';
import { balancerFilter } from '../client/balancer-filter.js';
import { endpointFilter } from '../client/endpoint-filter.js';
import type { ServiceState } from '../client/service-state.js';
import { breakerModule, concurrencyModule, rateLimitModules, retryModule, splitModule } from '../client/policy-modules.js';
import { grpcDeadlineFilter } from './deadline-filter.js';
import type { DeadlineQueue } from '../core/deadline-queue.js';
import { grpcUnaryCore, TRANSPARENT_ATTEMPTS } from './unary-core.js';
import type { GrpcUnaryCore } from './unary-core.js';
import { faultFilter } from '../traffic/fault-filter.js';
import type { MeshMetrics } from '../observability/metrics.js';
import { attemptMetricsFilter, requestMetricsFilter } from '../observability/metrics-filter.js';
import type { MeshTracer } from '../observability/tracer.js';
import { grpcBreakerFilter } from './breaker-adapter.js';
import { grpcClassifier, grpcDescribe } from './classify.js';
import type { GrpcCall, GrpcResult } from './grpc-call.js';
import { Metadata } from '@grpc/grpc-js';
import { FAULT_KEY, grpcCodeForHttpStatus, grpcCodeOf } from './status.js';
import { grpcTracingModule } from './tracing.js';

type Module = StackModule<GrpcCall, GrpcResult>;

export interface GrpcStackDeps {
  clock: Clock;
  random: Random;
  /** The mesh's shared queue for deadlines of any time (one per MeshGrpc). */
  deadlines: DeadlineQueue;
  metrics: MeshMetrics | undefined;
  tracer: MeshTracer | undefined;
}

export interface GrpcStacks {
  /** The compiled path the per-call objects run (unary-call.ts, stream-call.ts), in the described order. */
  readonly unary: GrpcUnaryCore;
  describe(): string;
}


/** gRPC calls are HTTP/2 POSTs: the `method` of metrics, routes and authorization. */
export const GRPC_METHOD = 'POST';
const method = (): string => GRPC_METHOD;

function defaultRoute(): RouteSpec {
  return { name: 'default', match: undefined, rewrite: undefined, backends: [{ subset: {}, weight: 1 }], mirror: undefined, fault: undefined, timeoutMs: undefined, retries: undefined, rateLimit: undefined, hashOn: undefined };
}

/** The status an injected abort answers with: `grpcStatus` when written, else the HTTP status mapped. */
export function abortResult(route: RouteSpec): () => GrpcResult {
  const abort = route.fault?.abort;
  const code = (abort?.grpcStatus !== undefined ? grpcCodeOf(abort.grpcStatus) : undefined) ?? grpcCodeForHttpStatus(abort?.status ?? 503);
  return () => {
    const metadata = new Metadata();
    metadata.set(FAULT_KEY, 'abort');
    return { status: { code, details: 'fault filter abort', metadata }, metadata: undefined, message: undefined, hasMessage: false, injected: true, refusal: undefined };
  };
}

/** Compiles the path of one destination for one config version, and describes its unary and stream stacks. */
export function grpcStacks(spec: ServiceSpec, state: ServiceState, deps: GrpcStackDeps): GrpcStacks {
  const { clock, metrics, tracer } = deps;
  const classify = grpcClassifier(spec.retries.on);

  const backendModules: Module[] = [
    {
      role: 'balancer',
      why: "per attempt, so retries avoid endpoints already tried; its choice goes to the LB policy's picker on the attempt's pick ticket",
      params: `${spec.loadBalancer} over ${state.endpoints.sourceDescription}`,
      make: (next) => applyFilter(balancerFilter<GrpcCall, GrpcResult>(state.endpoints), next),
    },
    ...(tracer === undefined ? [] : [grpcTracingModule(tracer)]),
    {
      role: 'endpoint',
      why: 'directly above the transport so load, latency and outlier stats measure the endpoint alone',
      params: spec.outlierDetection !== undefined ? `eject after ${spec.outlierDetection.consecutiveFailures} failures for ${formatDuration(spec.outlierDetection.ejectionTimeMs)}` : 'outlier detection off',
      make: (next) => applyFilter(endpointFilter<GrpcCall, GrpcResult>({ set: state.endpoints, clock, classify, whenDone: undefined }), next),
    },
  ];
  const declared = spec.routes.length > 0;
  const routeSpecs = declared ? spec.routes : [defaultRoute()];
  // Both kinds of call run compiled paths in this order (unary-call.ts, stream-call.ts over
  // unary-core.ts): the Stacks here are their description.
  const build = (streaming: boolean): string => {
    const routes = routeSpecs.map((route) => ({ name: route.name, stack: new Stack<GrpcCall, GrpcResult>([...routeModules(spec, route, state, deps, classify, streaming), ...backendModules]) }));
    const top: Module[] = [];
    if (metrics !== undefined) {
      const filter = requestMetricsFilter<GrpcCall, GrpcResult>(metrics, { clock, method, describe: grpcDescribe(classify) });
      top.push({
        role: 'metrics',
        why: 'top of the destination, above routing: counts what the caller saw, once per logical call, until its status',
        params: 'trellis_client_requests_total, trellis_client_request_duration_seconds',
        make: (next) => applyFilter(filter, next),
      });
    }
    const head = top.length > 0 ? `destination:\n${new Stack<GrpcCall, GrpcResult>(top).describe()}\n` : '';
    return head + routes.map((r) => `route ${r.name}:\n${r.stack.describe()}`).join('\n');
  };
  const unary = build(false);
  const stream = build(true);
  return {
    unary: grpcUnaryCore(spec, state, { clock, random: deps.random, metrics, tracer, anyDeadlines: deps.deadlines, abortResult }),
    describe: () => `unary calls:\n${unary}\nstreaming calls:\n${stream}`,
  };
}

function routeModules(spec: ServiceSpec, route: RouteSpec, state: ServiceState, deps: GrpcStackDeps, classify: Classifier<GrpcResult>, streaming: boolean): Module[] {
  const { clock, random, metrics } = deps;
  const modules: Module[] = [];

  const fault = route.fault;
  if (fault !== undefined && (fault.abort !== undefined || fault.delay !== undefined)) {
    const abort = abortResult(route);
    modules.push({
      role: 'fault',
      why: 'outermost policy: an injected abort is answered as is, never retried or counted by the breaker or outlier detection; a delay precedes the call',
      params: [fault.delay ? `delay ${formatDuration(fault.delay.durationMs)} for ${fault.delay.percent}%` : '', fault.abort ? `abort ${fault.abort.grpcStatus ?? fault.abort.status} for ${fault.abort.percent}%` : ''].filter(Boolean).join(', '),
      make: (next) => applyFilter(faultFilter<GrpcCall, GrpcResult>(fault, { random, abortResult: abort, onFault: () => { state.counters.faults++; } }), next),
    });
  }

  const timeoutMs = streaming ? 0 : (route.timeoutMs ?? spec.timeoutMs);
  modules.push({
    role: 'timeout',
    why: "above retry: the call's deadline (its own, the propagated one, and for unary calls the route timeout) bounds every attempt and backoff together",
    params: timeoutMs > 0 ? formatDuration(timeoutMs) : 'deadline only',
    make: (next) => applyFilter(grpcDeadlineFilter(timeoutMs, { clock, queue: deps.deadlines }), next),
  });

  const r = route.retries ?? spec.retries;
  const routeClassify = r === spec.retries ? classify : grpcClassifier(r.on);
  if (streaming) {
    // gRPC's transparent retry: only what never reached a server, whatever `retries.on` says.
    const transparent = { ...r, attempts: Math.max(r.attempts, TRANSPARENT_ATTEMPTS), on: ['connect-failure'], perTryTimeoutMs: undefined };
    modules.push({
      ...retryModule<GrpcCall, GrpcResult>(spec, transparent, state, {
        clock,
        random,
        on: transparent.on,
        classify: routeClassify,
        discard: () => undefined,
        replayable: (req) => req.relay?.replayable ?? true,
        onRetry: (ctx, reason) => metrics?.retry(spec.name, ctx.route ?? route.name, reason),
        onBudgetExhausted: () => metrics?.retryBudgetExhausted(spec.name),
      }),
      role: 'transparent-retry',
      why: "gRPC's transparent retry, where retry sits for unary calls: a stream refused before anything left the process goes to another endpoint with its queued messages; once a server answered it is never retried",
    });
  } else {
    modules.push(retryModule<GrpcCall, GrpcResult>(spec, r, state, {
      clock,
      random,
      on: r.on,
      classify: routeClassify,
      discard: () => undefined,
      replayable: () => true,
      onRetry: (ctx, reason) => metrics?.retry(spec.name, ctx.route ?? route.name, reason),
      onBudgetExhausted: () => metrics?.retryBudgetExhausted(spec.name),
    }));
  }

  if (metrics !== undefined) {
    const filter = attemptMetricsFilter<GrpcCall, GrpcResult>(metrics, { clock, method, describe: grpcDescribe(routeClassify) });
    modules.push({
      role: 'attempt-metrics',
      why: 'directly below retry: counts every try once, refusals by the rate limit or breaker included',
      params: 'trellis_client_attempts_total, trellis_client_attempt_duration_seconds',
      make: (next) => applyFilter(filter, next),
    });
  }

  modules.push(...rateLimitModules<GrpcCall, GrpcResult>(spec, route, state, undefined, () => metrics?.rateLimited(spec.name, route.name, 'outbound')));
  const concurrency = concurrencyModule<GrpcCall, GrpcResult>(spec, state, deps.clock, routeClassify);
  if (concurrency !== undefined) modules.push(concurrency);

  const shared = state.breaker(spec);
  const breaker = breakerModule<GrpcCall, GrpcResult>(spec, shared === undefined ? undefined : grpcBreakerFilter(shared.filter, routeClassify));
  if (breaker !== undefined) modules.push(breaker);

  const split = splitModule<GrpcCall, GrpcResult>(route, random);
  if (split !== undefined) modules.push(split);
  return modules;
}
