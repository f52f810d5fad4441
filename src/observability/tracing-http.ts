/**
 * The HTTP edge of tracing: how the protocol-neutral attempt filter reads and rewrites the
 * outbound stack's HttpRequest, with attributes named by the OpenTelemetry HTTP semantic
 * conventions (client spans): `http.request.method` (`_OTHER` plus
 * `http.request.method_original` for an unknown method), `url.scheme`, `url.path` (without
 * the query, which may hold secrets; hence no `url.full`), `server.address` (the destination
 * service: the name the caller asked for), `network.peer.address`/`network.peer.port` (the
 * endpoint this attempt went to), `http.request.resend_count` (on retries),
 * `http.response.status_code`, and `error.type` (the status code for 4xx/5xx, as the
 * conventions ask of client spans). `trellis.route` names the matched route when there is one.
 */
import type { Attributes } from '@opentelemetry/api';
import type { CallContext } from '../core/context.js';
import { applyFilter } from '../core/service.js';
import type { StackModule } from '../core/stack.js';
import type { HttpRequest } from '../client/http-request.js';
import type { HttpResponse } from '../client/http-transport.js';
import { whenBodyDone } from '../client/http-classify.js';
import { withoutTraceHeaders } from './propagation.js';
import { tracingAttemptFilter } from './tracing-filter.js';
import type { TracingAttemptDeps } from './tracing-filter.js';
import type { MeshTracer } from './tracer.js';

const KNOWN_METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE']);

/** Span name and method attributes for an (upper-cased) HTTP method. */
export function methodAttributes(method: string, into: Attributes): string {
  if (KNOWN_METHODS.has(method)) {
    into['http.request.method'] = method;
    return method;
  }
  into['http.request.method'] = '_OTHER';
  into['http.request.method_original'] = method;
  return 'HTTP';
}

/** The path of a request target, without its query. */
export function pathOnly(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

/** The request with `trace` headers in place of any trace headers it already carried. */
export function injectHttpTraceHeaders(req: HttpRequest, trace: Record<string, string>): HttpRequest {
  return { ...req, headers: Object.assign(withoutTraceHeaders(req.headers), trace) };
}

/** What `tracingAttemptFilter` needs to trace HTTP attempts of the outbound stack. */
export const httpTracingDeps: TracingAttemptDeps<HttpRequest, HttpResponse> = {
  inject: injectHttpTraceHeaders,
  spanName: (req) => (KNOWN_METHODS.has(req.method) ? req.method : 'HTTP'),
  requestAttributes(req: HttpRequest, ctx: CallContext): Attributes {
    const a: Attributes = { 'url.scheme': 'http', 'url.path': pathOnly(req.path), 'server.address': ctx.service };
    methodAttributes(req.method, a);
    if (ctx.endpoint !== undefined) {
      a['network.peer.address'] = ctx.endpoint.host;
      a['network.peer.port'] = ctx.endpoint.port;
    }
    if (ctx.attempt > 1) a['http.request.resend_count'] = ctx.attempt - 1;
    if (ctx.route !== undefined) a['trellis.route'] = ctx.route;
    return a;
  },
  describeResult(res: HttpResponse) {
    const status = res.statusCode;
    return { attributes: { 'http.response.status_code': status }, errorType: status >= 400 ? String(status) : undefined };
  },
  carrier: (req) => req.headers,
  whenDone: whenBodyDone,
};

/**
 * The attempt-level tracing module of the outbound HTTP stack (for
 * `OutboundObservability.attemptModules`): one CLIENT span per attempt and its trace headers.
 */
export function httpTracingModule(tracer: MeshTracer): StackModule<HttpRequest, HttpResponse> {
  const filter = tracingAttemptFilter(tracer, httpTracingDeps);
  return {
    role: 'tracing',
    why: 'below the balancer so each attempt is its own span naming its endpoint and sends its own span id; above the endpoint filter, which must stay directly above the transport',
    params: `inject ${tracer.formats.join('+')}`,
    make: (next) => applyFilter(filter, next),
  };
}
