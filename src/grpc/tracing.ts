/**
 * The gRPC edge of tracing. Client side: how the protocol-neutral attempt filter
 * (`tracingAttemptFilter`: one CLIENT span per attempt) reads and rewrites a `GrpcCall`, with
 * the OpenTelemetry RPC semantic conventions: span name `pkg.Service/Method`, `rpc.system`
 * `grpc`, `rpc.service`, `rpc.method`, `server.address` (the destination), `network.peer.*`
 * (the endpoint), `rpc.grpc.status_code`; a non-OK status is an error on a client span.
 * Server side: `startGrpcServerSpan`, one SERVER span per call, child of the caller's
 * `traceparent` (or B3) metadata; without an SDK the caller's context passes through, as
 * `tracing-inbound.ts` does for HTTP.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import type { Attributes, Context } from '@opentelemetry/api';
import { Metadata } from '@grpc/grpc-js';
import type { TraceContext } from '../core/ambient.js';
import type { CallContext } from '../core/context.js';
import { applyFilter } from '../core/service.js';
import type { StackModule } from '../core/stack.js';
import { extract, TRACE_HEADERS } from '../observability/propagation.js';
import type { HeaderBag } from '../observability/propagation.js';
import { tracingAttemptFilter } from '../observability/tracing-filter.js';
import type { TracingAttemptDeps } from '../observability/tracing-filter.js';
import type { MeshTracer } from '../observability/tracer.js';
import { fromSpanContext, toSpanContext } from '../observability/tracer.js';
import type { GrpcCall, GrpcResult } from './grpc-call.js';
import { firstOwn, hasAny, setOwn } from './metadata-entries.js';
import { grpcCodeName, SERVER_FAILURE_CODES, Status } from './status.js';

/** Metadata as a header bag (string values only; binary `-bin` entries are not trace headers). */
export function metadataHeaders(metadata: Metadata): HeaderBag {
  const out: Record<string, string> = {};
  const map = metadata.getMap();
  for (const k in map) {
    const v = map[k];
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}

/** `/pkg.Service/Method` → `{ service: 'pkg.Service', method: 'Method' }`. */
export function splitMethodPath(path: string): { service: string; method: string } {
  const i = path.lastIndexOf('/');
  return i <= 0 ? { service: path.replace(/^\//, ''), method: '' } : { service: path.slice(1, i), method: path.slice(i + 1) };
}

function rpcAttributes(path: string, into: Attributes): string {
  const { service, method } = splitMethodPath(path);
  into['rpc.system'] = 'grpc';
  into['rpc.service'] = service;
  into['rpc.method'] = method;
  return path.startsWith('/') ? path.slice(1) : path;
}

/**
 * A copy of the call's metadata without trace entries, with `trace` set; the attempt owns it.
 * The usual call carries no trace entry of its own: then nothing is removed, and the mesh's
 * own entries are written without grpc-js's validation (metadata-entries.ts).
 */
function injectMetadata(req: GrpcCall, headers: Record<string, string>): GrpcCall {
  const md = req.metadata.clone();
  if (hasAny(md, TRACE_HEADERS)) for (const k of TRACE_HEADERS) md.remove(k);
  for (const k in headers) setOwn(md, k, headers[k] as string);
  return { ...req, metadata: md };
}

const NO_CARRIER: HeaderBag = Object.freeze({});

/** Only the trace entries of the metadata (what `extract` reads), without building the whole map. */
export function metadataTraceCarrier(md: Metadata): HeaderBag {
  if (!hasAny(md, TRACE_HEADERS)) return NO_CARRIER;
  const out: Record<string, string> = {};
  for (const k of TRACE_HEADERS) {
    const v = firstOwn(md, k);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function traceCarrier(req: GrpcCall): HeaderBag {
  return metadataTraceCarrier(req.metadata);
}

/** The CLIENT span attributes of one attempt (OpenTelemetry RPC conventions), known before it is sent. */
export function grpcAttemptAttributes(path: string, service: string, route: string | undefined, attempt: number, endpoint: { host: string; port: number } | undefined): Attributes {
  const a: Attributes = { 'server.address': service };
  rpcAttributes(path, a);
  if (endpoint !== undefined) {
    a['network.peer.address'] = endpoint.host;
    a['network.peer.port'] = endpoint.port;
  }
  if (attempt > 1) a['trellis.attempt'] = attempt;
  if (route !== undefined) a['trellis.route'] = route;
  return a;
}

/** What an attempt's status says on its span: the code attribute, and an `error.type` for a non-OK one. */
export function grpcResultAttributes(code: number): { attributes: Attributes; errorType: string | undefined } {
  return { attributes: { 'rpc.grpc.status_code': code }, errorType: code === Status.OK ? undefined : grpcCodeName(code).toUpperCase().replace(/-/g, '_') };
}

export const grpcTracingDeps: TracingAttemptDeps<GrpcCall, GrpcResult> = {
  inject: injectMetadata,
  spanName: (req) => (req.path.startsWith('/') ? req.path.slice(1) : req.path),
  requestAttributes(req: GrpcCall, ctx: CallContext): Attributes {
    return grpcAttemptAttributes(req.path, ctx.service, ctx.route, ctx.attempt, ctx.endpoint);
  },
  describeResult(res: GrpcResult) {
    return grpcResultAttributes(res.status.code);
  },
  carrier: traceCarrier,
};

/** The attempt-level tracing module of a gRPC stack: one CLIENT span per attempt, trace metadata injected. */
export function grpcTracingModule(tracer: MeshTracer): StackModule<GrpcCall, GrpcResult> {
  const filter = tracingAttemptFilter(tracer, grpcTracingDeps);
  return {
    role: 'tracing',
    why: 'below the balancer so each attempt is its own span naming its endpoint and sends its own span id; above the endpoint filter, which must stay directly above the transport',
    params: `inject ${tracer.formats.join('+')}`,
    make: (next) => applyFilter(filter, next),
  };
}

/** The SERVER span of one gRPC call (or, without an SDK, the context passed through). */
export interface GrpcServerSpan {
  /** The trace context the handler's outbound calls continue. */
  readonly ambientTrace: TraceContext;
  run<T>(fn: () => T): T;
  /** Ends the span with the status sent; idempotent. */
  end(code: number, details: string): void;
}

function passThrough<T>(fn: () => T): T {
  return fn();
}

/**
 * Starts the server span of a call to `path` whose request metadata is `metadata`.
 *
 * @example
 * const span = startGrpcServerSpan(tracer, metadata, '/shop.Products/Get', 'products', peer);
 * runWithAmbient({ deadline, service, trace: span.ambientTrace }, () => span.run(() => next(metadata)));
 */
export function startGrpcServerSpan(tracer: MeshTracer, metadata: Metadata, path: string, service: string | undefined, peer: string | undefined): GrpcServerSpan {
  const incoming = extract(metadataHeaders(metadata));
  const otel = tracer.spanTracer();
  if (otel === undefined) return { ambientTrace: incoming ?? tracer.newRoot(), run: passThrough, end: () => undefined };
  const parent: Context = incoming === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, toSpanContext(incoming, true));
  const attributes: Attributes = {};
  const name = rpcAttributes(path, attributes);
  if (service !== undefined) attributes['server.address'] = service;
  if (peer !== undefined) {
    const i = peer.lastIndexOf(':');
    attributes['network.peer.address'] = i > 0 ? peer.slice(0, i).replace(/^\[|\]$/g, '') : peer;
    if (i > 0) attributes['network.peer.port'] = Number(peer.slice(i + 1));
  }
  const span = otel.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
  const spanCtx = trace.setSpan(parent, span);
  let ended = false;
  return {
    ambientTrace: fromSpanContext(span.spanContext()),
    run: (fn) => context.with(spanCtx, fn),
    end(code, details) {
      if (ended) return;
      ended = true;
      span.setAttribute('rpc.grpc.status_code', code);
      if (SERVER_FAILURE_CODES.has(code)) {
        span.setAttribute('error.type', grpcCodeName(code).toUpperCase().replace(/-/g, '_'));
        span.setStatus({ code: SpanStatusCode.ERROR, message: details });
      }
      span.end();
    },
  };
}
