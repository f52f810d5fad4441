/**
 * Endpoint-level tracing filter: one CLIENT span per attempt, as Envoy and Linkerd emit and
 * as the OpenTelemetry HTTP conventions ask ("each time an HTTP request is sent, a new client
 * span"). Retries are sibling spans under the same parent, told apart by
 * `http.request.resend_count`; there is no logical-request span wrapping them (a second CLIENT
 * span per call would double-count service-graph edges; the caller's own span, or the inbound
 * server span, already stands for the logical request).
 *
 * It sits directly above the transport, below the balancer, so `ctx.endpoint` is known and
 * the headers it injects are the ones this attempt sends: with spans, each attempt carries its
 * own span id; without an SDK, the parent context passes through unchanged (see tracer.ts).
 * A call made outside any inbound request or application span starts a new trace per attempt
 * (no CallContext field carries a logical-request trace yet).
 *
 * The span ends when the result is complete (`whenDone`: for HTTP, when the body finishes),
 * or when the attempt fails. Protocol specifics come in through `TracingAttemptDeps`.
 */
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Attributes, Span } from '@opentelemetry/api';
import type { CallContext } from '../core/context.js';
import type { Filter } from '../core/service.js';
import type { HeaderBag } from './propagation.js';
import { extract } from './propagation.js';
import type { MeshTracer } from './tracer.js';
import { fromSpanContext } from './tracer.js';

export interface TracingAttemptDeps<Req, Res> {
  /** Returns the request to send with these trace headers (HTTP: a new headers object, stale trace headers dropped). */
  inject(req: Req, headers: Record<string, string>): Req;
  /** Span name (HTTP: the method). */
  spanName(req: Req): string;
  /** Attributes known before sending: method, path, destination, endpoint, resend count. */
  requestAttributes(req: Req, ctx: CallContext): Attributes;
  /** What the result says: attributes (status code) and an `error.type` when it is a failure. */
  describeResult(res: Res): { attributes: Attributes; errorType: string | undefined };
  /** The request's own headers: a trace context the application put there is the parent when there is no other. */
  carrier?(req: Req): HeaderBag;
  /** Calls `done` when the result is fully consumed (HTTP: body finished). */
  whenDone?(res: Res, done: () => void): void;
}

/** A low-cardinality `error.type` for a thrown error: the Trellis code, a Node code, or the class name. */
export function errorType(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
    const name = (err as { name?: unknown }).name;
    if (typeof name === 'string' && name !== '') return name;
  }
  return '_OTHER';
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Builds the attempt filter.
 *
 * @example
 * stack.push({ role: 'tracing-attempt', why: '...', make: (next) =>
 *   applyFilter(tracingAttemptFilter(tracer, httpTracingDeps), next) });
 */
export function tracingAttemptFilter<Req, Res>(tracer: MeshTracer, deps: TracingAttemptDeps<Req, Res>): Filter<Req, Res> {
  const { inject, spanName, requestAttributes, describeResult, carrier, whenDone } = deps;

  const propagateOnly: Filter<Req, Res> = (req, ctx, next) => {
    let parent = tracer.currentParent();
    if (parent === undefined && carrier !== undefined) parent = extract(carrier(req));
    return next(inject(req, tracer.headersFor(parent ?? tracer.newRoot())), ctx);
  };

  return (req, ctx, next) => {
    const otel = tracer.spanTracer();
    if (otel === undefined) return propagateOnly(req, ctx, next);
    const parentCtx = tracer.parentOtelContext();
    const span: Span = otel.startSpan(spanName(req), { kind: SpanKind.CLIENT, attributes: requestAttributes(req, ctx) }, parentCtx);
    const sent = inject(req, tracer.headersFor(fromSpanContext(span.spanContext())));
    const end = (): void => span.end();
    // The attempt span is active below, so an instrumentation of the transport nests under it.
    return context.with(trace.setSpan(parentCtx, span), () => next(sent, ctx)).then(
      (res) => {
        if (span.isRecording()) {
          const d = describeResult(res);
          span.setAttributes(d.attributes);
          if (d.errorType !== undefined) {
            span.setAttribute('error.type', d.errorType);
            span.setStatus({ code: SpanStatusCode.ERROR });
          }
        }
        if (whenDone !== undefined) whenDone(res, end);
        else end();
        return res;
      },
      (err: unknown) => {
        if (span.isRecording()) {
          span.setAttribute('error.type', errorType(err));
          span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(err) });
        }
        end();
        throw err;
      },
    );
  };
}
