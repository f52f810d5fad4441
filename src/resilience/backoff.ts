/**
 * Retry backoff: exponential with "full jitter" (Marc Brooker, "Exponential Backoff And Jitter",
 * AWS Architecture Blog, 2015). The n-th retry sleeps a uniform random time in
 * [0, min(maxMs, baseMs · 2^(n-1))], which spreads the retries of many clients that failed
 * together instead of letting them arrive in synchronized waves.
 *
 * Sits inside the retry filter, which asks it for the sleep before each retry. Randomness is
 * injected (`Random`), so tests are deterministic.
 *
 * Invariants: the result is always finite and within [0, min(maxMs, baseMs · 2^(retry-1))];
 * `retry` is 1-based (the first retry is 1); huge retry numbers saturate at `maxMs`.
 */
import type { Random } from '../core/clock.js';

export interface BackoffParams {
  /** Cap of the first retry's sleep, in ms. */
  baseMs: number;
  /** Largest sleep, in ms, however many retries came before. */
  maxMs: number;
}

/**
 * Builds a full-jitter backoff.
 *
 * @example
 * const backoff = exponentialBackoff({ baseMs: 25, maxMs: 250 }, systemRandom);
 * backoff(1); // in [0, 25]
 * backoff(3); // in [0, 100]
 * backoff(9); // in [0, 250]
 */
export function exponentialBackoff(params: BackoffParams, random: Random): (retry: number) => number {
  const { baseMs, maxMs } = params;
  if (!(Number.isFinite(baseMs) && baseMs >= 0)) throw new RangeError(`backoff baseMs must be a finite number >= 0, got ${baseMs}`);
  if (!(Number.isFinite(maxMs) && maxMs >= 0)) throw new RangeError(`backoff maxMs must be a finite number >= 0, got ${maxMs}`);
  return (retry: number): number => {
    const exp = Math.max(0, Math.floor(retry) - 1);
    // 2 ** 1100 is Infinity, and Math.min(maxMs, Infinity) is maxMs: no overflow case needed.
    const cap = Math.min(maxMs, baseMs * 2 ** exp);
    return random() * cap;
  };
}
