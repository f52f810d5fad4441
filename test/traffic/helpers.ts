/**
 * Builders shared by the traffic tests: RouteSpec and HttpRequest values with only the fields a
 * test cares about written out.
 */
import type { HttpRequest } from '../../src/client/http-request.js';
import type { RouteMatchSpec, RouteSpec } from '../../src/config/types.js';

export function match(m: Partial<RouteMatchSpec>): RouteMatchSpec {
  return { pathExact: [], pathPrefix: [], pathRegex: [], methods: [], headers: [], query: [], ...m };
}

export function route(name: string, m?: Partial<RouteMatchSpec>, extra: Partial<RouteSpec> = {}): RouteSpec {
  return {
    name,
    match: m === undefined ? undefined : match(m),
    rewrite: undefined,
    backends: [{ subset: {}, weight: 1 }],
    mirror: undefined,
    fault: undefined,
    timeoutMs: undefined,
    retries: undefined,
    rateLimit: undefined,
    hashOn: undefined,
    ...extra,
  };
}

export function request(path: string, init: Partial<HttpRequest> = {}): HttpRequest {
  return { method: 'GET', path, headers: {}, body: undefined, replayable: true, classify: undefined, rest: {}, ...init };
}
