/**
 * Route table: picks the route of one destination for a request. Sits at the top of the `route`
 * level of the outbound stack (after the breaker, before rewrite, split, mirror and the balancer).
 * Semantics after Istio's VirtualService `HTTPMatchRequest`, with Gateway API path prefixes:
 *
 * - Routes are tried in order; the first match wins. A route without `match` matches everything.
 *   No match returns undefined (the caller then uses its default route: every endpoint).
 * - Within a route every kind of condition must hold (AND); within a list any entry may (OR):
 *   path (any of `pathExact`, `pathPrefix`, `pathRegex`), `methods`, and every header and query
 *   matcher.
 * - `pathPrefix` is segment-aware, as Gateway API `PathPrefix`, Linkerd and Envoy's
 *   `path_separated_prefix` are: `/listv1` matches `/listv1` and `/listv1/123`, never `/listv12`;
 *   a trailing `/` in the prefix is ignored. Istio's `prefix` is a plain string prefix; we differ
 *   on purpose, so a route for `/admin` cannot catch `/administrators` by accident (plain prefixes
 *   remain expressible as `pathRegex: /list.*`). Several matching prefixes: the longest wins.
 * - `pathRegex` matches the whole path, without the query. Every config regex (path, header,
 *   query) is compiled here by `compileMatcherRegex`: RE2, linear time, whole-value match.
 * - Headers: names lower-case; a multi-valued header matches when any value does; `present: false`
 *   requires the header to be absent. Query parameters likewise, parsed once with URLSearchParams,
 *   and only when a route with query matchers is reached.
 * - The path is normalized once (`normalize-path.ts`) and matched in that form; config paths are
 *   normalized the same way at compile time. `RouteMatch.path` is what must be sent upstream.
 *
 * Invariants: everything (regexes, sets, rewrite checks) is compiled in `compileRoutes`, which
 * throws `ConfigInvalidError` for a refused rewrite or regex; `match` compiles nothing.
 */
import type { HttpHeaders } from '../client/http-request.js';
import { compileMatcherRegex, type ConfigRegex } from '../config/index.js';
import { isAuthority } from '../config/address.js';
import type { HeaderMatchSpec, QueryMatchSpec, RouteMatchSpec, RouteSpec } from '../config/types.js';
import { ConfigInvalidError } from '../core/errors.js';
import { normalizePathOnly, queryStart } from './normalize-path.js';

/** What route matching reads from a request. `path` may carry a `?query`. */
export interface RouteRequest {
  method: string;
  path: string;
  headers: HttpHeaders;
}

export interface CompiledRoute {
  readonly spec: RouteSpec;
  readonly name: string;
  /** Position in the service's route list. */
  readonly index: number;
  /** The checked `rewrite.path`, if any. */
  readonly rewritePath: string | undefined;
  /** The checked `rewrite.authority` (new `host` header), if any. */
  readonly rewriteAuthority: string | undefined;
}

/** One request's match: the route, the prefix that matched (for rewrite), the normalized path. */
export interface RouteMatch {
  readonly route: CompiledRoute;
  readonly spec: RouteSpec;
  readonly name: string;
  /** The `pathPrefix` entry that matched (normalized), or undefined for exact, regex or no path match. */
  readonly matchedPrefix: string | undefined;
  /** The normalized path, with the original query string: send this upstream. */
  readonly path: string;
}

export interface RouteTable {
  readonly routes: readonly CompiledRoute[];
  /** First matching route, or undefined. Never throws. */
  match(req: RouteRequest): RouteMatch | undefined;
}

interface ValueMatcher {
  readonly name: string;
  /** true: must be present; false: must be absent; undefined: `test` decides. */
  readonly present: boolean | undefined;
  readonly test: ((value: string) => boolean) | undefined;
}

interface Matcher {
  readonly methods: ReadonlySet<string> | undefined;
  /** Undefined: the path is not constrained. */
  readonly exact: ReadonlySet<string> | undefined;
  /** Normalized prefixes without trailing slash (`/` becomes ``), longest first. */
  readonly prefixes: readonly { readonly stored: string; readonly reported: string }[];
  readonly regexes: readonly ConfigRegex[];
  readonly constrainsPath: boolean;
  readonly headers: readonly ValueMatcher[];
  readonly query: readonly ValueMatcher[];
}

const NO_PREFIX = Symbol('matched without prefix');

function fail(path: string, message: string): never {
  throw new ConfigInvalidError([{ file: '<routes>', document: 0, path, message }]);
}

function compileValue(m: HeaderMatchSpec | QueryMatchSpec, at: string): ValueMatcher {
  if (m.present !== undefined) return { name: m.name, present: m.present, test: undefined };
  if (m.exact !== undefined) {
    const exact = m.exact;
    return { name: m.name, present: undefined, test: (v) => v === exact };
  }
  if (m.regex !== undefined) {
    let re: ConfigRegex;
    try {
      re = compileMatcherRegex(m.regex);
    } catch (err) {
      fail(`${at}.regex`, err instanceof Error ? err.message : String(err));
    }
    return { name: m.name, present: undefined, test: (v) => re.test(v) };
  }
  return { name: m.name, present: true, test: undefined };
}

