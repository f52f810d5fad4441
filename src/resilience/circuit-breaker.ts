/**
 * Circuit breaker for one destination, over opossum 9: when the share of failed calls in a rolling
 * window passes a threshold, calls fail fast with `CircuitOpenError` instead of piling onto a
 * failing service; after `resetTimeoutMs` one probe call is let through (half-open) — success
 * closes the circuit, failure re-opens it. It sits below retries and rate limiting and above
 * routing and the balancer, so each attempt is admitted and counted on its own.
 *
 * How opossum is used. Opossum keeps the rolling window (10 buckets over `windowMs`), decides when
 * to open (failures/fires > errorThresholdPercent once fires >= volumeThreshold), runs the
 * unref'd reset timer and emits open/halfOpen/close. We admit calls ourselves from its state, run
 * `next` outside it, and only then report the classified outcome with `fire(ok)`, an action that
 * resolves (success) or rejects with a marker (failure). Why not run `next` inside `fire`:
 * - `ignore` (a caller abort, an injected fault) must count as nothing. Opossum has only success
 *   and failure: its `errorFilter` turns an error into a *success*, which even closes a half-open
 *   circuit (a test shows this). Reporting afterwards lets us simply not report.
 * - a failed *result* (an HTTP 503) must still reach the caller; it never enters opossum at all.
 * - half-open admits exactly one probe: opossum does this itself (the first `fire` clears
 *   PENDING_CLOSE), but since our fire happens after the call, we hold our own probe flag for the
 *   call's duration. An ignored probe releases it, and the next call probes instead.
 * - a result counts only in the state period it was admitted in (an epoch bumped on each state
 *   change), so a slow call admitted before the circuit opened cannot act as the half-open probe.
 * - with `whenDone`, a successful result is reported when it is complete (HTTP: its body ended),
 *   as a failure if it ended in one (a reset mid-body). Not for the half-open probe: a caller
 *   that never reads its body would hold the probe, and the circuit, forever.
 * Also: `timeout: false` (timeouts are our own layer; opossum's shared abortController would abort
 * every call in flight), `enableSnapshots: false`, no latency percentiles (they sort on every
 * `stats` read), and the window is cleared when the circuit closes (as Hystrix and resilience4j
 * do), so failures from before an outage cannot re-open it at once.
 *
 * Timers: bucket rotation comes from a `BreakerTicker` (one unref'd interval, shared by every
 * breaker with the same window, or owned by this breaker when none is given); opossum's reset
 * timer is unref'd in 9.0, so an open breaker never keeps a process alive. `close()` stops all of it;
 * a closed breaker lets calls through unprotected (a config swap may race with calls in flight).
 */
import { EventEmitter } from 'node:events';
import Opossum from 'opossum';
import type { Classifier } from '../core/classify.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { CallContext } from '../core/context.js';
import { CircuitOpenError } from '../core/errors.js';
import type { Filter } from '../core/service.js';

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
  /** Destination service, for errors and opossum's name. */
  service: string;
  /** Source of 'rotate' events (opossum's rotateBucketController); a `BreakerTicker` is best. */
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

const REPORTED_OK = Promise.resolve();
const REPORTED_FAILURE = Object.freeze({ trellisBreakerFailure: true });
const report = (ok: boolean): Promise<void> => (ok ? REPORTED_OK : Promise.reject(REPORTED_FAILURE));
const noop = (): void => {};

export class CircuitBreaker<Req, Res> {
  readonly #breaker: Opossum<[boolean], void>;
  readonly #params: CircuitBreakerParams;
  readonly #classify: Classifier<Res>;
  readonly #whenDone: CircuitBreakerDeps<Res>['whenDone'];
  readonly #service: string;
  readonly #clock: Clock;
  readonly #ticker: EventEmitter;
  readonly #ownTicker: BreakerTicker | undefined;
  /** What opossum listens to; forwards the ticker's rotations, and lets us clear the window. */
  readonly #relay = new EventEmitter();
  readonly #forward = (): boolean => this.#relay.emit('rotate');
  #epoch = 0;
  #probing = false;
  #openedAt = 0;
  #rejected = 0;

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
    this.#service = deps.service;
    this.#clock = deps.clock ?? systemClock;
    this.#ownTicker = deps.rotate === undefined ? new BreakerTicker(windowMs) : undefined;
    this.#ticker = deps.rotate ?? (this.#ownTicker as BreakerTicker);
    this.#ticker.on('rotate', this.#forward);

