/**
 * Inbound tracing: one SERVER span per request handled by `mesh.serve` (and the Express and
 * Fastify adapters), child of the trace context the caller sent (`traceparent`, else B3).
 * Its context goes into the ambient context (AsyncLocalStorage, beside the deadline), so the
 * outbound attempts the handler makes are its children without any header forwarding.
 *
 * Without an SDK no span is made: the caller's context passes through as it came (see
 * tracer.ts), or a new root is made for a request that carried none, so every hop of a request
 * shares one trace id. When an HTTP instrumentation of the application already made a SERVER
 * span for this request (it is active and recording when our listener runs), that span is
 * used as is: no second server span.
 *
 * Attributes (OpenTelemetry HTTP semantic conventions, server spans): `http.request.method`,
 * `url.scheme`, `url.path` (no query), `server.address` (this service), `network.peer.address`
 * and `network.peer.port`, `user_agent.original`, `network.protocol.version`,
 * `http.response.status_code`; `error.type` and status ERROR for 5xx, or when the response
 * never completed (client gone: `response_incomplete`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Attributes, Context, Span } from '@opentelemetry/api';
import type { TraceContext } from '../core/ambient.js';
import { extract } from './propagation.js';
import type { MeshTracer } from './tracer.js';
import { fromSpanContext, toSpanContext } from './tracer.js';
import { errorType } from './tracing-filter.js';
import { methodAttributes, pathOnly } from './tracing-http.js';

export interface ServerSpan {
  /** What the handler's outbound calls continue: put it in the ambient context as `trace`. */
  readonly ambientTrace: TraceContext;
  /** Runs the handler with the server span active in the OpenTelemetry context (the application's own spans nest under it). */
  run<T>(fn: () => T): T;
  /** Ends the span with the status sent (undefined when none was) and the failure, if any. Idempotent. */
  end(statusCode: number | undefined, err?: unknown): void;
  /** Ends the span when `res` closes: its status code, and `response_incomplete` when it did not finish. */
  endOn(res: ServerResponse): void;
}

const INCOMPLETE = Object.freeze({ code: 'response_incomplete', message: 'the connection closed before the response completed' });

function passThrough<T>(fn: () => T): T {
  return fn();
}

function endOnClose(span: ServerSpan, res: ServerResponse): void {
  res.once('close', () => span.end(res.headersSent ? res.statusCode : undefined, res.writableFinished ? undefined : INCOMPLETE));
}

/** A ServerSpan that records nothing (propagate-only mode, or an instrumentation's span reused). */
function unrecorded(ambientTrace: TraceContext): ServerSpan {
  const s: ServerSpan = {
    ambientTrace,
    run: passThrough,
    end: () => undefined,
    endOn: () => undefined,
  };
  return s;
}

/** An HTTP instrumentation's SERVER span for this request, active when our listener runs. */
function instrumentationSpan(): Span | undefined {
  const span = trace.getSpan(context.active());
  if (span === undefined || !span.isRecording()) return undefined;
  // Only a SERVER span stands for this request; any other active span merely leaked from where the server was started.
  return (span as Span & { kind?: unknown }).kind === SpanKind.SERVER ? span : undefined;
}

function requestAttributes(req: IncomingMessage, service: string | undefined): { name: string; attributes: Attributes } {
  const attributes: Attributes = {
    'url.scheme': (req.socket as TLSSocket | undefined)?.encrypted === true ? 'https' : 'http',
    'url.path': pathOnly(req.url ?? '/'),
    'network.protocol.version': req.httpVersion,
  };
  const name = methodAttributes((req.method ?? 'GET').toUpperCase(), attributes);
  if (service !== undefined) attributes['server.address'] = service;
  const peer = req.socket?.remoteAddress;
  if (peer !== undefined) {
    attributes['network.peer.address'] = peer;
    if (req.socket.remotePort !== undefined) attributes['network.peer.port'] = req.socket.remotePort;
  }
  const ua = req.headers['user-agent'];
  if (ua !== undefined) attributes['user_agent.original'] = ua;
  return { name, attributes };
}

/**
 * Starts the server span of an inbound request (or, with no SDK, works out the context to
 * pass through).
 *
 * @example
 * const span = startServerSpan(tracer, req, 'products');
 * span.endOn(res);
 * runWithAmbient({ ...inboundAmbient(req.headers, clock, 'products'), trace: span.ambientTrace },
 *   () => span.run(() => handler(req, res)));
 */
export function startServerSpan(tracer: MeshTracer, req: IncomingMessage, service: string | undefined): ServerSpan {
  const otel = tracer.spanTracer();
  if (otel === undefined) return unrecorded(extract(req.headers) ?? tracer.newRoot());
  const existing = instrumentationSpan();
  if (existing !== undefined) return unrecorded(fromSpanContext(existing.spanContext()));

  const incoming = extract(req.headers);
  // The parent is what the request carries, never a context that leaked from server startup.
  const parentCtx: Context = incoming === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, toSpanContext(incoming, true));
  const { name, attributes } = requestAttributes(req, service);
  const span = otel.startSpan(name, { kind: SpanKind.SERVER, attributes }, parentCtx);
  const spanCtx = trace.setSpan(parentCtx, span);
  let ended = false;
  const handle: ServerSpan = {
    ambientTrace: fromSpanContext(span.spanContext()),
    run: (fn) => context.with(spanCtx, fn),
    end(statusCode, err) {
      if (ended) return;
      ended = true;
      if (span.isRecording()) {
        if (statusCode !== undefined) span.setAttribute('http.response.status_code', statusCode);
        if (err !== undefined) {
          span.setAttribute('error.type', errorType(err));
          span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error || (typeof err === 'object' && err !== null && 'message' in err) ? String((err as { message: unknown }).message) : String(err) });
        } else if (statusCode !== undefined && statusCode >= 500) {
          span.setAttribute('error.type', String(statusCode));
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
      }
      span.end();
    },
    endOn(res) {
      endOnClose(handle, res);
    },
  };
  return handle;
}

/** The inbound stack's tracing hook: starts the span, ends it when the response closes. */
export interface InboundTracing {
  /** Starts the server span of `req` and ends it when `res` closes; run the handler in `ambientTrace` through `run`. */
  startTrace(req: IncomingMessage, res: ServerResponse, service: string | undefined): ServerSpan;
  /** Trace id of a request `startTrace` saw (access log lines, exemplars). */
  traceIdOf(req: IncomingMessage): string | undefined;
}

/**
 * The hook `inbound-stack.ts` calls once per request that reaches the handler.
 *
 * @example
 * const tracing = inboundTracing(tracer);
 * const span = tracing.startTrace(req, res, 'products');
 * runWithAmbient({ ...ambient, trace: span.ambientTrace }, () => span.run(() => handler(req, res)));
 */
export function inboundTracing(tracer: MeshTracer): InboundTracing {
  const traceIds = new WeakMap<IncomingMessage, string>();
  return {
    startTrace(req, res, service) {
      const span = startServerSpan(tracer, req, service);
      span.endOn(res);
      traceIds.set(req, span.ambientTrace.traceId);
      return span;
    },
    traceIdOf: (req) => traceIds.get(req),
  };
}
