/**
 * The metrics modules of the outbound HTTP stack, ready to push: the protocol edge's choices
 * (method, status code, classification, body completion, injected faults) bound to the
 * protocol-neutral metrics filters. `outbound-stack.ts` decides where they sit; the `why` of
 * each module states the placement they are written for:
 *
 * - `metrics` (logical request): at the top of each route's stack, above fault, mirror and
 *   timeout, so it sees what the caller saw (an injected abort as outcome `fault`, a timeout as
 *   `timeout`) and times the whole call until the body is done.
 * - `attempt-metrics`: directly below retry, so every try is counted once, including one the
 *   rate limit or breaker refused, and mirrored copies (sent to the backend level) are not.
 *   There, attempts = logical requests + retries, for each route.
 */
import type { Classifier } from '../core/classify.js';
import type { Clock } from '../core/clock.js';
import type { StackModule } from '../core/stack.js';
import { applyFilter } from '../core/service.js';
import type { HttpRequest } from '../client/http-request.js';
import type { HttpResponse } from '../client/http-transport.js';
import { whenBodyDone } from '../client/http-classify.js';
import { SyntheticBody } from '../traffic/synthetic-response.js';
import type { MeshMetrics } from './metrics.js';
import { attemptMetricsFilter, httpDescribe, requestMetricsFilter } from './metrics-filter.js';
import type { MetricsFilterDeps } from './metrics-filter.js';

export interface HttpMetricsModules {
  /** The logical-request module, for the top of a route's stack. */
  request(classify: Classifier<HttpResponse>): StackModule<HttpRequest, HttpResponse>;
  /** The per-attempt module, for directly below the retry module. */
  attempt(classify: Classifier<HttpResponse>): StackModule<HttpRequest, HttpResponse>;
}

/** A response the mesh answered itself (fault filter abort). */
function isInjectedFault(res: HttpResponse): boolean {
  return res.body instanceof SyntheticBody;
}

const method = (req: HttpRequest): string => req.method;

/**
 * Binds MeshMetrics to the HTTP edge.
 *
 * @example
 * const m = httpMetricsModules(metrics, clock);
 * modules.push(m.request(classify));   // first in routeModules
 * ...push(retry); modules.push(m.attempt(classify)); ...
 */
export function httpMetricsModules(metrics: MeshMetrics, clock: Clock): HttpMetricsModules {
  const deps = (classify: Classifier<HttpResponse>): MetricsFilterDeps<HttpRequest, HttpResponse> => ({
    clock,
    method,
    describe: httpDescribe(classify, isInjectedFault),
    whenDone: whenBodyDone,
  });
  return {
    request: (classify) => {
      const filter = requestMetricsFilter(metrics, deps(classify));
      return {
        role: 'metrics',
        why: 'top of the route, above fault, mirror and timeout: counts what the caller saw, once per logical request, timed until the body is done',
        params: 'trellis_client_requests_total, trellis_client_request_duration_seconds',
        make: (next) => applyFilter(filter, next),
      };
    },
    attempt: (classify) => {
      const filter = attemptMetricsFilter(metrics, deps(classify));
      return {
        role: 'attempt-metrics',
        why: 'directly below retry: counts every try once (refusals by the rate limit or breaker included, mirrored copies not), timed to its headers',
        params: 'trellis_client_attempts_total, trellis_client_attempt_duration_seconds',
        make: (next) => applyFilter(filter, next),
      };
    },
  };
}
