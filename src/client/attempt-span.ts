/**
 * The CLIENT span of one attempt on the hot path, when an OpenTelemetry SDK records spans: what
 * the promise stack's tracing filter (observability/tracing-filter.ts with tracing-http.ts) does,
 * as two plain calls — `startAttemptSpan` before the attempt is sent (its trace headers carry the
 * span's own id), `endAttemptSpan` when the attempt's response is complete or it failed. One span
 * per attempt, siblings under the call's parent, told apart by `http.request.resend_count`, with
 * the OpenTelemetry HTTP client attributes.
 */
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { Attributes, Context, Span, Tracer } from '@opentelemetry/api';
import type { LbEndpoint } from '../lb/lb-endpoint.js';
import { errorType } from '../observability/tracing-filter.js';
import { methodAttributes, pathOnly } from '../observability/tracing-http.js';

/** Starts the span of attempt `n` to `load`'s endpoint. */
export function startAttemptSpan(otel: Tracer, parent: Context, call: { service: string; route: string; method: string; path: string }, n: number, load: LbEndpoint): Span {
  const a: Attributes = { 'url.scheme': 'http', 'url.path': pathOnly(call.path), 'server.address': call.service };
  const name = methodAttributes(call.method, a);
  a['network.peer.address'] = load.endpoint.host;
  a['network.peer.port'] = load.endpoint.port;
  if (n > 1) a['http.request.resend_count'] = n - 1;
  a['trellis.route'] = call.route;
  return otel.startSpan(name, { kind: SpanKind.CLIENT, attributes: a }, parent);
}

/** Records the attempt's response status (an error status for 4xx and 5xx), before the body ends. */
export function spanResponse(span: Span, status: number): void {
  if (!span.isRecording()) return;
  span.setAttribute('http.response.status_code', status);
  if (status >= 400) {
    span.setAttribute('error.type', String(status));
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
}

/** Records the attempt's error. */
export function spanError(span: Span, err: unknown): void {
  if (!span.isRecording()) return;
  span.setAttribute('error.type', errorType(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}
