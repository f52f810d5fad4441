/**
 * The timeout layer of a gRPC stack: `src/resilience/timeout-filter.ts`'s semantics (the call's
 * deadline is the soonest of the route timeout and the propagated deadline; past it the caller
 * gets TRELLIS_TIMEOUT and everything below is aborted through `ctx.signal`; a caller's cancel
 * becomes TRELLIS_ABORTED), with the deadline kept in the mesh's shared `DeadlineQueue`
 * (src/core/deadline-queue.ts, `addAt`) instead of a timer per call. Every attempt also hands the deadline to grpc-js (`grpc-timeout`), which
 * ends the attempt by itself; this layer bounds what grpc-js does not see: waiting for
 * discovery, backoff between attempts, queues.
 */
import type { Clock } from '../core/clock.js';
import type { Filter } from '../core/service.js';
import { timeoutFilter } from '../resilience/timeout-filter.js';
import type { DeadlineQueue } from '../core/deadline-queue.js';
import type { GrpcCall, GrpcResult } from './grpc-call.js';

/**
 * @example
 * applyFilter(grpcDeadlineFilter(2000, { clock, queue }), next)
 */
export function grpcDeadlineFilter(timeoutMs: number, deps: { clock: Clock; queue: DeadlineQueue }): Filter<GrpcCall, GrpcResult> {
  return timeoutFilter<GrpcCall, GrpcResult>({ timeoutMs }, { clock: deps.clock, deadlines: deps.queue.scheduler() });
}
