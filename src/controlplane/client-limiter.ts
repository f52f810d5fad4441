/**
 * Per-client rate limits for the control-plane API: one token bucket per client address, taken
 * before a request is read. A client over its rate gets 429 with Retry-After; others are not
 * affected. Buckets are kept for at most `maxClients` addresses (the least recently seen go
 * first), so a flood of addresses costs bounded memory.
 */
import type { Clock } from '../core/clock.js';
import { TokenBucket } from '../resilience/token-bucket.js';

export interface ClientLimitParams {
  readonly requestsPerSecond: number;
  readonly burst: number;
  readonly maxClients?: number;
}

export class ClientLimiter {
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #params: ClientLimitParams;
  readonly #clock: Clock;

  constructor(params: ClientLimitParams, clock: Clock) {
    this.#params = params;
    this.#clock = clock;
    new TokenBucket({ ratePerSecond: params.requestsPerSecond, burst: params.burst }, clock); // validates now, not at the first request
  }

  /** Takes a token for `client`: undefined when admitted, else milliseconds until it would be. */
  take(client: string): number | undefined {
    let bucket = this.#buckets.get(client);
    if (bucket === undefined) {
      bucket = new TokenBucket({ ratePerSecond: this.#params.requestsPerSecond, burst: this.#params.burst }, this.#clock);
      if (this.#buckets.size >= (this.#params.maxClients ?? 10_000)) {
        const oldest = this.#buckets.keys().next().value;
        if (oldest !== undefined) this.#buckets.delete(oldest);
      }
    } else {
      this.#buckets.delete(client); // re-inserted below: Map order is recency
    }
    this.#buckets.set(client, bucket);
    if (bucket.tryTake()) return undefined;
    return bucket.retryAfterMs();
  }
}
