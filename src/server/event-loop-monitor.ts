/**
 * Watches this process's event loop and decides how much new work it can take, for the
 * inbound overload guard. Every window (100 ms) it reads the event-loop utilization
 * (`performance.eventLoopUtilization`, the share of time the loop was busy) and the p99
 * event-loop delay (`monitorEventLoopDelay`, how late a timer fires: the queueing a request
 * waits through before its callbacks run). The loop is saturated when it is both busy
 * (utilization >= maxUtilization) and late (delay p99 >= maxDelay): a loop at 100 % that still
 * keeps up is at capacity, not overloaded, and shedding there would only lose goodput.
 *
 * Admission is a probability adjusted once per window, AIMD as TCP does: each saturated window
 * multiplies it by 0.7 (down to 2 %), each healthy one adds 0.1 (up to 1). Shedding a share of
 * requests, rather than all of them for a window, keeps the admitted load near capacity instead
 * of swinging between an idle and a flooded loop.
 *
 * The timer is unref'd (it never keeps a process alive) and stopped by `stop()`.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { EventLoopUtilization, IntervalHistogram } from 'node:perf_hooks';
import type { Random } from '../core/clock.js';

export interface EventLoopThresholds {
  maxUtilization: number;
  maxDelayMs: number;
}

export interface EventLoopState {
  /** Utilization over the last window, 0..1. */
  utilization: number;
  /** Event-loop delay p99 over the last window, in ms. */
  delayP99Ms: number;
  saturated: boolean;
  /** Share of new (non-critical) requests admitted now. */
  admitProbability: number;
}

const WINDOW_MS = 100;
const MIN_ADMIT = 0.02;
const DECREASE = 0.7;
const INCREASE = 0.1;

export class EventLoopMonitor {
  #thresholds: EventLoopThresholds;
  readonly #random: Random;
  #histogram: IntervalHistogram | undefined;
  #elu: EventLoopUtilization | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #state: EventLoopState = { utilization: 0, delayP99Ms: 0, saturated: false, admitProbability: 1 };

  constructor(thresholds: EventLoopThresholds, random: Random) {
    this.#thresholds = thresholds;
    this.#random = random;
  }

  set thresholds(t: EventLoopThresholds) {
    this.#thresholds = t;
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#histogram = monitorEventLoopDelay({ resolution: 10 });
    this.#histogram.enable();
    this.#elu = performance.eventLoopUtilization();
    this.#timer = setInterval(() => this.#tick(), WINDOW_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#histogram?.disable();
    this.#histogram = undefined;
    this.#state = { utilization: 0, delayP99Ms: 0, saturated: false, admitProbability: 1 };
  }

  /** Whether to admit one new request now. */
  admit(): boolean {
    const p = this.#state.admitProbability;
    return p >= 1 || this.#random() < p;
  }

  get state(): EventLoopState {
    return this.#state;
  }

  #tick(): void {
    const h = this.#histogram;
    if (h === undefined) return;
    const now = performance.eventLoopUtilization();
    const window = performance.eventLoopUtilization(now, this.#elu);
    this.#elu = now;
    // The histogram counts delay beyond the resolution, in ns; an empty one reads NaN-like values.
    const delayP99Ms = h.count > 0 ? h.percentile(99) / 1e6 : 0;
    h.reset();
    const t = this.#thresholds;
    const saturated = window.utilization >= t.maxUtilization && delayP99Ms >= t.maxDelayMs;
    const p = this.#state.admitProbability;
    this.#state = {
      utilization: window.utilization,
      delayP99Ms,
      saturated,
      admitProbability: saturated ? Math.max(MIN_ADMIT, p * DECREASE) : Math.min(1, p + INCREASE),
    };
  }
}
