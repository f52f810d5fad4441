/**
 * Typed errors. Every failure Trellis produces is a `TrellisError` with a stable `code`
 * (as undici and Fastify do), naming the service, route or endpoint involved and keeping
 * its cause. One table (`ERROR_CODES`) maps each code to an HTTP status, a gRPC status
 * name and a metric outcome; edges (HTTP, gRPC) translate errors only through it.
 *
 * Invariants: codes are never reused or renamed; `instanceof` works across duplicate
 * installs of the package through a `Symbol.for` brand; docs/errors.md is checked
 * against `ERROR_CODES` by a test.
 */

const kTrellisError = Symbol.for('trellis.error');

/** What an error code means at the edges and in metrics. */
export interface ErrorCodeInfo {
  readonly httpStatus: number;
  readonly grpcCode: string;
  readonly outcome: string;
  readonly description: string;
}

export const ERROR_CODES = {
  TRELLIS_NO_ENDPOINTS: { httpStatus: 503, grpcCode: 'UNAVAILABLE', outcome: 'no_endpoints', description: 'The destination (or the selected subset) has no endpoint to send to: none discovered, or all ejected.' },
  TRELLIS_UNKNOWN_SERVICE: { httpStatus: 503, grpcCode: 'UNAVAILABLE', outcome: 'unknown_service', description: 'The destination service has no Service document in the configuration.' },
  TRELLIS_NO_ROUTE: { httpStatus: 404, grpcCode: 'UNIMPLEMENTED', outcome: 'no_route', description: 'The destination has routes and none matched the request (as Envoy answers 404 NR).' },
  TRELLIS_CIRCUIT_OPEN: { httpStatus: 503, grpcCode: 'UNAVAILABLE', outcome: 'circuit_open', description: "The destination's circuit breaker is open (or half-open with its probe in flight): failing fast." },
  TRELLIS_RATE_LIMITED: { httpStatus: 429, grpcCode: 'RESOURCE_EXHAUSTED', outcome: 'rate_limited', description: 'A rate limit refused the request.' },
  TRELLIS_TIMEOUT: { httpStatus: 504, grpcCode: 'DEADLINE_EXCEEDED', outcome: 'timeout', description: 'The overall timeout, a per-try timeout or a propagated deadline expired.' },
  TRELLIS_RETRIES_EXHAUSTED: { httpStatus: 503, grpcCode: 'UNAVAILABLE', outcome: 'failure', description: 'Every allowed attempt failed; `cause` is the last failure.' },
  TRELLIS_CONNECT_FAILED: { httpStatus: 503, grpcCode: 'UNAVAILABLE', outcome: 'connect_failure', description: 'No connection could be made to the endpoint; nothing was sent.' },
  TRELLIS_RESET: { httpStatus: 502, grpcCode: 'UNAVAILABLE', outcome: 'reset', description: 'The connection was reset or closed before the response completed.' },
  TRELLIS_UPSTREAM_ERROR: { httpStatus: 502, grpcCode: 'INTERNAL', outcome: 'failure', description: 'The upstream answered with something that is not a valid response, or the transport failed otherwise.' },
  TRELLIS_ABORTED: { httpStatus: 499, grpcCode: 'CANCELLED', outcome: 'cancelled', description: "The caller aborted the request (its AbortSignal fired)." },
  TRELLIS_CLOSED: { httpStatus: 503, grpcCode: 'UNAVAILABLE', outcome: 'closed', description: 'The mesh client was closed.' },
  TRELLIS_FORBIDDEN: { httpStatus: 403, grpcCode: 'PERMISSION_DENIED', outcome: 'forbidden', description: 'Authorization denied the caller.' },
  TRELLIS_PEER_IDENTITY: { httpStatus: 502, grpcCode: 'UNAVAILABLE', outcome: 'peer_identity', description: "The peer's certificate is not the expected SPIFFE identity (wrong service, foreign trust domain, not a leaf, several URI SANs) or is missing: the connection is refused." },
  TRELLIS_NO_IDENTITY: { httpStatus: 503, grpcCode: 'UNAVAILABLE', outcome: 'no_identity', description: 'mTLS is required but this instance has no valid workload certificate (not issued yet, or expired): it fails closed, never plaintext.' },
  TRELLIS_TOKEN_INVALID: { httpStatus: 401, grpcCode: 'UNAUTHENTICATED', outcome: 'unauthenticated', description: 'A bootstrap token was refused (bad signature, expired, wrong audience, revoked, or for another service), or a control-plane request carried no admin token or a wrong one.' },
  TRELLIS_CSR_INVALID: { httpStatus: 400, grpcCode: 'INVALID_ARGUMENT', outcome: 'invalid_csr', description: 'A certificate signing request was refused: too large, malformed, bad self-signature, or a weak key.' },
  TRELLIS_INVALID_ARGUMENT: { httpStatus: 400, grpcCode: 'INVALID_ARGUMENT', outcome: 'invalid_argument', description: "The caller's own request was invalid (no path, a path without a leading slash, a bad method or header): refused before it left the process, never retried, never charged to an endpoint, a breaker or a budget." },
  TRELLIS_OVERLOADED: { httpStatus: 503, grpcCode: 'UNAVAILABLE', outcome: 'overloaded', description: 'Load was shed before any work was done: an upstream instance refused the request because it is overloaded (event loop saturated, concurrency limit reached, deadline unmeetable), or the destination\'s adaptive concurrency limit refused the call. Safe to retry on another instance.' },
  TRELLIS_CONFLICT: { httpStatus: 409, grpcCode: 'ABORTED', outcome: 'failure', description: "A conditional control-plane write was refused: the resource's stored revision is not the one the request named (`metadata.revision` or `?revision=`). Nothing was written; read it again and retry." },
  TRELLIS_NOT_FOUND: { httpStatus: 404, grpcCode: 'NOT_FOUND', outcome: 'failure', description: 'The control-plane API has no such resource (no Service or Mesh document of that name) or no such path.' },
  TRELLIS_STORE_UNAVAILABLE: { httpStatus: 503, grpcCode: 'UNAVAILABLE', outcome: 'failure', description: "The control plane's store (its data directory, or etcd) cannot be read or written: nothing was written. Instances keep their last configuration." },
  TRELLIS_CONFIG_INVALID: { httpStatus: 500, grpcCode: 'INTERNAL', outcome: 'config_invalid', description: 'A configuration was refused; the message names the file, document and field path. The last good configuration stays in force.' },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Where an error happened: any of these that are known. */
export interface ErrorSubject {
  service?: string | undefined;
  route?: string | undefined;
  endpoint?: string | undefined;
}

export interface TrellisErrorOptions extends ErrorSubject {
  cause?: unknown;
  /** Whether a retry (on another endpoint) could succeed. */
  retryable?: boolean;
}

function describeSubject(s: ErrorSubject): string {
  const parts: string[] = [];
  if (s.service !== undefined) parts.push(`service ${s.service}`);
  if (s.route !== undefined) parts.push(`route ${s.route}`);
  if (s.endpoint !== undefined) parts.push(`endpoint ${s.endpoint}`);
  return parts.length > 0 ? ` [${parts.join(', ')}]` : '';
}

/** Base class of every Trellis error. */
export class TrellisError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly service: string | undefined;
  readonly route: string | undefined;
  readonly endpoint: string | undefined;
  /** The message as given, without the code and subject: for a layer that re-raises it with more subject. */
  readonly detail: string;

  constructor(code: ErrorCode, message: string, options: TrellisErrorOptions = {}) {
    super(`${code}: ${message}${describeSubject(options)}`, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'TrellisError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.service = options.service;
    this.route = options.route;
    this.endpoint = options.endpoint;
    this.detail = message;
    Object.defineProperty(this, kTrellisError, { value: true });
  }

  /** HTTP status, gRPC code and metric outcome for this error's code. */
  get info(): ErrorCodeInfo {
    return ERROR_CODES[this.code];
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kTrellisError] === true;
  }
}

