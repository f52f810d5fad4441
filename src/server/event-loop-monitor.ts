/**
 * Watches this process's event loop and decides how much new work it can take, for the
 * inbound overload guard. Every window (100 ms) it reads the event-loop utilization
 * (`performance.eventLoopUtilization`, the share of time the loop was busy) and the event-loop
 * delay: how late its own window timer fired, or the p99 of `monitorEventLoopDelay` over the
 * window if higher — the queueing a request waits through before its callbacks run. (The
 * histogram alone misses a loop blocked for longer than a window: it records at most one
 * sample per blocked turn, often after the window was read.) The loop is saturated when it is both busy
 * (utilization >= maxUtilization) and late (delay >= maxDelay): a loop at 100 % that still
 * keeps up is at capacity, not overloaded, and shedding there would only lose goodput.
 *
 * Within a turn: when the window timer is already `maxDelay` overdue at the moment a request is
 * read, the loop has been stuck in one I/O phase that long (at 4x load one phase can run for
 * seconds, as libuv runs every ready callback before it gets to the timers), so the request is
 * shed at once; this bounds how long a turn keeps starting work no caller will wait for.
 *
 * Across turns, admission is a probability adjusted once per window, AIMD as TCP does: each saturated window
 * after the first in a row multiplies it by 0.7 (down to 2 %), each healthy one adds 0.1 (up
 * to 1). One saturated window alone (a GC pause, code being compiled on a cold start) sheds
 * nothing: only a loop that stays saturated does. Shedding a share of
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
  #saturatedWindows = 0;
  #lastTick = 0;

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
    this.#lastTick = performance.now();
    this.#timer = setInterval(() => this.#tick(), WINDOW_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#histogram?.disable();
    this.#histogram = undefined;
    this.#state = { utilization: 0, delayP99Ms: 0, saturated: false, admitProbability: 1 };
    this.#saturatedWindows = 0;
  }

  /**
   * Whether to admit one new request now. Two signals: the loop is stalled in this very turn
   * (its window timer is already `maxDelay` overdue: the I/O phase has been running callbacks
   * that long, so requests read now waited at least that long in the kernel and more are
   * queued behind them), and the admission share the windows computed.
   */
  admit(): boolean {
    if (this.#timer !== undefined && performance.now() - this.#lastTick > WINDOW_MS + this.#thresholds.maxDelayMs) return false;
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
    const at = performance.now();
    const lateMs = Math.max(0, at - this.#lastTick - WINDOW_MS);
    this.#lastTick = at;
    const delayP99Ms = Math.max(lateMs, h.count > 0 ? h.percentile(99) / 1e6 : 0);
    h.reset();
    const t = this.#thresholds;
    const saturated = window.utilization >= t.maxUtilization && delayP99Ms >= t.maxDelayMs;
    this.#saturatedWindows = saturated ? this.#saturatedWindows + 1 : 0;
    const p = this.#state.admitProbability;
    this.#state = {
      utilization: window.utilization,
      delayP99Ms,
      saturated,
      admitProbability: this.#saturatedWindows >= 2 ? Math.max(MIN_ADMIT, p * DECREASE) : saturated ? p : Math.min(1, p + INCREASE),
    };
  }
}
