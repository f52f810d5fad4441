/**
 * Builds the balancer a Service's `loadBalancer` names. The backend level of the outbound
 * stack calls it once per backend when config changes, never per request; the balancer then
 * lives until the next config change, fed endpoint sets through `update`.
 */
import type { Clock, Random } from '../core/clock.js';
import type { Balancer, BalancerKind } from './balancer.js';
import { peakEwma } from './ewma.js';
import { leastRequest } from './least-request.js';
import { randomBalancer } from './random.js';
import { ringHash } from './ring-hash.js';
import { roundRobin } from './round-robin.js';

export interface BalancerDeps {
  readonly random: Random;
  readonly clock: Clock;
}

/**
 * Makes a balancer of the given kind.
 *
 * @example
 * const lb = makeBalancer('least-request', { random: systemRandom, clock: systemClock });
 */
export function makeBalancer(kind: BalancerKind, deps: BalancerDeps): Balancer {
  switch (kind) {
    case 'round-robin':
      return roundRobin(deps.random);
    case 'random':
      return randomBalancer(deps.random);
    case 'least-request':
      return leastRequest(deps.random);
    case 'ewma':
      return peakEwma(deps.random, deps.clock);
    case 'ring-hash':
      return ringHash(deps.random);
    default: {
      const unknown: never = kind;
      throw new TypeError(`unknown load balancer kind: ${String(unknown)}`);
    }
  }
}