function compileMatch(m: RouteMatchSpec, at: string): Matcher {
  const prefixes = m.pathPrefix.map((p) => {
    const n = normalizePathOnly(p);
    const stored = n.endsWith('/') ? n.slice(0, -1) : n;
    return { stored, reported: stored === '' ? '/' : stored };
  });
  prefixes.sort((a, b) => b.stored.length - a.stored.length);
  const regexes = m.pathRegex.map((r, i) => {
    try {
      return compileMatcherRegex(r);
    } catch (err) {
      return fail(`${at}.pathRegex[${i}]`, err instanceof Error ? err.message : String(err));
    }
  });
  return {
    methods: m.methods.length > 0 ? new Set(m.methods.map((x) => x.toUpperCase())) : undefined,
    exact: m.pathExact.length > 0 ? new Set(m.pathExact.map(normalizePathOnly)) : undefined,
    prefixes,
    regexes,
    constrainsPath: m.pathExact.length + m.pathPrefix.length + m.pathRegex.length > 0,
    headers: m.headers.map((h, i) => compileValue({ ...h, name: h.name.toLowerCase() }, `${at}.headers[${i}]`)),
    query: m.query.map((q, i) => compileValue(q, `${at}.query[${i}]`)),
  };
}

/** Undefined when the path does not match; NO_PREFIX or the matched prefix when it does. */
function matchPath(m: Matcher, path: string): string | typeof NO_PREFIX | undefined {
  if (!m.constrainsPath) return NO_PREFIX;
  if (m.exact?.has(path) === true) return NO_PREFIX;
  for (const p of m.prefixes) {
    const s = p.stored;
    if (path.startsWith(s) && (path.length === s.length || path.charCodeAt(s.length) === 0x2f)) return p.reported;
  }
  for (const re of m.regexes) if (re.test(path)) return NO_PREFIX;
  return undefined;
}

function valueMatches(m: ValueMatcher, value: string | readonly string[] | undefined): boolean {
  if (m.present !== undefined) return (value !== undefined) === m.present;
  if (value === undefined || m.test === undefined) return false;
  if (typeof value === 'string') return m.test(value);
  for (const v of value) if (m.test(v)) return true;
  return false;
}

function headersMatch(m: Matcher, headers: HttpHeaders): boolean {
  for (const h of m.headers) if (!valueMatches(h, headers[h.name])) return false;
  return true;
}

function queryMatches(m: Matcher, params: URLSearchParams): boolean {
  for (const q of m.query) {
    const all = params.getAll(q.name);
    if (!valueMatches(q, all.length === 0 ? undefined : all)) return false;
  }
  return true;
}

const CONTROL_OR_SPACE = /[\u0000-\u0020\u007f]/;

/** Checks a rewrite at compile time: a normalized `/`-path without CR/LF, `?` or `#`. */
function checkRewrite(spec: RouteSpec, at: string): { path: string | undefined; authority: string | undefined } {
  const rw = spec.rewrite;
  if (rw === undefined) return { path: undefined, authority: undefined };
  const { path, authority } = rw;
  if (path !== undefined) {
    if (!path.startsWith('/') || CONTROL_OR_SPACE.test(path) || path.includes('?') || path.includes('#')) {
      fail(`${at}.rewrite.path`, `rewrite path ${JSON.stringify(path)} must be a "/"-path without spaces, control characters, "?" or "#"`);
    }
    const normal = normalizePathOnly(path);
    if (normal !== path) fail(`${at}.rewrite.path`, `rewrite path ${JSON.stringify(path)} is not normalized (write ${JSON.stringify(normal)})`);
  }
  if (authority !== undefined && (CONTROL_OR_SPACE.test(authority) || !isAuthority(authority))) {
    fail(`${at}.rewrite.authority`, `rewrite authority ${JSON.stringify(authority)} is not a host or host:port`);
  }
  return { path, authority };
}

/** Compiles a service's routes, in order. Throws `ConfigInvalidError` for a refused regex or rewrite. */
export function compileRoutes(routes: readonly RouteSpec[]): RouteTable {
  const compiled: CompiledRoute[] = [];
  const matchers: (Matcher | undefined)[] = [];
  routes.forEach((spec, index) => {
    const at = `routes[${index}]`;
    const rewrite = checkRewrite(spec, at);
    compiled.push(Object.freeze({ spec, name: spec.name, index, rewritePath: rewrite.path, rewriteAuthority: rewrite.authority }));
    matchers.push(spec.match === undefined ? undefined : compileMatch(spec.match, `${at}.match`));
  });

  const match = (req: RouteRequest): RouteMatch | undefined => {
    const q = queryStart(req.path);
    const rawPath = q < 0 ? req.path : req.path.slice(0, q);
    const path = normalizePathOnly(rawPath);
    let params: URLSearchParams | undefined;
    for (let i = 0; i < compiled.length; i++) {
      const m = matchers[i];
      let prefix: string | typeof NO_PREFIX | undefined = NO_PREFIX;
      if (m !== undefined) {
        if (m.methods !== undefined && !m.methods.has(req.method)) continue;
        prefix = matchPath(m, path);
        if (prefix === undefined) continue;
        if (m.headers.length > 0 && !headersMatch(m, req.headers)) continue;
        if (m.query.length > 0) {
          params ??= new URLSearchParams(q < 0 ? '' : req.path.slice(q + 1));
          if (!queryMatches(m, params)) continue;
        }
      }
      const route = compiled[i] as CompiledRoute;
      return {
        route,
        spec: route.spec,
        name: route.name,
        matchedPrefix: prefix === NO_PREFIX ? undefined : prefix,
        path: path === rawPath ? req.path : q < 0 ? path : path + req.path.slice(q),
      };
    }
    return undefined;
  };

  return { routes: Object.freeze(compiled), match };
}
