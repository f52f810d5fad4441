/**
 * Lets gRPC calls go through the destination's one circuit breaker, which HTTP calls share.
 * `ServiceState.breaker()` builds that breaker with the HTTP classifier: it counts thrown errors
 * as failures (and Trellis refusals as nothing), and any result without a 5xx `statusCode` as a
 * success. A gRPC failure is a result (a status), so on its own it would count as a success.
 *
 * The adapter classifies with the gRPC classifier below the breaker and carries the verdict
 * across it in the breaker's own terms: a failed result crosses as a thrown `GrpcFailureCarrier`
 * (counted as a failure), an ignored one (CANCELLED) as a carrier that is an `AbortedError`
 * (counted as nothing); above the breaker the carrier is unwrapped and the caller gets the
 * result as it was. Successes cross unchanged.
 */
import type { Classifier } from '../core/classify.js';
import { AbortedError } from '../core/errors.js';
import type { Filter } from '../core/service.js';
import type { GrpcCall, GrpcResult } from './grpc-call.js';

const kCarried = Symbol('trellis.grpcResult');

type Carrier = Error & { [kCarried]: GrpcResult };

function carry(err: Error, res: GrpcResult): Carrier {
  Object.defineProperty(err, kCarried, { value: res });
  return err as Carrier;
}

function carried(err: unknown): GrpcResult | undefined {
  return typeof err === 'object' && err !== null ? (err as Partial<Carrier>)[kCarried] : undefined;
}

/**
 * Wraps the destination's breaker filter (whatever its result type) for gRPC results.
 *
 * @example
 * const filter = grpcBreakerFilter(state.breaker(spec).filter, grpcClassifier(spec.retries.on));
 */
export function grpcBreakerFilter<BReq, BRes>(breaker: Filter<BReq, BRes>, classify: Classifier<GrpcResult>): Filter<GrpcCall, GrpcResult> {
  // The breaker never looks at the request or the result: it only forwards them.
  const shared = breaker as unknown as Filter<GrpcCall, GrpcResult>;
  const below = (next: (req: GrpcCall, ctx: Parameters<Filter<GrpcCall, GrpcResult>>[1]) => Promise<GrpcResult>) =>
    (req: GrpcCall, ctx: Parameters<Filter<GrpcCall, GrpcResult>>[1]): Promise<GrpcResult> =>
      next(req, ctx).then((res) => {
        const c = classify(res, undefined);
        if (c.kind === 'success') return res;
        if (c.kind === 'failure') throw carry(new Error(`gRPC status ${res.status.code}: ${res.status.details}`), res);
        throw carry(new AbortedError('ignored by the breaker', { service: ctx.service, route: ctx.route }), res);
      });
  return (req, ctx, next) =>
    shared(req, ctx, below(next)).catch((err: unknown) => {
      const res = carried(err);
      if (res !== undefined) return res;
      throw err;
    });
}
