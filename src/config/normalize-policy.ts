/**
 * Defaults and merging for the policy blocks shared by Services, routes and the inbound side:
 * retries (implicit, explicit, and a route's merged over its service's), rate limits and faults.
 * Part of normalization (`normalize.ts`); pure.
 */

import type { GrpcStatusName } from './schema-common.js';
import type { RawFault, RawRateLimit, RawRetries } from './schema-policy.js';
import type { FaultSpec, Protocol, RateLimitSpec, RetrySpec } from './types.js';

/** Linkerd's retry budget: retries may add 20% to the load, plus 10 a second, over 10 s. */
const BUDGET = { ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 };
const BACKOFF = { baseMs: 25, maxMs: 250 };
const MAX_REPLAY_BYTES = 65_536;

/** With no `retries` block, only connect failures are retried, once: nothing reached the upstream. */
export function implicitRetries(): RetrySpec {
  return {
    attempts: 2,
    perTryTimeoutMs: undefined,
    on: ['connect-failure'],
    backoff: { ...BACKOFF },
    budget: { ...BUDGET },
    maxReplayBytes: MAX_REPLAY_BYTES,
    explicit: false,
  };
}

/** A written `retries` block's defaults for fields it leaves out. */
export function explicitRetryDefaults(protocol: Protocol): RetrySpec {
  const on =
    protocol === 'grpc'
      ? ['connect-failure', 'unavailable'] // gRPC's own retry default is UNAVAILABLE
      : protocol === 'tcp'
        ? ['connect-failure'] // a TCP stream cannot be replayed once bytes flowed
        : ['connect-failure', 'reset', 'gateway-error'];
  return { ...implicitRetries(), attempts: 3, on, explicit: true };
}

/** `raw`'s written fields over `base` (backoff and budget field by field). */
export function mergeRetries(base: RetrySpec, raw: RawRetries): RetrySpec {
  const baseMs = raw.backoff?.base ?? base.backoff.baseMs;
  // A longer base than the inherited max raises the max, rather than inverting them.
  const maxMs = raw.backoff?.max ?? Math.max(base.backoff.maxMs, baseMs);
  return {
    attempts: raw.attempts ?? base.attempts,
    perTryTimeoutMs: raw.perTryTimeout ?? base.perTryTimeoutMs,
    on: raw.on === undefined ? [...base.on] : [...new Set(raw.on)],
    backoff: { baseMs, maxMs },
    budget: {
      ratio: raw.budget?.ratio ?? base.budget.ratio,
      minPerSecond: raw.budget?.minPerSecond ?? base.budget.minPerSecond,
      ttlMs: raw.budget?.ttl ?? base.budget.ttlMs,
    },
    maxReplayBytes: raw.maxReplayBytes ?? base.maxReplayBytes,
    explicit: true,
  };
}

export function normalizeRateLimit(raw: RawRateLimit | undefined): RateLimitSpec | undefined {
  if (raw === undefined) return undefined;
  return {
    requestsPerSecond: raw.requestsPerSecond,
    // A bucket as deep as one second of traffic (at least one token, so rates below 1/s work).
    burst: raw.burst ?? Math.max(1, Math.ceil(raw.requestsPerSecond)),
    scope: raw.scope ?? 'instance',
  };
}

/**
 * The HTTP status an abort answers with when only `grpcStatus` is written: the mapping of
 * google.rpc.Code to HTTP used by grpc-gateway and Google APIs.
 */
const GRPC_TO_HTTP: Record<GrpcStatusName, number> = {
  cancelled: 499,
  unknown: 500,
  'invalid-argument': 400,
  'deadline-exceeded': 504,
  'not-found': 404,
  'already-exists': 409,
  'permission-denied': 403,
  'resource-exhausted': 429,
  'failed-precondition': 400,
  aborted: 409,
  'out-of-range': 400,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  'data-loss': 500,
  unauthenticated: 401,
};

export function normalizeFault(raw: RawFault | undefined): FaultSpec | undefined {
  if (raw === undefined) return undefined;
  const abort = raw.abort;
  return {
    delay: raw.delay === undefined ? undefined : { durationMs: raw.delay.duration, percent: raw.delay.percent ?? 100 },
    abort:
      abort === undefined
        ? undefined
        : {
            status: abort.status ?? GRPC_TO_HTTP[abort.grpcStatus ?? 'unavailable'],
            percent: abort.percent ?? 100,
            grpcStatus: abort.grpcStatus,
          },
  };
}
