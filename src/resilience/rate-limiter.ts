/**
 * RateLimiter: what the rate-limit filter (outbound, per destination or per route) and the
 * inbound limit ask of a limit — admit now or not, and if not, for how long to back off. Two
 * kinds stand behind it: `localRateLimiter` (a token bucket in this process: "per instance")
 * and `globalRateLimiter` (one bucket in Redis shared by every instance of a service).
 *
 * Invariant for every implementation: `tryAcquire()` is synchronous and cheap — it never
 * waits for I/O, never returns a promise, never throws. A limiter that talks to something
 * remote does so in the background and answers from local state.
 */
import type { Clock } from '../core/clock.js';
import { TokenBucket } from './token-bucket.js';

export interface RateLimiter {
  /** Takes one request's worth of the limit; false means refuse the request now. */
  tryAcquire(): boolean;
  /** After a refusal: milliseconds until a request would likely be admitted (>= 0, finite). */
  retryAfterMs(): number;
  /** One line for `describe()`, the CLI and error messages, e.g. `local 100/s burst 20`. */
  readonly description: string;
  /** Releases connections and timers; the process can exit afterwards. Idempotent. */
  close(): void;
}

export interface LocalRateLimitParams {
  requestsPerSecond: number;
  burst: number;
}

/** Formats a rate for descriptions: `100/s`, `0.5/s`. */
export function formatRate(requestsPerSecond: number, burst: number): string {
  return `${Number(requestsPerSecond.toPrecision(6))}/s burst ${burst}`;
}

/**
 * A per-instance limit: a token bucket of `burst` tokens earning `requestsPerSecond`.
 *
 * @example
 * const limiter = localRateLimiter({ requestsPerSecond: 100, burst: 20 }, systemClock);
 * if (!limiter.tryAcquire()) throw new Error(`retry in ${limiter.retryAfterMs()} ms`);
 */
export function localRateLimiter(spec: LocalRateLimitParams, clock: Clock): RateLimiter {
  const bucket = new TokenBucket({ ratePerSecond: spec.requestsPerSecond, burst: spec.burst }, clock);
  return {
    tryAcquire: () => bucket.tryTake(),
    retryAfterMs: () => bucket.retryAfterMs(),
    description: `local ${formatRate(spec.requestsPerSecond, spec.burst)}`,
    close: () => {},
  };
}