/**
 * True when `err` itself is a TrellisError (its brand), optionally with the given code; it does
 * not look through `cause`. Inside Trellis, where errors are never wrapped, this is the check.
 * The public `isTrellisError` (error-chain.ts) also finds one wrapped by fetch and the like.
 */
export function isTrellisError(err: unknown, code?: ErrorCode): err is TrellisError {
  return err instanceof TrellisError && (code === undefined || err.code === code);
}

// One subclass per code, so callers can `instanceof` the one they care about.
// `hasInstance` checks the brand and the code, so it holds across duplicate installs.
function codeClass<C extends ErrorCode>(code: C, name: string, defaultRetryable: boolean) {
  const cls = class extends TrellisError {
    declare readonly code: C;
    constructor(message: string, options: TrellisErrorOptions = {}) {
      super(code, message, { retryable: defaultRetryable, ...options });
      this.name = name;
    }
    static override [Symbol.hasInstance](value: unknown): boolean {
      return isTrellisError(value, code);
    }
  };
  Object.defineProperty(cls, 'name', { value: name });
  return cls;
}

export const NoEndpointsError = codeClass('TRELLIS_NO_ENDPOINTS', 'NoEndpointsError', false);
export const UnknownServiceError = codeClass('TRELLIS_UNKNOWN_SERVICE', 'UnknownServiceError', false);
export const NoRouteError = codeClass('TRELLIS_NO_ROUTE', 'NoRouteError', false);
export const CircuitOpenError = codeClass('TRELLIS_CIRCUIT_OPEN', 'CircuitOpenError', false);
export const RateLimitedError = codeClass('TRELLIS_RATE_LIMITED', 'RateLimitedError', false);
export const TimeoutError = codeClass('TRELLIS_TIMEOUT', 'TimeoutError', false);
export const RetriesExhaustedError = codeClass('TRELLIS_RETRIES_EXHAUSTED', 'RetriesExhaustedError', false);
export const ConnectFailedError = codeClass('TRELLIS_CONNECT_FAILED', 'ConnectFailedError', true);
export const ResetError = codeClass('TRELLIS_RESET', 'ResetError', true);
export const UpstreamError = codeClass('TRELLIS_UPSTREAM_ERROR', 'UpstreamError', false);
export const AbortedError = codeClass('TRELLIS_ABORTED', 'AbortedError', false);
export const ClosedError = codeClass('TRELLIS_CLOSED', 'ClosedError', false);
export const ForbiddenError = codeClass('TRELLIS_FORBIDDEN', 'ForbiddenError', false);
export const PeerIdentityError = codeClass('TRELLIS_PEER_IDENTITY', 'PeerIdentityError', false);
export const NoIdentityError = codeClass('TRELLIS_NO_IDENTITY', 'NoIdentityError', false);
export const TokenInvalidError = codeClass('TRELLIS_TOKEN_INVALID', 'TokenInvalidError', false);
export const CsrInvalidError = codeClass('TRELLIS_CSR_INVALID', 'CsrInvalidError', false);
export const InvalidArgumentError = codeClass('TRELLIS_INVALID_ARGUMENT', 'InvalidArgumentError', false);
export const OverloadedError = codeClass('TRELLIS_OVERLOADED', 'OverloadedError', false);
export const ConflictError = codeClass('TRELLIS_CONFLICT', 'ConflictError', false);
export const NotFoundError = codeClass('TRELLIS_NOT_FOUND', 'NotFoundError', false);
export const ControlPlaneStoreError = codeClass('TRELLIS_STORE_UNAVAILABLE', 'ControlPlaneStoreError', true);

