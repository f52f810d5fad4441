/**
 * Rate-limit filter: admits a request when its `RateLimiter` has a token and fails it fast with
 * `RateLimitedError` (TRELLIS_RATE_LIMITED) when not — excess is refused, never queued, so an
 * overloaded caller sheds load at once (docs/reliability.md row C9) and memory stays bounded.
 *
 * Where it sits (the stack files say so too): outbound per destination below retry (so each
 * attempt, retries included, spends a token; a refused attempt is never retried) and above the
 * breaker (refused requests never reach it, so they cannot trip it); a per-route limit sits in
 * that route's part of the stack, after routing has named the route. Inbound per instance,
 * where the edge turns the error into 429 with `Retry-After` (or RESOURCE_EXHAUSTED).
 *
 * Hot path: one synchronous `tryAcquire()` then `next` — no timer, no extra promise. Only a
 * refusal allocates (the error and its rejected promise).
 *
 * The error carries `retryAfterMs` (a property, and in the message) so the inbound edge can
 * write `Retry-After` without parsing; `retryAfterMsOf(err)` reads it back.
 */
import type { CallContext } from '../core/context.js';
import { RateLimitedError } from '../core/errors.js';
import type { Filter } from '../core/service.js';
import type { RateLimiter } from './rate-limiter.js';

export interface RateLimitFilterDeps {
  /** What is limited, for the message: `products`, `products/route catalog`, `inbound`. */
  scope: string;
  /** Called for each refused request (metrics: outcome rate_limited), before the error. */
  onLimited?: (ctx: CallContext) => void;
}

/** A `RateLimitedError` that also says when to try again. */
export type RateLimitedErrorWithRetry = InstanceType<typeof RateLimitedError> & { readonly retryAfterMs: number };

/** Builds the error a refusal fails with: names the scope, the limit and the retry-after. */
export function rateLimitedError(limiter: RateLimiter, scope: string, ctx: CallContext): RateLimitedErrorWithRetry {
  const retryAfterMs = Math.max(0, Math.ceil(limiter.retryAfterMs()));
  const err = new RateLimitedError(`rate limit of ${scope} exceeded (${limiter.description}); retry after ${retryAfterMs} ms`, {
    service: ctx.service,
    route: ctx.route,
  });
  Object.defineProperty(err, 'retryAfterMs', { value: retryAfterMs, enumerable: true });
  return err as RateLimitedErrorWithRetry;
}

/** The retry-after of a rate-limit refusal, in ms; undefined for any other error. */
export function retryAfterMsOf(err: unknown): number | undefined {
  if (!(err instanceof RateLimitedError)) return undefined;
  const v = (err as { retryAfterMs?: unknown }).retryAfterMs;
  return typeof v === 'number' ? v : undefined;
}

/**
 * @example
 * const limit = rateLimitFilter<Req, Res>(localRateLimiter({ requestsPerSecond: 100, burst: 20 }, clock),
 *   { scope: 'products', onLimited: (ctx) => metrics.rateLimited(ctx.service) });
 */
export function rateLimitFilter<Req, Res>(limiter: RateLimiter, deps: RateLimitFilterDeps): Filter<Req, Res> {
  const { scope, onLimited } = deps;
  return (req, ctx, next) => {
    if (limiter.tryAcquire()) return next(req, ctx);
    const err = rateLimitedError(limiter, scope, ctx);
    try {
      onLimited?.(ctx);
    } catch {
      // A metrics hook must not change the outcome, nor throw where a promise is expected.
    }
    return Promise.reject(err);
  };
}
