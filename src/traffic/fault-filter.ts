/**
 * Fault injection for one route, with Istio's `HTTPFaultInjection` semantics (Envoy's fault
 * filter): a delay holds `delay.percent`% of requests for `delay.durationMs` before they go on;
 * an abort answers `abort.percent`% of requests with `abort.status` at once, without calling
 * `next` — the upstream never sees them. Both may apply to one request: the delay first, then
 * the abort (as Envoy does). Percentages may be fractional (0.1 = one request in a thousand);
 * each is drawn independently, and not at all when it is 0 or 100.
 *
 * Placement: outermost on the route (above timeout and retry), so an injected abort is answered
 * to the caller as it is — never retried, never counted by the breaker or outlier detection —
 * and an injected delay does not eat into the route's timeout (Envoy runs the fault filter
 * before the router, whose timeout starts afterwards).
 *
 * Cancellation: the delay ends early when `ctx.signal` aborts; the timer is cleared and the call
 * rejects with the signal's reason when it is a TrellisError, else with an `AbortedError` whose
 * cause is that reason (so metrics classify it as a caller abort, as the timeout filter does).
 */
import type { CallContext } from '../core/context.js';
import type { Random } from '../core/clock.js';
import type { FaultSpec } from '../config/types.js';
import { AbortedError, TrellisError } from '../core/errors.js';
import type { Filter } from '../core/service.js';
import { timerDelay } from '../core/timer-limit.js';

export type FaultKind = 'delay' | 'abort';

export interface FaultDeps<Res> {
  random: Random;
  /** The synthetic result an abort answers with (HTTP: `syntheticHttpResponse(status)`). */
  abortResult: (status: number, ctx: CallContext) => Res;
  /** Called for each injected fault (metrics). */
  onFault?: (kind: FaultKind, ctx: CallContext) => void;
}

/** A sampler for `percent`% of calls: no draw at 0 or 100. */
function sampler(percent: number, random: Random): () => boolean {
  if (!(percent > 0)) return () => false;
  if (percent >= 100) return () => true;
  const p = percent / 100;
  return () => random() < p;
}

function abortReason(ctx: CallContext, reason: unknown): unknown {
  if (reason instanceof TrellisError) return reason;
  return new AbortedError('the caller aborted the request during an injected delay', { cause: reason, service: ctx.service, route: ctx.route });
}

/** Waits `ms`, or rejects as soon as `ctx.signal` aborts; the timer never outlives the wait. */
function injectedDelay(ms: number, ctx: CallContext): Promise<void> {
  const signal = ctx.signal;
  if (signal?.aborted === true) return Promise.reject(abortReason(ctx, signal.reason));
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(ctx, signal?.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, timerDelay(ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Builds the fault filter for a route's `fault` block.
 *
 * @example
 * const fault = faultFilter(route.fault, { random: systemRandom,
 *   abortResult: (status) => syntheticHttpResponse(status) });
 */
export function faultFilter<Req, Res>(spec: FaultSpec, deps: FaultDeps<Res>): Filter<Req, Res> {
  const { random, abortResult, onFault } = deps;
  const delayMs = spec.delay?.durationMs ?? 0;
  const delayHits = spec.delay !== undefined && delayMs > 0 ? sampler(spec.delay.percent, random) : () => false;
  const abortStatus = spec.abort?.status ?? 0;
  const abortHits = spec.abort !== undefined ? sampler(spec.abort.percent, random) : () => false;

  const maybeAbort = (req: Req, ctx: CallContext, next: (req: Req, ctx: CallContext) => Promise<Res>): Promise<Res> => {
    if (!abortHits()) return next(req, ctx);
    onFault?.('abort', ctx);
    try {
      return Promise.resolve(abortResult(abortStatus, ctx));
    } catch (err) {
      return Promise.reject(err);
    }
  };

  return (req, ctx, next) => {
    if (!delayHits()) return maybeAbort(req, ctx, next);
    onFault?.('delay', ctx);
    return injectedDelay(delayMs, ctx).then(() => maybeAbort(req, ctx, next));
  };
}
