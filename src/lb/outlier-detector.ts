/**
 * Outlier detection: passive health checking from real traffic, Envoy's consecutive-5xx
 * ejection (`outlier_detection.consecutive_5xx`) as Finagle's failure accrual does it. It sits
 * at the endpoint level of the outbound stack: the endpoint layer reports each attempt's
 * classified outcome (`success` / `failure`; injected faults are never reported), and the
 * backend asks `isEjected` when it rebuilds the balancer's healthy list on `onChange`.
 *
 * Rules:
 * - `consecutiveFailures` failures in a row (any success resets the run) eject the endpoint for
 *   `ejectionTimeMs × n`, n being how many times it has been ejected (this one included),
 *   capped at `maxEjectionTimeMs` (Envoy's base_ejection_time × num_ejections, capped by
 *   max_ejection_time). n itself stops growing once the cap is reached, so decay starts
 *   from the cap rather than from an ever larger count.
 * - Decay: for each whole `ejectionTimeMs` an endpoint stays in service after returning, n goes
 *   down by one. It is computed lazily, at the next ejection, from the return time.
 * - Cap: at most floor(size × maxEjectedPercent / 100) endpoints are ejected at once, but at
 *   least one when the set has 2 or more endpoints and maxEjectedPercent > 0. That is Envoy's
 *   historical behaviour ("will eject at least one host regardless of the value", kept as the
 *   opt-in `always_eject_one_host` in current Envoy; grpc-java's xDS outlier detection does the
 *   same), and without it a 10 % cap would never eject anything from a set smaller than 10.
 *   The only endpoint of a set of one is ejected only at 100 %: a lone slow endpoint is better
 *   than none. maxEjectedPercent 0 disables ejection. A failure run blocked by the cap keeps
 *   its count, so the endpoint is ejected on its next failure once room frees up (Envoy
 *   instead resets the run and waits for a whole new one).
 * - An ejected endpoint returns by itself when its time is up: one timer per ejection
 *   (`unref()`'d, so it never holds the process open; cleared by `close()`). Outcomes reported
 *   for an ejected endpoint (requests that were in flight) are ignored; it returns with a
 *   clean failure run.
 * - `onChange` is called after every ejection and return (never from `setEndpoints`: whoever
 *   changes the set rebuilds anyway). Shrinking the set never un-ejects to honour the cap;
 *   endpoints removed from the set are forgotten, timers and all.
 */
import type { Clock } from '../core/clock.js';
import { timerDelay } from '../core/timer-limit.js';

export interface OutlierDetectorParams {
  /** Failures in a row that eject an endpoint (>= 1). */
  readonly consecutiveFailures: number;
  /** Base ejection time, multiplied by the number of ejections (> 0). */
  readonly ejectionTimeMs: number;
  /** Cap on the ejection time as it grows (raised to ejectionTimeMs if lower). */
  readonly maxEjectionTimeMs: number;
  /** Share of the set that may be ejected at once, 0-100. */
  readonly maxEjectedPercent: number;
}

/** A scheduled callback that can be cancelled. */
export interface Timer {
  cancel(): void;
}

/** Schedules `callback` after `delayMs`; injectable so tests fire timers by hand. */
export type SetTimer = (callback: () => void, delayMs: number) => Timer;

/** The real timer factory: `setTimeout`, `unref()`'d so an ejection never keeps Node alive; ejections longer than a timer can wait (about 24.8 days) end there. */
export const unrefTimer: SetTimer = (callback, delayMs) => {
  const handle = setTimeout(callback, timerDelay(delayMs));
  handle.unref();
  return { cancel: () => clearTimeout(handle) };
};

export interface OutlierDetectorDeps {
  readonly clock: Clock;
  /** Called after every ejection and return, to rebuild the healthy list. */
  readonly onChange: () => void;
  /** Called on ejection, with the time (clock.now() scale) it ends and its ejection count. */
  readonly onEject?: (id: string, untilMs: number, count: number) => void;
  readonly onReturn?: (id: string) => void;
  /** Timer factory; defaults to `unrefTimer`. */
  readonly setTimer?: SetTimer;
}

interface EndpointState {
  /** Current run of consecutive failures. */
  failures: number;
  /** Ejection count (the multiplier), before decay since `returnedAt`. */
  ejections: number;
  /** When it last returned to service; -Infinity if never ejected. */
  returnedAt: number;
  /** Set while ejected. */
  timer: Timer | undefined;
}

export class OutlierDetector {
  readonly #params: OutlierDetectorParams;
  readonly #clock: Clock;
  readonly #onChange: () => void;
  readonly #onEject: ((id: string, untilMs: number, count: number) => void) | undefined;
  readonly #onReturn: ((id: string) => void) | undefined;
  readonly #setTimer: SetTimer;
  readonly #maxEjectionMs: number;
  /** Ejection count beyond which the time would exceed the cap anyway. */
  readonly #maxMultiplier: number;
  #states = new Map<string, EndpointState>();
  #ejected = 0;
  #closed = false;

