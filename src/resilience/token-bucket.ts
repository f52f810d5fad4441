/**
 * TokenBucket: the in-process rate limit primitive. A bucket holds up to `burst` tokens and
 * gains `ratePerSecond` tokens per second; a request takes one, and is refused (never queued)
 * when none is left. It serves the outbound and inbound per-instance limits directly, and is
 * the local fallback of the global (Redis) limiter.
 *
 * Algorithm: the classic token bucket (Turner, 1986; the shape of Envoy's local rate limit and
 * Guava's `SmoothBursty`), refilled lazily: no timer runs; each call first credits the tokens
 * earned since the previous call, read from the injected clock. So an idle bucket costs
 * nothing, and tests drive time with a `ManualClock`.
 *
 * Invariants: O(1) per call, no allocation, no promise; tokens stay in [0, burst] (up to a
 * rounding slack of 1e-9); a clock that goes backwards earns nothing until it is past the
 * last time seen again (as RetryBudget does), so no span of time is credited twice. Fractional tokens accumulate, so rates below
 * one per second work (0.5/s admits one request every two seconds).
 */
import type { Clock } from '../core/clock.js';

export interface TokenBucketParams {
  /** Tokens earned per second (> 0). */
  ratePerSecond: number;
  /** Bucket depth: the most tokens held at once, so the largest burst admitted (>= 1). */
  burst: number;
}

// Floating-point sums of `elapsed · rate` can land a hair below a whole token (0.9999999…);
// this slack keeps "exactly one token earned" from being refused.
const EPSILON = 1e-9;

export class TokenBucket {
  readonly #clock: Clock;
  readonly #perMs: number;
  readonly #burst: number;
  #tokens: number;
  #last: number;

  constructor(params: TokenBucketParams, clock: Clock) {
    const { ratePerSecond, burst } = params;
    if (!(Number.isFinite(ratePerSecond) && ratePerSecond > 0)) throw new RangeError(`token bucket rate must be a positive number, got ${ratePerSecond}`);
    if (!(Number.isFinite(burst) && burst >= 1)) throw new RangeError(`token bucket burst must be >= 1, got ${burst}`);
    this.#clock = clock;
    this.#perMs = ratePerSecond / 1000;
    this.#burst = burst;
    this.#tokens = burst; // starts full: a fresh instance may serve one burst at once
    this.#last = clock.now();
  }

  /** Takes `n` tokens if the bucket holds them; otherwise takes nothing and returns false. */
  tryTake(n = 1): boolean {
    this.#refill();
    if (this.#tokens + EPSILON < n) return false;
    this.#tokens -= n;
    return true;
  }

  /**
   * Milliseconds until `n` tokens will be there (0 when they are now), rounded up; `Infinity`
   * when `n` exceeds the burst, as no wait would do.
   */
  retryAfterMs(n = 1): number {
    if (n > this.#burst) return Infinity;
    this.#refill();
    const missing = n - this.#tokens;
    return missing <= EPSILON ? 0 : Math.ceil(missing / this.#perMs);
  }

  /** Whole tokens held now. */
  available(): number {
    this.#refill();
    return Math.floor(this.#tokens + EPSILON);
  }

  #refill(): void {
    const now = this.#clock.now();
    const elapsed = now - this.#last;
    if (elapsed <= 0) return;
    this.#last = now;
    const tokens = this.#tokens + elapsed * this.#perMs;
    this.#tokens = tokens < this.#burst ? tokens : this.#burst;
  }
}
