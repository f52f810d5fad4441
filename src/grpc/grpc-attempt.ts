/**
 * One try of a gRPC call through the mesh on one endpoint, as the per-call objects see it (a
 * unary call's `UnaryAttempt` in unary-call.ts, a stream's `StreamAttempt` in stream-call.ts):
 * the endpoint the balancer chose, the breaker ticket, the concurrency slot, the attempt span,
 * the call opened below the interceptor, and the endpoint-level bookkeeping done once when the
 * try ends (`settle`). The subclasses are the grpc-js listeners of their calls.
 *
 * Also here, shared by both: how a call decides its tracing once (`callTrace`), and the span
 * name of a method path.
 */
import { SpanStatusCode } from '@opentelemetry/api';
import type { Context, Span, Tracer } from '@opentelemetry/api';
import type { Metadata } from '@grpc/grpc-js';
import type { Classification } from '../core/classify.js';
import type { Deadline, DeadlineQueue } from '../core/deadline-queue.js';
import { isTrellisError } from '../core/errors.js';
import type { LbEndpoint } from '../lb/lb-endpoint.js';
import { errorOutcome } from '../observability/metrics-labels.js';
import { extract, TRACE_HEADERS } from '../observability/propagation.js';
import type { MeshTracer } from '../observability/tracer.js';
import { errorType } from '../observability/tracing-filter.js';
import type { SlotQueue } from '../resilience/concurrency-limit-filter.js';
import { grpcResultOutcome } from './classify.js';
import type { GrpcResult, InterceptingCallInterface } from './grpc-call.js';
import type { PickTicket } from './pick-ticket.js';
import { hasAny, setOwn } from './metadata-entries.js';
import { codeForError, grpcCodeLabel, Status } from './status.js';
import { grpcResultAttributes, metadataTraceCarrier } from './tracing.js';
import type { GrpcRoutePolicy, GrpcUnaryCore } from './unary-core.js';

/** What settles a try: the breaker, endpoint set and metrics of its destination. */
type SettleCore = Pick<GrpcUnaryCore, 'breaker' | 'endpoints'>;

export const IGNORED: Classification = Object.freeze({ kind: 'ignore' });

export abstract class GrpcAttempt implements Deadline {
  readonly n: number;
  readonly load: LbEndpoint;
  /** The breaker ticket, or -1 without a breaker. */
  readonly ticket: number;
  readonly start: number;
  call: InterceptingCallInterface | undefined;
  /** The attempt's pick ticket, on a `trellis:` channel: where the picker says it refused the attempt. */
  pick: PickTicket | undefined = undefined;
  slot: SlotQueue | undefined = undefined;
  span: Span | undefined = undefined;
  /** The status arrived or the attempt was cancelled: later callbacks are ignored. */
  done = false;
  #settled = false;
  // A per-try deadline (a Deadline of the route's per-try queue; unary calls only).
  deadlineAt = 0;
  deadlinePrev: Deadline | undefined = undefined;
  deadlineNext: Deadline | undefined = undefined;
  deadlineQueue: DeadlineQueue | undefined = undefined;

  constructor(n: number, load: LbEndpoint, ticket: number, start: number) {
    this.n = n;
    this.load = load;
    this.ticket = ticket;
    this.start = start;
    load.outstanding++;
  }

  abstract onDeadline(): void;

  /** Cancels the attempt's call (a timeout, the caller's cancel, a retry elsewhere); its status is then ignored. */
  cancel(reason: Error): void {
    this.deadlineQueue?.cancel(this);
    if (this.done) return;
    this.done = true;
    this.call?.cancelWithStatus(Status.CANCELLED, `cancelled by the mesh: ${reason.message}`);
  }

  /**
   * The attempt's outcome (a status, or an error): the concurrency slot, attempt metrics, the
   * breaker's verdict (`cls`, the route's classification), the endpoint's latency and outlier
   * report (`ecls`, the service's), the span. Once.
   */
  settle(core: SettleCore, route: GrpcRoutePolicy, cls: Classification, ecls: Classification, res: GrpcResult | undefined, err: Error | undefined, now: number): void {
    if (this.#settled) return;
    this.#settled = true;
    this.deadlineQueue?.cancel(this);
    const elapsed = now - this.start;
    const load = this.load;
    load.outstanding--;
    const slot = this.slot;
    if (slot !== undefined) {
      this.slot = undefined;
      slot.release(res !== undefined ? (cls.kind === 'ignore' ? undefined : elapsed) : isTrellisError(err, 'TRELLIS_TIMEOUT') ? elapsed : undefined);
    }
    const rec = route.attemptsRecorder;
    if (rec !== undefined) {
      if (res !== undefined) rec.record(grpcCodeLabel(res.status.code), grpcResultOutcome(res, cls), elapsed / 1000);
      else rec.record(grpcCodeLabel(codeForError(err)), errorOutcome(err), elapsed / 1000);
    }
    const breaker = core.breaker;
    if (breaker !== undefined && this.ticket >= 0) breaker.report(this.ticket, cls.kind);
    if (res !== undefined) {
      // A shed answer is instant and says nothing about the endpoint's latency.
      if (ecls.kind !== 'ignore' || ecls.shed !== true) load.observe(elapsed, now);
      if (ecls.kind !== 'ignore') core.endpoints.report(load.id, ecls.kind === 'success');
    } else if (ecls.kind === 'failure') {
      load.observe(elapsed, now);
      core.endpoints.report(load.id, false);
    }
    const span = this.span;
    if (span !== undefined) {
      this.span = undefined;
      if (span.isRecording()) {
        if (res !== undefined) {
          const d = grpcResultAttributes(res.status.code);
          span.setAttributes(d.attributes);
          if (d.errorType !== undefined) {
            span.setAttribute('error.type', d.errorType);
            span.setStatus({ code: SpanStatusCode.ERROR });
          }
        } else {
          span.setAttribute('error.type', errorType(err));
          span.setStatus({ code: SpanStatusCode.ERROR, message: err?.message ?? '' });
        }
      }
      span.end();
    }
  }
}

/** A call's tracing with an SDK: the tracer and the parent of its attempt spans. */
export interface CallSpans {
  readonly otel: Tracer;
  readonly parent: Context;
}

/**
 * Tracing, decided once per call on the call's own metadata copy `md`: with an SDK, the spans'
 * tracer and parent (each attempt then writes its own span's context); without, the propagated
 * context written into `md` now, the same on every attempt. The application's own trace entries
 * (rarely there: checked first) give way to the mesh's; without an SDK they are the parent when
 * nothing else is.
 */
export function callTrace(tracer: MeshTracer, md: Metadata): CallSpans | undefined {
  const otel = tracer.spanTracer();
  let carrier: ReturnType<typeof metadataTraceCarrier> | undefined;
  if (hasAny(md, TRACE_HEADERS)) {
    if (otel === undefined) carrier = metadataTraceCarrier(md);
    for (const k of TRACE_HEADERS) md.remove(k);
  }
  if (otel !== undefined) return { otel, parent: tracer.parentOtelContext() };
  const parent = tracer.currentParent() ?? (carrier === undefined ? undefined : extract(carrier));
  const h = tracer.headersFor(parent ?? tracer.newRoot());
  for (const k in h) setOwn(md, k, h[k] as string);
  return undefined;
}

/** `pkg.Service/Method`, the span name of `/pkg.Service/Method`. */
export function spanName(path: string): string {
  return path.startsWith('/') ? path.slice(1) : path;
}
