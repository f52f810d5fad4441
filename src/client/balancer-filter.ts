/**
 * Backend level: chooses the endpoint for one attempt. Waits (bounded by the call's signal)
 * for discovery's first answer, picks from the backend of the context's subset with its
 * balancer, avoiding endpoints earlier attempts used, and fails fast with
 * TRELLIS_NO_ENDPOINTS naming the service and subset when there is none.
 */
import type { Filter } from '../core/service.js';
import { NoEndpointsError } from '../core/errors.js';
import type { EndpointSet } from './endpoint-set.js';

export function balancerFilter<Req, Res>(set: EndpointSet): Filter<Req, Res> {
  const choose: Filter<Req, Res> = (req, ctx, next) => {
    const backend = set.backend(ctx.subset);
    const picked = backend.balancer.pick({ key: ctx.routeKey, avoid: ctx.avoid });
    if (picked === undefined) {
      const subset = backend.key === '' ? '' : ` subset {${backend.key}}`;
      return Promise.reject(new NoEndpointsError(`no endpoints for ${set.service}${subset} (discovery: ${set.sourceDescription})`, { service: set.service, route: ctx.route }));
    }
    ctx.endpoint = picked.endpoint;
    ctx.load = picked;
    return next(req, ctx);
  };
  return (req, ctx, next) => {
    if (set.known) return choose(req, ctx, next);
    return set.ready(ctx.signal).then(() => choose(req, ctx, next));
  };
}
