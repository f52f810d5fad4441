/**
 * Authorization of inbound gRPC calls: the same rules, order and matching as HTTP
 * (src/server/authorization.ts — Istio's order: a matching deny refuses; with allow rules a call
 * must match one; `from: ['*']` is any verified caller, `unknown` only when listed), applied to
 * the caller, method (gRPC calls are POSTs) and path (`/pkg.Service/Method`). One implementation,
 * so a rule means the same thing whichever protocol a caller uses.
 */
import type { AuthorizationRuleSpec } from '../config/types.js';
import { compileAuthorization as compileHttpAuthorization } from '../server/authorization.js';

/** The caller label for a call with no verified identity. */
export const UNKNOWN_CALLER = 'unknown';

export interface AuthorizationDecision {
  readonly allowed: boolean;
  /** Why, for logs (never sent to the caller). */
  readonly reason: string;
}

export type Authorizer = (caller: string, method: string, path: string) => AuthorizationDecision;

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
  const http = compileHttpAuthorization(spec);
  if (!http.enabled) return () => ALLOWED;
  return (caller, method, path) => {
    const d = http.authorize({ caller, method, path });
    return d.allowed ? ALLOWED : { allowed: false, reason: `${d.reason ?? 'denied'}: caller ${caller} for ${method} ${path}` };
  };
}
