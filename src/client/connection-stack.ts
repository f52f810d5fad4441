/**
 * The order of a destination's connection-level stack, written in one place as
 * outbound-stack.ts writes the HTTP one and grpc-stack.ts the gRPC one, from the same
 * protocol-neutral filters and the destination's shared state (endpoint set, retry budget,
 * breaker, rate limiters). It serves the edges whose unit of work is *opening* something rather
 * than a request/response: `mesh.connect()` (a TCP connection), `mesh.websocket()` (a connection
 * and its HTTP upgrade), and `mesh.agent` (a node:http request the Agent cannot replay).
 *
 *   route selection (the edge's: tcp takes the service's one route, an upgrade matches like HTTP)
 *   per route: timeout → retry → rate limit → breaker → split
 *   backend:   balancer → [edge modules: tracing] → endpoint → transport (the edge's)
 *
 * What counts: the result is the open connection (or the response), so retry, breaker and
 * outlier detection judge the *opening*: a refused connection, the connect timeout, a failed
 * handshake, an upgrade answered 5xx. Opening is idempotent (nothing the application writes has
 * been sent: the edges make their contexts idempotent), so a failed opening is retried on the
 * route's conditions; once open, a connection is the application's and is never replayed.
 * Built once per destination and config version, never per connection.
 */
import type { Classification, Classifier, Discard } from '../core/classify.js';
import { IGNORE, SUCCESS } from '../core/classify.js';
import type { Clock, Random } from '../core/clock.js';
import { formatDuration } from '../core/duration.js';
import { NoRouteError, TrellisError } from '../core/errors.js';
import { applyFilter } from '../core/service.js';
import type { Filter, Service } from '../core/service.js';
import { Stack } from '../core/stack.js';
import type { StackModule } from '../core/stack.js';
import type { RouteSpec, ServiceSpec } from '../config/types.js';
import { timeoutFilter } from '../resilience/timeout-filter.js';
import { balancerFilter } from './balancer-filter.js';
import { endpointFilter } from './endpoint-filter.js';
import { httpClassifier } from './http-classify.js';
import { breakerModule, rateLimitModules, retryModule, splitModule } from './policy-modules.js';
import type { ServiceState } from './service-state.js';

/** A result that is an HTTP answer (an upgrade refused with a status) rather than an open connection. */
export interface StatusCarrier {
  readonly statusCode?: number;
}

export interface ConnectionEdge<Req, Res> {
  /** What the stack opens, for describe(): `tcp`, `websocket`, `http-agent`. */
  readonly kind: string;
  /** Opens the thing on `ctx.endpoint`, honouring `ctx.signal`. */
  readonly transport: Service<Req, Res>;
  /** Releases a result nobody will read (a connection that opened after its timeout). */
  readonly discard: Discard<Res>;
  /** The index of the route `req` takes in `spec.routes` (0 when it declares none), or undefined for none. */
  readonly route: (req: Req) => number | undefined;
  /** Whether this stack retries at all. */
  readonly retries: boolean;
  /** The retry conditions this edge can act on (the Agent: only `connect-failure`), when not all. */
  readonly retryOnly?: readonly string[];
  /** Modules between balancer and endpoint (tracing), when the edge has them. */
  readonly attemptModules?: readonly StackModule<Req, Res>[];
  /** Classifies results; default: every result is a success, errors by their code. */
  readonly classify?: Classifier<Res>;
  /** Keeps the timeout armed after the result, until `done` (the Agent: until the response body ends). */
  readonly whenDone?: (res: Res, done: () => void) => void;
}

export interface ConnectionStackDeps {
  clock: Clock;
  random: Random;
  onRetry?: (service: string, route: string, reason: string) => void;
  onBudgetExhausted?: (service: string) => void;
  onRateLimited?: (service: string, route: string) => void;
}

export interface ConnectionStack<Req, Res> {
  readonly service: Service<Req, Res>;
  describe(): string;
}

const errors = httpClassifier([]);
const GATEWAY = new Set([502, 503, 504]);

/**
 * The default classifier of the connection edges: an opened connection is a success; a result
 * carrying an HTTP status (an upgrade answered with a status instead) as HTTP counts that status
 * — 5xx a failure of the endpoint, anything else a healthy upstream that said no — the same way
 * the breaker (built with the HTTP classifier) reads it; an error by its Trellis code.
 */
export function connectionClassifier<Res>(): Classifier<Res> {
  return (res, err) => {
    if (res !== undefined) {
      const status = (res as StatusCarrier).statusCode;
      if (typeof status !== 'number' || status < 500) return SUCCESS;
      const conditions = ['5xx', String(status)];
      if (GATEWAY.has(status)) conditions.push('gateway-error');
      return { kind: 'failure', conditions } satisfies Classification;
    }
    if (err instanceof TrellisError && err.code === 'TRELLIS_INVALID_ARGUMENT') return IGNORE;
    return errors(undefined, err);
  };
}

