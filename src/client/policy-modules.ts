/**
 * The protocol-neutral policy modules every outbound stack pushes in the same way (HTTP in
 * outbound-stack.ts, gRPC in grpc/grpc-stack.ts): retry, rate limits and the breaker. Each
 * protocol passes only what differs (its classifier, how to discard a result, whether a request
 * can be replayed); the parameters, the shared per-destination state (budget, limiters, breaker)
 * and each module's reason for its place are written once, here.
 */
import type { Classifier, Discard } from '../core/classify.js';
import type { Clock, Random } from '../core/clock.js';
import type { CallContext } from '../core/context.js';
import { formatDuration } from '../core/duration.js';
import { applyFilter } from '../core/service.js';
import type { Filter } from '../core/service.js';
import type { StackModule } from '../core/stack.js';
import type { CircuitBreakerSpec, RetrySpec, RouteSpec, ServiceSpec } from '../config/types.js';
import { exponentialBackoff } from '../resilience/backoff.js';
import { rateLimitFilter } from '../resilience/rate-limit-filter.js';
import { retryFilter } from '../resilience/retry-filter.js';
import { concurrencyLimitFilter } from '../resilience/concurrency-limit-filter.js';
import { backendPicker } from '../traffic/weighted-split.js';
import { routeKeyOf, splitFilter } from '../traffic/split-filter.js';
import type { ServiceState } from './service-state.js';

export function describeRetry(r: RetrySpec): string {
  return `attempts ${r.attempts}, on ${r.on.join('|')}, budget ${Math.round(r.budget.ratio * 100)}% + ${r.budget.minPerSecond}/s${r.perTryTimeoutMs !== undefined ? `, per try ${formatDuration(r.perTryTimeoutMs)}` : ''}`;
}

export function describeBreaker(cb: CircuitBreakerSpec): string {
  return `${cb.errorThresholdPercent}% of >= ${cb.volumeThreshold} in ${formatDuration(cb.windowMs)}, reset ${formatDuration(cb.resetTimeoutMs)}`;
}

export interface RetryModuleDeps<Req, Res> {
  clock: Clock;
  random: Random;
  /** Conditions to retry on (the route's or service's `retries.on`, plus protocol extras). */
  on: readonly string[];
  classify: Classifier<Res>;
  discard: Discard<Res>;
  replayable: (req: Req) => boolean;
  onRetry?: (ctx: CallContext, reason: string) => void;
  onBudgetExhausted?: () => void;
}

/**
 * The destination's adaptive concurrency limit (one per destination, shared by its routes and
 * protocols, like the breaker), or undefined when not configured.
 */
export function concurrencyModule<Req, Res>(spec: ServiceSpec, state: ServiceState, clock: Clock, classify: Classifier<Res>): StackModule<Req, Res> | undefined {
  const ac = spec.adaptiveConcurrency;
  const queue = state.concurrency(spec);
  if (ac === undefined || queue === undefined) return undefined;
  return {
    role: 'adaptive-concurrency',
    why: 'below retry and the rate limit so each admitted attempt takes one slot and a refused call none; above the breaker so the breaker judges only calls that were sent',
    params: `gradient ${ac.min}..${ac.max}, start ${ac.initial}${ac.maxWaitMs > 0 ? `, wait up to ${formatDuration(ac.maxWaitMs)}` : ', fail fast'}`,
    make: (next) => applyFilter(concurrencyLimitFilter<Req, Res>(queue, spec.name, { clock, classify, maxWaitMs: ac.maxWaitMs, onRefused: () => { state.counters.overloaded++; } }), next),
  };
}

/** The retry module of a route: one budget per destination, shared by every route and protocol. */
export function retryModule<Req, Res>(spec: ServiceSpec, r: RetrySpec, state: ServiceState, deps: RetryModuleDeps<Req, Res>): StackModule<Req, Res> {
  return {
    role: 'retry',
    why: 'above rate limit, breaker and balancer: each attempt is admitted, judged by the breaker and re-balanced, so a retry goes to another endpoint',
    params: describeRetry(r),
    make: (next) =>
      applyFilter(retryFilter<Req, Res>(
        { attempts: r.attempts, on: deps.on, perTryTimeoutMs: r.perTryTimeoutMs },
        {
          budget: state.budget(spec),
          classify: deps.classify,
          discard: deps.discard,
          backoff: exponentialBackoff(r.backoff, deps.random),
          clock: deps.clock,
          replayable: deps.replayable,
          onRetry: (ctx, reason) => {
            state.counters.retries++;
            deps.onRetry?.(ctx, reason);
          },
          onBudgetExhausted: () => {
            state.counters.budgetExhausted++;
            deps.onBudgetExhausted?.();
          },
        },
      ), next),
  };
}

/**
 * The destination's and the route's rate limits (the same limiter objects whatever the
 * protocol: one limit per destination). Adds each scope used to `scopes`.
 */
export function rateLimitModules<Req, Res>(spec: ServiceSpec, route: RouteSpec, state: ServiceState, scopes: Set<string> | undefined, onLimited: () => void): StackModule<Req, Res>[] {
  const modules: StackModule<Req, Res>[] = [];
  for (const [scope, rl] of [['service', spec.rateLimit], [`route ${route.name}`, route.rateLimit]] as const) {
    if (rl === undefined) continue;
    scopes?.add(scope);
    const limiter = state.limiter(scope, rl);
    modules.push({
      role: scope === 'service' ? 'rate-limit' : 'route-rate-limit',
      why: 'below retry so every attempt takes a token (retries cannot bypass the limit); above the breaker so refused calls never count as upstream failures',
      params: limiter.description,
      make: (next) =>
        applyFilter(rateLimitFilter<Req, Res>(limiter, {
          scope: scope === 'service' ? spec.name : `${spec.name}/${scope}`,
          onLimited: () => {
            state.counters.rateLimited++;
            onLimited();
          },
        }), next),
    });
  }
  return modules;
}

/** The route's weighted split over subsets; undefined when it has one backend of every endpoint. */
export function splitModule<Req, Res>(route: RouteSpec, random: Random): StackModule<Req, Res> | undefined {
  const backends = route.backends;
  const single = backends.length === 1 && backends[0] !== undefined && Object.keys(backends[0].subset).length === 0;
  if (single) return undefined;
  return {
    role: 'split',
    why: 'below retry so each attempt picks its backend again (a sticky key keeps the pick stable); above the balancer, which balances within the chosen subset',
    params: backends.map((b) => `{${Object.entries(b.subset).map(([k, v]) => `${k}=${v}`).join(',')}}×${b.weight}`).join(' '),
    make: (next) => applyFilter(splitFilter<Req, Res>(backendPicker(backends, random), routeKeyOf), next),
  };
}

/** The destination's breaker (shared by its routes and protocols), when one is configured. */
export function breakerModule<Req, Res>(spec: ServiceSpec, filter: Filter<Req, Res> | undefined): StackModule<Req, Res> | undefined {
  const cb = spec.circuitBreaker;
  if (cb === undefined || filter === undefined) return undefined;
  return {
    role: 'circuit-breaker',
    why: 'below retry so every attempt counts toward the error rate; one breaker per destination, shared by its routes and protocols, above the split so it guards every backend',
    params: describeBreaker(cb),
    make: (next) => applyFilter(filter, next),
  };
}
