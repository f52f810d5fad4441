/**
 * Authorization of inbound connections (`mesh.listen`, raw TCP) by caller alone: a connection
 * has a verified caller (or `unknown`) and nothing else — no method, no path. The rules are the
 * Service's `inbound.authorization`, read in Istio's order like the request authorizer
 * (src/server/authorization.ts): a matching DENY denies; no ALLOW rules allows; a matching ALLOW
 * allows; anything else is denied. `from` means what it means there (`*` any verified caller,
 * `unknown` only where written, no `from` every caller).
 *
 * Rules that also name `methods` or `paths` cannot be judged on a connection. For a
 * `protocol: tcp` Service they are refused at load (src/config/service-checks.ts). For a Service of
 * another protocol (an HTTP service that also listens on a TCP port) they are read so that they
 * can only ever refuse more, never allow more: such a DENY rule denies its callers every
 * connection, such an ALLOW rule allows none (and still counts as an ALLOW rule, so the listener
 * does not become open because its only rules were HTTP ones).
 */
import type { AuthorizationDecision, AuthorizationSpec } from './authorization.js';
import { UNKNOWN_CALLER } from './peer.js';
import type { AuthorizationRuleSpec } from '../config/types.js';

export interface CallerAuthorizer {
  /** False when no authorization is configured: every connection is allowed. */
  readonly enabled: boolean;
  authorize(caller: string): AuthorizationDecision;
}

const ALLOWED: AuthorizationDecision = Object.freeze({ allowed: true });
const DENIED_RULE: AuthorizationDecision = Object.freeze({ allowed: false, reason: 'deny-rule' });
const DENIED_NO_ALLOW: AuthorizationDecision = Object.freeze({ allowed: false, reason: 'no-allow-rule' });
const OPEN: CallerAuthorizer = Object.freeze({ enabled: false, authorize: () => ALLOWED });

function callerMatches(rule: AuthorizationRuleSpec, caller: string): boolean {
  if (rule.from.length === 0) return true;
  if (rule.from.includes(caller)) return true;
  return rule.from.includes('*') && caller !== UNKNOWN_CALLER;
}

/** True when a rule names what only a request has. */
export function namesRequestFields(rule: AuthorizationRuleSpec): boolean {
  return rule.methods.length > 0 || rule.paths.length > 0;
}

/**
 * Compiles `inbound.authorization` for connections (undefined: every connection allowed).
 *
 * @example
 * const authz = compileCallerAuthorization({ allow: [{ from: ['checkout'], methods: [], paths: [] }], deny: [] });
 * authz.authorize('checkout'); // { allowed: true }
 * authz.authorize('unknown');  // { allowed: false, reason: 'no-allow-rule' }
 */
export function compileCallerAuthorization(spec: AuthorizationSpec | undefined): CallerAuthorizer {
  if (spec === undefined) return OPEN;
  // A deny rule's methods and paths are dropped (it denies more); an allow rule with them allows nothing.
  const deny = spec.deny;
  const allow = spec.allow.filter((r) => !namesRequestFields(r));
  const anyAllow = spec.allow.length > 0;
  return Object.freeze({
    enabled: true,
    authorize(caller: string): AuthorizationDecision {
      for (const r of deny) if (callerMatches(r, caller)) return DENIED_RULE;
      if (!anyAllow) return ALLOWED;
      for (const r of allow) if (callerMatches(r, caller)) return ALLOWED;
      return DENIED_NO_ALLOW;
    },
  });
}
