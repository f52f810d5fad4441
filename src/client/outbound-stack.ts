/**
 * The order of the outbound HTTP stack, written in one place (after Finagle's StackClient):
 * each module says why it sits where it does. Built once per destination and config version,
 * never per request; a feature that is not configured is absent, not an `if` on the hot path.
 *
 *   timeout → retry → circuit breaker → balancer → endpoint → transport
 *
 * (Tracing, metrics, rate limiting and routing slot in at the places DESIGN.md gives as their
 * issues land: tracing → metrics → timeout → retry → rate limit → breaker → route → balancer.)
 */
import type { Clock, Random } from '../core/clock.js';
import { Stack } from '../core/stack.js';
import type { Service } from '../core/service.js';
import { applyFilter } from '../core/service.js';
import { formatDuration } from '../core/duration.js';
import type { ServiceSpec } from '../config/types.js';
import { timeoutFilter } from '../resilience/timeout-filter.js';
import { retryFilter } from '../resilience/retry-filter.js';
import { exponentialBackoff } from '../resilience/backoff.js';
import { balancerFilter } from './balancer-filter.js';
import { endpointFilter } from './endpoint-filter.js';
import { httpTransport } from './http-transport.js';
import type { HttpResponse } from './http-transport.js';
import type { HttpRequest } from './http-request.js';
import { discardResponse, httpClassifier, USER_RETRYABLE, whenBodyDone } from './http-classify.js';
import type { ServiceState } from './service-state.js';

export interface OutboundDeps {
  clock: Clock;
  random: Random;
}

export interface BuiltStack {
  readonly stack: Stack<HttpRequest, HttpResponse>;
  readonly service: Service<HttpRequest, HttpResponse>;
}

export function outboundHttpStack(spec: ServiceSpec, state: ServiceState, deps: OutboundDeps): BuiltStack {
  const { clock, random } = deps;
  const retryOn = [...spec.retries.on, USER_RETRYABLE];
  const classify = httpClassifier(retryOn);
  let stack = new Stack<HttpRequest, HttpResponse>();

  stack = stack.push({
    role: 'timeout',
    why: 'outermost: the overall timeout (and a propagated deadline) bounds every attempt and backoff together, until the body completes',
    params: spec.timeoutMs > 0 ? formatDuration(spec.timeoutMs) : 'deadline only',
    make: (next) => applyFilter(timeoutFilter<HttpRequest, HttpResponse>({ timeoutMs: spec.timeoutMs }, { clock, whenDone: whenBodyDone }), next),
  });

  const r = spec.retries;
  stack = stack.push({
    role: 'retry',
    why: 'above the breaker and balancer: each attempt is judged by the breaker and re-balanced, so a retry goes to another endpoint',
    params: `attempts ${r.attempts}, on ${r.on.join('|')}, budget ${r.budget.ratio * 100}% + ${r.budget.minPerSecond}/s${r.perTryTimeoutMs !== undefined ? `, per try ${formatDuration(r.perTryTimeoutMs)}` : ''}`,
    make: (next) => {
      const budget = state.budget(spec);
      return applyFilter(retryFilter<HttpRequest, HttpResponse>(
        { attempts: r.attempts, on: retryOn, perTryTimeoutMs: r.perTryTimeoutMs },
        {
          budget,
          classify,
          discard: discardResponse,
          backoff: exponentialBackoff(r.backoff, random),
          clock,
          replayable: (req) => req.replayable,
          onRetry: () => { state.counters.retries++; },
          onBudgetExhausted: () => { state.counters.budgetExhausted++; },
        },
      ), next);
    },
  });

  const breaker = state.breaker(spec);
  if (breaker !== undefined && spec.circuitBreaker !== undefined) {
    const cb = spec.circuitBreaker;
    stack = stack.push({
      role: 'circuit-breaker',
      why: 'below retry so every attempt counts toward the error rate; above the balancer so it guards the whole destination',
      params: `${cb.errorThresholdPercent}% of >= ${cb.volumeThreshold} in ${formatDuration(cb.windowMs)}, reset ${formatDuration(cb.resetTimeoutMs)}`,
      make: (next) => applyFilter(breaker.filter, next),
    });
  }

  stack = stack.push({
    role: 'balancer',
    why: 'per attempt, so retries avoid endpoints already tried; waits for discovery\'s first answer',
    params: `${spec.loadBalancer} over ${state.endpoints.sourceDescription}`,
    make: (next) => applyFilter(balancerFilter<HttpRequest, HttpResponse>(state.endpoints), next),
  });

  stack = stack.push({
    role: 'endpoint',
    why: 'directly above the transport so load, latency and outlier stats measure the endpoint alone',
    params: spec.outlierDetection !== undefined ? `eject after ${spec.outlierDetection.consecutiveFailures} failures for ${formatDuration(spec.outlierDetection.ejectionTimeMs)}` : 'outlier detection off',
    make: (next) => applyFilter(endpointFilter<HttpRequest, HttpResponse>({ set: state.endpoints, clock, classify, whenDone: whenBodyDone }), next),
  });

  const countRequests: Service<HttpRequest, HttpResponse> = stack.build(httpTransport(state.endpoints.pools, clock));
  const service: Service<HttpRequest, HttpResponse> = (req, ctx) => {
    state.counters.requests++;
    return countRequests(req, ctx);
  };
  return { stack, service };
}
