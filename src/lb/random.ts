/**
 * Random balancer: each pick is an independent draw, uniform when endpoint weights are equal,
 * proportional to weight otherwise (a cumulative-weight table built in `update`, binary search
 * in `pick`). Stateless between picks, so it needs no coordination and no warm-up; its load
 * spread is the binomial one, worse than round-robin or P2C (Mitzenmacher) for small samples.
 *
 * `avoid`: the draw is made over the endpoints not avoided (in proportion to their weights),
 * falling back to all endpoints when every one is avoided.
 */
import type { Random } from '../core/clock.js';
import type { Balancer, PickRequest } from './balancer.js';
import { hasAvoid, randomIndex } from './choice.js';
import type { LbEndpoint } from './lb-endpoint.js';

class RandomBalancer implements Balancer {
  readonly kind = 'random' as const;
  readonly #random: Random;
  #endpoints: readonly LbEndpoint[] = [];
  /** Cumulative weights (cumulative[i] = sum of weights 0..i); undefined when all are equal. */
  #cumulative: Float64Array | undefined;

  constructor(random: Random) {
    this.#random = random;
  }

  update(endpoints: readonly LbEndpoint[]): void {
    const n = endpoints.length;
    let equal = true;
    for (let i = 1; i < n; i++) if (endpoints[i]!.weight !== endpoints[0]!.weight) equal = false;
    if (equal) {
      this.#cumulative = undefined;
    } else {
      const cumulative = new Float64Array(n);
      let sum = 0;
      for (let i = 0; i < n; i++) {
        sum += endpoints[i]!.weight;
        cumulative[i] = sum;
      }
      this.#cumulative = cumulative;
    }
    this.#endpoints = endpoints;
  }

  pick(req: PickRequest): LbEndpoint | undefined {
    const endpoints = this.#endpoints;
    const n = endpoints.length;
    if (n === 0) return undefined;
    if (hasAvoid(req.avoid)) {
      const chosen = this.#pickAllowed(endpoints, req.avoid);
      if (chosen !== undefined) return chosen;
    }
    const cumulative = this.#cumulative;
    if (cumulative === undefined) return endpoints[randomIndex(this.#random, n)];
    const target = this.#random() * cumulative[n - 1]!;
    // First index whose cumulative weight exceeds the target.
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cumulative[mid]! > target) hi = mid;
      else lo = mid + 1;
    }
    return endpoints[lo];
  }

  /** A weighted draw among endpoints not avoided; undefined when all are avoided. */
  #pickAllowed(endpoints: readonly LbEndpoint[], avoid: ReadonlySet<string>): LbEndpoint | undefined {
    let total = 0;
    let last: LbEndpoint | undefined;
    for (let i = 0; i < endpoints.length; i++) {
      const e = endpoints[i]!;
      if (avoid.has(e.id)) continue;
      total += e.weight;
      last = e;
    }
    if (last === undefined) return undefined;
    let target = this.#random() * total;
    for (let i = 0; i < endpoints.length; i++) {
      const e = endpoints[i]!;
      if (avoid.has(e.id)) continue;
      target -= e.weight;
      if (target < 0) return e;
    }
    return last; // rounding left the target at the very end
  }
}

/**
 * Makes a random balancer (weighted by endpoint weight).
 *
 * @example
 * const lb = randomBalancer(systemRandom);
 * lb.update(endpoints);
 * lb.pick({ key: undefined, avoid: new Set([firstTry.id]) });
 */
export function randomBalancer(random: Random): Balancer {
  return new RandomBalancer(random);
}
