/**
 * Shared fixtures for the balancer tests: endpoint sets, pick requests, pick counting, and a
 * manual timer factory driven by a ManualClock (for the outlier detector).
 */
import type { ManualClock } from '../../src/core/clock.js';
import { makeEndpoint } from '../../src/discovery/endpoint.js';
import type { Balancer, PickRequest } from '../../src/lb/balancer.js';
import { LbEndpoint } from '../../src/lb/lb-endpoint.js';
import type { SetTimer, Timer } from '../../src/lb/outlier-detector.js';

/** n endpoints 10.0.0.1:80 ... with the given weights (default 1). */
export function endpoints(n: number, weights: readonly number[] = [], now = 0): LbEndpoint[] {
  const out: LbEndpoint[] = [];
  for (let i = 0; i < n; i++) out.push(new LbEndpoint(makeEndpoint(`10.0.0.${i + 1}`, 80, {}, weights[i] ?? 1), now));
  return out;
}

export function req(key?: string, avoid?: readonly string[]): PickRequest {
  return { key, avoid: avoid === undefined ? undefined : new Set(avoid) };
}

/** Picks `times` times and counts picks per endpoint id. */
export function countPicks(balancer: Balancer, times: number, request: PickRequest = req()): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < times; i++) {
    const e = balancer.pick(request);
    if (e === undefined) throw new Error('pick returned undefined');
    counts.set(e.id, (counts.get(e.id) ?? 0) + 1);
  }
  return counts;
}

interface PendingTimer {
  at: number;
  seq: number;
  callback: () => void;
  live: boolean;
}

/** Timers that fire only when `advance` moves the ManualClock past their due time. */
export class ManualTimers {
  readonly #clock: ManualClock;
  #pending: PendingTimer[] = [];
  #seq = 0;

  constructor(clock: ManualClock) {
    this.#clock = clock;
  }

  readonly setTimer: SetTimer = (callback, delayMs): Timer => {
    const t: PendingTimer = { at: this.#clock.now() + delayMs, seq: this.#seq++, callback, live: true };
    this.#pending.push(t);
    return { cancel: () => { t.live = false; } };
  };

  /** Timers scheduled and neither fired nor cancelled. */
  get live(): number {
    return this.#pending.filter((t) => t.live).length;
  }

  /** Moves the clock forward by `ms`, firing due timers in order at their due time. */
  advance(ms: number): void {
    const end = this.#clock.now() + ms;
    for (;;) {
      this.#pending = this.#pending.filter((t) => t.live);
      const due = this.#pending.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (due === undefined) break;
      this.#clock.advance(Math.max(due.at - this.#clock.now(), 0));
      due.live = false;
      due.callback();
    }
    this.#clock.advance(end - this.#clock.now());
  }
}
