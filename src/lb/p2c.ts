/**
 * Power of two choices (Mitzenmacher, "The Power of Two Choices in Randomized Load Balancing",
 * 2001): draw two distinct endpoints uniformly at random and take the less loaded. It keeps
 * the maximum load exponentially closer to the mean than one random choice, needs no global
 * ordering (so many independent clients do not herd onto one "best" endpoint, as
 * least-loaded-of-all does), and costs O(1) per pick. The least-request and peak-EWMA
 * balancers are this with different load functions (as in Finagle's `P2CBalancer` and
 * Linkerd's balancer).
 *
 * Ties go to the first candidate drawn; the pair is an ordered uniform draw, so that is
 * already a uniform random tie-break with no extra random number.
 * Weights are not used: load, not configuration, steers P2C (Linkerd does the same).
 */
import type { Random } from '../core/clock.js';
import { countAllowed, hasAvoid, nthAllowed, randomIndex } from './choice.js';
import type { LbEndpoint } from './lb-endpoint.js';

/** Load of one endpoint at time `now`; lower is better. Pass a module-level function. */
export type LoadFunction = (endpoint: LbEndpoint, now: number) => number;

/** Chooses by P2C; undefined when there are no endpoints. Allocation-free. */
export function p2cPick(
  endpoints: readonly LbEndpoint[],
  avoid: ReadonlySet<string> | undefined,
  random: Random,
  load: LoadFunction,
  now: number,
): LbEndpoint | undefined {
  const n = endpoints.length;
  if (n === 0) return undefined;
  if (hasAvoid(avoid)) {
    const k = countAllowed(endpoints, avoid);
    if (k > 0 && k < n) {
      if (k === 1) return nthAllowed(endpoints, avoid, 0);
      const a = randomIndex(random, k);
      let b = randomIndex(random, k - 1);
      if (b >= a) b++;
      return better(nthAllowed(endpoints, avoid, a), nthAllowed(endpoints, avoid, b), load, now);
    }
  }
  if (n === 1) return endpoints[0];
  const i = randomIndex(random, n);
  let j = randomIndex(random, n - 1);
  if (j >= i) j++;
  return better(endpoints[i]!, endpoints[j]!, load, now);
}

function better(a: LbEndpoint, b: LbEndpoint, load: LoadFunction, now: number): LbEndpoint {
  return load(b, now) < load(a, now) ? b : a;
}
