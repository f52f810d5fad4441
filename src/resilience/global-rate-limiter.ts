/**
 * Global rate limit: one limit shared by every instance of a service, kept in Redis as one
 * token bucket (see redis-token-bucket.ts: a Lua script, atomic, on Redis's clock). Two
 * instances sharing 50/s pass about 50/s together, not 100.
 *
 * Redis is never on a request's path. Each instance reserves tokens in batches into a local
 * allowance and spends it synchronously; `tryAcquire()` only reads and writes fields:
 * - Batches are small relative to the rate — `min(batchSize, ceil(rate / 10), burst)`, so
 *   about a tenth of a second of traffic — so no instance can hoard the limit; reserved tokens
 *   not spent within `LEASE_MS` expire (an idle instance gives its share back by not using it).
 * - Prefetch: when the allowance falls to half a batch, the next batch is requested in the
 *   background; requests meanwhile spend what is left.
 * - Credit: with the allowance spent and Redis not known to be empty (the last answer covered
 *   the whole request), up to one batch is admitted on credit and repaid from the next grant —
 *   so neither a cold start nor the first request after an idle spell waits on Redis or is
 *   refused for Redis's latency. Overshoot is bounded by one batch per instance, and repaid.
 * - When Redis answers "not enough", the instance refuses locally until Redis said a batch
 *   would be there, stretched by a random factor in [0.5, 1.5) — without the jitter, instances
 *   that asked in a fixed order would keep that order and the first would starve the others.
 *
 * Redis unreachable (refused, timed out, any command failure): the limiter falls back to a
 * LOCAL token bucket at the full spec rate and burst, per instance — so during an outage N
 * instances together may pass up to N × the limit (bounded, never unlimited). It says so once
 * per outage (`onWarn`, `onFallback(true)`), keeps serving, probes Redis with backoff (the
 * client reconnects at 50 ms doubling to 2 s), and on the first successful answer says so
 * again (`onWarn`, `onFallback(false)`) and goes back to the shared bucket.
 *
 * Invariants: `tryAcquire()` never awaits, never throws and allocates nothing except when it
 * starts a refill (one promise per batch, not per request); at most one refill in flight; no
 * timer of our own (ioredis's reconnect timer is the only one, and `close()` ends it with the
 * connection). After `close()` the limiter keeps limiting with its local bucket.
 */
import type { Redis } from 'ioredis';
import { systemRandom, type Clock, type Random } from '../core/clock.js';
import { formatRate, type RateLimiter } from './rate-limiter.js';
import { createRedisClient, redactRedisUrl } from './redis-client.js';
import { takeTokens, type BucketReply } from './redis-token-bucket.js';
import { TokenBucket } from './token-bucket.js';

export interface GlobalRateLimitParams {
  /** What the limit is shared by, e.g. `products` or `products/route catalog`; the Redis key is `trellis:rl:<key>`. */
  key: string;
  requestsPerSecond: number;
  burst: number;
  /** `redis://host:port` (Mesh `spec.redis.url`). */
  redisUrl: string;
  /** Largest batch of tokens reserved at once (default 100); batches are also capped by rate / 10 and burst. */
  batchSize?: number;
}

export interface GlobalRateLimitDeps {
  clock: Clock;
  /** One line per fallback and per recovery. */
  onWarn: (message: string) => void;
  /** true when the limiter starts limiting locally because Redis is unreachable, false when it recovers. */
  onFallback?: (active: boolean) => void;
  /** Jitter source (default Math.random). */
  random?: Random;
  /**
   * A client to share (one per mesh and URL, made with `createRedisClient`); the limiter then
   * leaves it open on `close()`. Without it, the limiter makes and owns its own.
   */
  client?: Redis;
}

export type GlobalRateLimitMode = 'connecting' | 'redis' | 'fallback' | 'closed';

export interface GlobalRateLimitStats {
  mode: GlobalRateLimitMode;
  /** Reserved tokens held locally (negative: admitted on credit, to be repaid). */
  allowance: number;
  /** Batch requests sent to Redis so far (a counter). */
  redisCalls: number;
  /** Tokens granted by Redis so far (a counter). */
  granted: number;
}

export interface GlobalRateLimiter extends RateLimiter {
  stats(): GlobalRateLimitStats;
}

/** How long reserved tokens stay good: unused ones expire, so idle instances hoard nothing. */
export const LEASE_MS = 1000;
const DEFAULT_BATCH = 100;
const PROBE_BASE_MS = 100;
const PROBE_MAX_MS = 2000;

