/**
 * Round-robin balancer. With equal weights it is plain round-robin: endpoints in turn, exactly.
 * With unequal weights it is nginx's smooth weighted round-robin (ngx_http_upstream_round_robin.c,
 * `ngx_http_upstream_get_peer`): each pick adds every endpoint's weight to its running `current`,
 * takes the endpoint with the highest `current` and subtracts the total from it. Each cycle of
 * `sum(weights)` picks chooses every endpoint exactly `weight` times (integer weights), with a
 * heavy endpoint's picks spread out rather than bunched (5:1:1 gives a a b a c a a).
 *
 * `avoid`: plain mode skips avoided endpoints in turn; weighted mode leaves them out of that
 * pick entirely, as nginx does with peers already tried. An avoided endpoint is chosen only
 * when every endpoint is avoided.
 *
 * `update` keeps the rotation: the plain cursor carries over (modulo the new size) and weighted
 * mode keeps each surviving endpoint's `current`, so an ejection or return does not restart the
 * sequence. With a `random` source the first cursor is random, as Envoy does, so many clients
 * started together do not all hit the first endpoint in lockstep.
 */
import type { Random } from '../core/clock.js';
import type { Balancer, PickRequest } from './balancer.js';
import { hasAvoid, randomIndex } from './choice.js';
import type { LbEndpoint } from './lb-endpoint.js';

class RoundRobinBalancer implements Balancer {
  readonly kind = 'round-robin' as const;
  readonly #random: Random | undefined;
  #endpoints: readonly LbEndpoint[] = [];
  /** Plain mode: index of the next endpoint in turn. */
  #next = 0;
  #started = false;
  /** Weighted mode (undefined when all weights are equal). */
  #weights: Float64Array | undefined;
  #current: Float64Array = new Float64Array(0);

  constructor(random: Random | undefined) {
    this.#random = random;
  }

  update(endpoints: readonly LbEndpoint[]): void {
    const n = endpoints.length;
    let equal = true;
    for (let i = 1; i < n; i++) if (endpoints[i]!.weight !== endpoints[0]!.weight) equal = false;

    if (equal) {
      this.#weights = undefined;
      this.#current = new Float64Array(0);
      if (!this.#started && n > 0 && this.#random !== undefined) this.#next = randomIndex(this.#random, n);
      this.#next = n > 0 ? this.#next % n : 0;
    } else {
      const previous = new Map<string, number>();
      for (let i = 0; i < this.#endpoints.length && i < this.#current.length; i++) {
        previous.set(this.#endpoints[i]!.id, this.#current[i]!);
      }
      const weights = new Float64Array(n);
      const current = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const e = endpoints[i]!;
        weights[i] = e.weight;
        current[i] = previous.get(e.id) ?? 0;
      }
      this.#weights = weights;
      this.#current = current;
    }
    if (n > 0) this.#started = true;
    this.#endpoints = endpoints;
  }

  pick(req: PickRequest): LbEndpoint | undefined {
    const endpoints = this.#endpoints;
    const n = endpoints.length;
    if (n === 0) return undefined;
    const avoid = hasAvoid(req.avoid) ? req.avoid : undefined;
    if (this.#weights === undefined) return this.#pickPlain(endpoints, n, avoid);
    return this.#pickWeighted(endpoints, this.#weights, avoid) ?? this.#pickWeighted(endpoints, this.#weights, undefined);
  }

  #pickPlain(endpoints: readonly LbEndpoint[], n: number, avoid: ReadonlySet<string> | undefined): LbEndpoint {
    let i = this.#next;
    if (avoid !== undefined) {
      for (let tries = 0; tries < n && avoid.has(endpoints[i]!.id); tries++) i = i + 1 === n ? 0 : i + 1;
      // Every endpoint avoided: i is back where it started, which is the fair choice.
    }
    this.#next = i + 1 === n ? 0 : i + 1;
    return endpoints[i]!;
  }

  /** One nginx SWRR step over the endpoints not avoided; undefined when all are avoided. */
  #pickWeighted(
    endpoints: readonly LbEndpoint[],
    weights: Float64Array,
    avoid: ReadonlySet<string> | undefined,
  ): LbEndpoint | undefined {
    const current = this.#current;
    let best = -1;
    let total = 0;
    for (let i = 0; i < endpoints.length; i++) {
      if (avoid !== undefined && avoid.has(endpoints[i]!.id)) continue;
      const w = weights[i]!;
      const c = current[i]! + w;
      current[i] = c;
      total += w;
      if (best < 0 || c > current[best]!) best = i;
    }
    if (best < 0) return undefined;
    current[best] = current[best]! - total;
    return endpoints[best];
  }
}

/**
 * Makes a round-robin balancer (smooth weighted when endpoint weights differ).
 *
 * @param random optional: when given, the first endpoint in turn is chosen at random.
 * @example
 * const lb = roundRobin();
 * lb.update(endpoints);
 * const target = lb.pick({ key: undefined, avoid: undefined });
 */
export function roundRobin(random?: Random): Balancer {
  return new RoundRobinBalancer(random);
}
