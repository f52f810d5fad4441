/**
 * Checks on a Service spec that span fields or routes: endpoints and dns both set, duplicate
 * endpoints, duplicate route names, conflicting routes (one that shadows the rest, or repeats an
 * earlier route's match), all-zero weights, `hashOn` without ring-hash, HTTP matching on a TCP
 * service, and what a TCP service cannot honour (faults, mirrors, request-level retry conditions,
 * adaptive concurrency; inbound rules naming methods or paths, inbound rate limits, faults and
 * overload: a connection has no request to apply them to).
 *
 * They read the raw spec defensively rather than zod's output, so they run — and report —
 * even when some other field of the same document is invalid: a user fixing a config sees every
 * problem in one pass. A value of the wrong type is skipped here; the schema reports it.
 */

import { describeValue, type PathMessage } from './issues.js';
import { isRecord } from './schema.js';

/** Match-all: no match, an empty one, or a lone `pathPrefix: /` (every path starts with /). */
function matchesEverything(match: unknown): boolean {
  if (match === undefined || match === null) return true;
  if (!isRecord(match)) return false;
  const keys = Object.keys(match);
  if (keys.length === 0) return true;
  if (keys.length === 1 && keys[0] === 'pathPrefix') {
    const p = match['pathPrefix'];
    return p === '/' || (Array.isArray(p) && p.includes('/'));
  }
  return false;
}

/** A canonical text for a value: mapping keys and list items sorted. */
function canonical(value: unknown, depth = 0): string {
  if (depth > 8) return '…';
  if (Array.isArray(value)) return `[${value.map((v) => canonical(v, depth + 1)).sort().join(',')}]`;
  if (isRecord(value)) {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k], depth + 1)}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'undefined';
}

/** A match's canonical text, so equal matches written differently (`path: /a`, `path: [/a]`) compare equal. */
function canonicalMatch(match: Record<string, unknown>): string {
  const folded: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(match)) {
    if (key === 'headers' || key === 'query') {
      if (!isRecord(value)) continue;
      folded[key] = Object.fromEntries(
        Object.entries(value).map(([k, v]) => [key === 'headers' ? k.toLowerCase() : k, typeof v === 'string' ? { exact: v } : v]),
      );
    } else {
      folded[key] = Array.isArray(value) ? value : [value];
    }
  }
  return canonical(folded);
}

export function checkServiceSpec(spec: unknown): PathMessage[] {
  const issues: PathMessage[] = [];
  if (!isRecord(spec)) return issues;
  const at = (path: (string | number)[], message: string): void => {
    issues.push({ path: ['spec', ...path], message });
  };

  if (spec['endpoints'] !== undefined && spec['dns'] !== undefined) {
    at(['dns'], 'endpoints and dns are both set: use one (or neither, to take endpoints from the registry)');
  }
  const endpoints = spec['endpoints'];
  if (Array.isArray(endpoints)) {
    const seen = new Map<string, number>();
    endpoints.forEach((e: unknown, i) => {
      const address = typeof e === 'string' ? e : isRecord(e) && typeof e['address'] === 'string' ? e['address'] : undefined;
      if (address === undefined) return;
      const first = seen.get(address.toLowerCase());
      if (first !== undefined) at(['endpoints', i], `duplicate endpoint ${describeValue(address)} (also endpoints[${first}])`);
      else seen.set(address.toLowerCase(), i);
    });
  }

  if (spec['protocol'] === 'tcp') issues.push(...checkTcpSpec(spec));

  const routes = spec['routes'];
  if (!Array.isArray(routes)) return issues;
  const lb = spec['loadBalancer'] ?? 'ewma';
  const tcp = spec['protocol'] === 'tcp';
  const names = new Map<string, number>();
  const matches = new Map<string, string>();
  routes.forEach((route: unknown, i) => {
    if (!isRecord(route)) return;
    const name = typeof route['name'] === 'string' ? route['name'] : `#${i}`;
    if (typeof route['name'] === 'string') {
      const first = names.get(name);
      if (first !== undefined) at(['routes', i, 'name'], `duplicate route name ${describeValue(name)} (also routes[${first}])`);
      else names.set(name, i);
    }
    const match = route['match'];
    if (matchesEverything(match)) {
      if (i < routes.length - 1) {
        at(
          ['routes', i, ...(match === undefined ? [] : ['match'])],
          `conflicting routes: route ${describeValue(name)} matches every request, so the ${routes.length - 1 - i} route(s) after it would never be used (only the last route may omit match)`,
        );
      }
    } else if (isRecord(match)) {
      const key = canonicalMatch(match);
      const earlier = matches.get(key);
      if (earlier !== undefined) {
        at(['routes', i, 'match'], `conflicting routes: route ${describeValue(name)} has the same match as route ${describeValue(earlier)}, which comes first, so it would never be used`);
      } else {
        matches.set(key, name);
      }
    }
    const backends = route['backends'];
    if (Array.isArray(backends) && backends.length > 0 && backends.every((b: unknown) => isRecord(b) && b['weight'] === 0)) {
      at(['routes', i, 'backends'], 'all backend weights are 0: the route could send traffic nowhere');
    }
    if (route['hashOn'] !== undefined && lb !== 'ring-hash') {
      at(['routes', i, 'hashOn'], `hashOn needs loadBalancer: ring-hash (the service uses ${describeValue(lb)})`);
    }
    if (tcp) {
      for (const field of ['match', 'rewrite'] as const) {
        if (route[field] !== undefined && !(field === 'match' && matchesEverything(match))) {
          at(['routes', i, field], `protocol tcp has no paths, methods or headers: ${field} cannot apply`);
        }
      }
      for (const [field, why] of TCP_ROUTE_REFUSED) {
        if (route[field] !== undefined) at(['routes', i, field], `protocol tcp: ${why}`);
      }
    }
  });
  return issues;
}

