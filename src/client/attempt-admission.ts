/**
 * Admission of one attempt of a hot-path call (outbound-call.ts), in the described stack's order
 * below retry: the rate limits (the destination's, then the route's: `admitLimits`), then — after
 * the call takes a slot of the adaptive concurrency limit, when one is set (it may wait) — the
 * circuit breaker, the route's split and the balancer's pick, avoiding endpoints that already
 * failed this call (`admitEndpoint`).
 * A refusal is an error the call counts as a try and judges like any failed attempt; an endpoint
 * missing below an admitted breaker is a failure the breaker counts.
 */
import type { CallContext } from '../core/context.js';
import { NoEndpointsError } from '../core/errors.js';
import type { LbEndpoint } from '../lb/lb-endpoint.js';
import { rateLimitedError } from '../resilience/rate-limit-filter.js';
import { subsetSelector } from '../traffic/split-filter.js';
import type { OutboundCore, RoutePolicy } from './outbound-core.js';

/** Where `admitEndpoint` writes the admitted attempt's breaker ticket (-1 without a breaker). */
export interface TicketSink {
  ticket: number;
}

/** The rate limits' refusal of an attempt, or undefined when they admit it. */
export function admitLimits(core: OutboundCore, route: RoutePolicy): Error | undefined {
  for (const l of route.limits) {
    if (!l.limiter.tryAcquire()) {
      route.onLimited();
      return rateLimitedError(l.limiter, l.scope, { service: core.service, route: route.name } as CallContext);
    }
  }
  return undefined;
}

/**
 * Admits an attempt past the breaker to an endpoint, or returns the error that refused it. The
 * breaker ticket goes to `out` (no result object per attempt). `now`: the clock's time the
 * attempt started (the balancer's latency weighing uses it rather than reading the clock again).
 */
export function admitEndpoint(core: OutboundCore, route: RoutePolicy, routeKey: string | undefined, avoid: ReadonlySet<string> | undefined, out: TicketSink, now: number): LbEndpoint | Error {
  const breaker = core.breaker;
  let ticket = -1;
  if (breaker !== undefined) {
    ticket = breaker.admit();
    if (ticket < 0) return breaker.refusal({ route: route.name });
  }
  const backend = core.endpoints.backend(route.split === undefined ? undefined : subsetSelector(route.split(routeKey)));
  const pick = core.pickRequest;
  pick.key = routeKey;
  pick.avoid = avoid;
  pick.now = now;
  const picked = backend.balancer.pick(pick);
  pick.avoid = undefined;
  if (picked === undefined) {
    // Below the breaker in the described stack: no endpoint is a failure it counts.
    if (breaker !== undefined) breaker.report(ticket, 'failure');
    const subset = backend.key === '' ? '' : ` subset {${backend.key}}`;
    return new NoEndpointsError(`no endpoints for ${core.service}${subset} (discovery: ${core.endpoints.sourceDescription})`, { service: core.service, route: route.name });
  }
  out.ticket = ticket;
  return picked;
}