  constructor(params: OutlierDetectorParams, deps: OutlierDetectorDeps) {
    const { consecutiveFailures, ejectionTimeMs, maxEjectionTimeMs, maxEjectedPercent } = params;
    if (!Number.isInteger(consecutiveFailures) || consecutiveFailures < 1) {
      throw new RangeError(`outlier detection: consecutiveFailures must be an integer >= 1, got ${consecutiveFailures}`);
    }
    if (!(ejectionTimeMs > 0) || !Number.isFinite(ejectionTimeMs)) {
      throw new RangeError(`outlier detection: ejectionTimeMs must be > 0, got ${ejectionTimeMs}`);
    }
    if (!(maxEjectionTimeMs >= 0)) {
      throw new RangeError(`outlier detection: maxEjectionTimeMs must be >= 0, got ${maxEjectionTimeMs}`);
    }
    if (!(maxEjectedPercent >= 0 && maxEjectedPercent <= 100)) {
      throw new RangeError(`outlier detection: maxEjectedPercent must be within 0-100, got ${maxEjectedPercent}`);
    }
    this.#params = params;
    this.#clock = deps.clock;
    this.#onChange = deps.onChange;
    this.#onEject = deps.onEject;
    this.#onReturn = deps.onReturn;
    this.#setTimer = deps.setTimer ?? unrefTimer;
    this.#maxEjectionMs = Math.max(maxEjectionTimeMs, ejectionTimeMs);
    this.#maxMultiplier = Math.max(1, Math.ceil(this.#maxEjectionMs / ejectionTimeMs));
  }

  /** Replaces the set of endpoints watched; new ids start clean, missing ids are forgotten. */
  setEndpoints(ids: readonly string[]): void {
    if (this.#closed) return;
    const next = new Map<string, EndpointState>();
    for (const id of ids) {
      const state = this.#states.get(id) ?? { failures: 0, ejections: 0, returnedAt: -Infinity, timer: undefined };
      next.set(id, state);
    }
    for (const [id, state] of this.#states) {
      if (next.has(id) || state.timer === undefined) continue;
      state.timer.cancel();
      state.timer = undefined;
      this.#ejected--;
    }
    this.#states = next;
  }

  /** Reports a successful attempt: ends the endpoint's failure run. */
  success(id: string): void {
    const state = this.#states.get(id);
    if (state !== undefined) state.failures = 0;
  }

  /** Reports a failed attempt; may eject the endpoint (calling `onEject` and `onChange`). */
  failure(id: string): void {
    const state = this.#states.get(id);
    if (state === undefined || state.timer !== undefined) return;
    state.failures++;
    if (state.failures < this.#params.consecutiveFailures) return;
    if (this.#ejected >= this.#maxEjectable(this.#states.size)) return;
    this.#eject(id, state);
  }

  isEjected(id: string): boolean {
    return this.#states.get(id)?.timer !== undefined;
  }

  /** Ids currently ejected (for the healthy list, gauges and describe()). */
  ejectedIds(): string[] {
    const ids: string[] = [];
    for (const [id, state] of this.#states) if (state.timer !== undefined) ids.push(id);
    return ids;
  }

  /** Cancels every timer and forgets every endpoint; later reports are ignored. */
  close(): void {
    this.#closed = true;
    for (const state of this.#states.values()) {
      state.timer?.cancel();
      state.timer = undefined;
    }
    this.#states.clear();
    this.#ejected = 0;
  }

  #maxEjectable(size: number): number {
    const percent = this.#params.maxEjectedPercent;
    if (percent <= 0 || size === 0) return 0;
    const byPercent = Math.floor((size * percent) / 100);
    return size >= 2 ? Math.max(1, byPercent) : byPercent;
  }

  #eject(id: string, state: EndpointState): void {
    const { ejectionTimeMs } = this.#params;
    const now = this.#clock.now();
    if (state.ejections > 0) {
      const healthyPeriods = Math.floor((now - state.returnedAt) / ejectionTimeMs);
      state.ejections = Math.max(0, state.ejections - healthyPeriods);
    }
    state.ejections = Math.min(state.ejections + 1, this.#maxMultiplier);
    state.failures = 0;
    const durationMs = Math.min(ejectionTimeMs * state.ejections, this.#maxEjectionMs);
    state.timer = this.#setTimer(() => this.#return(id, state), durationMs);
    this.#ejected++;
    this.#onEject?.(id, now + durationMs, state.ejections);
    this.#onChange();
  }

  #return(id: string, state: EndpointState): void {
    // A stale timer (the endpoint was removed, or the detector closed) finds no state.
    if (this.#states.get(id) !== state || state.timer === undefined) return;
    state.timer = undefined;
    state.failures = 0;
    state.returnedAt = this.#clock.now();
    this.#ejected--;
    this.#onReturn?.(id);
    this.#onChange();
  }
}
