/**
 * The timeout layer of a gRPC stack: `src/resilience/timeout-filter.ts`'s semantics (the call's
 * deadline is the soonest of the route timeout and the propagated deadline; past it the caller
 * gets TRELLIS_TIMEOUT and everything below is aborted through `ctx.signal`; a caller's cancel
 * becomes TRELLIS_ABORTED), with the deadline kept in the mesh's shared `DeadlineQueue` instead
 * of a timer per call. Every attempt also hands the deadline to grpc-js (`grpc-timeout`), which
 * ends the attempt by itself; this layer bounds what grpc-js does not see: waiting for
 * discovery, backoff between attempts, queues.
 */
import { CallController } from '../core/call-signal.js';
import type { Clock } from '../core/clock.js';
import type { CallContext } from '../core/context.js';
import { AbortedError, TimeoutError } from '../core/errors.js';
import type { TrellisError } from '../core/errors.js';
import type { Filter } from '../core/service.js';
import type { DeadlineQueue } from './deadline-queue.js';
import type { GrpcCall, GrpcResult } from './grpc-call.js';

function aborted(ctx: CallContext, reason: unknown): TrellisError {
  return new AbortedError('the caller aborted the request', { cause: reason, service: ctx.service, route: ctx.route });
}

/**
 * @example
 * applyFilter(grpcDeadlineFilter(2000, { clock, queue }), next)
 */
export function grpcDeadlineFilter(timeoutMs: number, deps: { clock: Clock; queue: DeadlineQueue }): Filter<GrpcCall, GrpcResult> {
  if (!(Number.isFinite(timeoutMs) && timeoutMs >= 0)) throw new RangeError(`timeoutMs must be a finite number >= 0, got ${timeoutMs}`);
  const { clock, queue } = deps;
  return (req, ctx, next) => {
    const callerSignal = ctx.signal;
    if (callerSignal?.aborted === true) return Promise.reject(aborted(ctx, callerSignal.reason));
    const now = clock.now();
    let deadline = timeoutMs > 0 ? now + timeoutMs : undefined;
    let propagated = false;
    if (ctx.deadline !== undefined && (deadline === undefined || ctx.deadline < deadline)) {
      deadline = ctx.deadline;
      propagated = true;
    }
    if (deadline === undefined && callerSignal === undefined) return next(req, ctx);
    const bound = deadline === undefined ? 0 : Math.max(0, Math.round(deadline - now));
    const timedOut = (): TrellisError =>
      new TimeoutError(propagated ? `propagated deadline of ${bound} ms exceeded` : `request timed out after ${bound} ms (overall timeout)`, { service: ctx.service, route: ctx.route });
    if (deadline !== undefined && deadline <= now) return Promise.reject(timedOut());

    const controller = new CallController();
    ctx.deadline = deadline;
    ctx.signal = controller.signal;
    return new Promise<GrpcResult>((resolve, reject) => {
      let settled = false;
      const fail = (err: TrellisError): void => {
        release();
        if (!settled) {
          settled = true;
          reject(err);
        }
        controller.abort(err);
      };
      const onCallerAbort = (): void => fail(aborted(ctx, callerSignal?.reason));
      const entry = deadline === undefined ? undefined : queue.add(deadline, () => fail(timedOut()));
      callerSignal?.addEventListener('abort', onCallerAbort);
      function release(): void {
        if (entry !== undefined) queue.cancel(entry);
        callerSignal?.removeEventListener('abort', onCallerAbort);
      }
      let pending: Promise<GrpcResult>;
      try {
        pending = next(req, ctx);
      } catch (e) {
        release();
        settled = true;
        reject(e);
        return;
      }
      pending.then(
        (res) => {
          if (settled) return;
          settled = true;
          release();
          resolve(res);
        },
        (e: unknown) => {
          if (settled) return;
          settled = true;
          release();
          reject(e);
        },
      );
    });
  };
}
