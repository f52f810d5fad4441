/**
 * The order of the outbound HTTP stack, written in one place (after Finagle's StackClient and
 * linkerd2-proxy's logical → concrete → endpoint levels): each module says why it sits where
 * it does. Built once per destination and config version, never per request; a feature that
 * is not configured is absent, not an `if` on the hot path.
 *
 *   route match + rewrite (logical level: picks the route whose policy applies)
 *   per route: fault → mirror → timeout → retry → rate limit → breaker → split
 *   backend:   balancer → endpoint → transport
 *
 * Metrics and tracing join at the top of each route and at the endpoint level (their issue).
 */
import type { Clock, Random } from '../core/clock.js';
import { Stack } from '../core/stack.js';
import type { StackModule } from '../core/stack.js';
import type { Service } from '../core/service.js';
import { applyFilter } from '../core/service.js';
import { formatDuration } from '../core/duration.js';
import type { RouteSpec, ServiceSpec } from '../config/types.js';
import { timeoutFilter } from '../resilience/timeout-filter.js';
import { faultFilter } from '../traffic/fault-filter.js';
import { mirrorFilterOf, mirrorSender } from '../traffic/mirror-filter.js';
import type { MirrorSender } from '../traffic/mirror-filter.js';
import { syntheticHttpResponse } from '../traffic/synthetic-response.js';
import { balancerFilter } from './balancer-filter.js';
import { endpointFilter } from './endpoint-filter.js';
import { httpTransport } from './http-transport.js';
import type { HttpResponse } from './http-transport.js';
import type { HttpRequest } from './http-request.js';
import { discardResponse, httpClassifier, USER_RETRYABLE, whenBodyDone, whenBodySettled } from './http-classify.js';
import type { ServiceState } from './service-state.js';
import type { OutboundObservability } from './outbound-observability.js';
import { breakerModule, concurrencyModule, rateLimitModules, retryModule, splitModule } from './policy-modules.js';
import { outboundCore } from './outbound-core.js';
import type { OutboundCore } from './outbound-core.js';

export interface OutboundDeps {
  clock: Clock;
  random: Random;
  /** Metrics and tracing modules, when the mesh has them. */
  observability: OutboundObservability | undefined;
}

export interface BuiltStack {
  /** One stack per route (the backend level included), for describe(). */
  readonly routes: readonly { name: string; stack: Stack<HttpRequest, HttpResponse> }[];
  /** The same stack on the handler-based hot path (outbound-core.ts), which carries every call. */
  readonly core: OutboundCore;
  describe(): string;
}

type Module = StackModule<HttpRequest, HttpResponse>;

/** The route used when a service declares none: every endpoint, the service's own policy. */
function defaultRoute(): RouteSpec {
  return { name: 'default', match: undefined, rewrite: undefined, backends: [{ subset: {}, weight: 1 }], mirror: undefined, fault: undefined, timeoutMs: undefined, retries: undefined, rateLimit: undefined, hashOn: undefined };
}

export function outboundHttpStack(spec: ServiceSpec, state: ServiceState, deps: OutboundDeps): BuiltStack {
  const { clock, random, observability } = deps;
  const classify = httpClassifier([...spec.retries.on, USER_RETRYABLE]);

  // Backend level: shared by every route and by mirrored copies.
  const backendModules: Module[] = [
    {
      role: 'balancer',
      why: "per attempt, so retries avoid endpoints already tried; waits for discovery's first answer",
      params: `${spec.loadBalancer} over ${state.endpoints.sourceDescription}`,
      make: (next) => applyFilter(balancerFilter<HttpRequest, HttpResponse>(state.endpoints), next),
    },
    ...(observability?.attemptModules(spec, classify) ?? []),
    {
      role: 'endpoint',
      why: 'directly above the transport so load, latency and outlier stats measure the endpoint alone',
      params: spec.outlierDetection !== undefined ? `eject after ${spec.outlierDetection.consecutiveFailures} failures for ${formatDuration(spec.outlierDetection.ejectionTimeMs)}` : 'outlier detection off',
      make: (next) => applyFilter(endpointFilter<HttpRequest, HttpResponse>({ set: state.endpoints, clock, classify, whenDone: whenBodySettled }), next),
    },
  ];
  const backendStack = new Stack<HttpRequest, HttpResponse>(backendModules);
  const backend = backendStack.build(httpTransport(state.endpoints.pools, clock));

  const declared = spec.routes.length > 0;
  const routeSpecs = declared ? spec.routes : [defaultRoute()];
  const limiterScopes = new Set<string>();
  const routes = routeSpecs.map((route) => {
    const modules = routeModules(spec, route, state, deps, classify, backend, limiterScopes);
    const stack = new Stack<HttpRequest, HttpResponse>([...modules, ...backendModules]);
    return { name: route.name, stack };
  });
  state.retainLimiters(limiterScopes);

  // Logical-request observability, described above the routes (the hot path records it per call).
  const top = observability?.requestModules(spec, classify) ?? [];
  const topDescription = top.length > 0 ? `destination:\n${new Stack<HttpRequest, HttpResponse>(top).describe()}\n` : '';

  const core = outboundCore(spec, state, {
    clock,
    random,
    classify,
    observability: observability?.core(),
    onRetry: (route, reason) => observability?.retry(spec.name, route, reason),
    onBudgetExhausted: () => observability?.budgetExhausted(spec.name),
    // The same limiter objects as the promise stack's (state.limiter keeps one per scope).
    limits: (route) => {
      const out: { limiter: ReturnType<ServiceState['limiter']>; scope: string }[] = [];
      for (const [scope, rl] of [['service', spec.rateLimit], [`route ${route.name}`, route.rateLimit]] as const) {
        if (rl !== undefined) out.push({ limiter: state.limiter(scope, rl), scope: scope === 'service' ? spec.name : `${spec.name}/${scope}` });
      }
      return out;
    },
    onLimited: (route) => observability?.rateLimited(spec.name, route),
    mirror: (route) => routeMirror(route, state, clock, random, backend),
  });

  // Which composition carries the calls, said first.
  const pathLine = 'path: handler (one call object down to the Pool)';

  return {
    routes,
    core,
    describe: () => `${pathLine}\n${topDescription}${routes.map((r) => `route ${r.name}:\n${r.stack.describe()}`).join('\n')}`,
  };
}