function defaultRoute(): RouteSpec {
  return { name: 'default', match: undefined, rewrite: undefined, backends: [{ subset: {}, weight: 1 }], mirror: undefined, fault: undefined, timeoutMs: undefined, retries: undefined, rateLimit: undefined, hashOn: undefined };
}

/** Builds the connection stack of one destination for one config version. */
export function connectionStack<Req, Res>(spec: ServiceSpec, state: ServiceState, deps: ConnectionStackDeps, edge: ConnectionEdge<Req, Res>): ConnectionStack<Req, Res> {
  const { clock } = deps;
  const classify = edge.classify ?? connectionClassifier<Res>();
  const backendModules: StackModule<Req, Res>[] = [
    {
      role: 'balancer',
      why: "per attempt, so a retried connect avoids the endpoint that refused it; waits for discovery's first answer",
      params: `${spec.loadBalancer} over ${state.endpoints.sourceDescription}`,
      make: (next) => applyFilter(balancerFilter<Req, Res>(state.endpoints), next),
    },
    ...(edge.attemptModules ?? []),
    {
      role: 'endpoint',
      why: 'directly above the transport so connect latency and outcomes (outlier detection) measure the endpoint alone',
      params: spec.outlierDetection !== undefined ? `eject after ${spec.outlierDetection.consecutiveFailures} failures for ${formatDuration(spec.outlierDetection.ejectionTimeMs)}` : 'outlier detection off',
      make: (next) => applyFilter(endpointFilter<Req, Res>({ set: state.endpoints, clock, classify, whenDone: undefined }), next),
    },
  ];
  const backend = new Stack<Req, Res>(backendModules).build(edge.transport);
  const routeSpecs = spec.routes.length > 0 ? spec.routes : [defaultRoute()];
  const routes = routeSpecs.map((route) => {
    const modules = routeModules(spec, route, state, deps, edge, classify);
    return { name: route.name, service: new Stack<Req, Res>(modules).build(backend), describe: new Stack<Req, Res>([...modules, ...backendModules]).describe() };
  });
  const service: Service<Req, Res> = (req, ctx) => {
    const i = edge.route(req);
    const r = i === undefined ? undefined : routes[i];
    if (r === undefined) return Promise.reject(new NoRouteError(`no route of ${spec.name} matches this ${edge.kind} call`, { service: spec.name }));
    state.counters.requests++;
    ctx.route = r.name;
    return r.service(req, ctx);
  };
  return { service, describe: () => routes.map((r) => `${edge.kind} route ${r.name}:\n${r.describe}`).join('\n') };
}

function routeModules<Req, Res>(spec: ServiceSpec, route: RouteSpec, state: ServiceState, deps: ConnectionStackDeps, edge: ConnectionEdge<Req, Res>, classify: Classifier<Res>): StackModule<Req, Res>[] {
  const { clock, random } = deps;
  const modules: StackModule<Req, Res>[] = [];
  const timeoutMs = route.timeoutMs ?? spec.timeoutMs;
  modules.push({
    role: 'timeout',
    why: 'above retry: bounds every connect attempt and backoff together (not the life of an open connection; an HTTP response through the Agent until its body ends)',
    params: timeoutMs > 0 ? formatDuration(timeoutMs) : 'deadline only',
    make: (next) => applyFilter(timeoutFilter<Req, Res>({ timeoutMs }, { clock, discard: edge.discard, ...(edge.whenDone !== undefined ? { whenDone: edge.whenDone } : {}) }), next),
  });
  if (edge.retries) {
    const r = route.retries ?? spec.retries;
    const only = edge.retryOnly;
    modules.push(retryModule<Req, Res>(spec, r, state, {
      clock,
      random,
      on: only === undefined ? r.on : r.on.filter((c) => only.includes(c)),
      classify,
      discard: edge.discard,
      // Nothing is replayed: only a connect that failed (nothing sent) is tried again.
      replayable: () => true,
      onRetry: (ctx, reason) => deps.onRetry?.(spec.name, ctx.route ?? route.name, reason),
      onBudgetExhausted: () => deps.onBudgetExhausted?.(spec.name),
    }));
  }
  modules.push(...rateLimitModules<Req, Res>(spec, route, state, undefined, () => deps.onRateLimited?.(spec.name, route.name)));
  // The breaker counts results through the HTTP classifier it was built with: for a connection
  // a result is a success and a thrown error is classified by its code, which is what we want.
  const breaker = breakerModule<Req, Res>(spec, state.breaker(spec)?.filter as unknown as Filter<Req, Res> | undefined);
  if (breaker !== undefined) modules.push(breaker);
  const split = splitModule<Req, Res>(route, random);
  if (split !== undefined) modules.push(split);
  return modules;
}
