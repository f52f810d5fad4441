/**
 * Successes and failures over a rolling window of `buckets` buckets (Hystrix's and opossum's
 * model): recording adds to the newest bucket and to running totals; `rotate()` (one tick of a
 * shared timer, every window/buckets ms) drops the oldest bucket from the totals and starts a new
 * one. Totals are exact integers: no sum over the buckets on read, no allocation after build.
 */
export class RollingCounts {
  readonly #ok: Float64Array;
  readonly #failed: Float64Array;
  /** Index of the newest bucket. */
  #head = 0;
  successes = 0;
  failures = 0;

  constructor(buckets: number) {
    this.#ok = new Float64Array(buckets);
    this.#failed = new Float64Array(buckets);
  }

  success(): void {
    this.#ok[this.#head] = (this.#ok[this.#head] as number) + 1;
    this.successes++;
  }

  failure(): void {
    this.#failed[this.#head] = (this.#failed[this.#head] as number) + 1;
    this.failures++;
  }

  /** Successes + failures in the window. */
  get total(): number {
    return this.successes + this.failures;
  }

  /** The oldest bucket leaves the window; the newest is empty. */
  rotate(): void {
    const n = this.#ok.length;
    const oldest = (this.#head + 1) % n;
    this.successes -= this.#ok[oldest] as number;
    this.failures -= this.#failed[oldest] as number;
    this.#ok[oldest] = 0;
    this.#failed[oldest] = 0;
    this.#head = oldest;
  }

  /** Empties the window. */
  clear(): void {
    this.#ok.fill(0);
    this.#failed.fill(0);
    this.successes = 0;
    this.failures = 0;
  }
}
