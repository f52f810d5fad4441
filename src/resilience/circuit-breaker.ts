/**
 * Circuit breaker for one destination: when the share of failed calls in a rolling window passes
 * a threshold, calls fail fast with `CircuitOpenError` instead of piling onto a failing service;
 * after `resetTimeoutMs` one probe call is let through (half-open) — success closes the circuit,
 * failure re-opens it. It sits below retries and rate limiting and above routing and the
 * balancer, so each attempt is admitted and counted on its own.
 *
 * The state machine is Hystrix's, as opossum 9 implements it, kept inline (no opossum): on the
 * closed path admitting a call is one state check and recording it two additions in a rolling
 * window (rolling-counts.ts), with no promise, event or timer per call. Rules:
 * - It opens when, after a failure, the window holds at least `volumeThreshold` calls and
 *   failures are more than `errorThresholdPercent` of them (opossum's `fail()` check).
 * - Open: calls are refused; after `resetTimeoutMs` (one unref'd timer) it is half-open.
 * - Half-open admits exactly one probe at a time; others are refused. The probe's success closes
 *   the circuit and empties the window (as Hystrix and resilience4j do, so failures from before
 *   an outage cannot re-open it at once); its failure re-opens it; an ignored probe (a caller
 *   abort) releases the slot, and the next call probes instead.
 * - `ignore` (a caller abort, an injected fault) counts as nothing; a failed *result* (an HTTP
 *   503) still reaches the caller.
 * - A result counts only in the state period it was admitted in (an epoch bumped on each
 *   transition), so a slow call admitted before the circuit opened cannot act as the probe.
 * - With `whenDone`, a successful result is reported when it is complete (HTTP: its body ended),
 *   as a failure if it ended in one (a reset mid-body). Not for the half-open probe: a caller
 *   that never reads its body would hold the probe, and the circuit, forever.
 * Why not opossum any more: Trellis had already taken admission, the probe slot, the epoch,
 * `ignore` and the deferred body report out of it (its `errorFilter` turns an error into a
 * success, which even closes a half-open circuit; it judges inside `fire()`, before a body ends);
 * what it still did — counting, the threshold check, the reset timer and three events — cost a
 * promise, a `fire`/`success` event pair and listener calls per call (~1.2 µs of the filter's
 * cost in bench/primitives.ts). None of its other features (fallback, cache, coalescing,
 * semaphore, its shared-AbortController timeout) is used.
 *
 * Two ways in: `filter` (a Filter, promise-based, for the Stack), and `admit()`/`report()` for
 * a handler-based request path: `const t = breaker.admit(); if (t < 0) fail(breaker.refusal(ctx));
 * ... breaker.report(t, 'success' | 'failure' | 'ignore')` exactly once per admitted token.
 *
 * Timers: bucket rotation comes from a `BreakerTicker` (one unref'd interval, shared by every
 * breaker with the same window, or owned by this breaker when none is given); the reset timer is
 * unref'd, so an open breaker never keeps a process alive. `close()` stops all of it; a closed
 * breaker lets calls through unprotected (a config swap may race with calls in flight).
 */
import { EventEmitter } from 'node:events';
import type { Classification, Classifier } from '../core/classify.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { CallContext } from '../core/context.js';
import { CircuitOpenError } from '../core/errors.js';
import type { Filter } from '../core/service.js';
import { RollingCounts } from './rolling-counts.js';
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerParams {
  /** Opens when failures exceed this percentage of calls in the window. */
  errorThresholdPercent: number;
  /** Calls needed in the window before the circuit may open. */
  volumeThreshold: number;
  /** Time open before a probe is let through. */
  resetTimeoutMs: number;
  /** Rolling window over which calls are counted (10 buckets). */
  windowMs: number;
}

export interface CircuitBreakerDeps<Res> {
  classify: Classifier<Res>;
  /** Destination service, for errors. */
  service: string;
  /** Source of 'rotate' events (one per window/10); a `BreakerTicker` is best. */
  rotate?: EventEmitter;
  onStateChange?: (state: BreakerState) => void;
  /** Used only to tell callers when the next probe is due. */
  clock?: Clock;
  /** Calls `done` once a successful result is complete, `failed` when it ended in a failure. */
  whenDone?: (res: Res, done: (failed: boolean) => void) => void;
}

