/**
 * Validated route blocks → `RouteSpec`: match lists made lists, header names lower-cased, an
 * empty match made "match everything", backends defaulted to the whole service, mirror
 * percentages to 100, and route retries merged field by field over the service's.
 */

import type { BackendSpec, HeaderMatchSpec, RetrySpec, RouteMatchSpec, RouteSpec } from './types.js';
import type { RawMatch, RawRoute, RawValueMatch } from './schema-route.js';
import { mergeRetries, normalizeFault, normalizeRateLimit } from './normalize-policy.js';

/** Largest mirrored body copied by default; larger bodies are not mirrored. */
export const DEFAULT_MIRROR_MAX_BODY_BYTES = 65_536;

function list(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return [...new Set(typeof value === 'string' ? [value] : value)];
}

function valueMatches(map: Record<string, RawValueMatch> | undefined, lowerCase: boolean): HeaderMatchSpec[] {
  if (map === undefined) return [];
  return Object.entries(map).map(([rawName, m]) => {
    const name = lowerCase ? rawName.toLowerCase() : rawName;
    if (typeof m === 'string') return { name, exact: m };
    const out: HeaderMatchSpec = { name };
    if (m.exact !== undefined) out.exact = m.exact;
    if (m.regex !== undefined) out.regex = m.regex;
    if (m.present !== undefined) out.present = m.present;
    return out;
  });
}

/** A match, or undefined when it constrains nothing (matches every request). */
export function normalizeMatch(raw: RawMatch | undefined): RouteMatchSpec | undefined {
  if (raw === undefined) return undefined;
  const match: RouteMatchSpec = {
    pathExact: list(raw.path),
    pathPrefix: list(raw.pathPrefix),
    pathRegex: list(raw.pathRegex),
    methods: list(raw.methods),
    headers: valueMatches(raw.headers, true),
    query: valueMatches(raw.query, false),
  };
  const empty = Object.values(match).every((v: unknown[]) => v.length === 0);
  return empty ? undefined : match;
}

export interface RouteContext {
  /** The service's retries, which a route's `retries` block is merged over. */
  serviceRetries: RetrySpec;
  /** Retries for a written block with no fields, for this protocol (see `normalize.ts`). */
  explicitDefaults: RetrySpec;
}

export function normalizeRoute(raw: RawRoute, ctx: RouteContext): RouteSpec {
  const backends: BackendSpec[] =
    raw.backends === undefined
      ? [{ subset: {}, weight: 1 }]
      : raw.backends.map((b) => ({ subset: { ...(b.subset ?? {}) }, weight: b.weight ?? 1 }));
  // A route that writes retries is explicit: unwritten fields come from the service's own block
  // when it has one, else from the explicit defaults (not from the connect-failure-once fallback).
  const base = ctx.serviceRetries.explicit ? ctx.serviceRetries : ctx.explicitDefaults;
  return {
    name: raw.name,
    match: normalizeMatch(raw.match),
    rewrite: raw.rewrite === undefined ? undefined : { path: raw.rewrite.path, authority: raw.rewrite.authority },
    backends,
    mirror:
      raw.mirror === undefined
        ? undefined
        : {
            subset: { ...(raw.mirror.subset ?? {}) },
            percent: raw.mirror.percent ?? 100,
            maxBodyBytes: raw.mirror.maxBodyBytes ?? DEFAULT_MIRROR_MAX_BODY_BYTES,
          },
    fault: normalizeFault(raw.fault),
    timeoutMs: raw.timeout,
    retries: raw.retries === undefined ? undefined : mergeRetries(base, raw.retries),
    rateLimit: normalizeRateLimit(raw.rateLimit),
    hashOn: raw.hashOn === undefined ? undefined : { header: raw.hashOn.header.toLowerCase() },
  };
}
