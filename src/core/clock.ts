/**
 * Time and randomness, injected. Logic never calls `Date.now()`, `performance.now()` or
 * `Math.random()` itself, so algorithms (budgets, EWMA, ejection, backoff jitter) can be
 * tested deterministically with a manual clock and a seeded random source.
 */
import { performance } from 'node:perf_hooks';

export interface Clock {
  /** Monotonic milliseconds (fractional), for intervals, deadlines and rates. */
  now(): number;
  /** Wall-clock milliseconds since the epoch, for certificates and logs. */
  wall(): number;
}

/** A number in [0, 1), as `Math.random()` returns. */
export type Random = () => number;

export const systemClock: Clock = {
  now: () => performance.now(),
  wall: () => Date.now(),
};

export const systemRandom: Random = Math.random;

/** A clock that only moves when told to; for tests. */
export class ManualClock implements Clock {
  #now: number;
  #wall: number;
  constructor(start = 0, wallStart = 1_700_000_000_000) {
    this.#now = start;
    this.#wall = wallStart;
  }
  now(): number {
    return this.#now;
  }
  wall(): number {
    return this.#wall + this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
}

/** A deterministic random source (mulberry32); for tests and reproducible simulations. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