/** Batch size for a rate: about a tenth of a second of traffic, at least 1, at most `batchSize` and `burst`. */
export function batchFor(requestsPerSecond: number, burst: number, batchSize = DEFAULT_BATCH): number {
  return Math.max(1, Math.min(Math.floor(batchSize), Math.ceil(requestsPerSecond / 10), Math.floor(burst)));
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${code} ${err.message}` : err.message;
  }
  return String(err);
}

/**
 * @example
 * const limiter = globalRateLimiter(
 *   { key: 'products', requestsPerSecond: 500, burst: 100, redisUrl: 'redis://10.0.0.5:6379' },
 *   { clock: systemClock, onWarn: (m) => log.warn(m), onFallback: (on) => metrics.fallback(on) });
 */
export function globalRateLimiter(spec: GlobalRateLimitParams, deps: GlobalRateLimitDeps): GlobalRateLimiter {
  return new RedisRateLimiter(spec, deps);
}

class RedisRateLimiter implements GlobalRateLimiter {
  readonly description: string;
  readonly #spec: GlobalRateLimitParams;
  readonly #redisKey: string;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #onWarn: (m: string) => void;
  readonly #onFallback: ((active: boolean) => void) | undefined;
  readonly #client: Redis;
  readonly #ownsClient: boolean;
  readonly #batch: number;
  readonly #lowWater: number;
  readonly #where: string;
  #mode: GlobalRateLimitMode = 'connecting';
  #local: TokenBucket;
  #allowance = 0;
  #leaseUntil = 0;
  /** Redis said it could not cover the last request: no credit until the next grant. */
  #exhausted = false;
  /** No refill before this (Redis said when; or probe backoff after a failure). */
  #nextRefillAt = -Infinity;
  #inFlight = false;
  #failures = 0;
  #redisCalls = 0;
  #grantedTotal = 0;
  readonly #onReady = (): void => this.#refillNow();
  readonly #onError = (err: unknown): void => this.#fail(err);
  // A connection closed without an error (Redis shut down cleanly) is an outage too.
  readonly #onClose = (): void => this.#fail(new Error('connection closed'));

  constructor(spec: GlobalRateLimitParams, deps: GlobalRateLimitDeps) {
    const { requestsPerSecond: rate, burst } = spec;
    if (spec.key === '') throw new RangeError('global rate limit needs a key');
    if (spec.batchSize !== undefined && !(Number.isInteger(spec.batchSize) && spec.batchSize >= 1)) {
      throw new RangeError(`global rate limit batchSize must be an integer >= 1, got ${spec.batchSize}`);
    }
    this.#spec = spec;
    this.#redisKey = `trellis:rl:${spec.key}`;
    this.#clock = deps.clock;
    this.#random = deps.random ?? systemRandom;
    this.#onWarn = deps.onWarn;
    this.#onFallback = deps.onFallback;
    this.#local = new TokenBucket({ ratePerSecond: rate, burst }, deps.clock); // also validates rate and burst
    this.#batch = batchFor(rate, burst, spec.batchSize);
    this.#lowWater = Math.floor(this.#batch / 2);
    this.#where = redactRedisUrl(spec.redisUrl);
    this.description = `global ${formatRate(rate, burst)} (key ${spec.key}, batch ${this.#batch}, ${this.#where})`;
    this.#ownsClient = deps.client === undefined;
    this.#client = deps.client ?? createRedisClient({ url: spec.redisUrl }, this.#random);
    this.#client.on('ready', this.#onReady);
    this.#client.on('error', this.#onError);
    this.#client.on('close', this.#onClose);
  }

  tryAcquire(): boolean {
    const mode = this.#mode;
    if (mode === 'fallback' || mode === 'closed') {
      const ok = this.#local.tryTake();
      if (mode === 'fallback') this.#refill(this.#clock.now()); // a probe, when due
      return ok;
    }
    const now = this.#clock.now();
    if (this.#allowance > 0 && now >= this.#leaseUntil) this.#allowance = 0;
    if (this.#allowance > 0) {
      this.#allowance--;
      if (this.#allowance <= this.#lowWater) this.#refill(now);
      return true;
    }
    if (!this.#exhausted && this.#allowance > -this.#batch) {
      this.#allowance--;
      this.#refill(now);
      return true;
    }
    this.#refill(now);
    return false;
  }

  retryAfterMs(): number {
    if (this.#mode === 'fallback' || this.#mode === 'closed') return this.#local.retryAfterMs();
    const now = this.#clock.now();
    if ((this.#allowance > 0 && now < this.#leaseUntil) || (!this.#exhausted && this.#allowance > -this.#batch)) return 0;
    if (this.#nextRefillAt > now) return Math.ceil(this.#nextRefillAt - now);
    return Math.max(1, Math.ceil(1000 / this.#spec.requestsPerSecond));
  }

  stats(): GlobalRateLimitStats {
    return { mode: this.#mode, allowance: this.#allowance, redisCalls: this.#redisCalls, granted: this.#grantedTotal };
  }

  close(): void {
    if (this.#mode === 'closed') return;
    this.#mode = 'closed';
    this.#client.off('ready', this.#onReady);
    this.#client.off('error', this.#onError);
    this.#client.off('close', this.#onClose);
    if (this.#ownsClient) this.#client.disconnect();
  }

  /** Starts a batch request if none is in flight, one is due, and the connection is up. */
  #refill(now: number): void {
    if (this.#inFlight || now < this.#nextRefillAt) return;
    const status = this.#client.status;
    if (status !== 'ready') {
      // Lazy connect on first use; `ready` then triggers the refill. Failures arrive as 'error'.
      if (status === 'wait') this.#client.connect().catch(() => {});
      return;
    }
    const want = Math.min(Math.floor(this.#spec.burst), this.#batch + Math.max(0, -this.#allowance));
    this.#inFlight = true;
    this.#redisCalls++;
    let pending: Promise<BucketReply>;
    try {
      pending = takeTokens(this.#client, { key: this.#redisKey, requestsPerSecond: this.#spec.requestsPerSecond, burst: this.#spec.burst, want });
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      (reply) => this.#onGrant(reply, want),
      (err: unknown) => {
        this.#inFlight = false;
        this.#fail(err);
      },
    );
  }

  /** On `ready` (connected or reconnected): refill at once if the limiter needs tokens or is probing. */
  #refillNow(): void {
    if (this.#mode === 'closed') return;
    if (this.#mode === 'fallback') this.#nextRefillAt = -Infinity;
    if (this.#mode === 'fallback' || this.#allowance <= this.#lowWater) this.#refill(this.#clock.now());
  }

  #onGrant(reply: BucketReply, want: number): void {
    this.#inFlight = false;
    if (this.#mode === 'closed') return;
    const now = this.#clock.now();
    if (this.#mode === 'fallback') {
      this.#allowance = 0;
      this.#notify(false, `global rate limit ${this.#spec.key}: Redis at ${this.#where} answers again; the shared limit ${formatRate(this.#spec.requestsPerSecond, this.#spec.burst)} is back in force`);
    }
    this.#mode = 'redis';
    this.#failures = 0;
    const granted = Math.max(0, Math.min(want, Math.floor(reply.granted)));
    this.#grantedTotal += granted;
    this.#allowance += granted;
    if (granted > 0) this.#leaseUntil = now + LEASE_MS;
    this.#exhausted = granted < want;
    this.#nextRefillAt = this.#exhausted ? now + Math.max(1, reply.waitMs) * (0.5 + this.#random()) : -Infinity;
  }

  #fail(err: unknown): void {
    if (this.#mode === 'closed') return;
    const now = this.#clock.now();
    this.#failures++;
    this.#nextRefillAt = now + Math.min(PROBE_MAX_MS, PROBE_BASE_MS * 2 ** Math.min(this.#failures - 1, 16));
    if (this.#mode === 'fallback') return;
    this.#mode = 'fallback';
    this.#allowance = 0;
    this.#exhausted = false;
    this.#local = new TokenBucket({ ratePerSecond: this.#spec.requestsPerSecond, burst: this.#spec.burst }, this.#clock);
    this.#notify(
      true,
      `global rate limit ${this.#spec.key}: Redis at ${this.#where} is unreachable (${errorText(err)}); limiting locally at ${formatRate(this.#spec.requestsPerSecond, this.#spec.burst)} per instance until it answers again`,
    );
  }

  #notify(active: boolean, message: string): void {
    // Called from event handlers and promise callbacks: a throwing hook must not escape.
    try {
      this.#onWarn(message);
    } catch {
      /* ignore */
    }
    try {
      this.#onFallback?.(active);
    } catch {
      /* ignore */
    }
  }
}