    this.#breaker = new Opossum(report, {
      name: deps.service,
      timeout: false,
      resetTimeout: resetTimeoutMs,
      errorThresholdPercentage: errorThresholdPercent,
      volumeThreshold,
      rollingCountTimeout: windowMs,
      rollingCountBuckets: BUCKETS,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      rotateBucketController: this.#relay,
    });
    const onStateChange = deps.onStateChange;
    this.#breaker.on('open', () => {
      this.#epoch++;
      this.#openedAt = this.#clock.now();
      onStateChange?.('open');
    });
    this.#breaker.on('halfOpen', () => {
      this.#epoch++;
      onStateChange?.('half-open');
    });
    this.#breaker.on('close', () => {
      this.#epoch++;
      for (let i = 0; i < BUCKETS; i++) this.#relay.emit('rotate'); // start a fresh window
      onStateChange?.('closed');
    });
  }

  get state(): BreakerState {
    if (this.#breaker.opened) return 'open';
    if (this.#breaker.halfOpen) return 'half-open';
    return 'closed';
  }

  /** The breaker as a filter: fails fast when open, lets one probe through when half-open. */
  readonly filter: Filter<Req, Res> = async (req, ctx, next) => {
    const breaker = this.#breaker;
    let probe = false;
    if (!breaker.closed && !breaker.isShutdown) {
      if (breaker.halfOpen && breaker.pendingClose && !this.#probing) probe = this.#probing = true;
      else {
        this.#rejected++;
        throw this.#openError(ctx);
      }
    }
    const epoch = this.#epoch;
    let result: Res | undefined;
    let error: unknown;
    let threw = false;
    try {
      result = await next(req, ctx);
    } catch (e) {
      threw = true;
      error = e;
    } finally {
      if (probe) this.#probing = false;
    }
    const cls = this.#classify(result, error);
    const whenDone = this.#whenDone;
    if (cls.kind === 'success' && !threw && !probe && whenDone !== undefined) {
      whenDone(result as Res, (failed) => {
        if (epoch === this.#epoch && !breaker.isShutdown) breaker.fire(!failed).then(noop, noop);
      });
      return result as Res;
    }
    if (cls.kind !== 'ignore' && epoch === this.#epoch && !breaker.isShutdown) {
      // Rejections here are opossum's own (shut down meanwhile): nothing to tell the caller.
      await breaker.fire(cls.kind === 'success').then(noop, noop);
    }
    if (threw) throw error;
    return result as Res;
  };

  /**
   * Inline admission, for the handler-based hot path (src/client/outbound-call.ts), with the
   * filter's rules: a ticket (>= 0) naming the state period and whether the call is the half-open
   * probe, or -1 when the circuit refuses (then `openError`). Every admitted ticket is settled
   * once with `release`, and its outcome reported at most once with `record`.
   */
  admit(): number {
    const breaker = this.#breaker;
    if (breaker.closed || breaker.isShutdown) return this.#epoch * 2;
    if (breaker.halfOpen && breaker.pendingClose && !this.#probing) {
      this.#probing = true;
      return this.#epoch * 2 + 1;
    }
    this.#rejected++;
    return -1;
  }

  /** Whether `ticket` is the half-open probe. */
  static isProbe(ticket: number): boolean {
    return ticket % 2 === 1;
  }

  /** The error for a refused admission. */
  openError(route: string | undefined): InstanceType<typeof CircuitOpenError> {
    return this.#openErrorFor(route);
  }

  /** The admitted call settled (its response headers or its error): frees the probe it held. */
  release(ticket: number): void {
    if (ticket % 2 === 1) this.#probing = false;
  }

  /** Counts an admitted call's outcome, if the circuit is still in the period it was admitted in. */
  record(ticket: number, ok: boolean): void {
    if (Math.floor(ticket / 2) === this.#epoch && !this.#breaker.isShutdown) this.#breaker.fire(ok).then(noop, noop);
  }

  stats(): CircuitBreakerStats {
    const s = this.#breaker.stats;
    const requests = s.successes + s.failures;
    return {
      state: this.state,
      requests,
      successes: s.successes,
      failures: s.failures,
      errorPercent: requests === 0 ? 0 : (s.failures / requests) * 100,
      rejected: this.#rejected,
    };
  }

  /** Stops opossum's timers and listeners (its shutdown()) and detaches from the ticker. */
  close(): void {
    this.#ticker.off('rotate', this.#forward);
    this.#ownTicker?.close();
    this.#breaker.shutdown();
  }

  #openError(ctx: CallContext): InstanceType<typeof CircuitOpenError> {
    return this.#openErrorFor(ctx.route);
  }

  #openErrorFor(route: string | undefined): InstanceType<typeof CircuitOpenError> {
    const message = this.#breaker.halfOpen
      ? 'circuit is half-open and its probe is in flight; failing fast until the probe completes'
      : `circuit is open; next probe in ~${Math.max(0, Math.round(this.#openedAt + this.#params.resetTimeoutMs - this.#clock.now()))} ms`;
    return new CircuitOpenError(message, { service: this.#service, route });
  }
}