export interface CircuitBreakerStats {
  state: BreakerState;
  /** Calls counted in the window (successes + failures). */
  requests: number;
  successes: number;
  failures: number;
  /** failures / requests · 100, 0 when there were no requests. */
  errorPercent: number;
  /** Calls refused with CircuitOpenError since the breaker was made (a counter). */
  rejected: number;
}

const BUCKETS = 10;

/** One unref'd interval that rotates the rolling windows of every breaker with this `windowMs`. */
export class BreakerTicker extends EventEmitter {
  readonly windowMs: number;
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(windowMs: number) {
    super();
    const interval = Math.floor(windowMs / BUCKETS);
    if (!(Number.isFinite(windowMs) && interval >= 1)) throw new RangeError(`breaker windowMs must be >= ${BUCKETS} ms, got ${windowMs}`);
    this.windowMs = windowMs;
    this.setMaxListeners(0); // one listener per breaker
    this.#timer = setInterval(() => this.emit('rotate'), interval);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
  }
}

/** What `admit()` answers when the call is refused. */
export const REFUSED = -1;

/** What a settled call counts as: `ignore` counts as nothing (but releases a probe). */
export type BreakerOutcome = Classification['kind'];

export class CircuitBreaker<Req, Res> {
  readonly #params: CircuitBreakerParams;
  readonly #classify: Classifier<Res>;
  readonly #whenDone: CircuitBreakerDeps<Res>['whenDone'];
  readonly #onStateChange: CircuitBreakerDeps<Res>['onStateChange'];
  readonly #service: string;
  readonly #clock: Clock;
  readonly #ticker: EventEmitter;
  readonly #ownTicker: BreakerTicker | undefined;
  readonly #window = new RollingCounts(BUCKETS);
  readonly #rotate = (): void => this.#window.rotate();
  #state: BreakerState = 'closed';
  /** Bumped on every transition; a token carries the epoch it was admitted in. */
  #epoch = 0;
  #probing = false;
  #openedAt = 0;
  #rejected = 0;
  #resetTimer: ReturnType<typeof setTimeout> | undefined;
  #shut = false;

  constructor(params: CircuitBreakerParams, deps: CircuitBreakerDeps<Res>) {
    const { errorThresholdPercent, volumeThreshold, resetTimeoutMs, windowMs } = params;
    if (!(errorThresholdPercent > 0 && errorThresholdPercent <= 100)) throw new RangeError(`breaker errorThresholdPercent must be in (0, 100], got ${errorThresholdPercent}`);
    if (!(Number.isInteger(volumeThreshold) && volumeThreshold >= 0)) throw new RangeError(`breaker volumeThreshold must be an integer >= 0, got ${volumeThreshold}`);
    if (!(Number.isFinite(resetTimeoutMs) && resetTimeoutMs > 0)) throw new RangeError(`breaker resetTimeoutMs must be > 0, got ${resetTimeoutMs}`);
    if (deps.rotate instanceof BreakerTicker && deps.rotate.windowMs !== windowMs) {
      throw new RangeError(`breaker windowMs ${windowMs} does not match its shared ticker's ${deps.rotate.windowMs}`);
    }
    this.#params = params;
    this.#classify = deps.classify;
    this.#whenDone = deps.whenDone;
    this.#onStateChange = deps.onStateChange;
    this.#service = deps.service;
    this.#clock = deps.clock ?? systemClock;
    this.#ownTicker = deps.rotate === undefined ? new BreakerTicker(windowMs) : undefined;
    this.#ticker = deps.rotate ?? (this.#ownTicker as BreakerTicker);
    this.#ticker.on('rotate', this.#rotate);
  }

  get state(): BreakerState {
    return this.#state;
  }

