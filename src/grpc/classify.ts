/**
 * The gRPC edge's classifier (Finagle's ResponseClassifier, as `http-classify.ts` is for HTTP):
 * decides once what an attempt's status means for retries, the breaker, outlier detection and
 * metrics.
 *
 * - OK is a success.
 * - UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN and RESOURCE_EXHAUSTED are failures; their
 *   condition is the kebab-case name (`unavailable`), which `retries.on` matches. A status the
 *   picker made because the chosen endpoint had no connection also carries `connect-failure`
 *   (nothing was sent, so it is retried even without a `retries` block). The picker says so on
 *   the attempt's pick ticket (`GrpcResult.refusal`), never in trailers: a server could send
 *   those, and must not be able to claim that its call never reached it.
 * - Any other code is the application's answer (NOT_FOUND, PERMISSION_DENIED...): a success for
 *   the mesh, as an HTTP 4xx is, unless `retries.on` names it (then a retryable failure).
 * - CANCELLED as a result is a stream the peer reset (a server shutting down resets its streams
 *   with CANCEL, which grpc-js reports as CANCELLED): the mesh's own cancellations (timeouts,
 *   the caller's cancel) reject with their error and never arrive as a result. It is a failure
 *   with conditions `reset`, `cancelled` and `unavailable` — the last because grpc-js says
 *   CANCELLED where gRPC's C core says UNAVAILABLE for a server that went away, and gRPC's
 *   default retry condition (`unavailable`) must cover a server that dies mid-call.
 * - Injected faults are ignored (neither success nor failure), and so is a call grpc-js refused
 *   itself before sending it (local-refusal.ts: a message over `grpc.max_send_message_length`):
 *   the caller's mistake, never charged to the endpoint, the breaker or the budget, never retried.
 * - A refusal by the picker because the endpoint's certificate is not the destination's identity
 *   (`refusal: 'peer-identity'`; the application sees `x-trellis-error: TRELLIS_PEER_IDENTITY`,
 *   connect-failure.ts) is a failure of that endpoint with no retry condition, as for HTTP:
 *   another attempt cannot change a certificate.
 * - Errors thrown by the mesh's layers classify as they do for HTTP (`httpClassifier`).
 */
import { IGNORE, SHED, SUCCESS } from '../core/classify.js';
import { SHED_HEADER } from '../core/shed.js';
import { ERROR_CODES } from '../core/errors.js';
import type { Classification, Classifier } from '../core/classify.js';
import { httpClassifier } from '../client/http-classify.js';
import type { MetricsDescribe, MetricsDescription } from '../observability/metrics-filter.js';
import { errorOutcome, OUTCOME_FAILURE, OUTCOME_FAULT, OUTCOME_SUCCESS } from '../observability/metrics-labels.js';
import type { GrpcResult } from './grpc-call.js';
import { isLocalRefusal } from './local-refusal.js';
import { FAILURE_CODES, grpcCodeLabel, grpcCodeName, grpcCodeOf, Status, codeForError } from './status.js';

const NOT_RETRIED_FAILURE: Classification = failure([]);
const OUTCOME_INVALID_ARGUMENT = ERROR_CODES.TRELLIS_INVALID_ARGUMENT.outcome;

function failure(conditions: string[]): Classification {
  return Object.freeze({ kind: 'failure', conditions: Object.freeze(conditions) });
}

/** Builds the classifier of one destination; `retryOn` are its `retries.on` conditions. */
export function grpcClassifier(retryOn: readonly string[]): Classifier<GrpcResult> {
  const byCode = new Map<number, Classification>();
  const connectFailure = new Map<number, Classification>();
  for (let code = 1; code <= 16; code++) {
    const name = grpcCodeName(code);
    const listed = retryOn.includes(name);
    if (code === Status.CANCELLED) byCode.set(code, failure(['reset', 'cancelled', 'unavailable']));
    else if (FAILURE_CODES.has(code) || listed) byCode.set(code, failure([name]));
    else byCode.set(code, SUCCESS);
    connectFailure.set(code, failure(['connect-failure', name]));
  }
  const errors = httpClassifier(retryOn.filter((c) => grpcCodeOf(c) === undefined));
  return (res, err) => {
    if (res === undefined) return errors(undefined, err);
    const code = res.status.code;
    if (code === Status.OK) return SUCCESS;
    if (res.injected || isLocalRefusal(code, res.status.details)) return IGNORE;
    // The picker's refusals come from the attempt's pick ticket, never from trailers a server could send.
    const refusal = res.refusal;
    if (refusal === 'peer-identity') return NOT_RETRIED_FAILURE;
    if (refusal === 'connect-failure') return connectFailure.get(code) ?? IGNORE;
    if (code === Status.UNAVAILABLE && res.status.metadata.get(SHED_HEADER).length > 0) return SHED;
    return byCode.get(code) ?? SUCCESS;
  };
}

/**
 * Describes settled calls for the request and attempt metrics. `status_code` holds the numeric
 * gRPC code as a string (`'0'`, `'14'`): what the caller saw, for errors too (a circuit-open
 * refusal is `'14'`, UNAVAILABLE). The outcome comes from the classifier (`success`,
 * `failure`, `fault`), or from `ERROR_CODES` for a mesh error.
 */
export function grpcDescribe(classify: Classifier<GrpcResult>): MetricsDescribe<GrpcResult> {
  const cache = new Map<string, MetricsDescription>();
  const description = (statusCode: string, outcome: string): MetricsDescription => {
    const key = `${statusCode} ${outcome}`;
    let d = cache.get(key);
    if (d === undefined) {
      d = Object.freeze({ statusCode, outcome });
      cache.set(key, d);
    }
    return d;
  };
  return (res, err) => {
    if (res === undefined) return description(grpcCodeLabel(codeForError(err)), errorOutcome(err));
    return description(grpcCodeLabel(res.status.code), grpcResultOutcome(res, res.injected ? IGNORE : classify(res, undefined)));
  };
}

/**
 * The metric outcome of a result already classified `c` (by the classifier `grpcDescribe` is
 * given): `fault` for an injected one, `invalid_argument` for a local refusal, `cancelled` for
 * an ignored CANCELLED, else from the classification.
 */
export function grpcResultOutcome(res: GrpcResult, c: Classification): string {
  if (res.injected) return OUTCOME_FAULT;
  if (c.kind === 'success') return OUTCOME_SUCCESS;
  if (c.kind === 'failure') return OUTCOME_FAILURE;
  if (isLocalRefusal(res.status.code, res.status.details)) return OUTCOME_INVALID_ARGUMENT;
  return res.status.code === Status.CANCELLED ? 'cancelled' : OUTCOME_FAULT;
}
