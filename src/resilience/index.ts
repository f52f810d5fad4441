/**
 * Resilience layers of the outbound stack, protocol-neutral: overall timeout and deadline,
 * retries (budget, backoff, per-try timeout) and the circuit breaker. Each takes its own small
 * params object; `src/client/outbound-stack.ts` maps the normalized config onto them and places
 * them (timeout → retry → rate limit → breaker → route).
 */
export { exponentialBackoff, type BackoffParams } from './backoff.js';
export { RetryBudget, type RetryBudgetParams, type RetryBudgetStats } from './retry-budget.js';
export { retryFilter, type RetryParams, type RetryDeps } from './retry-filter.js';
export { timeoutFilter, deadlineOnlyFilter, type TimeoutParams, type TimeoutDeps } from './timeout-filter.js';
export {
  CircuitBreaker,
  BreakerTicker,
  REFUSED,
  type BreakerOutcome,
  type BreakerState,
  type CircuitBreakerParams,
  type CircuitBreakerDeps,
  type CircuitBreakerStats,
} from './circuit-breaker.js';
export { TokenBucket, type TokenBucketParams } from './token-bucket.js';
export { localRateLimiter, formatRate, type RateLimiter, type LocalRateLimitParams } from './rate-limiter.js';
export { rateLimitFilter, rateLimitedError, retryAfterMsOf, type RateLimitFilterDeps, type RateLimitedErrorWithRetry } from './rate-limit-filter.js';
export { globalRateLimiter, batchFor, LEASE_MS, type GlobalRateLimiter, type GlobalRateLimitParams, type GlobalRateLimitDeps, type GlobalRateLimitStats, type GlobalRateLimitMode } from './global-rate-limiter.js';
export { createRedisClient, redactRedisUrl, type RedisClientParams } from './redis-client.js';
