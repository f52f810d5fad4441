/**
 * Least-request balancer: power of two choices (Mitzenmacher) on the number of attempts in
 * flight to each endpoint (`LbEndpoint.outstanding`, kept by the endpoint layer). Envoy's
 * LEAST_REQUEST with its default choice count of two. With one endpoint it returns it; ties
 * are broken at random; see `p2c.ts` for the algorithm and the `avoid` handling.
 */
import type { Random } from '../core/clock.js';
import type { Balancer, PickRequest } from './balancer.js';
import type { LbEndpoint } from './lb-endpoint.js';
import { p2cPick } from './p2c.js';

function outstanding(endpoint: LbEndpoint): number {
  return endpoint.outstanding;
}

class LeastRequestBalancer implements Balancer {
  readonly kind = 'least-request' as const;
  readonly #random: Random;
  #endpoints: readonly LbEndpoint[] = [];

  constructor(random: Random) {
    this.#random = random;
  }

  update(endpoints: readonly LbEndpoint[]): void {
    this.#endpoints = endpoints;
  }

  pick(req: PickRequest): LbEndpoint | undefined {
    return p2cPick(this.#endpoints, req.avoid, this.#random, outstanding, 0);
  }
}

/**
 * Makes a least-request (P2C on outstanding requests) balancer.
 *
 * @example
 * const lb = leastRequest(systemRandom);
 * lb.update(endpoints);
 * const e = lb.pick({ key: undefined, avoid: undefined });
 */
export function leastRequest(random: Random): Balancer {
  return new LeastRequestBalancer(random);
}
