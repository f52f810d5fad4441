/**
 * Outbound adaptive concurrency (the client side of Netflix concurrency-limits): each attempt
 * to a destination takes a slot of its adaptive limit (gradient-limit.ts) and gives it back when
 * its response headers arrive (or it fails), with the attempt's latency as the sample. When no
 * slot is free the call waits, first come first served, up to `maxWaitMs` and never past its
 * deadline, then fails with `TRELLIS_OVERLOADED` — instead of piling onto an upstream whose
 * latency already says it is struggling.
 *
 * It sits below retry (each attempt takes its own slot), below the rate limit (a call the rate
 * limit refuses takes no slot) and above the breaker. A refusal is the caller's side protecting
 * the upstream: never retried, never charged to an endpoint or a breaker.
 *
 * Latency samples: a success or a failure with a response counts; a shed answer (the upstream
 * refused before any work) and a cancelled attempt do not; a timeout counts with its elapsed time
 * (latency grew). Waiters' timers are cleared the moment they get a slot or give up.
 */
import type { Classifier } from '../core/classify.js';
import type { Clock } from '../core/clock.js';
import { isTrellisError, OverloadedError } from '../core/errors.js';
import type { Filter } from '../core/service.js';
import type { GradientLimit } from './gradient-limit.js';

export interface ConcurrencyLimitDeps<Res> {
  clock: Clock;
  classify: Classifier<Res>;
  /** How long an excess call may wait for a slot, in ms; 0 = fail at once. */
  maxWaitMs: number;
  onRefused?: () => void;
}

interface Waiter {
  grant: () => void;
  timer: ReturnType<typeof setTimeout>;
}

/** The waiting room of one limit: FIFO, each waiter with its own give-up timer. */
export class SlotQueue {
  readonly limit: GradientLimit;
  readonly #waiters: Waiter[] = [];

  constructor(limit: GradientLimit) {
    this.limit = limit;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  /** Resolves true with a slot, false when `waitMs` passed first. */
  acquire(waitMs: number): Promise<boolean> | boolean {
    if (this.limit.tryAcquire()) return true;
    if (waitMs <= 0) return false;
    return new Promise<boolean>((resolve) => {
      const w: Waiter = {
        grant: () => {
          clearTimeout(w.timer);
          resolve(true);
        },
        timer: setTimeout(() => {
          const i = this.#waiters.indexOf(w);
          if (i !== -1) this.#waiters.splice(i, 1);
          resolve(false);
        }, waitMs),
      };
      this.#waiters.push(w);
    });
  }

  release(rttMs: number | undefined): void {
    this.limit.release(rttMs);
    while (this.#waiters.length > 0 && this.limit.tryAcquire()) this.#waiters.shift()?.grant();
  }
}

export function concurrencyLimitFilter<Req, Res>(queue: SlotQueue, service: string, deps: ConcurrencyLimitDeps<Res>): Filter<Req, Res> {
  const { clock, classify, maxWaitMs, onRefused } = deps;
  const refuse = (): Promise<never> => {
    onRefused?.();
    return Promise.reject(new OverloadedError(`adaptive concurrency limit of ${service} reached (${queue.limit.limit} in flight)`, { service }));
  };
  const run = (req: Req, ctx: Parameters<Filter<Req, Res>>[1], next: Parameters<Filter<Req, Res>>[2]): Promise<Res> => {
    const start = clock.now();
    return next(req, ctx).then(
      (res) => {
        const c = classify(res, undefined);
        queue.release(c.kind === 'ignore' ? undefined : clock.now() - start);
        return res;
      },
      (err: unknown) => {
        const timedOut = isTrellisError(err, 'TRELLIS_TIMEOUT');
        queue.release(timedOut ? clock.now() - start : undefined);
        throw err;
      },
    );
  };
  return (req, ctx, next) => {
    const wait = ctx.deadline === undefined ? maxWaitMs : Math.min(maxWaitMs, ctx.deadline - clock.now());
    const got = queue.acquire(wait);
    if (got === true) return run(req, ctx, next);
    if (got === false) return refuse();
    return got.then((ok) => (ok ? run(req, ctx, next) : refuse()));
  };
}
