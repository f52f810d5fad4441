/**
 * An adaptive concurrency limit: Netflix concurrency-limits' Gradient2 (Gradient2Limit.java),
 * which finds the number of requests in flight at which latency starts to grow, with no
 * threshold to guess. Each completed request gives a latency sample; a long-term average of
 * the samples (an exponential average over ~600 samples) stands for the latency without
 * queueing. Their ratio is the gradient:
 *
 *   gradient = clamp(0.5, 1, tolerance × longRtt / sampleRtt)
 *   limit    = limit × (1 − smoothing) + (limit × gradient + queueSize) × smoothing
 *
 * so the limit grows by about `queueSize × smoothing` per sample while latency holds, and
 * shrinks (at most halving per step) when latency rises above `tolerance` times the long-term
 * figure. As in the original: the limit does not move while the caller uses less than half of
 * it (an application-limited caller says nothing about capacity), and when the long-term
 * average is more than twice the sample (load went away) it decays 5 % per sample so the limit
 * recovers without waiting for the average.
 *
 * Pure: no clock, timers or randomness; callers measure latency themselves.
 */

export interface GradientLimitParams {
  initial: number;
  min: number;
  max: number;
  /** How much latency growth is tolerated before the limit shrinks (Gradient2 default 1.5). */
  tolerance?: number;
  /** Weight of each new estimate (Gradient2 default 0.2). */
  smoothing?: number;
  /** Headroom added to the limit each step (Gradient2 default 4). */
  queueSize?: number;
  /** Samples in the long-term average (Gradient2 default 600). */
  longWindow?: number;
}

/** Average of the first `warmup` samples, then an exponential average over `window`. */
class ExpAverage {
  #value = 0;
  #count = 0;
  readonly #warmup: number;
  readonly #factor: number;

  constructor(window: number, warmup: number) {
    this.#warmup = warmup;
    this.#factor = 2 / (window + 1);
  }

  add(sample: number): number {
    if (this.#count < this.#warmup) {
      this.#count++;
      this.#value += (sample - this.#value) / this.#count;
    } else {
      this.#value = this.#value * (1 - this.#factor) + sample * this.#factor;
    }
    return this.#value;
  }

  scale(factor: number): void {
    this.#value *= factor;
  }

  get value(): number {
    return this.#value;
  }
}

export class GradientLimit {
  #limit: number;
  #inflight = 0;
  readonly #min: number;
  readonly #max: number;
  readonly #tolerance: number;
  readonly #smoothing: number;
  readonly #queueSize: number;
  readonly #longRtt: ExpAverage;

  constructor(p: GradientLimitParams) {
    if (!(p.min >= 1 && p.max >= p.min && p.initial >= p.min && p.initial <= p.max)) {
      throw new RangeError(`concurrency limit bounds must satisfy 1 <= min <= initial <= max, got ${p.min} <= ${p.initial} <= ${p.max}`);
    }
    this.#limit = p.initial;
    this.#min = p.min;
    this.#max = p.max;
    this.#tolerance = p.tolerance ?? 1.5;
    this.#smoothing = p.smoothing ?? 0.2;
    this.#queueSize = p.queueSize ?? 4;
    this.#longRtt = new ExpAverage(p.longWindow ?? 600, 10);
  }

  /** The current limit (requests in flight), rounded down as Gradient2 reports it. */
  get limit(): number {
    return Math.floor(this.#limit);
  }

  get inflight(): number {
    return this.#inflight;
  }

  /** Takes a slot when one is free. `headroom` scales the limit (critical requests get more). */
  tryAcquire(headroom = 1): boolean {
    if (this.#inflight >= Math.max(1, Math.floor(this.#limit * headroom))) return false;
    this.#inflight++;
    return true;
  }

  /** Gives a slot back; `rttMs` is the request's latency, undefined when it says nothing (cancelled). */
  release(rttMs: number | undefined): void {
    const inflight = this.#inflight;
    this.#inflight = Math.max(0, inflight - 1);
    if (rttMs === undefined || !(rttMs > 0) || !Number.isFinite(rttMs)) return;
    this.#sample(rttMs, inflight);
  }

  #sample(rtt: number, inflight: number): void {
    const longRtt = this.#longRtt.add(rtt);
    if (longRtt / rtt > 2) this.#longRtt.scale(0.95);
    if (inflight < this.#limit / 2) return;
    const gradient = Math.max(0.5, Math.min(1, (this.#tolerance * longRtt) / rtt));
    const estimate = this.#limit * gradient + this.#queueSize;
    const next = this.#limit * (1 - this.#smoothing) + estimate * this.#smoothing;
    this.#limit = Math.max(this.#min, Math.min(this.#max, next));
  }
}