  /**
   * Admits a call or refuses it: a token (>= 0) to hand to `report()` once the call settles, or
   * `REFUSED` (counted in `stats().rejected`; fail the call with `refusal(ctx)`). A closed
   * breaker admits everything, reporting nothing.
   */
  admit(): number {
    if (this.#state === 'closed' || this.#shut) return this.#epoch * 2;
    if (this.#state === 'half-open' && !this.#probing) {
      this.#probing = true;
      return this.#epoch * 2 + 1;
    }
    this.#rejected++;
    return REFUSED;
  }

  /** The error for a refused call: when the next probe is due, or that the probe is in flight. */
  refusal(ctx: Pick<CallContext, 'route'>): InstanceType<typeof CircuitOpenError> {
    const message = this.#state === 'half-open'
      ? 'circuit is half-open and its probe is in flight; failing fast until the probe completes'
      : `circuit is open; next probe in ~${Math.max(0, Math.round(this.#openedAt + this.#params.resetTimeoutMs - this.#clock.now()))} ms`;
    return new CircuitOpenError(message, { service: this.#service, route: ctx.route });
  }

  /** Counts a settled call admitted with `token`; a token from an earlier state period counts for nothing. */
  report(token: number, outcome: BreakerOutcome): void {
    if (this.#shut || token < 0 || Math.floor(token / 2) !== this.#epoch) return;
    const probe = (token & 1) === 1;
    if (probe) {
      this.#probing = false;
      // Half-open admits only probes, so a new period invalidates nothing but this probe's token.
      if (outcome === 'ignore') this.#epoch++;
    }
    if (outcome === 'success') {
      if (probe) this.#transition('closed');
      else this.#window.success();
    } else if (outcome === 'failure') {
      const w = this.#window;
      w.failure();
      if (probe) this.#transition('open');
      else if (this.#state === 'closed' && w.total >= this.#params.volumeThreshold && (w.failures / w.total) * 100 > this.#params.errorThresholdPercent) this.#transition('open');
    }
  }

  /** The breaker as a filter: fails fast when open, lets one probe through when half-open. */
  readonly filter: Filter<Req, Res> = (req, ctx, next) => {
    const token = this.admit();
    if (token === REFUSED) return Promise.reject(this.refusal(ctx));
    let pending: Promise<Res>;
    try {
      pending = next(req, ctx);
    } catch (e) {
      pending = Promise.reject(e);
    }
    return pending.then(
      (res) => {
        this.#settled(token, res, undefined);
        return res;
      },
      (err: unknown) => {
        this.#settled(token, undefined, err);
        throw err;
      },
    );
  };

  #settled(token: number, res: Res | undefined, err: unknown): void {
    const kind = this.#classify(res, err).kind;
    const whenDone = this.#whenDone;
    if (kind === 'success' && res !== undefined && err === undefined && (token & 1) === 0 && whenDone !== undefined) {
      whenDone(res, (failed) => this.report(token, failed ? 'failure' : 'success'));
      return;
    }
    this.report(token, kind);
  }

  stats(): CircuitBreakerStats {
    const w = this.#window;
    const requests = w.total;
    return {
      state: this.#state,
      requests,
      successes: w.successes,
      failures: w.failures,
      errorPercent: requests === 0 ? 0 : (w.failures / requests) * 100,
      rejected: this.#rejected,
    };
  }

  /** Stops the reset timer and detaches from the ticker; calls then pass through unprotected. */
  close(): void {
    this.#shut = true;
    this.#ticker.off('rotate', this.#rotate);
    this.#ownTicker?.close();
    if (this.#resetTimer !== undefined) clearTimeout(this.#resetTimer);
    this.#resetTimer = undefined;
  }

  #transition(to: BreakerState): void {
    if (this.#state === to || this.#shut) return;
    this.#state = to;
    this.#epoch++;
    this.#probing = false;
    if (to === 'open') {
      this.#openedAt = this.#clock.now();
      const timer = setTimeout(() => {
        this.#resetTimer = undefined;
        if (this.#state === 'open') this.#transition('half-open');
      }, this.#params.resetTimeoutMs);
      timer.unref();
      this.#resetTimer = timer;
    } else if (to === 'closed') {
      this.#window.clear();
    }
    try {
      this.#onStateChange?.(to);
    } catch {
      // A listener's error (the mesh's 'breaker' event reaches application code) must not fail
      // the call whose result moved the circuit.
    }
  }
}
