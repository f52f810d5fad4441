/**
 * Inbound authorization: the Service document's `inbound.authorization` compiled once per
 * config version into an `Authorizer`, asked once per request with the verified caller (or
 * `unknown`), the method and the path as received.
 *
 * Order (Istio AuthorizationPolicy): a matching DENY rule denies; with no ALLOW rules the
 * request is allowed; a matching ALLOW rule allows; anything else is denied. Within a rule the
 * fields are ANDed and the values of one field ORed; a field left out matches anything.
 * - `from`: service names; `*` is any *verified* caller; `unknown` (the plaintext or unverified
 *   caller) matches only where it is written. A rule without `from` matches every caller,
 *   `unknown` included, as an Istio rule without `from` does.
 * - `methods`: upper-case names. A rule naming GET also matches HEAD, because Express and Fastify
 *   answer HEAD with the GET handler: a `deny GET /admin` must not be bypassed with HEAD.
 * - `paths`: globs where `*` matches any run of characters, `/` included (`/list*`, `*`, `/users/*.json`),
 *   compiled to literal pieces matched left to right (linear, no regex, no backtracking), against
 *   the path without its query, normalized once by src/traffic/normalize-path.ts.
 *
 * Paths (docs/security.md, matrix row B10: "normalize once, match what the handler sees, refuse
 * `%2F`, `%5C`, `//`, dot segments"). When authorization is configured, a request whose raw path
 * could be read two ways by the handler's framework is refused (403) before any rule is read:
 * - not starting with `/` (absolute-form `http://host/admin`, which Express routes as `/admin`;
 *   asterisk-form `*`);
 * - `%2F` or `%5C` (any case), a literal `\`, `//`, or a `.`/`..` segment, also as `%2e`;
 * - `%25` followed by two hex digits — a double encoding (`%252F`, `%252e`, `%2573ecret`), for
 *   handlers that decode twice: any character, a letter of a denied path included, can hide in it;
 * - `;` — matrix parameters. Node frameworks route `/admin;x` literally (a 404), but Fastify's
 *   `useSemicolonDelimiter`, Spring and Tomcat strip them (istio/istio#27409): a path meaning
 *   `/admin` to the handler and `/admin;x` to the rules is the bypass, so neither reading is guessed;
 * - `#` — Express's parser cuts the path there (`/admin#x` routes as `/admin`);
 * - a byte outside printable ASCII (raw UTF-8, controls): a request target carries them
 *   percent-encoded, and rules hold non-ASCII characters that way too (`/ä` is matched as `/%C3%A4`,
 *   which Fastify's router decodes to the same route).
 * - with case-insensitive routing (Fastify `caseSensitive: false`, see `forCaseInsensitiveRouting`),
 *   any percent-encoded byte outside ASCII (`%80`–`%FF`).
 * What remains differs from the normalized path only by case of `%XX` escapes and decoded
 * unreserved characters (`/%61dmin` → `/admin`), and that normalized path is what rules match.
 *
 * Deny rules match loosely, allow rules exactly, so framework leniency fails closed both ways:
 * a deny path also matches ignoring ASCII case and one trailing slash (Express routes `/ADMIN`
 * and `/admin/` to `/admin` by default); an allow path must match as written.
 *
 * A denial is answered `403 {"error":"TRELLIS_FORBIDDEN","service":"<this service>"}`: no rule,
 * caller or reason leaks into the body. The reason stays in the decision for logs and tests.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuthorizationRuleSpec } from '../config/types.js';
import { normalizePathOnly } from '../traffic/normalize-path.js';
import { UNKNOWN_CALLER } from './peer.js';

export interface AuthorizationRequest {
  /** The verified caller's service name, or `unknown`. */
  caller: string;
  method: string;
  /** The request target as received (`req.url`): path and optional query. */
  path: string;
}

/** Why a request was denied; never sent to the caller. */
export type DenyReason = 'unsafe-path' | 'deny-rule' | 'no-allow-rule';

export interface AuthorizationDecision {
  readonly allowed: boolean;
  readonly reason?: DenyReason | undefined;
}

export interface Authorizer {
  /** False when no authorization is configured: every request is allowed and the step can be left out. */
  readonly enabled: boolean;
  authorize(request: AuthorizationRequest): AuthorizationDecision;
}

export interface AuthorizationSpec {
  allow: AuthorizationRuleSpec[];
  deny: AuthorizationRuleSpec[];
}

type Matcher = (s: string) => boolean;

interface CompiledRule {
  /** undefined: any caller. */
  readonly from: { readonly names: ReadonlySet<string>; readonly anyVerified: boolean } | undefined;
  readonly methods: ReadonlySet<string> | undefined;
  readonly paths: readonly Matcher[] | undefined;
}