/** One problem found in a configuration: where, and what. */
export interface ConfigIssue {
  /** File path, or `<inline>` for text and objects passed directly. */
  file: string;
  /** Zero-based index of the YAML document in the file. */
  document: number;
  /** Field path inside the document, e.g. `spec.retries.backoff.base`. */
  path: string;
  message: string;
  /** 1-based line in the file, when known. */
  line?: number | undefined;
  /** The source text at that line, for syntax errors. */
  near?: string | undefined;
}

function formatIssue(i: ConfigIssue): string {
  const where = `${i.file}${i.line !== undefined ? `:${i.line}` : ''} (document ${i.document})`;
  return `${where} ${i.path === '' ? '<root>' : i.path}: ${i.message}${i.near !== undefined ? ` (near ${JSON.stringify(i.near)})` : ''}`;
}

/** A configuration was refused; `issues` lists every problem, each with file, document and path. */
export class ConfigInvalidError extends TrellisError {
  declare readonly code: 'TRELLIS_CONFIG_INVALID';
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[], options: TrellisErrorOptions = {}) {
    const first = issues[0];
    const head = first !== undefined ? formatIssue(first) : 'invalid configuration';
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more: ${issues.slice(1, 6).map(formatIssue).join('; ')})` : '';
    super('TRELLIS_CONFIG_INVALID', `${head}${more}`, options);
    this.name = 'ConfigInvalidError';
    this.issues = issues;
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return isTrellisError(value, 'TRELLIS_CONFIG_INVALID');
  }
}
