/**
 * The route of a hot-path call (outbound-call.ts) when its destination declares routes: the
 * first match of the route table, its path rewrite and authority, and the `hashOn` header's value
 * as the ring-hash key when the caller gave none. Called once per call, before any attempt.
 */
import { NoRouteError } from '../core/errors.js';
import { rewriteRequest } from '../traffic/rewrite.js';
import type { RouteTable } from '../traffic/route-table.js';
import type { HttpRequest } from './http-request.js';
import type { OutboundCore, RoutePolicy } from './outbound-core.js';

export interface RouteChoice {
  readonly route: RoutePolicy;
  /** The path to send (rewritten when the route says so). */
  readonly path: string;
  /** The Host to send: the caller's, or the route's authority rewrite; undefined for the Pool's own. */
  readonly host: string | undefined;
  readonly routeKey: string | undefined;
}

/** The call's route, or the NoRouteError to fail it with. */
export function chooseRoute(core: OutboundCore, table: RouteTable, method: string, path: string, headers: Record<string, string | string[]>, host: string | undefined, routeKey: string | undefined): RouteChoice | InstanceType<typeof NoRouteError> {
  const m = table.match({ method, path, headers });
  if (m === undefined) return new NoRouteError(`no route of ${core.service} matches ${method} ${path}`, { service: core.service });
  const route = core.routes[m.route.index];
  if (route === undefined) return new NoRouteError(`route ${m.name} has no policy`, { service: core.service });
  let key = routeKey;
  if (key === undefined && route.hashHeader !== undefined) {
    const v = headers[route.hashHeader];
    key = Array.isArray(v) ? v[0] : v;
  }
  const sent = { method, path: m.path, headers: host === undefined ? {} : { host } } as unknown as HttpRequest;
  const rewritten = rewriteRequest(sent, m.route, m.matchedPrefix);
  const h = rewritten.headers.host;
  return { route, path: rewritten.path, host: h === undefined ? host : Array.isArray(h) ? h[0] : h, routeKey: key };
}