const ALLOWED: AuthorizationDecision = Object.freeze({ allowed: true });
const DENIED_PATH: AuthorizationDecision = Object.freeze({ allowed: false, reason: 'unsafe-path' });
const DENIED_RULE: AuthorizationDecision = Object.freeze({ allowed: false, reason: 'deny-rule' });
const DENIED_NO_ALLOW: AuthorizationDecision = Object.freeze({ allowed: false, reason: 'no-allow-rule' });

const OPEN: Authorizer = Object.freeze({ enabled: false, authorize: () => ALLOWED });

/**
 * A `*` glob as literal pieces: the first must start the string, the last end it, the middle
 * ones appear in order. Leftmost matching of each middle piece is optimal for `*`-only globs,
 * so one pass decides (O(length × pieces)).
 */
export function compileGlob(pattern: string): Matcher {
  if (pattern === '*') return () => true;
  const parts = pattern.split('*');
  if (parts.length === 1) return (s) => s === pattern;
  const first = parts[0] as string;
  const last = parts[parts.length - 1] as string;
  if (parts.length === 2) {
    const min = first.length + last.length;
    return (s) => s.length >= min && s.startsWith(first) && s.endsWith(last);
  }
  const middle = parts.slice(1, -1).filter((p) => p !== '');
  const min = parts.reduce((n, p) => n + p.length, 0);
  return (s) => {
    if (s.length < min || !s.startsWith(first) || !s.endsWith(last)) return false;
    let pos = first.length;
    const end = s.length - last.length;
    for (const m of middle) {
      const i = s.indexOf(m, pos);
      if (i < 0 || i + m.length > end) return false;
      pos = i + m.length;
    }
    return true;
  };
}

/** ASCII lower case and no trailing slash (but `/` stays `/`): how lenient routers read a path. */
function loose(path: string): string {
  const l = path.toLowerCase();
  return l.length > 1 && l.endsWith('/') ? l.slice(0, -1) : l;
}

function isHexCode(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function hexPair(s: string, i: number, hi: string, lo: string): boolean {
  // s[i] === '%'; compares the two hex digits case-insensitively.
  return s.length > i + 2 && s[i + 1] === hi && (s[i + 2] as string).toUpperCase() === lo;
}

/**
 * True when the raw path (before `?`) may be read differently by the handler than by the rules.
 * See the file comment for the list and why each is refused.
 */
export function isAmbiguousPath(path: string): boolean {
  if (path.charCodeAt(0) !== 0x2f /* / */) return true;
  const n = path.length;
  for (let i = 0; i < n; i++) {
    const c = path.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x5c /* \ */ || c === 0x3b /* ; */ || c === 0x23 /* # */) return true;
    if (c === 0x2f && i + 1 < n && path.charCodeAt(i + 1) === 0x2f) return true;
    if (c === 0x25 /* % */) {
      if (hexPair(path, i, '2', 'F') || hexPair(path, i, '5', 'C')) return true;
      // `%25` and two hex digits: a double encoding (`%252e`, `%2573ecret`). Handlers that
      // decode twice see `.`, `s`, `/` where the rules saw `%2e`, `%73`, `%2f`; any letter or
      // dot can be hidden this way, so every one is refused, not a list of known-bad ones.
      if (hexPair(path, i, '2', '5') && i + 4 < n && isHexCode(path.charCodeAt(i + 3)) && isHexCode(path.charCodeAt(i + 4))) return true;
    }
  }
  // Dot segments, literal or escaped (`%2e` is an unreserved escape: normalization decodes it).
  if (path.indexOf('.') < 0 && !/%2e/i.test(path)) return false;
  let start = 1;
  for (let i = 1; i <= n; i++) {
    if (i === n || path.charCodeAt(i) === 0x2f) {
      const seg = path.slice(start, i);
      if (seg.length >= 1 && seg.length <= 6) {
        const d = seg.replace(/%2e/gi, '.');
        if (d === '.' || d === '..') return true;
      }
      start = i + 1;
    }
  }
  return false;
}

