/**
 * Random choice helpers shared by the balancers, all honouring `PickRequest.avoid`: an avoided
 * endpoint is chosen only when every endpoint is avoided (a retry still goes somewhere rather
 * than failing). They allocate nothing. The avoid-aware paths cost O(n) set look-ups; they run
 * only when `avoid` is non-empty, i.e. on retries, never on a first attempt.
 */
import type { Random } from '../core/clock.js';
import type { LbEndpoint } from './lb-endpoint.js';

/** A uniform index in [0, n), n >= 1. Clamped: `r * n` can round up to n when r is 1 - 2^-53. */
export function randomIndex(random: Random, n: number): number {
  const i = Math.floor(random() * n);
  return i < n ? i : n - 1;
}

/** Whether the request carries a non-empty avoid set. */
export function hasAvoid(avoid: ReadonlySet<string> | undefined): avoid is ReadonlySet<string> {
  return avoid !== undefined && avoid.size > 0;
}

/** How many endpoints are not avoided. */
export function countAllowed(endpoints: readonly LbEndpoint[], avoid: ReadonlySet<string>): number {
  let k = 0;
  for (let i = 0; i < endpoints.length; i++) if (!avoid.has(endpoints[i]!.id)) k++;
  return k;
}

/** The `rank`-th (0-based) endpoint that is not avoided; `rank` < countAllowed(). */
export function nthAllowed(endpoints: readonly LbEndpoint[], avoid: ReadonlySet<string>, rank: number): LbEndpoint {
  for (let i = 0; i < endpoints.length; i++) {
    const e = endpoints[i]!;
    if (!avoid.has(e.id) && rank-- === 0) return e;
  }
  throw new RangeError(`nthAllowed: rank out of range`);
}

/** A uniformly random endpoint, not avoided when another exists; undefined when empty. */
export function pickUniform(
  endpoints: readonly LbEndpoint[],
  avoid: ReadonlySet<string> | undefined,
  random: Random,
): LbEndpoint | undefined {
  const n = endpoints.length;
  if (n === 0) return undefined;
  if (hasAvoid(avoid)) {
    const k = countAllowed(endpoints, avoid);
    if (k > 0 && k < n) return nthAllowed(endpoints, avoid, randomIndex(random, k));
  }
  return endpoints[randomIndex(random, n)];
}