/** A route's mirror: copies counted on the destination and sent to the backend level (balancer → endpoint → transport). */
function routeMirror(route: RouteSpec, state: ServiceState, clock: OutboundDeps['clock'], random: OutboundDeps['random'], backend: Service<HttpRequest, HttpResponse>): MirrorSender | undefined {
  const mirror = route.mirror;
  if (mirror === undefined || !(mirror.percent > 0)) return undefined;
  return mirrorSender(
    { percent: mirror.percent, subset: mirror.subset, maxBodyBytes: mirror.maxBodyBytes },
    {
      random,
      clock,
      send: (req, ctx) => {
        state.counters.mirrored++;
        return backend(req, ctx);
      },
      onDrop: () => { state.counters.mirrorDropped++; },
    },
  );
}

function routeModules(
  spec: ServiceSpec,
  route: RouteSpec,
  state: ServiceState,
  deps: OutboundDeps,
  classify: ReturnType<typeof httpClassifier>,
  backend: Service<HttpRequest, HttpResponse>,
  limiterScopes: Set<string>,
): Module[] {
  const { clock, random, observability } = deps;
  const modules: Module[] = [];

  const fault = route.fault;
  if (fault !== undefined && (fault.abort !== undefined || fault.delay !== undefined)) {
    modules.push({
      role: 'fault',
      why: "outermost policy (after metrics): an injected abort is answered as is, never retried or counted by the breaker or outlier detection; a delay precedes the request",
      params: [fault.delay ? `delay ${formatDuration(fault.delay.durationMs)} for ${fault.delay.percent}%` : '', fault.abort ? `abort ${fault.abort.status} for ${fault.abort.percent}%` : ''].filter(Boolean).join(', '),
      make: (next) => applyFilter(faultFilter<HttpRequest, HttpResponse>(fault, {
        random,
        abortResult: (status) => syntheticHttpResponse(status),
        onFault: () => { state.counters.faults++; },
      }), next),
    });
  }

  const mirror = route.mirror;
  if (mirror !== undefined && mirror.percent > 0) {
    modules.push({
      role: 'mirror',
      why: 'above retry so each logical request is copied once; the copy goes straight to the backend level and never delays the primary',
      params: `${mirror.percent}% to {${Object.entries(mirror.subset).map(([k, v]) => `${k}=${v}`).join(',')}}`,
      make: (next) => {
        const sender = routeMirror(route, state, clock, random, backend);
        return sender === undefined ? next : applyFilter(mirrorFilterOf(sender), next);
      },
    });
  }

  const timeoutMs = route.timeoutMs ?? spec.timeoutMs;
  modules.push({
    role: 'timeout',
    why: 'above retry: the overall timeout (and a propagated deadline) bounds every attempt and backoff together, until the body completes',
    params: timeoutMs > 0 ? formatDuration(timeoutMs) : 'deadline only',
    make: (next) => applyFilter(timeoutFilter<HttpRequest, HttpResponse>({ timeoutMs }, { clock, whenDone: whenBodyDone, discard: discardResponse }), next),
  });

  const r = route.retries ?? spec.retries;
  const retryOn = [...r.on, USER_RETRYABLE];
  modules.push(retryModule<HttpRequest, HttpResponse>(spec, r, state, {
    clock,
    random,
    on: retryOn,
    classify: r === spec.retries ? classify : httpClassifier(retryOn),
    discard: discardResponse,
    replayable: (req) => req.replayable,
    onRetry: (ctx, reason) => observability?.retry(spec.name, ctx.route ?? route.name, reason),
    onBudgetExhausted: () => observability?.budgetExhausted(spec.name),
  }));

  modules.push(...(observability?.tryModules(spec, classify) ?? []));
  modules.push(...rateLimitModules<HttpRequest, HttpResponse>(spec, route, state, limiterScopes, () => observability?.rateLimited(spec.name, route.name)));
  const concurrency = concurrencyModule<HttpRequest, HttpResponse>(spec, state, clock, classify);
  if (concurrency !== undefined) modules.push(concurrency);

  const breaker = breakerModule<HttpRequest, HttpResponse>(spec, state.breaker(spec)?.filter);
  if (breaker !== undefined) modules.push(breaker);

  const split = splitModule<HttpRequest, HttpResponse>(route, random);
  if (split !== undefined) modules.push(split);
  return modules;
}
