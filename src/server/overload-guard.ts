/**
 * Inbound overload guard, per config version: decides before the handler runs (and before the
 * body is read) whether a new request is admitted or shed, and why. In order:
 *
 * 1. deadline — the caller's propagated deadline has passed, or is shorter than the recent
 *    service time (an exponential average of admitted requests' durations): the caller would
 *    give up before the answer, so the work would be wasted. Applies to critical paths too.
 * 2. event-loop — the loop is saturated and the monitor's admission share says no
 *    (event-loop-monitor.ts). Critical paths are never shed for this.
 * 3. concurrency — the adaptive in-flight limit (gradient-limit.ts) is reached. Critical paths
 *    get twice the limit, so they are shed last.
 *
 * An admitted request holds a slot until its response ends; its duration feeds the limit and
 * the service-time average. A shed request costs a few comparisons and never touches the body.
 * The limit and the monitor outlive config versions whose parameters did not change
 * (InboundPolicies reuses them), so a route edit does not reset what was learnt.
 */
import type { OverloadSpec } from '../config/types.js';
import { GradientLimit } from '../resilience/gradient-limit.js';
import type { EventLoopMonitor } from './event-loop-monitor.js';

export type ShedReason = 'deadline' | 'event-loop' | 'concurrency';

/** A slot held by an admitted request; `done` gives it back once. */
export interface Admission {
  done(now: number, completed: boolean): void;
}

const NO_SLOT: Admission = Object.freeze({ done: () => undefined });
/** Weight of each new duration in the service-time average. */
const SERVICE_TIME_WEIGHT = 0.1;
const CRITICAL_HEADROOM = 2;

function matcher(paths: readonly string[]): (path: string) => boolean {
  if (paths.length === 0) return () => false;
  if (paths.includes('*')) return () => true;
  const exact = new Set(paths.filter((p) => !p.endsWith('*')));
  const prefixes = paths.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  return (raw) => {
    const q = raw.indexOf('?');
    const path = q === -1 ? raw : raw.slice(0, q);
    return exact.has(path) || prefixes.some((p) => path.startsWith(p));
  };
}

export class OverloadGuard {
  readonly spec: OverloadSpec;
  readonly limit: GradientLimit | undefined;
  readonly monitor: EventLoopMonitor | undefined;
  readonly #critical: (path: string) => boolean;
  #serviceTimeMs = 0;
  readonly shed: Record<ShedReason, number> = { deadline: 0, 'event-loop': 0, concurrency: 0 };

  constructor(spec: OverloadSpec, limit: GradientLimit | undefined, monitor: EventLoopMonitor | undefined) {
    this.spec = spec;
    this.limit = limit;
    this.monitor = monitor;
    this.#critical = matcher(spec.critical);
  }

  /** The recent service time (ms) the deadline check compares against. */
  get serviceTimeMs(): number {
    return this.#serviceTimeMs;
  }

  /** Admits the request (returning its slot) or names why it is shed. */
  admit(path: string, deadline: number | undefined, now: number): Admission | ShedReason {
    if (this.spec.deadline && deadline !== undefined && deadline - now <= this.#serviceTimeMs) return this.#refuse('deadline');
    const critical = this.#critical(path);
    if (!critical && this.monitor !== undefined && !this.monitor.admit()) return this.#refuse('event-loop');
    const limit = this.limit;
    if (limit === undefined) return this.#timed(now);
    if (!limit.tryAcquire(critical ? CRITICAL_HEADROOM : 1)) return this.#refuse('concurrency');
    let held = true;
    return {
      done: (end, completed) => {
        if (!held) return;
        held = false;
        const ms = end - now;
        limit.release(completed ? ms : undefined);
        if (completed) this.#observe(ms);
      },
    };
  }

  #timed(start: number): Admission {
    if (!this.spec.deadline) return NO_SLOT;
    let held = true;
    return {
      done: (end, completed) => {
        if (!held) return;
        held = false;
        if (completed) this.#observe(end - start);
      },
    };
  }

  #observe(ms: number): void {
    this.#serviceTimeMs = this.#serviceTimeMs === 0 ? ms : this.#serviceTimeMs * (1 - SERVICE_TIME_WEIGHT) + ms * SERVICE_TIME_WEIGHT;
  }

  #refuse(reason: ShedReason): ShedReason {
    this.shed[reason]++;
    return reason;
  }
}