const TCP_ROUTE_REFUSED: readonly (readonly [string, string])[] = [
  ['fault', 'fault injection answers or delays requests, and a TCP connection has none (remove fault)'],
  ['mirror', 'a TCP stream cannot be copied to a second endpoint (remove mirror)'],
  ['hashOn', 'hashOn reads a request header, and a TCP connection has none (use mesh.connect(service, { routeKey }))'],
];

/** Retry conditions a TCP connect can meet: nothing else happens before the connection is the caller's. */
const TCP_RETRY_CONDITIONS = new Set(['connect-failure', 'timeout']);

/** What a `protocol: tcp` Service declares and mesh.connect / mesh.listen could not honour. */
function checkTcpSpec(spec: Record<string, unknown>): PathMessage[] {
  const issues: PathMessage[] = [];
  const at = (path: (string | number)[], message: string): void => {
    issues.push({ path: ['spec', ...path], message });
  };
  const retryOn = (retries: unknown, path: (string | number)[]): void => {
    if (!isRecord(retries)) return;
    const on = retries['on'];
    const list = typeof on === 'string' ? [on] : Array.isArray(on) ? on : [];
    list.forEach((c: unknown, i) => {
      if (typeof c === 'string' && !TCP_RETRY_CONDITIONS.has(c)) {
        at([...path, 'on', ...(Array.isArray(on) ? [i] : [])], `protocol tcp retries only what happens before a connection is open (connect-failure, timeout of a connect attempt); ${describeValue(c)} cannot occur`);
      }
    });
  };
  retryOn(spec['retries'], ['retries']);
  const routes = spec['routes'];
  if (Array.isArray(routes)) routes.forEach((r: unknown, i) => isRecord(r) && retryOn(r['retries'], ['routes', i, 'retries']));
  if (spec['adaptiveConcurrency'] !== undefined) {
    at(['adaptiveConcurrency'], 'protocol tcp: an adaptive concurrency limit measures request latency, and a TCP connection has no requests (remove adaptiveConcurrency)');
  }
  const inbound = spec['inbound'];
  if (isRecord(inbound)) {
    for (const field of ['rateLimit', 'fault', 'overload'] as const) {
      if (inbound[field] !== undefined) at(['inbound', field], `protocol tcp: mesh.listen authorizes connections by caller and applies no ${field} (remove inbound.${field})`);
    }
    const authz = inbound['authorization'];
    if (isRecord(authz)) {
      for (const kind of ['allow', 'deny'] as const) {
        const rules = authz[kind];
        if (!Array.isArray(rules)) continue;
        rules.forEach((rule: unknown, i) => {
          if (!isRecord(rule)) return;
          for (const field of ['methods', 'paths'] as const) {
            if (rule[field] !== undefined) at(['inbound', 'authorization', kind, i, field], `protocol tcp: a connection has no ${field === 'methods' ? 'method' : 'path'}; authorize it by caller (from) only`);
          }
        });
      }
    }
  }
  return issues;
}
