/**
 * Checks on a Service spec that span fields or routes: endpoints and dns both set, duplicate
 * endpoints, duplicate route names, conflicting routes (one that shadows the rest, or repeats an
 * earlier route's match), all-zero weights, `hashOn` without ring-hash, HTTP matching on a TCP
 * service.
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
    }
  });
  return issues;
}