/** Percent-encodes the non-ASCII characters of a rule path (UTF-8, upper-case hex), as a request carries them. */
function encodeNonAscii(path: string): string {
  let out = '';
  for (const ch of path) {
    const c = ch.codePointAt(0) as number;
    if (c > 0x20 && c < 0x7f) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function compileRule(rule: AuthorizationRuleSpec, lenient: boolean): CompiledRule {
  const from =
    rule.from.length === 0
      ? undefined
      : { names: new Set(rule.from.filter((f) => f !== '*')), anyVerified: rule.from.includes('*') };
  let methods: Set<string> | undefined;
  if (rule.methods.length > 0) {
    methods = new Set(rule.methods.map((m) => m.toUpperCase()));
    if (methods.has('GET')) methods.add('HEAD');
  }
  let paths: Matcher[] | undefined;
  if (rule.paths.length > 0 && !rule.paths.includes('*')) {
    paths = rule.paths.map((p) => {
      const normal = normalizePathOnly(encodeNonAscii(p));
      return compileGlob(lenient ? loose(normal) : normal);
    });
  }
  return { from, methods, paths };
}

function callerMatches(rule: CompiledRule, caller: string): boolean {
  const f = rule.from;
  if (f === undefined) return true;
  if (f.names.has(caller)) return true;
  return f.anyVerified && caller !== UNKNOWN_CALLER;
}

function matches(rule: CompiledRule, caller: string, method: string, path: string): boolean {
  if (!callerMatches(rule, caller)) return false;
  if (rule.methods !== undefined && !rule.methods.has(method)) return false;
  if (rule.paths === undefined) return true;
  for (const m of rule.paths) if (m(path)) return true;
  return false;
}

/**
 * Compiles a Service's `inbound.authorization` (undefined: no authorization, every request allowed).
 *
 * @example
 * const authz = compileAuthorization({ allow: [{ from: ['checkout'], methods: ['GET'], paths: ['/list*'] }], deny: [] });
 * authz.authorize({ caller: 'checkout', method: 'GET', path: '/list?page=2' }); // { allowed: true }
 * authz.authorize({ caller: 'unknown', method: 'GET', path: '/list' });        // { allowed: false, ... }
 */
export function compileAuthorization(spec: AuthorizationSpec | undefined): Authorizer {
  if (spec === undefined) return OPEN;
  const deny = spec.deny.map((r) => compileRule(r, true));
  const allow = spec.allow.map((r) => compileRule(r, false));
  return Object.freeze({
    enabled: true,
    authorize(request: AuthorizationRequest): AuthorizationDecision {
      const q = request.path.indexOf('?');
      const raw = q < 0 ? request.path : request.path.slice(0, q);
      if (isAmbiguousPath(raw)) return DENIED_PATH;
      const path = normalizePathOnly(raw);
      const method = request.method.toUpperCase();
      const caller = request.caller;
      if (deny.length > 0) {
        const lp = loose(path);
        for (const r of deny) if (matches(r, caller, method, lp)) return DENIED_RULE;
      }
      if (allow.length === 0) return ALLOWED;
      for (const r of allow) if (matches(r, caller, method, path)) return ALLOWED;
      return DENIED_NO_ALLOW;
    },
  });
}

/** True when the raw path carries a percent-encoded byte outside ASCII (`%80`–`%FF`). */
function hasEncodedNonAscii(path: string): boolean {
  for (let i = path.indexOf('%'); i >= 0 && i + 2 < path.length; i = path.indexOf('%', i + 1)) {
    const hi = path.charCodeAt(i + 1);
    // 8-9, A-F, a-f as the high digit: a byte >= 0x80 (a malformed `%8z` is refused as well: fails closed).
    if ((hi >= 0x38 && hi <= 0x39) || (hi >= 0x41 && hi <= 0x46) || (hi >= 0x61 && hi <= 0x66)) return true;
  }
  return false;
}

const caseInsensitive = new WeakMap<Authorizer, Authorizer>();

/**
 * The authorizer for an application whose router matches paths ignoring case (Fastify's
 * `caseSensitive: false`). Such a router folds characters the rules never see: find-my-way
 * decodes the path and calls `String.prototype.toLowerCase`, which turns the Kelvin sign
 * (U+212A, `%E2%84%AA`) into `k` — `/api/%E2%84%AAeys` reached a handler for a denied
 * `/api/keys` — and İ (U+0130) into `i` + U+0307; Unicode case folding as regexes with `iu` do it
 * also turns ſ (U+017F) into `s`. No fold the rules could apply is guaranteed to be the
 * router's, so with authorization configured a path with any encoded non-ASCII byte is refused
 * (403, reason `unsafe-path`); what is left is ASCII, which deny rules already match ignoring
 * case. Memoized per authorizer, so calling it per request allocates nothing.
 */
export function forCaseInsensitiveRouting(authz: Authorizer): Authorizer {
  if (!authz.enabled) return authz;
  let wrapped = caseInsensitive.get(authz);
  if (wrapped === undefined) {
    wrapped = Object.freeze({
      enabled: true,
      authorize(request: AuthorizationRequest): AuthorizationDecision {
        const q = request.path.indexOf('?');
        const raw = q < 0 ? request.path : request.path.slice(0, q);
        if (hasEncodedNonAscii(raw)) return DENIED_PATH;
        return authz.authorize(request);
      },
    });
    caseInsensitive.set(authz, wrapped);
  }
  return wrapped;
}

/** The body of a 403: the code and this service, nothing about the rules. */
export function forbiddenBody(service: string | undefined): string {
  return JSON.stringify({ error: 'TRELLIS_FORBIDDEN', service: service ?? UNKNOWN_CALLER });
}

/** Answers a denied request (draining what it sent). */
export function writeForbidden(req: IncomingMessage, res: ServerResponse, service: string | undefined): void {
  req.resume();
  const body = forbiddenBody(service);
  res.statusCode = 403;
  res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}
