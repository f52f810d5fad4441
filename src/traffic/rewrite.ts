/**
 * Request rewrite for a matched route (Istio `HTTPRewrite`): runs right after the route table,
 * before the split, mirror and balancer, so every attempt and every mirrored copy carries the
 * rewritten request. Also where the normalized path (see `normalize-path.ts`) replaces the raw
 * one, so the upstream handler sees exactly the path routing matched.
 *
 * - `rewrite.path` with a prefix match replaces the matched prefix (`/listv1/123` with prefix
 *   `/listv1` and rewrite `/listproducts` → `/listproducts/123`); a rewrite ending in `/` does not
 *   double the slash (`/` for `/listv1/123` → `/123`). With an exact, regex or no path match it
 *   replaces the whole path. The query string is kept.
 * - `rewrite.authority` sets the `host` header.
 *
 * Invariants: the request is never mutated (the same object may be retried or mirrored); a new
 * one is returned when anything changes, the same one otherwise. Rewrite targets were checked by
 * `compileRoutes` (a normalized `/`-path without CR/LF; a host or host:port), so nothing here
 * can inject a header or a second request line.
 */
import type { HttpRequest } from '../client/http-request.js';
import { normalizePathOnly, queryStart } from './normalize-path.js';
import type { CompiledRoute } from './route-table.js';

function replacePrefix(path: string, prefix: string, replacement: string): string {
  const stored = prefix === '/' ? '' : prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  const segmentBoundary = path.length === stored.length || path.charCodeAt(stored.length) === 0x2f;
  if (!path.startsWith(stored) || !segmentBoundary) return replacement;
  const rest = path.slice(stored.length); // '' or starts with '/'
  if (rest === '') return replacement;
  return replacement.endsWith('/') ? replacement + rest.slice(1) : replacement + rest;
}

/**
 * The request to send for `route` (undefined: no route matched — only the path is normalized).
 * `matchedPrefix` is `RouteMatch.matchedPrefix`.
 */
export function rewriteRequest(req: HttpRequest, route: CompiledRoute | undefined, matchedPrefix: string | undefined): HttpRequest {
  const q = queryStart(req.path);
  const rawPath = q < 0 ? req.path : req.path.slice(0, q);
  let path = normalizePathOnly(rawPath);
  const target = route?.rewritePath;
  if (target !== undefined) path = matchedPrefix === undefined ? target : replacePrefix(path, matchedPrefix, target);
  const authority = route?.rewriteAuthority;
  const pathChanged = path !== rawPath;
  const hostChanged = authority !== undefined && req.headers.host !== authority;
  if (!pathChanged && !hostChanged) return req;
  return {
    ...req,
    path: pathChanged ? (q < 0 ? path : path + req.path.slice(q)) : req.path,
    headers: hostChanged ? { ...req.headers, host: authority } : req.headers,
  };
}
