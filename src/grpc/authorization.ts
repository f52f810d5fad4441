/**
 * Authorization of inbound calls by caller identity and method, from this service's
 * `inbound.authorization` (Istio AuthorizationPolicy semantics):
 *
 * - a call matching any `deny` rule is refused;
 * - else, when `allow` rules exist, a call must match one of them;
 * - else it is allowed.
 *
 * A rule matches when each of its lists that is not empty matches (an empty list matches
 * anything): `from` — the caller's verified service name, or `*` for any verified caller (an
 * unauthenticated caller, `unknown`, matches only a rule without `from`); `methods` — the HTTP
 * method (gRPC calls are POSTs); `paths` — the request path: exact (`/pkg.Service/Method`), a
 * prefix ending in `*` (`/pkg.Service/*`, `/list*`), or `*`.
 *
 * Compiled once per config version; `check` is a few Set lookups and prefix tests.
 */
import type { AuthorizationRuleSpec } from '../config/types.js';

/** The caller label for a call with no verified identity. */
export const UNKNOWN_CALLER = 'unknown';

export interface AuthorizationDecision {
  readonly allowed: boolean;
  /** Why, for the PERMISSION_DENIED details and logs. */
  readonly reason: string;
}

export type Authorizer = (caller: string, method: string, path: string) => AuthorizationDecision;

interface CompiledRule {
  readonly anyCaller: boolean;
  readonly from: ReadonlySet<string> | undefined;
  readonly methods: ReadonlySet<string> | undefined;
  readonly exact: ReadonlySet<string>;
  readonly prefixes: readonly string[];
  readonly anyPath: boolean;
}

function compile(rule: AuthorizationRuleSpec): CompiledRule {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  let anyPath = rule.paths.length === 0;
  for (const p of rule.paths) {
    if (p === '*') anyPath = true;
    else if (p.endsWith('*')) prefixes.push(p.slice(0, -1));
    else exact.add(p);
  }
  return {
    anyCaller: rule.from.includes('*'),
    from: rule.from.length === 0 ? undefined : new Set(rule.from),
    methods: rule.methods.length === 0 ? undefined : new Set(rule.methods),
    exact,
    prefixes,
    anyPath,
  };
}

function matches(r: CompiledRule, caller: string, method: string, path: string): boolean {
  if (r.from !== undefined) {
    const verified = caller !== UNKNOWN_CALLER;
    if (!(r.from.has(caller) && verified) && !(r.anyCaller && verified)) return false;
  }
  if (r.methods !== undefined && !r.methods.has(method)) return false;
  if (r.anyPath || r.exact.has(path)) return true;
  for (const p of r.prefixes) if (path.startsWith(p)) return true;
  return false;
}

const ALLOWED: AuthorizationDecision = Object.freeze({ allowed: true, reason: 'allowed' });

/**
 * Compiles an `inbound.authorization` block; undefined (no block) allows everything.
 *
 * @example
 * const check = compileAuthorization({ allow: [{ from: ['checkout'], methods: [], paths: ['/shop.Products/*'] }], deny: [] });
 * check('checkout', 'POST', '/shop.Products/Get').allowed; // true
 * check('unknown', 'POST', '/shop.Products/Get').allowed;  // false
 */
export function compileAuthorization(spec: { allow: AuthorizationRuleSpec[]; deny: AuthorizationRuleSpec[] } | undefined): Authorizer {
  if (spec === undefined) return () => ALLOWED;
  const allow = spec.allow.map(compile);
  const deny = spec.deny.map(compile);
  return (caller, method, path) => {
    for (let i = 0; i < deny.length; i++) {
      if (matches(deny[i] as CompiledRule, caller, method, path)) return { allowed: false, reason: `caller ${caller} matches deny rule ${i} for ${method} ${path}` };
    }
    if (allow.length === 0) return ALLOWED;
    for (const r of allow) if (matches(r, caller, method, path)) return ALLOWED;
    return { allowed: false, reason: `no allow rule admits caller ${caller} for ${method} ${path}` };
  };
}
