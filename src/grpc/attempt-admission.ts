/**
 * The admission of one attempt of a gRPC call through the mesh's client interceptor, shared by
 * unary calls (unary-call.ts) and streams (stream-call.ts), in the described stack's order: the
 * route's rate limits, adaptive concurrency (which may wait for a slot, bounded by the call's
 * deadline), the destination's breaker, then the split and the balancer's pick. A refusal at any
 * step releases what the earlier steps took (the slot; a breaker ticket is reported as a failure
 * only when no endpoint could be picked, as the breaker sits above the balancer) and goes to the
 * call's `attemptRefused`; an admitted attempt goes to `attemptAdmitted` with what it holds.
 */
import type { CallContext } from '../core/context.js';
import { NoEndpointsError } from '../core/errors.js';
import type { LbEndpoint } from '../lb/lb-endpoint.js';
import { rateLimitedError } from '../resilience/rate-limit-filter.js';
import type { SlotQueue } from '../resilience/concurrency-limit-filter.js';
import { subsetSelector } from '../traffic/split-filter.js';
import type { GrpcRoutePolicy, GrpcUnaryCore } from './unary-core.js';

/** What a call exposes to the admission of its attempts. */
export interface AdmittedCall {
  /** The call has ended: a slot granted after that is given back at once. */
  readonly ended: boolean;
  /** Attempt refused before any call below (rate limit, concurrency, breaker, no endpoint); `now` is when it was asked. */
  attemptRefused(err: Error, now: number): void;
  /** Attempt `n` admitted: its endpoint, breaker ticket (-1 without a breaker) and concurrency slot. */
  attemptAdmitted(n: number, picked: LbEndpoint, ticket: number, slot: SlotQueue | undefined, now: number): void;
}

/** Admits attempt `n` of `call` on `route` (see the module's comment); `routeKey` and `avoid` steer the pick. */
export function admitAttempt(call: AdmittedCall, core: GrpcUnaryCore, route: GrpcRoutePolicy, n: number, now: number, deadline: number | undefined, routeKey: string | undefined, avoid: ReadonlySet<string> | undefined): void {
  for (const l of route.limits) {
    if (!l.limiter.tryAcquire()) {
      route.onLimited();
      call.attemptRefused(rateLimitedError(l.limiter, l.scope, { service: core.service, route: route.name } as CallContext), now);
      return;
    }
  }
  const conc = core.concurrency;
  if (conc === undefined) {
    pick(call, core, route, n, now, undefined, routeKey, avoid);
    return;
  }
  const wait = deadline === undefined ? conc.maxWaitMs : Math.min(conc.maxWaitMs, deadline - now);
  const got = conc.queue.acquire(wait);
  if (got === true) pick(call, core, route, n, now, conc.queue, routeKey, avoid);
  else if (got === false) call.attemptRefused(conc.refuse(), now);
  else {
    got.then((ok) => {
      const later = core.clock.now();
      if (call.ended) {
        if (ok) conc.queue.release(undefined);
      } else if (ok) pick(call, core, route, n, later, conc.queue, routeKey, avoid);
      else call.attemptRefused(conc.refuse(), later);
    }, () => undefined);
  }
}

/** Breaker admission, split and balancer. */
function pick(call: AdmittedCall, core: GrpcUnaryCore, route: GrpcRoutePolicy, n: number, now: number, slot: SlotQueue | undefined, routeKey: string | undefined, avoid: ReadonlySet<string> | undefined): void {
  const breaker = core.breaker;
  let ticket = -1;
  if (breaker !== undefined) {
    ticket = breaker.admit();
    if (ticket < 0) {
      slot?.release(undefined);
      call.attemptRefused(breaker.refusal({ route: route.name }), now);
      return;
    }
  }
  const backend = core.endpoints.backend(route.split === undefined ? undefined : subsetSelector(route.split(routeKey)));
  const picked = backend.balancer.pick({ key: routeKey, avoid });
  if (picked === undefined) {
    // Below the breaker in the described stack: no endpoint is a failure it counts.
    if (breaker !== undefined) breaker.report(ticket, 'failure');
    slot?.release(undefined);
    const subset = backend.key === '' ? '' : ` subset {${backend.key}}`;
    call.attemptRefused(new NoEndpointsError(`no endpoints for ${core.service}${subset} (discovery: ${core.endpoints.sourceDescription})`, { service: core.service, route: route.name }), now);
    return;
  }
  call.attemptAdmitted(n, picked, ticket, slot, now);
}
