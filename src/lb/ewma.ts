/**
 * Peak-EWMA balancer: power of two choices (Mitzenmacher) on `LbEndpoint.cost(now)`, the
 * latency estimate times (outstanding + 1). This is Finagle's `Balancers.p2cPeakEwma`, the
 * algorithm Linkerd's proxy balances with: the estimate jumps up at once on a slow response
 * (the "peak") and decays back over `EWMA_DECAY_MS`, so a slow endpoint is shed quickly and
 * tried again gradually as its estimate decays while it is idle. The estimate itself lives in
 * `lb-endpoint.ts`; this file only compares.
 */
import type { Clock, Random } from '../core/clock.js';
import type { Balancer, PickRequest } from './balancer.js';
import type { LbEndpoint } from './lb-endpoint.js';
import { p2cPick } from './p2c.js';

function cost(endpoint: LbEndpoint, now: number): number {
  return endpoint.cost(now);
}

class PeakEwmaBalancer implements Balancer {
  readonly kind = 'ewma' as const;
  readonly #random: Random;
  readonly #clock: Clock;
  #endpoints: readonly LbEndpoint[] = [];

  constructor(random: Random, clock: Clock) {
    this.#random = random;
    this.#clock = clock;
  }

  update(endpoints: readonly LbEndpoint[]): void {
    this.#endpoints = endpoints;
  }

  pick(req: PickRequest): LbEndpoint | undefined {
    const endpoints = this.#endpoints;
    if (endpoints.length === 0) return undefined;
    return p2cPick(endpoints, req.avoid, this.#random, cost, req.now ?? this.#clock.now());
  }
}

/**
 * Makes a peak-EWMA (P2C on latency × load) balancer.
 *
 * @example
 * const lb = peakEwma(systemRandom, systemClock);
 * lb.update(endpoints);
 * const e = lb.pick({ key: undefined, avoid: undefined });
 */
export function peakEwma(random: Random, clock: Clock): Balancer {
  return new PeakEwmaBalancer(random, clock);
}
