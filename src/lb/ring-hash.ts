/**
 * Ring-hash balancer: consistent hashing (Karger et al., "Consistent Hashing and Random Trees",
 * STOC 1997) with ketama-style virtual nodes. Each endpoint owns `replicas` points on a 32-bit
 * ring (scaled by its weight relative to the mean weight, at least one); a request's `key` is
 * hashed (MurmurHash3) and served by the first point clockwise. Adding or removing one of N
 * endpoints moves only about 1/N of the keys, and only keys to or from that endpoint.
 *
 * Invariants that keep remapping minimal and rings identical across instances:
 * - point k of an endpoint is `murmur3(id, k)`, so its points are a prefix of a fixed
 *   sequence: a count change (a weight change) adds or drops points at the end only;
 * - the ring depends only on the set of (id, weight), not on the order `update` receives it:
 *   equal hashes are ordered by endpoint id.
 *
 * `update` builds the ring (a sorted Uint32Array of point hashes and a parallel array of
 * owners); `pick` is one hash and one binary search. `avoid` walks clockwise to the next point
 * owned by an endpoint not avoided (the ring successor, as a retry in Envoy's ring hash does).
 * A request without a key gets a uniform random endpoint.
 */
import type { Random } from '../core/clock.js';
import type { Balancer, PickRequest } from './balancer.js';
import { hasAvoid, pickUniform } from './choice.js';
import type { LbEndpoint } from './lb-endpoint.js';
import { murmur3 } from './murmur3.js';

/** Ketama's 160 points per server: a load spread within about ±10 % of the mean. */
export const DEFAULT_RING_REPLICAS = 160;
/** Sorting packs (hash, endpoint index) into one exact double: hash · 2^21 + index < 2^53. */
const MAX_ENDPOINTS = 1 << 21;

export interface RingHashOptions {
  /** Virtual nodes per endpoint of mean weight (default 160). */
  readonly replicas?: number;
}

class RingHashBalancer implements Balancer {
  readonly kind = 'ring-hash' as const;
  readonly #random: Random;
  readonly #replicas: number;
  #endpoints: readonly LbEndpoint[] = [];
  #hashes: Uint32Array = new Uint32Array(0);
  #owners: LbEndpoint[] = [];
  /** Point hashes per endpoint id, kept across updates (ejections rebuild the ring often). */
  #pointCache = new Map<string, Uint32Array>();

  constructor(random: Random, replicas: number) {
    this.#random = random;
    this.#replicas = replicas;
  }

  update(endpoints: readonly LbEndpoint[]): void {
    this.#endpoints = endpoints;
    const n = endpoints.length;
    if (n > MAX_ENDPOINTS) throw new RangeError(`ring-hash: at most ${MAX_ENDPOINTS} endpoints`);
    const sorted = [...endpoints].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

    let weightSum = 0;
    for (const e of sorted) weightSum += e.weight;
    const mean = n > 0 ? weightSum / n : 1;

    const points: Uint32Array[] = [];
    let total = 0;
    const cache = new Map<string, Uint32Array>();
    for (const e of sorted) {
      const count = Math.max(1, Math.round((this.#replicas * e.weight) / mean));
      const p = this.#points(e.id, count);
      cache.set(e.id, p);
      points.push(p.subarray(0, count));
      total += count;
    }
    this.#pointCache = cache;

    const keys = new Float64Array(total);
    let at = 0;
    for (let i = 0; i < sorted.length; i++) {
      for (const h of points[i]!) keys[at++] = h * MAX_ENDPOINTS + i;
    }
    keys.sort();

    const hashes = new Uint32Array(total);
    const owners = new Array<LbEndpoint>(total);
    for (let p = 0; p < total; p++) {
      const key = keys[p]!;
      const i = key % MAX_ENDPOINTS;
      hashes[p] = (key - i) / MAX_ENDPOINTS;
      owners[p] = sorted[i]!;
    }
    this.#hashes = hashes;
    this.#owners = owners;
  }

  /** The first `count` point hashes of an endpoint, from the cache when it has enough. */
  #points(id: string, count: number): Uint32Array {
    const cached = this.#pointCache.get(id);
    if (cached !== undefined && cached.length >= count) return cached;
    const p = new Uint32Array(count);
    for (let k = 0; k < count; k++) p[k] = murmur3(id, k);
    return p;
  }

  pick(req: PickRequest): LbEndpoint | undefined {
    const key = req.key;
    if (key === undefined) return pickUniform(this.#endpoints, req.avoid, this.#random);
    const hashes = this.#hashes;
    const size = hashes.length;
    if (size === 0) return undefined;

    const h = murmur3(key);
    // First point with hash >= h, wrapping past the top of the ring to point 0.
    let lo = 0;
    let hi = size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (hashes[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    if (lo === size) lo = 0;

    const owners = this.#owners;
    const chosen = owners[lo]!;
    const avoid = req.avoid;
    if (!hasAvoid(avoid) || !avoid.has(chosen.id)) return chosen;
    for (let step = 1, p = lo + 1; step < size; step++, p++) {
      if (p === size) p = 0;
      const e = owners[p]!;
      if (!avoid.has(e.id)) return e;
    }
    return chosen; // every endpoint avoided
  }
}

/**
 * Makes a ring-hash (consistent hashing) balancer keyed by `PickRequest.key`.
 *
 * @example
 * const lb = ringHash(systemRandom, { replicas: 160 });
 * lb.update(endpoints);
 * lb.pick({ key: 'user-42', avoid: undefined }); // the same endpoint for 'user-42' every time
 */
export function ringHash(random: Random, opts: RingHashOptions = {}): Balancer {
  const replicas = opts.replicas ?? DEFAULT_RING_REPLICAS;
  if (!Number.isInteger(replicas) || replicas < 1) {
    throw new RangeError(`ring-hash: replicas must be a positive integer, got ${replicas}`);
  }
  return new RingHashBalancer(random, replicas);
}
