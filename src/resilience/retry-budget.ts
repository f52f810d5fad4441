/**
 * RetryBudget: caps retries to a fraction of recent requests plus a small fixed allowance, so
 * retries cannot multiply load on a destination that is failing (a retry storm, docs/security.md
 * C8). One budget per destination, shared by its HTTP, fetch and gRPC calls; the retry filter
 * calls `deposit()` once per logical request and `tryWithdraw()` before each retry.
 *
 * Algorithm — the same as Finagle's TokenRetryBudget (twitter/finagle,
 * `finagle-core/.../service/RetryBudget.scala`, over `TokenBucket.newLeakyBucket` and
 * `WindowedAdder`), which Linkerd's budget (tower's `TpsBudget`) also copies:
 * - integer tokens with a scale factor of 1000, so ratios need no floating point:
 *   a deposit puts in 1000 tokens; a retry costs `floor(1000 / ratio)` tokens
 *   (with ratio 0, a deposit puts in 0 and a retry costs 1);
 * - deposits AND withdrawals are added (+/-) to a sliding window of 10 slices covering `ttl`;
 *   both expire when their slice leaves the window — nothing refills over time;
 * - a fixed `reserve = minPerSecond · ttlSeconds · retryCost` is added to the window's sum. It is
 *   not a bucket that refills: it is an offset, so the window's sum may go negative by up to it.
 * - a retry is allowed when `windowSum + reserve >= retryCost`; then `-retryCost` is added.
 * Hence, in any ttl window: retries <= ratio · requests + minPerSecond · ttlSeconds (e.g. ratio
 * 0.2, 10/s, 10 s: 1000 requests allow 200 + 100 retries). `available` is Finagle's `balance`:
 * `floor((windowSum + reserve) / retryCost)`.
 *
 * Differences from Finagle, both deliberate: ttlSeconds is `ttlMs / 1000` (Finagle truncates to
 * whole seconds; identical for whole seconds), and slices are aligned to multiples of
 * `ttl / 10` on the injected clock (Finagle restarts a slice at the first access after one
 * expires). Either way the window covers between 0.9·ttl and ttl. Requests and retries are kept
 * as separate counts per slice so `stats()` can report them; the sum is the same.
 *
 * Invariants: no timers (time is read from the injected clock on each call); O(10) work per
 * call at most; ratio in [0, 1000], minPerSecond >= 0, ttl in [1 s, 60 s] as Finagle requires.
 */
import type { Clock } from '../core/clock.js';

export interface RetryBudgetParams {
  /** Retries allowed as a fraction of requests in the window (0.2 = 20%). */
  ratio: number;
  /** Retries always allowed per second of the window, whatever the request volume. */
  minPerSecond: number;
  /** Window over which requests and retries count (1 000 – 60 000 ms). */
  ttlMs: number;
}

export interface RetryBudgetStats {
  /** Logical requests (deposits) in the window. */
  requests: number;
  /** Retries (successful withdrawals) in the window. */
  retries: number;
  /** Retries that would be allowed right now. */
  available: number;
}

const SCALE = 1000;
const SLICES = 10;

export class RetryBudget {
  readonly #clock: Clock;
  readonly #depositAmount: number;
  readonly #withdrawAmount: number;
  readonly #reserve: number;
  readonly #sliceMs: number;
  readonly #requests = new Float64Array(SLICES);
  readonly #retries = new Float64Array(SLICES);
  /** Index (time / sliceMs) of the newest slice; its counts live at `#head % SLICES`. */
  #head: number;

  constructor(params: RetryBudgetParams, clock: Clock) {
    const { ratio, minPerSecond, ttlMs } = params;
    if (!(Number.isFinite(ratio) && ratio >= 0 && ratio <= SCALE)) throw new RangeError(`retry budget ratio must be in [0, ${SCALE}], got ${ratio}`);
    if (!(Number.isFinite(minPerSecond) && minPerSecond >= 0)) throw new RangeError(`retry budget minPerSecond must be >= 0, got ${minPerSecond}`);
    if (!(Number.isFinite(ttlMs) && ttlMs >= 1000 && ttlMs <= 60_000)) throw new RangeError(`retry budget ttl must be in [1s, 60s], got ${ttlMs} ms`);
    this.#clock = clock;
    this.#depositAmount = ratio === 0 ? 0 : SCALE;
    this.#withdrawAmount = ratio === 0 ? 1 : Math.floor(SCALE / ratio);
    this.#reserve = Math.floor(minPerSecond * (ttlMs / 1000) * this.#withdrawAmount);
    this.#sliceMs = ttlMs / SLICES;
    this.#head = Math.floor(clock.now() / this.#sliceMs);
  }

  /**
   * Records one logical request (call once per request, not per attempt). `now`: the clock's
   * time when the caller has just read it (the hot path's call start), saving a clock read.
   */
  deposit(now: number = this.#clock.now()): void {
    this.#advance(now);
    this.#requests[this.#head % SLICES]! += 1;
  }

  /** Takes one retry from the budget; false (and nothing taken) when the budget is spent. */
  tryWithdraw(): boolean {
    this.#advance(this.#clock.now());
    if (this.#balance() < this.#withdrawAmount) return false;
    this.#retries[this.#head % SLICES]! += 1;
    return true;
  }

  stats(): RetryBudgetStats {
    this.#advance(this.#clock.now());
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < SLICES; i++) {
      requests += this.#requests[i]!;
      retries += this.#retries[i]!;
    }
    return { requests, retries, available: Math.max(0, Math.floor(this.#balance() / this.#withdrawAmount)) };
  }

  /** Tokens now: the window's deposits minus its withdrawals, plus the reserve. */
  #balance(): number {
    let sum = this.#reserve;
    for (let i = 0; i < SLICES; i++) sum += this.#requests[i]! * this.#depositAmount - this.#retries[i]! * this.#withdrawAmount;
    return sum;
  }

  /** Moves the window to `nowMs` (the clock's time), zeroing the slices that expired. */
  #advance(nowMs: number): void {
    const now = Math.floor(nowMs / this.#sliceMs);
    if (now <= this.#head) return; // also ignores a clock that went backwards
    const expired = Math.min(now - this.#head, SLICES);
    for (let k = 1; k <= expired; k++) {
      const i = (this.#head + k) % SLICES;
      this.#requests[i] = 0;
      this.#retries[i] = 0;
    }
    this.#head = now;
  }
}
